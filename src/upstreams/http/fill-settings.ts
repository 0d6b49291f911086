/**
 * What a listener's configuration gives every fill, built once per configuration (frozen; a reload
 * brings a new one) rather than per response: the targeted Cache-Control fields it obeys, how the
 * upstream's fields become the stored and the answered lists, and the storage decision's inputs.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Millis } from '../../units.js';
import type { FillRequest, ListenerContext } from './context.js';
import type { ResponseHeaderOptions } from './headers.js';
import { decideStorage, type StorageDecision } from './policy.js';

/** What a listener's configuration gives every fill, built once per configuration. */
interface FillSettings {
  /** The targeted Cache-Control fields this listener obeys, first one first (RFC 9213 §2.2). */
  readonly targeted: readonly string[];
  /** How the upstream's fields become the stored ones (no Set-Cookie) and the requester's. */
  readonly stored: ResponseHeaderOptions;
  readonly answered: ResponseHeaderOptions;
}

/** Per listener configuration (frozen; a reload brings a new one, with the tag header it may change). */
const settingsByConfig = new WeakMap<object, FillSettings>();

function settingsOf(ctx: ListenerContext): FillSettings {
  const known = settingsByConfig.get(ctx.config);
  if (known !== undefined && known.stored.tagHeader === ctx.tagHeader) return known;
  const base = { tagHeader: ctx.tagHeader, exposeTags: ctx.config.exposeTags, mode: ctx.config.forwardedHeaders };
  const settings = {
    targeted: [ctx.config.targetedCacheControl.toLowerCase(), 'cdn-cache-control'],
    stored: { ...base, dropSetCookie: true },
    answered: { ...base, dropSetCookie: false },
  };
  settingsByConfig.set(ctx.config, settings);
  return settings;
}

/** The targeted Cache-Control fields this listener obeys, first one first (RFC 9213 §2.2). */
export function targetedFields(ctx: ListenerContext): readonly string[] {
  return settingsOf(ctx).targeted;
}

/** The field-list options of the stored fields and of the requester's. */
export function responseHeaderOptions(ctx: ListenerContext): Pick<FillSettings, 'stored' | 'answered'> {
  return settingsOf(ctx);
}

/** The storage decision for a fill's response (`policy.ts`), with this listener's settings. */
export function decide(ctx: ListenerContext, fr: FillRequest, status: number, responseHeaders: IncomingHttpHeaders, requestTime: Millis): StorageDecision {
  return decideStorage({
    Policy: ctx.Policy,
    method: 'GET',
    url: fr.url,
    requestHeaders: fr.policyHeaders,
    status,
    responseHeaders,
    route: fr.route,
    defaults: ctx.defaults,
    targeted: targetedFields(ctx),
    requestTime,
  });
}

/** The upstream's fields without the targeted field meant for this cache alone (RFC 9213 §3: it need not go on). */
export function withoutOwnTargeted(ctx: ListenerContext, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const own = targetedFields(ctx)[0]!;
  if (headers[own] === undefined) return headers;
  const copy = { ...headers };
  delete copy[own];
  return copy;
}
