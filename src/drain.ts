/** The part of a writable stream (a socket, an HTTP response) that backpressure needs. */
export interface Drainable {
  readonly writableNeedDrain: boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * Backpressure, the one way sidecache waits for it: undefined while `stream` has room, else a
 * promise that settles when it drains or closes (a closed stream will never drain; the caller's
 * next write finds it destroyed). https://nodejs.org/api/stream.html#event-drain
 */
export function whenWritable(stream: Drainable): Promise<void> | undefined {
  if (!stream.writableNeedDrain) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}

/** The part of a readable stream (a socket) that pausing needs. */
export interface Pausable {
  isPaused(): boolean;
  pause(): unknown;
  resume(): unknown;
}

/**
 * Backpressure between two sockets: while `to` has more buffered than it wants, stop reading
 * `from`, so a slow reader on one side cannot make sidecache buffer what the other side sends.
 */
export function pauseWhileFull(to: Drainable, from: Pausable | undefined): void {
  if (from === undefined || from.isPaused()) return;
  const writable = whenWritable(to);
  if (writable === undefined) return;
  from.pause();
  void writable.then(() => from.resume());
}
