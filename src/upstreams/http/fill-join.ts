/**
 * A caller's turn in the key's one fill: leading it, streaming the body the fill is still reading,
 * or waiting for its outcome (and what that outcome means for this caller).
 */
import type { EntryInput, FillOutcome } from '../../cache/types.js';
import { isSidecacheError } from '../../errors.js';
import { channels, type InvalidationEvent } from '../../events.js';
import type { Exchange, ListenerContext } from './context.js';
import { HTTP_SPACE, type HttpEntry, type HttpMeta } from './entry.js';
import type { BodyReader } from './body-reader.js';
import type { SharedBody } from './body-tee.js';
import { type Fetched, fetchForStore, type Share, storeOnly } from './fill.js';
import { variantKey } from './key.js';
import { RequestAbort } from './request-abort.js';
import { interimTo } from './respond.js';

/** Callers that may wait on one fill; more go upstream on their own. */
const MAX_WAITERS = 1000;

/**
 * This caller's part in the key's fill: the leader, with what it fetched; a waiter streaming the
 * body the fill is still reading; or a waiter, with the outcome.
 */
type Turn =
  | { shared: undefined; fetched: Fetched; filled: Promise<unknown> }
  | { shared: Share; reader: BodyReader; fetched?: undefined }
  | { shared: undefined; fetched: undefined; outcome: FillOutcome<HttpMeta> };

/** Per store, what the leaders of fills in flight fetched (their `share` is what waiters may stream), by the key they asked for. */
const sharesByStore = new WeakMap<object, Map<string, Promise<Fetched>>>();
/** Whether `closeShares` hears invalidations (subscribed once per process, on first use). */
let listening = false;

function sharesOf(ctx: ListenerContext): Map<string, Promise<Fetched>> {
  let shares = sharesByStore.get(ctx.store);
  if (shares === undefined) {
    if (!listening) channels.invalidation.subscribe(closeShares);
    listening = true;
    sharesByStore.set(ctx.store, (shares = new Map()));
  }
  return shares;
}

/**
 * Fill race (docs/architecture.md): a response a fill is reading may predate an invalidation,
 * and then must not reach a request that joins later. Any invalidation of a store ends the
 * streaming of every fill in flight there: later waiters wait for the outcome, which the store's
 * guard refuses, and fetch anew.
 */
function closeShares(message: unknown): void {
  sharesByStore.get((message as InvalidationEvent).store)?.clear();
}

/**
 * A waiter may stream the leader's response before the fill completes when it would be answered
 * from the stored entry anyway: same variant, no credentials, no validators of its own (a 304
 * is then answered from the entry once stored).
 */
function canStream(share: Share, ex: Exchange): boolean {
  const h = ex.req.headers;
  if (h.range !== undefined || h.authorization !== undefined || h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined) return false;
  return variantKey(ex.base, share.vary, h) === share.key;
}

/**
 * Joins the key's fill (or runs one alone). The leader learns so when its upstream's head arrives,
 * before the fill is done: it answers while the body streams, and the store takes the body after.
 */
