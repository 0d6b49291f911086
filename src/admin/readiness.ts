/** A check answers undefined when its part is ready, or the reason it is not. */
export type ReadinessCheck = () => string | undefined;

/** What `/readyz` answers: its status and its JSON body. */
export interface ReadinessAnswer {
  status: 200 | 503;
  body: { ready: boolean; reasons?: string[]; degraded?: string[]; serving?: string };
}

/**
 * What `/readyz` asks: every registered part (listeners, buses) and the server's own phase. A part
 * added as `degrading` (a bus: the cache serves degraded without it, `whileDown`) makes the answer
 * 503 only when `strict()` says so (`readyz.requireBuses`); otherwise it is reported in the body.
 */
export class Readiness {
  readonly #checks = new Map<string, { check: ReadinessCheck; degrading: boolean }>();
  #phase: string | undefined = 'starting';
  #strict: () => boolean = () => true;
  #serving: () => string | undefined = () => undefined;

  add(name: string, check: ReadinessCheck, options: { degrading?: boolean } = {}): void {
    this.#checks.set(name, { check, degrading: options.degrading === true });
  }

  remove(name: string): void {
    this.#checks.delete(name);
  }

  /** Whether degrading parts make the answer 503 (read at each answer: a reload may change it); and how the cache serves meanwhile. */
  configure(strict: () => boolean, serving: () => string | undefined): void {
    this.#strict = strict;
    this.#serving = serving;
  }

  /** undefined once started; a reason such as "starting" or "stopping" otherwise. */
  setPhase(reason: string | undefined): void {
    this.#phase = reason;
  }

  /** Every reason not to be ready, degrading parts included. */
  reasons(): string[] {
    return [...(this.#phase === undefined ? [] : [this.#phase]), ...this.#collect(() => true)];
  }

  answer(): ReadinessAnswer {
    const strict = this.#strict();
    const reasons = [...(this.#phase === undefined ? [] : [this.#phase]), ...this.#collect((degrading) => strict || !degrading)];
    if (reasons.length > 0) return { status: 503, body: { ready: false, reasons } };
    const degraded = [...this.#collect((degrading) => degrading)];
    if (degraded.length === 0) return { status: 200, body: { ready: true } };
    const serving = this.#serving();
    return { status: 200, body: { ready: true, degraded, ...(serving !== undefined && { serving }) } };
  }

  *#collect(include: (degrading: boolean) => boolean): Generator<string> {
    for (const [name, { check, degrading }] of this.#checks) {
      if (!include(degrading)) continue;
      const reason = check();
      if (reason !== undefined) yield `${name}: ${reason}`;
    }
  }
}
