/** A check answers undefined when its part is ready, or the reason it is not. */
export type ReadinessCheck = () => string | undefined;

/** What `/readyz` asks: every registered part (listeners, buses) and the server's own phase. */
export class Readiness {
  readonly #checks = new Map<string, ReadinessCheck>();
  #phase: string | undefined = 'starting';

  add(name: string, check: ReadinessCheck): void {
    this.#checks.set(name, check);
  }

  remove(name: string): void {
    this.#checks.delete(name);
  }

  /** undefined once started; a reason such as "starting" or "stopping" otherwise. */
  setPhase(reason: string | undefined): void {
    this.#phase = reason;
  }

  reasons(): string[] {
    const reasons: string[] = this.#phase === undefined ? [] : [this.#phase];
    for (const [name, check] of this.#checks) {
      const reason = check();
      if (reason !== undefined) reasons.push(`${name}: ${reason}`);
    }
    return reasons;
  }
}
