/**
 * One client connection and its own upstream connection. Frames pass through byte for byte; a
 * cacheable statement (a simple Query, or an extended Parse/Bind/Describe/Execute/Sync batch) is
 * answered from the store when it may be, and its response captured for the store when not.
 * Responses leave in the order their requests came, whatever mix of hits and misses a pipeline
 * holds: every request that reaches the upstream owns a slot that ends at its ReadyForQuery, and
 * stored answers wait behind the slots before them.
 * (https://www.postgresql.org/docs/current/protocol-flow.html)
 */
import type net from 'node:net';
import tls from 'node:tls';
import { type EntryInput, Space } from '../../cache/types.js';
import type { RequestResult } from '../../events.js';
import { type Batch, extendBatch, newBatch } from './batch.js';
import { Capture } from './capture.js';
import { Backend, Frontend, StartupCode, Target } from './codes.js';
import { databaseTag } from '../../cache/tags.js';
import type { PgContext } from './context.js';
import { Effects } from './effects.js';
import { type Frame, FrameSplitter, FramingError } from './framing.js';
import { ACCEPT_ENCRYPTION, decodeBind, decodeExecute, decodeParameterStatus, decodeParse, decodeQuery, decodeStartup, decodeTarget, encodeError, REFUSE_ENCRYPTION } from './messages.js';
import type { CachePlan } from './planner.js';
import { Session } from './session.js';
import { connectUpstream } from './upstream-socket.js';
import { whenWritable } from '../../drain.js';

const MAX_WAITERS = 1000;
/** Every Postgres listener's entries: captured response bytes, no metadata. */
const PG_SPACE = new Space<undefined>('postgres');
/** How long the first use of a SQL text waits for its cache plan (one catalog question). */
const PLAN_WAIT_MS = 100;
const PROTOCOL_3_0 = 196608;
const PROTOCOL_3_2 = 196610;

/** A request that went upstream: it ends at its ReadyForQuery. */
interface UpstreamSlot {
  kind: 'up';
  /** SQL texts executed, whose effects (writes, SET, …) apply when the slot ends. */
  executed: string[];
  /** May change the transaction status or session: no cache use until it ends. */
  uncertain: boolean;
  /** ParseCompletes of Parses sidecache sent on its own, which the client must not see. */
  swallowParse: number;
  capture: Capture | undefined;
  onEnd: ((stored: Buffer | undefined) => void) | undefined;
  started: number;
  result: RequestResult | undefined;
}

/** A stored answer waiting for the slots before it. */
interface CachedSlot {
  kind: 'cached';
  bytes: Buffer;
}

/** What a cacheable request needs, whichever way it is answered. */
interface Cacheable {
  key: string;
  plan: CachePlan;
  sql: string;
  started: number;
  forward(slot: UpstreamSlot): void;
  onHit(): void;
}

export class PgConnection {
  readonly #ctx: PgContext;
  #client: net.Socket;
  readonly #clientFrames = new FrameSplitter({ typed: false });
  readonly #upstreamFrames = new FrameSplitter({ typed: true });
  #upstream: net.Socket | undefined;
  #phase: 'startup' | 'connecting' | 'auth' | 'ready' | 'closed' = 'startup';
  #session: Session | undefined;
  readonly #inbox: Frame[] = [];
  #blocked = false;
  readonly #slots: (UpstreamSlot | CachedSlot)[] = [];
  #batch: Batch<UpstreamSlot> | undefined;
  readonly #effects: Effects;
  #closed = false;
  readonly #onClose: () => void;

  constructor(ctx: PgContext, client: net.Socket, onClose: () => void) {
    this.#ctx = ctx;
    this.#client = client;
    this.#onClose = onClose;
    this.#effects = new Effects(ctx);
    client.setNoDelay(true);
    this.#listen(client);
  }

  #listen(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.#onClientData(chunk));
    socket.on('error', (err) => this.#ctx.log.debug('client socket error', { err: err.message }));
    socket.on('close', () => this.#close());
  }

  /** SSLRequest with `tls` configured: answer S and go on over TLS on the same socket. */
  #startTls(secureContext: tls.SecureContext): void {
    const raw = this.#client;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.write(ACCEPT_ENCRYPTION);
    this.#client = new tls.TLSSocket(raw, { isServer: true, secureContext });
    this.#listen(this.#client);
  }

  /** Ends the connection now (stop deadline). */
  destroy(): void {
    this.#client.destroy();
    this.#upstream?.destroy();
  }

