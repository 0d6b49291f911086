/**
 * Waiting for something to happen, never for time to pass. A test that needs time to pass moves
 * the server's `ManualClock`; a test that needs an interleaving holds one side with a `Gate`.
 */

/** How long a condition may take before the test fails: generous, as it only bounds a failure. */
export const WAIT_MS = 5000;

/**
 * Polls `condition` until it holds. The deadline only turns a hang into a failure that names
 * `what`; a passing test never waits for it.
 */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, ms: number = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A promise the test releases: an origin or a query holds its answer on it. */
export interface Gate {
  readonly promise: Promise<void>;
  readonly released: boolean;
  release(): void;
}

export function gate(): Gate {
  let release!: () => void;
  let released = false;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return {
    promise,
    get released() {
      return released;
    },
    release() {
      released = true;
      release();
    },
  };
}
