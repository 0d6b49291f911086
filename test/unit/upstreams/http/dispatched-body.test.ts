import { EventEmitter } from 'node:events';
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { SharedBody } from '../../../../src/upstreams/http/body-tee.js';
import { DispatchedBody, DispatchedRequest, type DispatchedResponse } from '../../../../src/upstreams/http/dispatched-body.js';
import type { InterimResponse } from '../../../../src/upstreams/http/forward.js';
import { readAll } from '../../../helpers/body-reader.js';

/** undici's side of a request as its handler sees it: what was paused, resumed and aborted. */
class Controller implements Dispatcher.DispatchController {
  paused = false;
  aborted = false;
  reason: Error | null = null;
  resumes = 0;

  abort(reason: Error): void {
    this.aborted = true;
    this.reason = reason;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.resumes += 1;
  }
}

describe('DispatchedBody', () => {
  it('a body that came whole with its head (one socket read) reaches a reader made after the SharedBody, not stored', async () => {
    const body = new DispatchedBody(new Controller());
    body.data(Buffer.from('he'));
    body.data(Buffer.from('llo'));
    body.end();
    const shared = new SharedBody(body, 0);
    const reader = shared.reader();
    expect(reader).toBeDefined();
    expect(await readAll(reader!)).toBe('hello');
  });

  it('keeps chunks in order across the attach, and the store gets the whole body', async () => {
    const body = new DispatchedBody(new Controller());
    body.data(Buffer.from('a'));
    const shared = new SharedBody(body, 100);
    const reader = shared.reader()!;
    body.data(Buffer.from('b'));
    await Promise.resolve();
    body.data(Buffer.from('c'));
    body.end();
    expect((await shared.kept)?.toString()).toBe('abc');
    expect(await readAll(reader)).toBe('abc');
  });

  it('past the limit, pauses the upstream until the readers have taken what came, then resumes it', async () => {
    const controller = new Controller();
    const body = new DispatchedBody(controller);
    const shared = new SharedBody(body, 2);
    const reader = shared.reader()!;
    await Promise.resolve();
    body.data(Buffer.from('abc'));
    expect(controller.paused).toBe(true);
    expect((await reader.next()).value?.toString()).toBe('abc');
    const next = reader.next();
    expect(controller.paused).toBe(false);
    body.data(Buffer.from('d'));
    body.end();
    expect((await next).value?.toString()).toBe('d');
    expect((await reader.next()).done).toBe(true);
  });

  it('a body that ended is never paused or resumed (its connection may be serving another request)', async () => {
    const controller = new Controller();
    const body = new DispatchedBody(controller);
    body.data(Buffer.from('abc'));
    body.end();
    const shared = new SharedBody(body, 0);
    const reader = shared.reader()!;
    expect(await readAll(reader)).toBe('abc');
    expect(controller.paused).toBe(false);
    expect(controller.resumes).toBe(0);
  });

  it('a failure before the attach reaches the readers and the store', async () => {
    const body = new DispatchedBody(new Controller());
    body.data(Buffer.from('a'));
    body.fail(new Error('reset'));
    const shared = new SharedBody(body, 100);
    const reader = shared.reader()!;
    await expect(shared.kept).rejects.toThrow('reset');
    await expect(readAll(reader)).rejects.toThrow('reset');
  });

  it('the last reader leaving ends the upstream request (aborted), and what comes after is for nobody', async () => {
    const controller = new Controller();
    const body = new DispatchedBody(controller);
    const shared = new SharedBody(body, 0);
    const reader = shared.reader()!;
    await Promise.resolve();
    reader.release();
    expect(controller.aborted).toBe(true);
    expect((controller.reason as Error & { code?: string }).code).toBe('UND_ERR_ABORTED');
    body.data(Buffer.from('late'));
    body.fail(controller.reason!);
    expect(controller.paused).toBe(false);
  });

  it('dump settles at the end, and ends the request once more than 128 KiB came for nobody', async () => {
    const small = new DispatchedBody(new Controller());
    const dumped = small.dump();
    small.data(Buffer.alloc(10));
    small.end();
    await dumped;
    const controller = new Controller();
    const large = new DispatchedBody(controller);
    const settled = large.dump();
    large.data(Buffer.alloc(100 * 1024));
    expect(controller.aborted).toBe(false);
    large.data(Buffer.alloc(100 * 1024));
    expect(controller.aborted).toBe(true);
    large.fail(controller.reason!);
    await settled;
  });

  it('dump ends the request at once when the body declares more than 128 KiB, or more than that came before it', async () => {
    const declared = new Controller();
    await new DispatchedBody(declared, 1 << 20).dump();
    expect(declared.aborted).toBe(true);
    const early = new Controller();
    const body = new DispatchedBody(early);
    body.data(Buffer.alloc(100 * 1024));
    body.data(Buffer.alloc(100 * 1024));
    await body.dump();
    expect(early.aborted).toBe(true);
    const small = new Controller();
    const within = new DispatchedBody(small, 1024);
    const dumped = within.dump();
    within.end();
    await dumped;
    expect(small.aborted).toBe(false);
  });
});