export async function join(ctx: ListenerContext, ex: Exchange, stale: HttpEntry | undefined, alone: boolean): Promise<Turn> {
  let lead: (fetched: Promise<Fetched>) => void = () => {};
  const leading = new Promise<Fetched>((resolve) => (lead = resolve));
  const shares = sharesOf(ctx);
  const loader = (): Promise<EntryInput<HttpMeta> | null> => {
    const watch = new ClientWatch(ctx, ex);
    const fetched = fetchForStore(ctx, ex, stale, watch.abort, interimTo(ex.res, ctx));
    lead(fetched);
    if (!alone) shares.set(ex.key, fetched);
    const forget = (): void => {
      if (shares.get(ex.key) === fetched) shares.delete(ex.key);
    };
    // A shared fill is forgotten once the body is in (or the fill failed), before the store takes the entry: a
    // reaction on the input, registered before the loader's own, rather than a `finally` (whose
    // wrapping costs two promises more on every miss).
    return fetched.then(
      (f) => {
        if (f.kind === 'relayed') watch.relaying(f.body, f.reader);
        if (!alone) f.input.then(forget, forget);
        return f.input;
      },
      (err: unknown) => {
        forget();
        throw err;
      },
    );
  };
  // The fill timeout bounds a waiter's wait for another's head. A leader is bounded by its own
  // upstream timeouts instead: its fill settles only once the body is in, and a body that keeps
  // arriving (bodyTimeout is between chunks) must not be cut.
  const leads = ctx.store.flightOf(ex.key) === undefined;
  const filled = alone
    ? ctx.store.fillAlone(ex.key, [], loader, HTTP_SPACE)
    : ctx.store.fill(ex.key, [], loader, {
        ...(!leads && { timeoutMs: ctx.config.connectTimeout + ctx.config.headersTimeout }),
        maxWaiters: MAX_WAITERS,
        space: HTTP_SPACE,
        context: { protocol: 'http', listener: ctx.listener },
      });
  if (leads || alone) {
    // The loader ran within the call above: `leading` holds this caller's head (or its failure),
    // which comes before the fill's outcome; there is nobody else's response to race against.
    try {
      return { shared: undefined, fetched: await leading, filled };
    } catch (err) {
      filled.catch(() => {
        // The same failure as the head's, which the caller handles.
      });
      throw err;
    }
  }
  // A waiter may stream the response the fill is reading rather than wait for the stored entry.
  const pending = shares.get(ex.key);
  // One per call, never settled, collected with it (a shared one would keep every race's reaction).
  const never = new Promise<never>(() => {});
  const streamable =
    pending === undefined
      ? never
      : pending.then(
          (f) => (f.kind === 'relayed' && f.share !== undefined && canStream(f.share, ex) ? f.share : never),
          () => never,
        );
  try {
    const first = await Promise.race([leading, filled, streamable]);
    if ('vary' in first) {
      // Still offered: no invalidation since (`closeShares`).
      const reader = first.body.shareable && shares.get(ex.key) === pending ? first.body.reader() : undefined;
      if (reader !== undefined) {
        filled.catch(() => {
          // This waiter streams the fill's body: the wait for its outcome (or its timeout) no longer matters.
        });
        return { shared: first, reader };
      }
      // The body was read to its end meanwhile: the stored entry answers.
      return { shared: undefined, fetched: undefined, outcome: await filled };
    }
    if ('kind' in first) return { shared: undefined, fetched: first, filled };
    // A leader's outcome can only follow its head, which is then at hand.
    if (first.leader) return { shared: undefined, fetched: await leading, filled };
    return { shared: undefined, fetched: undefined, outcome: first };
  } catch (err) {
    // A leader that stopped waiting before its head arrived: the store alone reads what comes.
    leading.then(storeOnly, () => {});
    throw err;
  }
}

/**
 * What a leader's client leaving means, heard on one 'close' listener: before the head, its
 * upstream request ends unless other callers wait on it; once the head is in, the body decides
 * (`body-tee.ts`): a body being stored is read on for the store, one nobody reads or waits for ends.
 */
class ClientWatch {
  readonly abort = new RequestAbort();
  readonly #ctx: ListenerContext;
  readonly #ex: Exchange;
  #body: SharedBody | undefined;
  #reader: BodyReader | undefined;

  constructor(ctx: ListenerContext, ex: Exchange) {
    this.#ctx = ctx;
    this.#ex = ex;
    ex.res.once('close', () => this.#closed());
  }

  /** The head is in: from now on a client that leaves lets go of the body. */
  relaying(body: SharedBody, reader: BodyReader): void {
    this.#body = body;
    this.#reader = reader;
    if (this.#ex.res.destroyed) this.#abandon();
  }

  #waiters(): number {
    return this.#ctx.store.flightOf(this.#ex.key)?.waiters ?? 0;
  }

  #closed(): void {
    const res = this.#ex.res;
    if (!res.headersSent && this.#waiters() === 0) this.abort.abort();
    if (this.#body !== undefined) this.#abandon();
  }

  #abandon(): void {
    if (this.#ex.res.writableFinished) return;
    this.#reader!.release();
    if (this.#waiters() === 0) this.#body!.abandonIfUnread();
  }
}

export function fits(entry: HttpEntry, ex: Exchange): boolean {
  if (ex.req.headers.authorization !== undefined && !entry.meta.authorizedReuse) return false;
  return variantKey(ex.base, entry.meta.vary, ex.req.headers) === entry.key;
}

export function isFillTimeout(err: unknown): boolean {
  return isSidecacheError(err) && err.code === 'SC_ERR_FILL_TIMEOUT';
}

export function isAbort(err: unknown): boolean {
  const e = err as { name?: string; code?: string } | null;
  return e?.name === 'AbortError' || e?.code === 'UND_ERR_ABORTED';
}
