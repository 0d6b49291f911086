/** One `postgres[]` entry: the net.Server that accepts clients, the context its connections share, start, reload, stop and explain. */
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { Store } from '../../cache/store.js';
import type { Invalidate } from '../local-invalidation.js';
import type { Clock } from '../../clock.js';
import type { Millis } from '../../units.js';
import type { PostgresListenerConfig } from '../../config/schema.js';
import { closeGracefully, formatAddress, listen, settleWithin } from '../../listen.js';
import { channels, type InvalidationEvent } from '../../events.js';
import type { Logger } from '../../log.js';
import { readPem } from '../read-pem.js';
import type { AccessLog } from '../access.js';
import { pgReporter } from './access-report.js';
import { Catalog } from './catalog.js';
import { DirectCatalog } from './catalog-direct.js';
import { askedWithoutSession, InBandCatalog } from './catalog-in-band.js';
import { CATALOG_FIX, type CatalogErrorReason, catalogErrorReason } from './catalog-errors.js';
import { loadParser } from './classify.js';
import { type ConnectionHooks, PgConnection } from './connection.js';
import type { PgContext } from './context.js';
import { busReach } from './bus-reach.js';
import type { CachePlan } from './cache-plan.js';
import { Planner } from './planner.js';
import { admission } from './admission.js';
import { refuseConnection } from './refuse-connection.js';
import { upstreamTarget } from './upstream-socket.js';
import { type PgUrl, parsePgUrl } from '../../config/pg-url.js';
import { isSidecacheError } from '../../errors.js';

/** Keys of a `postgres[]` entry that a reload cannot apply: they are built into sockets. */
export const POSTGRES_RESTART_KEYS = ['listen', 'upstream', 'catalogUrl', 'connectTimeout', 'tls'] as const;

export interface PostgresListenerDeps {
  config: PostgresListenerConfig;
  store: Store;
  clock: Clock;
  log: Logger;
  invalidate: Invalidate;
  /** Hears of every catalog question that could not be asked, by reason (for the metric). */
  onCatalogError?(reason: CatalogErrorReason): void;
  /** How long an unused catalog connection stays open; default 10 s. */
  catalogIdleMs?: Millis;
  /** See `PgContext.planWaitMs`; default 100 ms. */
  planWaitMs?: Millis;
  /** How long an in-band catalog question waits for an idle session; default 5 s. */
  catalogWaitMs?: Millis;
  /** Hears of every upstream connection that could not be opened, by reason (for the metric). */
  onUpstreamError?(reason: PgUpstreamErrorReason): void;
  /** Hears of every client refused on arrival (past `maxClientConnections`). */
  onRefused?(reason: 'limit'): void;
  /** Hears of every client closed for not logging in within `loginTimeout`. */
  onLoginTimeout?(): void;
  /** Hears that the server could not accept a connection (EMFILE, ENFILE, …). */
  onAcceptError?(err: NodeJS.ErrnoException): void;
  /** Hears the SQLSTATE class (`00` success) of every response the upstream finished (for the metric). */
  onUpstreamResponse?(sqlstateClass: string): void;
  /** Writes one line per answered request (`log.access`); absent: no access log. */
  accessLog?: AccessLog;
}

/** Why an upstream connection could not be opened, as the `reason` label of sidecache_upstream_errors_total. */
export type PgUpstreamErrorReason = 'connect' | 'timeout' | 'tls';

function pgUpstreamErrorReason(err: unknown): PgUpstreamErrorReason {
  if (!isSidecacheError(err)) return 'connect';
  return err.code === 'SC_ERR_UPSTREAM_TIMEOUT' ? 'timeout' : 'tls';
}

/** One warning per reason at most this often (the rest are counted, and said in the next one). */
const WARN_INTERVAL_MS = 10_000;

/** How long an in-band catalog question waits for a session of its database to be idle outside a transaction. */
const CATALOG_WAIT_MS = 5_000;

/** A catalog answer normally takes milliseconds; past this the statement goes upstream uncached. */
const DEFAULT_PLAN_WAIT_MS = 100;

/** What `/cache/explain` answers for one statement: its cache plan. */
export type Explanation = Readonly<CachePlan>;

