/**
 * What one client connection's session looks like to the cache: who and where it is, the settings
 * that change results, its transaction status, and the statements it has prepared
 * (pgbouncer's varcache and prepared-statement tracking).
 */
import { TxStatus } from './codes.js';

/** A statement the client prepared with Parse. */
export interface PreparedStatement {
  sql: string;
  /** The client's Parse, kept to send upstream later if it was answered from the cache. */
  parse: Buffer;
  /** False while the upstream has not seen this Parse (it was answered from the cache). */
  upstream: boolean;
}

export class Session {
  readonly database: string;
  readonly user: string;
  /** ReadyForQuery status: I, T or E. */
  txStatus: number = TxStatus.Idle;
  /** Set after something the cache cannot model (set_config, temporary tables) until DISCARD/RESET ALL. */
  tainted = false;
  readonly statements = new Map<string, PreparedStatement>();
  /** Portal name → the SQL it runs. */
  readonly portals = new Map<string, string>();
  readonly #prefix: string;
  readonly #startup: string;
  readonly #server = new Map<string, string>();
  #sets: string[] = [];
  #fingerprint: string | undefined;

  constructor(listener: string, params: ReadonlyMap<string, string>) {
    this.user = params.get('user') ?? '';
    this.database = params.get('database') ?? this.user;
    this.#prefix = `pg\u0000${listener}\u0000`;
    // Every startup parameter belongs to the fingerprint (docs/architecture.md "Postgres session facts").
    this.#startup = [...params]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join('\u0001');
  }

  get idle(): boolean {
    return this.txStatus === TxStatus.Idle;
  }

  /** A ParameterStatus from the server (TimeZone, DateStyle, role changes, …). */
  serverParameter(name: string, value: string): void {
    if (this.#server.get(name) === value) return;
    this.#server.set(name, value);
    this.#fingerprint = undefined;
  }

  /** A SET / SET ROLE / SET SESSION AUTHORIZATION / RESET the session ran. */
  noteSet(sql: string): void {
    this.#sets.push(sql);
    this.#fingerprint = undefined;
  }

  /** DISCARD ALL / RESET ALL: back to the settings the connection started with. */
  reset(): void {
    this.#sets = [];
    this.tainted = false;
    this.#fingerprint = undefined;
  }

  /** Every key of this session starts with this: listener, database, user and settings. */
  get fingerprint(): string {
    if (this.#fingerprint === undefined) {
      const server = [...this.#server]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join('\u0001');
      this.#fingerprint = `${this.#prefix}${this.database}\u0000${this.user}\u0000${this.#startup}\u0000${server}\u0000${this.#sets.join('\u0001')}\u0000`;
    }
    return this.#fingerprint;
  }
}
