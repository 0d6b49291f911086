import { beforeAll, describe, expect, it } from 'vitest';
import { TxStatus } from '../../../../src/upstreams/postgres/codes.js';
import { loadParser } from '../../../../src/upstreams/postgres/classify.js';
import { Session } from '../../../../src/upstreams/postgres/session.js';
import { applySessionEffects, defaultsEpoch } from '../../../../src/upstreams/postgres/session-apply.js';
import { sessionEffects } from '../../../../src/upstreams/postgres/session-effects.js';

const I = TxStatus.Idle;
const T = TxStatus.InBlock;
const E = TxStatus.Failed;

/** A session that ran `steps` ([sql, status after, errored?]) one request each; `vouched` SQL texts count as planner-approved. */
function after(steps: [sql: string, status: number, errored?: boolean][], vouched: string[] = []): Session {
  const session = new Session('main', new Map([['user', 'u']]));
  // As at startup, the server reports some settings: their SETs are keyed by its word.
  session.serverParameter('application_name', '');
  session.serverParameter('session_authorization', 'u');
  for (const [sql, status, errored = false] of steps) {
    applySessionEffects(session, { executed: [sql], unknown: false, errored, before: session.txStatus, after: status }, (s) => vouched.includes(s), {});
    session.txStatus = status;
  }
  return session;
}
const fresh = () => after([]).fingerprint;

