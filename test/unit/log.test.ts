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

  it('rate-limits a warning per subject, reporting how many were held back, with bounded memory', () => {
    const lines: string[] = [];
    let now = 0;
    const log = new Logger({ level: 'warn', sink: (l) => lines.push(l), now: () => now }).child({ component: 'invalidation' });
    const warn = (subject: string) => log.warnEvery('SC_WARN_BAD_INVALIDATION', `bad ${subject}`, subject, 60_000);
    for (let i = 0; i < 50; i++) warn('malformed JSON');
    warn('unknown field');
    now = 60_000;
    warn('malformed JSON');
    const records = lines.map((l) => JSON.parse(l));
    expect(records.map((r) => [r.msg, r.suppressed])).toEqual([
      ['bad malformed JSON', undefined],
      ['bad unknown field', undefined],
      ['bad malformed JSON', 49],
    ]);
    expect(records[0]).toMatchObject({ code: 'SC_WARN_BAD_INVALIDATION', component: 'invalidation' });
    // Past 1,000 subjects the oldest is forgotten (it may warn again): memory does not grow with input.
    lines.length = 0;
    for (let i = 0; i < 1_001; i++) warn(`subject ${i}`);
    warn('subject 0');
    warn('subject 1000');
    expect(lines.length).toBe(1_002);
  });

  it('forgets the oldest warn-once subjects past 1,000', () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'warn', sink: (l) => lines.push(l) });
    for (let i = 0; i <= 1_000; i++) log.warnOnce('SC_WARN_CATALOG_UNAVAILABLE', 'x', `s${i}`);
    log.warnOnce('SC_WARN_CATALOG_UNAVAILABLE', 'x', 's1000');
    log.warnOnce('SC_WARN_CATALOG_UNAVAILABLE', 'x', 's0');
    expect(lines.length).toBe(1_002);
  });

  it('redacts passwords from URLs', () => {
    expect(redactUrl('postgres://app:hunter2@db:5432/app')).toBe('postgres://app:***@db:5432/app');
    expect(redactUrl('postgres://app:hunter2@db:99999/app?password=again&x=1')).toBe('postgres://app:***@db:99999/app?password=***&x=1');
    expect(redactUrl('postgres://db/app')).toBe('postgres://db/app');
  });
});
