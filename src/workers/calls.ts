/** Requests over the IPC channel that expect an answer: numbered, each settled once, all settled when the other side goes. */

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

export class Calls {
  #next = 0;
  readonly #pending = new Map<number, Pending>();

  /** Sends the message `make(id)` builds; resolves with what `settle(id, …)` is given. */
  call<T>(send: (id: number) => void): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      try {
        send(id);
      } catch (err) {
        this.#pending.delete(id);
        reject(err as Error);
      }
    });
  }

  settle(id: number, value: unknown, error?: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    if (error === undefined) pending.resolve(value);
    else pending.reject(new Error(error));
  }

  /** The other side is gone: nothing pending will be answered. */
  failAll(reason: string): void {
    for (const pending of this.#pending.values()) pending.reject(new Error(reason));
    this.#pending.clear();
  }
}