/** One `postgres[]` entry: a wire-protocol listener in front of one PostgreSQL server. */
export class PostgresListener {
  readonly name: string;
  #config: PostgresListenerConfig;
  readonly #server: net.Server;
  readonly #ctx: PgContext;
  readonly #catalog: Catalog;
  /** Where client sessions carry the catalog's questions; undefined with `catalogUrl`. */
  readonly #inBand: InBandCatalog | undefined;
  readonly #connections = new Set<PgConnection>();
  /** Clients refused past maxClientConnections, while their 53300 lingers (closed at the stop deadline). */
  readonly #refused = new Set<net.Socket>();
  readonly #log: Logger;
  /** Who `/cache/explain` asks as when the request names no database or user. */
  readonly #explainAs: { database: string; user: string };
  #address: AddressInfo | undefined;
  /** Invalidations from elsewhere (buses, the admin API, other listeners) may follow DDL: the planner asks the catalog again. */
  readonly #onInvalidation: (message: unknown) => void;
  readonly #hooks: ConnectionHooks;
  readonly #onAcceptError: (err: NodeJS.ErrnoException) => void;

  constructor(deps: PostgresListenerDeps) {
    const { config } = deps;
    this.name = config.name;
    this.#config = config;
    this.#log = deps.log;
    const upstream = parsePgUrl(config.upstream);
    this.#explainAs = { database: upstream.database ?? 'postgres', user: upstream.user ?? 'postgres' };
    // sidecache's own catalog connections (catalogUrl, or the fallback of /cache/explain) connect
    // without TLS, whatever the URL's sslmode says (as they always have).
    const direct = (url: PgUrl): DirectCatalog => {
      const own = new DirectCatalog(
        (database, user) => ({
          host: url.host ?? '',
          port: url.port ?? 5432,
          user: url.user ?? user,
          password: url.password,
          database,
          application_name: 'sidecache catalog',
          connectionTimeoutMillis: config.connectTimeout,
        }),
        deps.log,
      );
      if (deps.catalogIdleMs !== undefined) own.idleMs = deps.catalogIdleMs;
      return own;
    };
    // In band over the clients' own sessions unless catalogUrl names an identity of its own.
    this.#inBand = config.catalogUrl === undefined ? new InBandCatalog(direct(upstream), deps.catalogWaitMs ?? CATALOG_WAIT_MS) : undefined;
    const catalogError = (database: string, user: string, err: unknown): void => {
      // A question about a database no client has open refused no client caching (/cache/explain shows it).
      if (askedWithoutSession(err)) return;
      // Caching is off for this database and user until the catalog answers: say so once, and count it.
      const reason = catalogErrorReason(err);
      deps.onCatalogError?.(reason);
      deps.log.warnOnce(
        'SC_WARN_CATALOG_UNAVAILABLE',
        `postgres[${config.name}]: nothing is cached for database "${database}" and user "${user}": the catalog could not be asked (${(err as Error).message}); ${CATALOG_FIX[reason]}`,
        `${config.name}\u0000${database}\u0000${user}\u0000${reason}`,
      );
    };
    this.#catalog = new Catalog(this.#inBand ?? direct(parsePgUrl(config.catalogUrl!)), catalogError);
    const source = `postgres:${config.name}`;
    this.#ctx = {
      name: config.name,
      config,
      store: deps.store,
      clock: deps.clock,
      log: deps.log,
      planner: new Planner(config, this.#catalog),
      admission: admission(config.admission),
      target: upstreamTarget(upstream, config.connectTimeout),
      tls:
        config.tls === undefined
          ? undefined
          : tls.createSecureContext({
              cert: readPem(config.tls.cert, `postgres[${config.name}].tls.cert`),
              key: readPem(config.tls.key, `postgres[${config.name}].tls.key`),
            }),
      planWaitMs: deps.planWaitMs ?? DEFAULT_PLAN_WAIT_MS,
      inBand: this.#inBand,
      catalogError,
      invalidate: (target) => deps.invalidate(target, source),
      report: pgReporter(deps, config.name),
    };
    this.#onInvalidation = (message) => {
      const event = message as InvalidationEvent;
      if (event.store === deps.store && event.source !== source) this.#ctx.planner.forget(event.target);
    };
    const warn = (key: string, msg: string, fields: Record<string, unknown>): void =>
      deps.log.warnEvery('SC_WARN_UPSTREAM_FAILED', msg, `${config.name}\u0000${key}`, WARN_INTERVAL_MS, fields);
    this.#hooks = {
      upstreamFailed: (err) => {
        const reason = pgUpstreamErrorReason(err);
        deps.onUpstreamError?.(reason);
        const detail = isSidecacheError(err) ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
        warn(`upstream ${reason}`, 'cannot connect to the upstream PostgreSQL', {
          reason,
          upstream: `${this.#ctx.target.host}:${this.#ctx.target.port}`,
          err: detail,
        });
      },
      loginTimedOut: () => {
        deps.onLoginTimeout?.();
        warn('login timeout', 'client connection closed: no login within loginTimeout', { loginTimeoutMs: this.#ctx.config.loginTimeout });
      },
    };
    this.#onAcceptError = deps.onAcceptError ?? (() => undefined);
    this.#server = net.createServer((socket) => {
      const limit = this.#ctx.config.maxClientConnections;
      if (limit > 0 && this.#connections.size >= limit) {
        deps.onRefused?.('limit');
        warn('refused limit', 'client connection refused: maxClientConnections reached', { maxClientConnections: limit });
        this.#refused.add(socket);
        socket.once('close', () => this.#refused.delete(socket));
        return refuseConnection(socket, limit);
      }
      const connection = new PgConnection(this.#ctx, socket, () => this.#connections.delete(connection), this.#hooks);
      this.#connections.add(connection);
    });
  }

