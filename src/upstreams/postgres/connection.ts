/**
 * One client connection and its own upstream connection: the socket lifecycle (startup, TLS,
 * cancel requests, authentication, close), the pumps that move frames both ways with
 * backpressure (each client message is dispatched by client-messages.ts; a CancelRequest goes out
 * through cancel-request.ts). Frames pass through byte for byte.
 * (https://www.postgresql.org/docs/current/protocol-flow.html)
 */
import type net from 'node:net';
import tls from 'node:tls';
import { forwardCancel } from './cancel-request.js';
import { handleClientMessage, type MessageTargets } from './client-messages.js';
import { Backend, StartupCode } from './codes.js';
import type { PgContext } from './context.js';
import { type Frame, FrameSplitter, FramingError } from './framing.js';
import { ACCEPT_ENCRYPTION, decodeParameterStatus, decodeReadyStatus, decodeStartup, encodeError, REFUSE_ENCRYPTION, startsWithTerminate } from './messages.js';
import { authFrameForClient } from './sasl.js';
import { ClientInbox } from './client-inbox.js';
import { ResponseQueue, type UpstreamSlot } from './response-queue.js';
import type { SessionChannel } from './session-channel.js';
import { beginSession, requestEnded, sessionReady } from './session-lifecycle.js';
import { WriteEffects } from './write-effects.js';
import { connectUpstream } from './upstream-socket.js';
import { streamsToClient, streamsUpstream } from './streamed.js';
import { pauseWhileFull } from '../../drain.js';
import { isSidecacheError } from '../../errors.js';

/** What a connection tells its listener besides its close: for metrics and rate-limited warnings. */
export interface ConnectionHooks {
  /** The upstream connection could not be opened (the client got 08006). */
  upstreamFailed(err: unknown): void;
  /** The client did not finish its startup and authentication within `loginTimeout`. */
  loginTimedOut(): void;
}

export class PgConnection {
  readonly #ctx: PgContext;
  #client: net.Socket;
  readonly #clientFrames = new FrameSplitter({ typed: false });
  readonly #upstreamFrames = new FrameSplitter({ typed: true });
  #upstream: net.Socket | undefined;
  #phase: 'startup' | 'connecting' | 'auth' | 'ready' | 'closed' = 'startup';
  /** What exists once the client's StartupMessage has come. */
  #started: MessageTargets | undefined;
  readonly #inbox: ClientInbox;
  readonly #queue: ResponseQueue;
  readonly #writes: WriteEffects;
  /** This session as a carrier of in-band catalog questions, once it has begun. */
  #channel: SessionChannel | undefined;
  #closed = false;
  readonly #onClose: () => void;
  readonly #hooks: ConnectionHooks;
  /** Ends a connection that has not logged in within `loginTimeout`; cleared at the first ReadyForQuery. */
  #loginTimer: NodeJS.Timeout | undefined;

  constructor(ctx: PgContext, client: net.Socket, onClose: () => void, hooks: ConnectionHooks) {
    this.#ctx = ctx;
    this.#client = client;
    this.#onClose = onClose;
    this.#hooks = hooks;
    const loginMs = ctx.config.loginTimeout;
    if (loginMs > 0) this.#loginTimer = setTimeout(() => this.#loginTimeout(), loginMs);
    this.#writes = new WriteEffects(ctx);
    this.#streamsUpstream = streamsUpstream(ctx.store.maxEntryBytes);
    this.#queue = new ResponseQueue({
      write: (bytes) => this.#client.write(bytes),
      now: () => ctx.clock.now(),
      ended: (slot, status) => requestEnded(ctx, this.#started!.session, this.#writes, slot, status),
      // Corked while a ReadyForQuery is held: the answer goes out in one write (writev) at its release.
      holding: (on) => (on ? this.#client.cork() : this.#client.uncork()),
    });
    this.#inbox = new ClientInbox({
      ready: () => this.#phase === 'ready',
      handle: (frame) => handleClientMessage(frame, this.#started!),
      malformed: (err) => this.#malformed(err),
      upstream: () => this.#upstream!,
      client: () => this.#client,
    });
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

  /** True while an upstream connection is open for this client. */
  get hasUpstream(): boolean {
    return this.#upstream !== undefined && !this.#upstream.destroyed;
  }

  /**
   * Ends the connection now (stop deadline). A session idle between requests is told why first, as
   * PostgreSQL's own fast shutdown tells its sessions: FATAL 57P01 admin_shutdown
   * (https://www.postgresql.org/docs/current/server-shutdown.html,
   * https://www.postgresql.org/docs/current/errcodes-appendix.html). Elsewhere (startup, a request
   * in flight) both sockets just close.
   */
  destroy(): void {
    const idle = this.#phase === 'ready' && this.#queue.idle && !this.#inbox.blocked && !this.#closed;
    this.#upstream?.destroy();
    if (!idle) return void this.#client.destroy();
    this.#client.write(encodeError('FATAL', '57P01', 'terminating connection due to administrator command'));
    // The frame is in the kernel's buffer once written (the socket was idle): close after it.
    this.#client.destroySoon();
  }

