/**
 * What one client connection's session looks like to the cache: who and where it is, the settings
 * the server confirmed, its transaction status, whether it is tainted, and the statements it has
 * prepared (pgbouncer's varcache and prepared-statement tracking).
 *
 * The fingerprint (the start of every key of the session) holds the listener, database and user,
 * then the digest (session-digest.ts) of the epoch of role and database defaults, every startup
 * parameter, every ParameterStatus the server reported and the confirmed session-level settings,
 * each field length-prefixed.
 */
import { TxStatus } from './codes.js';
import type { Effect } from './session-effects.js';
import { field } from './key.js';
import { sessionDigest } from './session-digest.js';

/** A statement the client prepared with Parse. */
export interface PreparedStatement {
  sql: string;
  /** The client's Parse, kept to send upstream later if it was answered from the cache. */
  parse: Buffer;
  /** Offset in `parse` of the parameter type OIDs (count and list): part of every key that runs the statement. */
  typesAt: number;
  /** False while the upstream has not seen this Parse (it was answered from the cache). */
  upstream: boolean;
  /** The RowDescription (or NoData) the server described the statement with, once seen: part of the key of a Bind without Parse. */
  description: Buffer | undefined;
}

/** A SET or RESET of one setting (`value` undefined: back to its default), or RESET ALL. */
export type SettingChange = { kind: 'set'; name: string; value: string | undefined } | { kind: 'reset-all' };

/** What RESET ALL leaves to a placeholder (custom) setting: an empty value, not the absence of one. */
const PLACEHOLDER_RESET = '\u0000reset';
/** What SET SESSION AUTHORIZATION leaves to the role: none, which need not be the startup role. */
const ROLE_NONE = '\u0000none';
/** Settings RESET ALL leaves alone (verified on PostgreSQL 15: the role survives RESET ALL). */
const KEPT_BY_RESET_ALL = new Set(['role', 'session_authorization']);

export class Session {
  readonly database: string;
  readonly user: string;
  /** A replication connection (walsender): it speaks only the simple protocol and its own commands. */
  readonly replication: boolean;
  /** ReadyForQuery status: I, T or E. */
  txStatus: number = TxStatus.Idle;
  readonly statements = new Map<string, PreparedStatement>();
  /** Portal name → the statement it was bound from. */
  readonly portals = new Map<string, PreparedStatement>();
  /** `pg`, listener, database and user: the readable head of the fingerprint. */
  readonly #head: string;
  /** The epoch and the startup parameters: the start of the digested settings text. */
  readonly #startup: string;
  readonly #server = new Map<string, string>();
  /** Lower-cased names of the settings the server reports (every one is reported at startup). */
  readonly #reported = new Set<string>();
  #readable = false;
  /** Session-level settings the server confirmed (succeeded, and committed when in a block). */
  readonly #settings = new Map<string, string>();
  /** SETs of the open transaction block, applied if it commits. */
  #pending: SettingChange[] = [];
  /** The open block failed: it cannot commit (a COMMIT answers ROLLBACK). */
  #aborted = false;
  /** Why the session is tainted, while it is. */
  #taintedBy: string | undefined;
  /** Why the session never uses the cache (a replication connection, an unsupported server): DISCARD ALL does not change it. */
  #refused: string | undefined;
  #fingerprint: string | undefined;
  /** Verdicts about what the session ran that the catalog has not given yet. */
  #holds = 0;

  /** `epoch` counts the role and database defaults (ALTER ROLE/DATABASE … SET) changed through the listener before the session began. */
  constructor(listener: string, params: ReadonlyMap<string, string>, epoch = 0) {
    this.user = params.get('user') ?? '';
    this.database = params.get('database') ?? this.user;
    this.replication = params.has('replication') && !['false', 'off', 'no', '0'].includes(params.get('replication')!.toLowerCase());
    // Every startup parameter belongs to the fingerprint (docs/architecture.md "Postgres session facts").
    this.#head = `pg${field(listener)}${field(this.database)}${field(this.user)}`;
    this.#startup = `${field(String(epoch))}${pairs(params)}`;
  }

  get idle(): boolean {
    return this.txStatus === TxStatus.Idle;
  }

  /** Set after something the cache cannot model (set_config, DO, temporary tables, …) until a successful DISCARD ALL. */
  get tainted(): boolean {
    return this.#taintedBy !== undefined || this.#refused !== undefined;
  }

  /** While a verdict about what the session ran is pending, it keeps from the cache. */
  get held(): boolean {
    return this.#holds > 0;
  }

  /** Keeps the session from the cache until `verdict` settles (it may taint the session). */
  holdUntil(verdict: Promise<unknown>): void {
    this.#holds++;
    void verdict
      .catch(() => this.taint('a verdict about code the session ran failed'))
      .finally(() => {
        this.#holds--;
      });
  }

  /** What tainted the session first, while it is tainted (for the debug log). */
  get taintedBy(): string | undefined {
    return this.#refused ?? this.#taintedBy;
  }

  /** Keeps the session from the cache for good (see `#refused`). */
  refuseCache(why: string): void {
    this.#refused ??= why;
  }

  taint(why: string): void {
    this.#taintedBy ??= why;
  }

  /** The value the server last reported for a setting, if it reported one. */
  parameter(name: string): string | undefined {
    return this.#server.get(name);
  }

