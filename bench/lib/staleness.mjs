// The soak's judge of staleness. For every key, the versions the writer applied and when their
// invalidation was published (the PUBLISH answered, so Redis had handed it to subscribers). A read
// that started at t and returned version v is stale when some version above v was published before
// t - graceMs: sidecache had that long to hear the invalidation and drop the older answer.

export class VersionHistory {
  #graceMs;
  /** key → [{ version, publishedAt }] in publish order (versions only grow). */
  #published = new Map();

  constructor(graceMs) {
    this.#graceMs = graceMs;
  }

  published(key, version, publishedAt) {
    let list = this.#published.get(key);
    if (!list) this.#published.set(key, (list = []));
    list.push({ version, publishedAt });
  }

  /** The newest version whose invalidation was published more than graceMs before `startedAt`, or 0. */
  required(key, startedAt) {
    const list = this.#published.get(key);
    if (!list) return 0;
    for (let i = list.length - 1; i >= 0; i--) if (list[i].publishedAt < startedAt - this.#graceMs) return list[i].version;
    return 0;
  }

  isStale(key, version, startedAt) {
    return version < this.required(key, startedAt);
  }
}

/**
 * Windows in which the bus was down: from the cut (or the last sample that still read 1) to the
 * first sample that reads 1 again. `contains(t)` says whether a read starting at t is excused.
 */
export class DownWindows {
  windows = [];
  #open;

  /** The bus was seen (or made) down at `at`; a window already open stays as it is. */
  down(at) {
    if (this.#open === undefined) this.#open = { from: at, to: undefined };
  }

  /** The bus was seen up at `at`: an open window ends here. */
  up(at) {
    if (this.#open === undefined) return;
    this.#open.to = at;
    this.windows.push(this.#open);
    this.#open = undefined;
  }

  /** Closes a window still open at the end of the run. */
  finish(at) {
    this.up(at);
  }

  contains(t) {
    if (this.#open !== undefined && t >= this.#open.from) return true;
    return this.windows.some((w) => t >= w.from && t <= w.to);
  }

  get totalMs() {
    return this.windows.reduce((sum, w) => sum + (w.to - w.from), 0);
  }
}
