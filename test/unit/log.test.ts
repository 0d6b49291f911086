import { describe, expect, it } from 'vitest';
import { Logger } from '../../src/log.js';
import { redactUrl } from '../../src/redact.js';

describe('Logger', () => {
  it('writes JSON lines with bindings, honours the level, and warns once per code', () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'info', sink: (l) => lines.push(l) }).child({ listener: 'api' });
    log.debug('hidden');
    log.info('shown', { n: 1 });
    log.warnOnce('SC_WARN_ADMIN_OPEN', 'careful');
    log.warnOnce('SC_WARN_ADMIN_OPEN', 'careful');
    log.error('failed', { err: Object.assign(new Error('boom'), { code: 'X' }) });
    const records = lines.map((l) => JSON.parse(l));
    expect(records.map((r) => [r.level, r.msg, r.listener])).toEqual([
      ['info', 'shown', 'api'],
      ['warn', 'careful', 'api'],
      ['error', 'failed', 'api'],
    ]);
    expect(records[2].err).toEqual({ message: 'boom', code: 'X' });
  });

  it('redacts passwords from URLs', () => {
    expect(redactUrl('postgres://app:hunter2@db:5432/app')).toBe('postgres://app:***@db:5432/app');
    expect(redactUrl('postgres://app:hunter2@db:99999/app?password=again&x=1')).toBe('postgres://app:***@db:99999/app?password=***&x=1');
    expect(redactUrl('postgres://db/app')).toBe('postgres://db/app');
  });
});