  /** A ParameterStatus from the server (TimeZone, DateStyle, application_name, …): the server's word. */
  serverParameter(name: string, value: string): void {
    if (this.#server.get(name) === value) return;
    this.#server.set(name, value);
    this.#reported.add(name.toLowerCase());
    this.#fingerprint = undefined;
    this.#readable = this.#server.get('client_encoding') === 'UTF8' && this.#server.get('standard_conforming_strings') === 'on';
  }

  /**
   * Whether sidecache reads SQL texts as the server does: in UTF-8 (texts are decoded and parsed as
   * UTF-8: in LATIN1 two different texts can decode to one) and with standard-conforming strings
   * (with them off, `'\'` ends a string differently for the server than for libpg-query, which can
   * hide a call or a SET inside what looks like a constant). Both are reported by the server.
   */
  get readsAsServer(): boolean {
    return this.#readable;
  }

  /** A simple Query destroys the unnamed statement and portal (protocol-flow.html, Extended Query). */
  simpleQuery(): void {
    this.statements.delete('');
    this.portals.delete('');
  }

  /**
   * The effects of one request that went upstream, in order; `errored` when the server answered
   * an ErrorResponse, `before`/`after` its ReadyForQuery status on each side.
   */
  endRequest(effects: readonly Effect[], errored: boolean, before: number, after: number): void {
    // A failed single statement did nothing, not even what would taint (GUC changes and temporary
    // objects roll back with it), unless it can commit part way (DO, CALL); its transaction may
    // have ended or failed, as `after` says.
    const failedAlone = errored && effects.length === 1;
    for (const e of effects) if (e.kind === 'taint' && (!failedAlone || e.evenIfFailed === true)) this.taint(e.why);
    const relevant = effects.filter((e) => e.kind !== 'none' && e.kind !== 'taint');
    if (errored) {
      // Which statements of a failed request ran is not known: one that changes the session taints it.
      if (relevant.length > 0 && !failedAlone) this.taint('a request that changes the session failed part way');
    } else {
      // Several statements in one request (a multi-statement Query, several Executes before one
      // Sync) run in one implicit transaction: a ROLLBACK among them undoes the SETs before it, and
      // what is left commits when the request ends (protocol-flow.html, "Multiple Statements in a
      // Simple Query").
      const implicit = effects.length > 1;
      let open = before !== TxStatus.Idle || implicit;
      for (const e of relevant) open = this.#apply(e, open) || implicit;
      if (implicit && after === TxStatus.Idle) {
        for (const p of this.#pending) this.#change(p);
        this.#pending = [];
      }
    }
    if (after === TxStatus.Failed) this.#aborted = true;
    if (after === TxStatus.Idle) {
      // No block is open: what was pending committed above, or was rolled back (an error ended the
      // block); pending SETs left after a request that succeeded mean the model lost track.
      if (this.#pending.length > 0 && !errored) this.taint('a transaction block ended unseen');
      this.#pending = [];
      this.#aborted = false;
    }
  }

  /** Applies one effect of a request that succeeded; `open` says whether a transaction block is open. */
  #apply(e: Effect, open: boolean): boolean {
    switch (e.kind) {
      case 'set':
      case 'reset-all':
        if (open) this.#pending.push(e);
        else this.#change(e);
        return open;
      case 'discard-all':
        this.#settings.clear();
        this.#pending = [];
        this.#aborted = false;
        this.#taintedBy = undefined;
        this.statements.clear();
        this.portals.clear();
        this.#fingerprint = undefined;
        return open;
      case 'deallocate':
        if (e.name === undefined) this.statements.clear();
        else this.statements.delete(e.name);
        return open;
      case 'begin':
        return true;
      case 'commit':
      case 'rollback': {
        const commits = e.kind === 'commit' && !this.#aborted;
        if (commits) for (const p of this.#pending) this.#change(p);
        this.#pending = [];
        this.#aborted = false;
        return e.chain;
      }
      case 'rollback-to':
        // Which SETs came after the savepoint is not tracked.
        if (this.#pending.length > 0) this.taint('ROLLBACK TO SAVEPOINT after a SET');
        this.#aborted = false;
        return open;
      case 'prepare-transaction':
        if (this.#pending.length > 0) this.taint('PREPARE TRANSACTION after a SET');
        this.#pending = [];
        return false;
      default:
        return open;
    }
  }

  #change(change: SettingChange): void {
    this.#fingerprint = undefined;
    if (change.kind === 'reset-all') {
      for (const name of [...this.#settings.keys()]) {
        if (KEPT_BY_RESET_ALL.has(name)) continue;
        if (name.includes('.')) this.#settings.set(name, PLACEHOLDER_RESET);
        else this.#settings.delete(name);
      }
      return;
    }
    const { name, value } = change;
    // SET SESSION AUTHORIZATION (and its RESET) also sets the role to none.
    if (name === 'session_authorization') this.#settings.set('role', ROLE_NONE);
    // The server's word keys the settings it reports (application_name, TimeZone, …), not the SET.
    if (this.#reported.has(name)) return;
    if (value !== undefined) this.#settings.set(name, value);
    else if (name.includes('.')) this.#settings.set(name, PLACEHOLDER_RESET);
    else this.#settings.delete(name);
  }

  /**
   * Every key of this session starts with this: listener, database, user and the digest of the
   * settings, computed again only after a setting changed.
   */
  get fingerprint(): string {
    this.#fingerprint ??= `${this.#head}${field(sessionDigest(`${this.#startup}${pairs(this.#server)}${pairs(this.#settings)}`))}`;
    return this.#fingerprint;
  }
}

/** Name/value pairs in name order, each length-prefixed, after their count. */
function pairs(map: ReadonlyMap<string, string>): string {
  let out = field(String(map.size));
  for (const [k, v] of [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out += field(k) + field(v);
  return out;
}