describe('Postgres session state', () => {
  beforeAll(() => loadParser());

  it('keys only what the server confirmed: committed SETs count, rolled-back and failed ones do not', () => {
    const set = after([['SET search_path = s2', I]]).fingerprint;
    expect(set).not.toBe(fresh());
    /** Steps inside a block that SET search_path = s2 first. */
    const block = (...rest: [string, number, boolean?][]): [string, number, boolean?][] => [['BEGIN', T], ['SET search_path = s2', T], ...rest];
    const cases: [steps: [string, number, boolean?][], expected: string][] = [
      [[['SET search_path TO s2', I]], set],
      [[['SET search_path = s2', I, true]], fresh()],
      [block(['COMMIT', I]), set],
      [block(['ROLLBACK', I]), fresh()],
      // A failed block's COMMIT answers ROLLBACK.
      [block(['SELECT 1/0', E, true], ['COMMIT', I]), fresh()],
      [block(['COMMIT', I, true]), fresh()],
      [
        [
          ['BEGIN', T],
          ['SET LOCAL search_path = s2', T],
          ['COMMIT', I],
        ],
        fresh(),
      ],
      [[['BEGIN; SET search_path = s2; COMMIT', I]], set],
      [
        [
          ['SET search_path = s2', I],
          ['RESET search_path', I],
        ],
        fresh(),
      ],
      [
        [
          ['SET search_path = s2', I],
          ['DISCARD ALL', I],
        ],
        fresh(),
      ],
    ];
    for (const [steps, expected] of cases) expect(after(steps).fingerprint, JSON.stringify(steps)).toBe(expected);
  });

  it('models RESET ALL and SESSION AUTHORIZATION as PostgreSQL 15 does', () => {
    /** The fingerprint after these statements, each its own request outside a block. */
    const idle = (...sqls: string[]) => after(sqls.map((sql): [string, number] => [sql, I])).fingerprint;
    const role = idle('SET ROLE low');
    expect(idle('SET ROLE low', 'RESET ALL')).toBe(role);
    expect(idle('SET ROLE low', 'SET search_path = s2', 'RESET ALL')).toBe(role);
    expect(idle('SET ROLE low', 'RESET ROLE')).toBe(fresh());
    // SET SESSION AUTHORIZATION sets the role to none.
    expect(idle('SET ROLE low', 'SET SESSION AUTHORIZATION u')).toBe(idle('SET SESSION AUTHORIZATION u'));
    // A placeholder setting after RESET ALL is empty, not absent.
    expect(idle('SET myapp.tenant = 5', 'RESET ALL')).not.toBe(fresh());
    // Settings the server reports with ParameterStatus are keyed by its word, not by the SET.
    expect(idle("SET application_name = 'x'")).toBe(fresh());
    // pgjdbc's setTransactionIsolation is a SET of default_transaction_isolation.
    expect(idle('SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE')).toBe(idle("SET default_transaction_isolation = 'serializable'"));
    expect(idle('SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE')).not.toBe(fresh());
    // One this server does not report (older servers do not report all of them) is keyed by the SET.
    expect(idle('SET default_transaction_read_only = on')).not.toBe(fresh());
  });

  it('taints on what it cannot model, in doubt, and keeps ordinary traffic clean', () => {
    const tainted = (steps: [string, number, boolean?][], vouched: string[] = []) => after(steps, vouched).tainted;
    for (const sql of [
      "SELECT set_config('search_path', 's2', false)",
      "DO $$ BEGIN PERFORM set_config('search_path', 's2', false); END $$",
      'CALL p()',
      'EXECUTE q',
      "LOAD 'auto_explain'",
      'SELECT 99 AS id INTO TEMP tt',
      'CREATE TEMP TABLE tt AS SELECT 1',
      'CREATE TEMP TABLE tt (id int)',
      'SELECT my_function()',
      'INSERT INTO t VALUES (my_function())',
      'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY, DEFERRABLE',
      'ALTER SYSTEM SET work_mem = 1',
    ])
      expect(tainted([[sql, I]]), sql).toBe(true);
    expect(
      tainted([
        ['BEGIN', T],
        ['SAVEPOINT p', T],
        ['SET search_path = s2', T],
        ['ROLLBACK TO SAVEPOINT p', T],
      ]),
    ).toBe(true);
    expect(tainted([['SET search_path = s2; SELECT 1/0', I, true]])).toBe(true);
    for (const sql of [
      // What ORMs ask the catalog at boot (Rails, SQLAlchemy, Django introspection).
      'SELECT a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a LEFT JOIN pg_attrdef d ON true',
      "SELECT pg_catalog.pg_get_indexdef(i.indexrelid), pg_table_is_visible(c.oid) FROM pg_index i, pg_class c WHERE c.relname = 'x'",
      'SELECT now(), count(*) FROM t',
      "INSERT INTO t VALUES (now(), gen_random_uuid(), lower('A'))",
      'SET LOCAL statement_timeout = 5',
      'BEGIN',
      'SHOW search_path',
      'DISCARD ALL',
    ])
      expect(tainted([[sql, I]]), sql).toBe(false);
    // What the server refused did nothing; what it ran but this parser cannot read taints.
    expect(tainted([['SELEC 1', I, true]])).toBe(false);
    expect(tainted([["DO $$ BEGIN PERFORM set_config('search_path', 's2', false); COMMIT; RAISE 'no'; END $$", I, true]])).toBe(true);
    expect(tainted([['CALL p()', I, true]])).toBe(true);
    expect(tainted([['IDENTIFY_SYSTEM', I]])).toBe(true);
    // A request of several statements that failed part way, a vouched-for one among them.
    const session = new Session('main', new Map([['user', 'u']]));
    const outcome = { executed: ['SET search_path = s2', 'SELECT v FROM t'], unknown: false, errored: true, before: T, after: E };
    applySessionEffects(session, outcome, (s) => s === 'SELECT v FROM t', {});
    expect(session.tainted).toBe(true);
    // A request sidecache could not see into still ends its failed block: a later block commits.
    const unseen = new Session('main', new Map([['user', 'u']]));
    const end = (executed: string[], errored: boolean, before: number, after: number, unknown = false) =>
      applySessionEffects(unseen, { executed, unknown, errored, before, after }, () => false, {});
    end(['BEGIN'], false, I, T);
    end(['SELECT 1/0'], true, T, E);
    end([], false, E, I, true);
    end(['DISCARD ALL'], false, I, I);
    end(['BEGIN'], false, I, T);
    end(['SET search_path = s2'], false, T, T);
    end(['COMMIT'], false, T, I);
    const expected = new Session('main', new Map([['user', 'u']]));
    applySessionEffects(expected, { executed: ['SET search_path = s2'], unknown: false, errored: false, before: I, after: I }, () => false, {});
    expect(unseen.fingerprint).toBe(expected.fingerprint);
    // A statement the planner vouched for (every call IMMUTABLE) needs no allow list.
    expect(tainted([['SELECT my_immutable(1)', I]], ['SELECT my_immutable(1)'])).toBe(false);
    expect(
      tainted([
        ['DO $$ BEGIN END $$', I],
        ['DISCARD ALL', I],
      ]),
    ).toBe(false);
    expect(
      tainted([
        ['DO $$ BEGIN END $$', I],
        ['BEGIN', T],
        ['DISCARD ALL', E, true],
      ]),
    ).toBe(true);
  });

  it('ALTER ROLE/DATABASE … SET starts a new defaults epoch for sessions that begin after it', () => {
    const listener = {};
    const session = new Session('main', new Map([['user', 'u']]), defaultsEpoch(listener));
    applySessionEffects(
      session,
      { executed: ['ALTER ROLE u SET search_path = s2'], unknown: false, errored: false, before: I, after: I },
      () => false,
      listener,
    );
    expect(defaultsEpoch(listener)).toBe(1);
    expect(new Session('main', new Map([['user', 'u']]), defaultsEpoch(listener)).fingerprint).not.toBe(session.fingerprint);
  });

  it('reads each statement of a text', () => {
    expect(sessionEffects('BEGIN; SET search_path = a; COMMIT AND CHAIN').map((e) => e.kind)).toEqual(['begin', 'set', 'commit']);
    expect(sessionEffects('DEALLOCATE ALL; DEALLOCATE x')).toEqual([
      { kind: 'deallocate', name: undefined },
      { kind: 'deallocate', name: 'x' },
    ]);
    expect(sessionEffects('not sql at all')).toEqual([{ kind: 'taint', why: 'a statement sidecache cannot parse' }]);
  });
});