  /**
   * `loginTimeout` passed before the first ReadyForQuery (PgBouncer's client_login_timeout). Before
   * a startup packet PostgreSQL closes without a word; during authentication it says
   * "canceling authentication due to timeout" (57014, authentication_timeout:
   * https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-AUTHENTICATION-TIMEOUT).
   */
  #loginTimeout(): void {
    this.#loginTimer = undefined;
    // 'closed' without #closed: a CancelRequest being forwarded, not a login.
    if (this.#closed || this.#phase === 'ready' || this.#phase === 'closed') return;
    this.#hooks.loginTimedOut();
    this.#upstream?.destroy();
    if (this.#started === undefined) this.#client.destroy();
    else {
      this.#client.write(encodeError('FATAL', '57014', 'canceling authentication due to timeout'));
      // Not end(): a client that never reads or closes would keep the descriptor.
      this.#client.destroySoon();
    }
    this.#close();
  }

  #onClientData(chunk: Buffer): void {
    if (this.#phase === 'startup' && this.#started === undefined && this.#clientFrames.buffered === 0 && startsWithTerminate(chunk)) {
      // The client is done before it began: a clean close, no upstream connection, no error.
      this.#client.end();
      return this.#close();
    }
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
    if (this.#phase === 'ready') frames.push(...this.#clientFrames.release(this.#streamsUpstream));
    if (frames.length === 0) return;
    if (this.#phase !== 'ready') {
      if (this.#phase === 'auth') for (const f of frames) this.#upstream!.write(f.bytes);
      else this.#inbox.push(frames);
      return;
    }
    this.#inbox.push(frames);
    this.#inbox.pump();
  }

  /** Which client messages go upstream in parts as they arrive (streamed.ts). */
  readonly #streamsUpstream: (code: number, length: number, head: Buffer) => boolean;

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
      void forwardCancel(this.#ctx, bytes).then(() => this.#client.end());
      return;
    }
    if (code !== StartupCode.Protocol3_0 && code !== StartupCode.Protocol3_2)
      return this.#fail('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`);
    const { params } = decodeStartup(bytes);
    ({ targets: this.#started, channel: this.#channel } = beginSession(this.#ctx, params, this.#queue, {
      send: (bytes) => void this.#upstream!.write(bytes),
      forward: (f, executed) => this.#forwardSlot(f, executed),
      ready: () => this.#phase === 'ready',
      toClient: (bytes) => void this.#client.write(bytes),
    }));
    this.#clientFrames.setTyped();
    this.#phase = 'connecting';
    void this.#connect(bytes);
  }

  async #connect(startup: Buffer): Promise<void> {
    const { target } = this.#ctx;
    let upstream: net.Socket;
    try {
      upstream = await connectUpstream(target);
    } catch (err) {
      // Sidecache's own errors say what went wrong in words; the system's (ECONNREFUSED, …) by code.
      const reason = isSidecacheError(err) ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
      this.#hooks.upstreamFailed(err);
      return this.#fail('08006', `sidecache cannot connect to the upstream PostgreSQL at ${target.host}:${target.port}: ${reason}`);
    }
    if (this.#phase === 'closed') return void upstream.destroy();
    this.#upstream = upstream;
    upstream.on('data', (chunk: Buffer) => this.#onUpstreamData(chunk));
    upstream.on('error', (err) => this.#ctx.log.debug('upstream socket error', { err: err.message }));
    upstream.on('close', () => this.#onUpstreamClose());
    this.#phase = 'auth';
    upstream.write(startup);
    for (const f of this.#inbox.takeAll()) upstream.write(f.bytes);
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
      this.#route(frames);
      // What the listener never reads whole goes on as it comes (the store keeps its parts, capture.ts).
      if (this.#phase === 'ready' && !this.#queue.internalAtHead) this.#route(this.#upstreamFrames.release(streamsToClient));
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      this.#ctx.log.warn('upstream sent a malformed message; closing the connection', { err: err.message });
      this.#fail('08P01', 'the upstream server sent a malformed message');
    } finally {
      this.#client.uncork();
    }
    // A client that reads slowly must not make sidecache hold a whole result in memory.
    pauseWhileFull(this.#client, this.#upstream);
    // Idle again: a catalog question waiting for a session of this database may go now.
    if (this.#phase === 'ready' && this.#queue.idle) this.#ctx.inBand?.offer(this.#channel!);
  }

  #route(frames: readonly Frame[]): void {
    for (const frame of frames) {
      // A ParameterStatus in the reply to sidecache's own question is the channel's to judge.
      if (frame.code === Backend.ParameterStatus && !this.#queue.internalAtHead) this.#started!.session.serverParameter(...decodeParameterStatus(frame.bytes));
      if (this.#phase === 'ready') this.#queue.fromUpstream(frame);
      else this.#duringAuth(frame);
    }
  }

  /** Authentication passes through (see `authFrameForClient`); its end is the first ReadyForQuery. */
  #duringAuth(frame: Frame): void {
    this.#client.write(authFrameForClient(frame, this.#client instanceof tls.TLSSocket));
    if (frame.code === Backend.ReadyForQuery) {
      const { session } = this.#started!;
      session.txStatus = decodeReadyStatus(frame.bytes);
      this.#phase = 'ready';
      clearTimeout(this.#loginTimer);
      sessionReady(this.#ctx, session, this.#channel!);
      this.#inbox.pump();
    }
  }

  /** Sends a request the cache has no part in, with a slot of its own (it may change the session). */
  #forwardSlot(frame: Frame, executed: string[]): UpstreamSlot {
    const slot = this.#queue.open(executed, true);
    this.#upstream!.write(frame.bytes);
    return slot;
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
    clearTimeout(this.#loginTimer);
    if (this.#channel !== undefined) this.#ctx.inBand?.detach(this.#channel);
    this.#upstream?.destroy();
    this.#queue.close();
    this.#onClose();
  }
}