  #onClientData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#clientFrames.push(chunk);
      while (this.#phase === 'startup' && frames.length > 0) {
        this.#startup(frames[0]!);
        frames = this.#clientFrames.push(Buffer.alloc(0));
      }
    } catch (err) {
      return this.#malformed(err);
    }
    if (frames.length === 0) return;
    if (this.#phase !== 'ready') {
      if (this.#phase === 'auth') for (const f of frames) this.#upstream!.write(f.bytes);
      else this.#inbox.push(...frames);
      return;
    }
    this.#inbox.push(...frames);
    this.#pump();
  }

  /** Untyped messages: SSLRequest / GSSENCRequest (answered N), CancelRequest, StartupMessage. */
  #startup(frame: Frame): void {
    const bytes = frame.bytes;
    const code = bytes.length >= 8 ? bytes.readInt32BE(4) : 0;
    if (code === StartupCode.SslRequest && this.#ctx.tls !== undefined && !(this.#client instanceof tls.TLSSocket)) return this.#startTls(this.#ctx.tls);
    if (code === StartupCode.SslRequest || code === StartupCode.GssEncRequest) {
      this.#client.write(REFUSE_ENCRYPTION);
      return;
    }
    if (code === StartupCode.CancelRequest) {
      this.#phase = 'closed';
      void this.#cancel(bytes);
      return;
    }
    if (code !== PROTOCOL_3_0 && code !== PROTOCOL_3_2) return this.#fail('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
    const { params } = decodeStartup(bytes);
    this.#session = new Session(this.#ctx.name, params);
    this.#clientFrames.setTyped();
    this.#phase = 'connecting';
    void this.#connect(bytes);
  }

  /** The BackendKeyData the client holds is the upstream's own: the request goes there as it is. */
  async #cancel(bytes: Buffer): Promise<void> {
    try {
      const socket = await connectUpstream({ ...this.#ctx.target, sslmode: 'disable' });
      socket.end(bytes);
    } catch (err) {
      this.#ctx.log.debug('cancel request failed', { err: (err as Error).message });
    }
    this.#client.end();
  }

  async #connect(startup: Buffer): Promise<void> {
    const { target } = this.#ctx;
    let upstream: net.Socket;
    try {
      upstream = await connectUpstream(target);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      return this.#fail('08006', `sidecache cannot connect to the upstream PostgreSQL at ${target.host}:${target.port}: ${reason}`);
    }
    if (this.#phase === 'closed') return void upstream.destroy();
    this.#upstream = upstream;
    upstream.on('data', (chunk: Buffer) => this.#onUpstreamData(chunk));
    upstream.on('error', (err) => this.#ctx.log.debug('upstream socket error', { err: err.message }));
    upstream.on('close', () => this.#onUpstreamClose());
    this.#phase = 'auth';
    upstream.write(startup);
    for (const f of this.#inbox.splice(0)) upstream.write(f.bytes);
  }

  #onUpstreamData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#upstreamFrames.push(chunk);
    } catch (err) {
      this.#ctx.log.warn('upstream sent an invalid message; closing the connection', { err: (err as Error).message });
      return this.#fail('08P01', 'the upstream server sent an invalid message');
    }
    this.#client.cork();
    try {
      for (const frame of frames) {
        if (this.#phase === 'ready') this.#fromUpstream(frame);
        else this.#duringAuth(frame);
      }
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      this.#ctx.log.warn('upstream sent a malformed message; closing the connection', { err: err.message });
      this.#fail('08P01', 'the upstream server sent a malformed message');
    } finally {
      this.#client.uncork();
    }
    this.#holdWhileFull(this.#client, this.#upstream);
  }

  /**
   * Backpressure: while `to` has more buffered than it wants, stop reading `from`, so a client that
   * reads slowly (or a slow upstream) cannot make sidecache buffer a whole result in memory.
   */
  #holdWhileFull(to: net.Socket, from: net.Socket | undefined): void {
    if (from === undefined || from.isPaused()) return;
    const writable = whenWritable(to);
    if (writable === undefined) return;
    from.pause();
    void writable.then(() => from.resume());
  }

  /** Authentication passes through verbatim; its end is the first ReadyForQuery. */
  #duringAuth(frame: Frame): void {
    this.#client.write(frame.bytes);
    if (frame.code === Backend.ParameterStatus) this.#session!.serverParameter(...decodeParameterStatus(frame.bytes));
    if (frame.code === Backend.ReadyForQuery) {
      this.#session!.txStatus = frame.bytes[5]!;
      this.#phase = 'ready';
      this.#pump();
    }
  }

  #fromUpstream(frame: Frame): void {
    if (frame.code === Backend.ParameterStatus) this.#session!.serverParameter(...decodeParameterStatus(frame.bytes));
    const head = this.#slots[0];
    // Nothing outstanding: an asynchronous message (notification, notice, parameter, fatal error).
    if (head === undefined || head.kind !== 'up') return void this.#client.write(frame.bytes);
    if (frame.code === Backend.ParseComplete && head.swallowParse > 0) {
      head.swallowParse--;
      return;
    }
    head.capture?.add(frame);
    this.#client.write(frame.bytes);
    if (frame.code === Backend.ReadyForQuery) this.#endSlot(head, frame.bytes[5]!);
  }

  #endSlot(slot: UpstreamSlot, status: number): void {
    this.#slots.shift();
    const session = this.#session!;
    session.txStatus = status;
    this.#effects.apply(session, slot.executed);
    slot.onEnd?.(slot.capture?.result(status));
    if (slot.result !== undefined) this.#ctx.report(slot.result, slot.started, this.#ctx.clock.now() - slot.started);
    while (this.#slots[0]?.kind === 'cached') this.#client.write((this.#slots.shift() as CachedSlot).bytes);
  }

  /** Handles queued client frames in order; stops while a request waits on another session's fill. */
  #pump(): void {
    if (this.#blocked || this.#phase !== 'ready') return;
    const upstream = this.#upstream!;
    upstream.cork();
    this.#client.cork();
    while (this.#inbox.length > 0 && !this.#blocked && this.#phase === 'ready') {
      let wait: Promise<void> | undefined;
      try {
        wait = this.#handle(this.#inbox.shift()!);
      } catch (err) {
        this.#malformed(err);
        break;
      }
      if (wait !== undefined) {
        this.#blocked = true;
        void wait.finally(() => {
          this.#blocked = false;
          this.#pump();
        });
      }
    }
    upstream.uncork();
    this.#client.uncork();
    this.#holdWhileFull(upstream, this.#client);
  }

  #handle(frame: Frame): Promise<void> | undefined {
    switch (frame.code) {
      case Frontend.Query:
        if (this.#batch !== undefined) {
          // A Query inside an unfinished extended batch: the batch's response and this one's share
          // a ReadyForQuery, so neither can be told apart for the cache. Both pass through.
          this.#releaseBatch();
          this.#forwardSlot([frame.bytes], [decodeQuery(frame.bytes)], true);
          return undefined;
        }
        return this.#query(frame);
      case Frontend.Parse:
      case Frontend.Bind:
      case Frontend.Describe:
      case Frontend.Execute:
      case Frontend.Close:
      case Frontend.Flush:
        this.#extended(frame);
        return undefined;
      case Frontend.Sync:
        return this.#sync(frame);
      case Frontend.FunctionCall:
        this.#releaseBatch();
        this.#forwardSlot([frame.bytes], [], true);
        return undefined;
      default:
        // CopyData/CopyDone/CopyFail, Terminate and anything unknown pass through as they are.
        this.#releaseBatch();
        this.#upstream!.write(frame.bytes);
        return undefined;
    }
  }

  #cacheUsable(): boolean {
    const session = this.#session!;
    if (!session.idle || session.tainted) return false;
    for (const slot of this.#slots) if (slot.kind === 'up' && slot.uncertain) return false;
    return true;
  }

  #query(frame: Frame): Promise<void> | undefined {
    const sql = decodeQuery(frame.bytes);
    const started = this.#ctx.clock.now();
    const cacheable = this.#ctx.planner.classify(sql).cacheable;
    const session = this.#session!;
    const request = (plan: CachePlan): Cacheable => ({
      key: `${session.fingerprint}Q\u0000${sql}`,
      plan,
      sql,
      started,
      forward: () => this.#upstream!.write(frame.bytes),
      onHit: () => undefined,
    });
    const pass = (): void => this.#forwardSlot([frame.bytes], [sql], !cacheable, cacheable ? 'miss' : 'bypass');
    if (!cacheable || !this.#cacheUsable()) {
      pass();
      return undefined;
    }
    return this.#withPlan(sql, request, pass);
  }

  /**
   * Uses the statement's cache plan, waiting for it the first time a SQL text is seen (one catalog
   * question; later requests of the session wait behind it, so order holds).
   */
  #withPlan(sql: string, request: (plan: CachePlan) => Cacheable, pass: () => void): Promise<void> | undefined {
    const { planner } = this.#ctx;
    const session = this.#session!;
    // The caller checked that the session may use the cache; nothing runs in between on this path.
    const use = (plan: CachePlan): Promise<void> | undefined => {
      if (plan.cacheable) return this.#cached(request(plan));
      pass();
      return undefined;
    };
    const plan = planner.peek(session.database, session.user, sql);
    if (plan !== undefined) return use(plan);
    // A slow catalog must not stall the session: past a short wait the statement goes upstream uncached.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, PLAN_WAIT_MS, undefined)));
    return Promise.race([planner.plan(session.database, session.user, sql), late]).then((known) => {
      clearTimeout(timer);
      // Earlier requests may have finished meanwhile: ask again whether the session may use the cache.
      if (known !== undefined && this.#cacheUsable()) return use(known);
      pass();
      return undefined;
    });
  }

  /** Answers from the store, or leads the fill, or waits on another session's fill of the same key. */
  #cached(request: Cacheable): Promise<void> | undefined {
    const { store } = this.#ctx;
    const entry = store.get(request.key, PG_SPACE);
    if (entry !== undefined) {
      request.onHit();
      this.#emit(entry.body as Buffer);
      this.#ctx.report('hit', request.started);
      return undefined;
    }
    let ranLoader = false;
    const loader = (): Promise<EntryInput | null> => {
      ranLoader = true;
      return new Promise((resolve) => {
        const slot = this.#newSlot([request.sql], false, 'miss', new Capture(store.maxEntryBytes));
        slot.onEnd = (bytes) => resolve(bytes === undefined ? null : this.#entryInput(bytes, request.plan));
        request.forward(slot);
      });
    };
    const session = this.#session!;
    const tags = [...request.plan.tags, databaseTag(session.database)];
    const context = { protocol: 'postgres', listener: this.#ctx.name };
    if (store.flightOf(request.key) === undefined) {
      store.fill(request.key, tags, loader, { context, space: PG_SPACE }).catch(() => undefined);
      return undefined;
    }
    return store
      .fill(request.key, tags, loader, { context, space: PG_SPACE, maxWaiters: MAX_WAITERS, timeoutMs: this.#ctx.config.connectTimeout + 30_000 })
      .then(
        (outcome) => {
          if (outcome.leader || ranLoader) return;
          if (outcome.entry !== null) {
            request.onHit();
            this.#emit(outcome.entry.body as Buffer);
            this.#ctx.report('miss', request.started);
            return;
          }
          this.#forwardSlot(null, [request.sql], false, 'miss', request.forward);
        },
        () => {
          // The fill failed or took too long: this session asks for itself.
          if (!ranLoader) this.#forwardSlot(null, [request.sql], false, 'miss', request.forward);
        },
      );
  }

  #entryInput(bytes: Buffer, plan: CachePlan): EntryInput<undefined> {
    return { body: bytes, tags: plan.tags, ttlMs: plan.ttlMs };
  }

  #emit(bytes: Buffer): void {
    if (this.#slots.length === 0) this.#client.write(bytes);
    else this.#slots.push({ kind: 'cached', bytes });
  }

  #newSlot(executed: string[], uncertain: boolean, result?: RequestResult, capture?: Capture): UpstreamSlot {
    const slot: UpstreamSlot = { kind: 'up', executed, uncertain, swallowParse: 0, capture, onEnd: undefined, started: this.#ctx.clock.now(), result };
    this.#slots.push(slot);
    return slot;
  }

  /** Sends `frames` (or calls `send`) upstream as one request with a slot of its own. */
  #forwardSlot(frames: Buffer[] | null, executed: string[], uncertain: boolean, result?: RequestResult, send?: (slot: UpstreamSlot) => void): void {
    const slot = this.#newSlot(executed, uncertain, result);
    if (send !== undefined) send(slot);
    else for (const f of frames ?? []) this.#upstream!.write(f);
  }

  /** Extended-protocol frames before Sync: held while the batch may be a hit, else forwarded. */
  #extended(frame: Frame): void {
    const batch = (this.#batch ??= newBatch<UpstreamSlot>());
    if (batch.slot === undefined && extendBatch(batch, frame, (name) => this.#session!.statements.get(name)?.sql)) {
      batch.frames.push(frame);
      return;
    }
    if (batch.slot === undefined) this.#releaseBatch();
    this.#forwardExtended(frame, batch.slot!);
  }

  /** Sends a held batch upstream: it is not (or no longer) a candidate for the cache. */
  #releaseBatch(): void {
    const batch = this.#batch;
    if (batch === undefined || batch.slot !== undefined) return;
    batch.slot = this.#newSlot([], false);
    for (const f of batch.frames) this.#forwardExtended(f, batch.slot);
    batch.frames = [];
  }

  /** Forwards one extended frame, keeping the statements the upstream knows in step with the client's. */
  #forwardExtended(frame: Frame, slot: UpstreamSlot): void {
    const session = this.#session!;
    switch (frame.code) {
      case Frontend.Parse: {
        const { name, sql } = decodeParse(frame.bytes);
        session.statements.set(name, { sql, parse: frame.bytes, upstream: true });
        break;
      }
      case Frontend.Bind: {
        const { portal, statement } = decodeBind(frame.bytes);
        this.#materialize(statement, slot);
        const sql = session.statements.get(statement)?.sql;
        if (sql !== undefined) session.portals.set(portal, sql);
        else session.portals.delete(portal);
        break;
      }
      case Frontend.Describe:
      case Frontend.Close: {
        const { kind, name } = decodeTarget(frame.bytes);
        if (kind === Target.Statement) this.#materialize(name, slot);
        if (frame.code === Frontend.Close) {
          if (kind === Target.Statement) session.statements.delete(name);
          else session.portals.delete(name);
        }
        break;
      }
      case Frontend.Execute: {
        const sql = session.portals.get(decodeExecute(frame.bytes).portal);
        if (sql === undefined) slot.uncertain = true;
        else {
          slot.executed.push(sql);
          if (!this.#ctx.planner.classify(sql).cacheable) slot.uncertain = true;
          slot.result ??= 'bypass';
        }
        break;
      }
    }
    this.#upstream!.write(frame.bytes);
  }

  /** A statement answered from the cache was never parsed upstream: parse it now, unseen by the client. */
  #materialize(name: string, slot: UpstreamSlot): void {
    const statement = this.#session!.statements.get(name);
    if (statement === undefined || statement.upstream) return;
    this.#upstream!.write(statement.parse);
    statement.upstream = true;
    slot.swallowParse++;
  }

  #sync(frame: Frame): Promise<void> | undefined {
    const batch = this.#batch;
    this.#batch = undefined;
    if (batch === undefined) {
      this.#forwardSlot([frame.bytes], [], false);
      return undefined;
    }
    if (batch.slot !== undefined) {
      this.#upstream!.write(frame.bytes);
      return undefined;
    }
    const session = this.#session!;
    const sql = batch.sql;
    const pass = (): void => {
      batch.slot = this.#newSlot([], false, batch.shape.endsWith('E') ? 'miss' : undefined);
      for (const f of batch.frames) this.#forwardExtended(f, batch.slot);
      this.#upstream!.write(frame.bytes);
    };
    if (!batch.shape.endsWith('E') || sql === undefined || !this.#ctx.planner.classify(sql).cacheable || !this.#cacheUsable()) {
      pass();
      return undefined;
    }
    const started = this.#ctx.clock.now();
    return this.#withPlan(
      sql,
      (plan) => ({
        key: `${session.fingerprint}${batch.shape}\u0000${sql}\u0000${batch.bindTail}`,
        plan,
        sql,
        started,
        forward: (slot) => {
          slot.executed = [];
          for (const f of batch.frames) this.#forwardExtended(f, slot);
          this.#upstream!.write(frame.bytes);
        },
        onHit: () => {
          const parse = batch.parse;
          if (parse !== undefined) session.statements.set(parse.name, { sql: parse.sql, parse: parse.bytes, upstream: false });
        },
      }),
      pass,
    );
  }

  #onUpstreamClose(): void {
    if (this.#closed) return;
    // The server ended the session (pg_terminate_backend, idle timeout): the client sees the same close.
    this.#client.end();
    this.#close();
  }

  /** A frame too short for its fields, or with a length no message can have: this connection alone ends. */
  #malformed(err: unknown): void {
    if (!(err instanceof FramingError || err instanceof RangeError)) throw err;
    this.#ctx.log.debug('malformed frontend message', { err: err.message });
    this.#fail('08P01', `invalid frontend message: ${err.message}`);
  }

  /** Sends an ErrorResponse made here and closes (class 08 errors are FATAL for the connection). */
  #fail(sqlstate: string, message: string): void {
    if (this.#closed) return;
    this.#client.end(encodeError('FATAL', sqlstate, message));
    this.#upstream?.destroy();
    this.#close();
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#phase = 'closed';
    this.#upstream?.destroy();
    for (const slot of this.#slots.splice(0)) if (slot.kind === 'up') slot.onEnd?.(undefined);
    this.#onClose();
  }
}