describe('DispatchedRequest', () => {
  function request(signal?: ConstructorParameters<typeof DispatchedRequest>[2]) {
    const settled: { err?: Error; response?: DispatchedResponse }[] = [];
    const infos: InterimResponse[] = [];
    const handler = new DispatchedRequest(
      (err, response) => settled.push({ ...(err !== undefined && { err }), ...(response !== undefined && { response }) }),
      (info) => infos.push(info),
      signal,
    );
    return { handler, settled, infos };
  }

  it('hears interim responses apart from the final head, which settles once with the body', () => {
    const { handler, settled, infos } = request();
    const controller = new Controller();
    handler.onRequestStart(controller);
    handler.onResponseStart(controller, 103, { link: '</a.css>; rel=preload' });
    expect(settled).toHaveLength(0);
    expect(infos).toEqual([{ statusCode: 103, headers: { link: '</a.css>; rel=preload' } }]);
    handler.onResponseStart(controller, 200, { 'content-length': '2' });
    expect(settled).toHaveLength(1);
    expect(settled[0]!.response!.statusCode).toBe(200);
  });

  it('an abort before the request has a connection is applied when it gets one, with the signal reason', () => {
    const signal = new EventEmitter() as EventEmitter & { aborted: boolean; reason?: unknown };
    signal.aborted = false;
    const { handler, settled } = request(signal);
    signal.aborted = true;
    signal.reason = new Error('client left');
    signal.emit('abort');
    const controller = new Controller();
    handler.onRequestStart(controller);
    expect(controller.aborted).toBe(true);
    expect(controller.reason?.message).toBe('client left');
    handler.onResponseError(controller, controller.reason!);
    expect(settled[0]!.err?.message).toBe('client left');
  });

  it('an abort of a started request aborts it, and the abort listener is removed once the response ends', () => {
    const controller = new AbortController();
    const { handler } = request(controller.signal);
    const undiciSide = new Controller();
    handler.onRequestStart(undiciSide);
    handler.onResponseStart(undiciSide, 200, {});
    handler.onResponseEnd();
    controller.abort();
    expect(undiciSide.aborted).toBe(false);
    const other = new AbortController();
    const started = request(other.signal);
    const second = new Controller();
    started.handler.onRequestStart(second);
    other.abort();
    expect(second.aborted).toBe(true);
    expect(second.reason?.name).toBe('AbortError');
  });

  it('a failure before the head settles the request with it; after the head, the body fails instead', async () => {
    const before = request();
    before.handler.onResponseError(new Controller(), new Error('refused'));
    expect(before.settled[0]!.err?.message).toBe('refused');
    const after = request();
    const controller = new Controller();
    after.handler.onRequestStart(controller);
    after.handler.onResponseStart(controller, 200, {});
    after.handler.onResponseError(controller, new Error('reset'));
    expect(after.settled).toHaveLength(1);
    const shared = new SharedBody(after.settled[0]!.response!.body, 100);
    await expect(shared.kept).rejects.toThrow('reset');
  });
});
