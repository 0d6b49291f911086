/**
 * The client's messages waiting to be handled, in order: held while the session is not ready yet,
 * and while a request waits on another session's fill (it must be answered before the next one).
 */
import type net from 'node:net';
import { pauseWhileFull } from '../../drain.js';
import type { Frame } from './framing.js';

export interface InboxEnds {
  /** Whether the session may handle requests now (ready, not closing). */
  ready(): boolean;
  /** Handles one message; a promise when it waits on another session's fill. Throws on malformed bytes. */
  handle(frame: Frame): Promise<void> | undefined;
  malformed(err: unknown): void;
  upstream(): net.Socket;
  client(): net.Socket;
}

export class ClientInbox {
  readonly #frames: Frame[] = [];
  #blocked = false;
  readonly #ends: InboxEnds;

  constructor(ends: InboxEnds) {
    this.#ends = ends;
  }

  /** True while a request waits on another session's fill. */
  get blocked(): boolean {
    return this.#blocked;
  }

  push(frames: readonly Frame[]): void {
    this.#frames.push(...frames);
  }

  /** Takes every waiting message (sent upstream as they are while authentication runs). */
  takeAll(): Frame[] {
    return this.#frames.splice(0);
  }

  /** Handles waiting messages in order, both sockets corked; stops while a request waits on a fill. */
  pump(): void {
    if (this.#blocked || !this.#ends.ready()) return;
    const upstream = this.#ends.upstream();
    const client = this.#ends.client();
    upstream.cork();
    client.cork();
    while (this.#frames.length > 0 && !this.#blocked && this.#ends.ready()) {
      let wait: Promise<void> | undefined;
      try {
        wait = this.#ends.handle(this.#frames.shift()!);
      } catch (err) {
        this.#ends.malformed(err);
        break;
      }
      if (wait !== undefined) {
        this.#blocked = true;
        void wait.finally(() => {
          this.#blocked = false;
          this.pump();
        });
      }
    }
    upstream.uncork();
    client.uncork();
    pauseWhileFull(upstream, client);
  }
}
