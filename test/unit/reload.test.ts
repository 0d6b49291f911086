import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { planReload } from '../../src/reload.js';
import { HTTP_RESTART_KEYS } from '../../src/upstreams/http/listener.js';
import { POSTGRES_RESTART_KEYS } from '../../src/upstreams/postgres/listener.js';

const keys = { http: HTTP_RESTART_KEYS, postgres: POSTGRES_RESTART_KEYS };
const config = (text: string) => parseConfig(text, 'test.yaml', {});
const base = `
admin: { listen: "127.0.0.1:9090" }
http: [{ name: api, listen: "127.0.0.1:8080", upstream: "http://a:1", rules: [{ path: "/x", ttl: 1m }] }]
postgres: [{ name: db, listen: "127.0.0.1:6432", upstream: "postgres://p:5432", rules: [{ tables: [t], ttl: 1m }] }]
`;

describe('planReload', () => {
  it('applies rules and TTLs per listener, and changes nothing when nothing changed', () => {
    expect(planReload(config(base), config(base), keys)).toMatchObject({ needsRestart: [], http: [], postgres: [], buses: false });
    const next = config(
      base
        .replace('ttl: 1m }] }]\npostgres', 'ttl: 2m }] }]\npostgres')
        .replace('rules: [{ tables: [t], ttl: 1m }]', 'rules: [{ tables: [t], cache: false }], defaultTtl: 5m'),
    );
    const plan = planReload(config(base), next, keys);
    expect(plan.needsRestart).toEqual([]);
    expect(plan.http.map((h) => h.rules[0]!.ttl)).toEqual([120_000]);
    expect(plan.postgres.map((p) => [p.defaultTtl, p.rules[0]!.cache])).toEqual([[300_000, false]]);
    expect(plan.effective.postgres[0]!.defaultTtl).toBe(300_000);
  });

  it('reports what needs a restart and keeps the running values of those listeners whole', () => {
    const next = config(
      base
        .replace('upstream: "http://a:1", rules: [{ path: "/x", ttl: 1m }]', 'upstream: "http://b:1", rules: [{ path: "/x", ttl: 9m }]')
        .replace('9090', '9191') + 'cache: { maxBytes: 1GiB }\n',
    );
    const plan = planReload(config(base), next, keys);
    expect(plan.needsRestart).toEqual(['admin.listen', 'cache.maxBytes', 'http[api].upstream']);
    expect(plan.http).toEqual([]);
    expect(plan.effective.http[0]!.rules[0]!.ttl).toBe(60_000);
    expect(plan.effective.admin.listen).toBe('127.0.0.1:9090');
  });

  it('reports listeners added or removed, and notices bus changes', () => {
    const next = config(
      `admin: { listen: "127.0.0.1:9090" }\nhttp: [{ name: other, listen: "127.0.0.1:8081", upstream: "http://a:1" }]\ninvalidation: [{ type: redis, url: "redis://r" }]\n`,
    );
    const plan = planReload(config(base), next, keys);
    expect(plan.needsRestart).toEqual(['http[other] (added)', 'http[api] (removed)', 'postgres[db] (removed)']);
    expect(plan.buses).toBe(true);
  });
});