  /** Applies a reloaded entry whose changes need no new socket (see `POSTGRES_RESTART_KEYS`). */
  update(config: PostgresListenerConfig): void {
    // The misses remembered so far stand while the policy does.
    if (config.admission !== this.#config.admission) this.#ctx.admission = admission(config.admission);
    this.#config = config;
    this.#ctx.config = config;
    this.#ctx.planner = new Planner(config, this.#catalog, this.#ctx.planner.databases);
    this.#checkRules();
  }

  async start(): Promise<AddressInfo> {
    await loadParser();
    this.#address = await listen(this.#server, this.#config.listen, `postgres listener ${this.name}`, this.#onAcceptError);
    channels.invalidation.subscribe(this.#onInvalidation);
    this.#checkRules();
    this.#log.info('postgres listener ready', { address: formatAddress(this.#address), upstream: `${this.#ctx.target.host}:${this.#ctx.target.port}` });
    return this.#address;
  }

  /** Stops accepting; sessions may finish until `graceMs`, then they are closed. */
  async stop(graceMs: Millis): Promise<boolean> {
    const deadline = performance.now() + graceMs;
    const forced = await closeGracefully(this.#server, graceMs, () => {
      for (const c of this.#connections) c.destroy();
      for (const socket of this.#refused) socket.destroy();
    });
    channels.invalidation.unsubscribe(this.#onInvalidation);
    // sidecache's own catalog connections end within what is left of the grace.
    await settleWithin(this.#catalog.close(), deadline - performance.now());
    return forced;
  }

  /**
   * A rule naming a table the database does not have is a warning (a typo keeps the rule from ever
   * matching): at start with `catalogUrl`, else with the first client session of the database.
   */
  #checkRules(): void {
    const rules = this.#config.rules;
    const tables = [...new Set(rules.flatMap((r) => r.tables))];
    if (tables.length === 0) return;
    const { database, user } = this.#explainAs;
    const check = async (): Promise<void> => {
      let missing: string[];
      try {
        missing = await this.#catalog.missingTables(database, user, tables);
      } catch (err) {
        this.#log.warn(`postgres[${this.name}].rules: the catalog could not be asked whether the tables exist`, { database, err: (err as Error).message });
        return;
      }
      rules.forEach((rule, i) => {
        for (const table of rule.tables.filter((t) => missing.includes(t))) {
          this.#log.warn(`postgres[${this.name}].rules[${i}].tables: no table "${table}" in database "${database}"`);
        }
      });
    };
    if (this.#inBand === undefined) void check();
    else this.#inBand.whenSession(database, () => void check());
  }

  /** Client connections open. */
  get clientConnections(): number {
    return this.#connections.size;
  }

  /** Upstream connections open (one per client session past its startup). */
  get upstreamConnections(): number {
    let n = 0;
    for (const c of this.#connections) if (c.hasUpstream) n++;
    return n;
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  get address(): AddressInfo {
    if (this.#address === undefined) throw new Error(`postgres listener ${this.name} is not listening`);
    return this.#address;
  }

  /**
   * Invalidates what the tables a bus message names reach in each database this listener serves
   * (partitions, parents, views over them: bus-reach.ts); reads of a database wait until its answer is applied.
   */
  expandTables(tables: readonly string[], invalidate: (tags: string[]) => void): void {
    busReach(this.#catalog, this.#ctx.planner, tables, invalidate);
  }

  /** Whether `sql` would be cached for `database` (default: the upstream URL's), and why not. */
  async explain(sql: string, database?: string, user?: string): Promise<Explanation> {
    return this.#ctx.planner.explain(database ?? this.#explainAs.database, user ?? this.#explainAs.user, sql);
  }
}
