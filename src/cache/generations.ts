import type { Bytes } from '../units.js';
import type { Tag } from './types.js';

/** The generation a fill saw when it began. */
export type Ticket = number;

/** Stamps kept before pruning: by count, and by bytes (URL tags are as long as the URLs clients send). */
const PRUNE_AT = 65_536;
const PRUNE_AT_BYTES: Bytes = 4 * 1024 * 1024;
/** Heap bytes a stamp costs beyond its tag's characters (the Map entry, the number), rounded up. */
const STAMP_OVERHEAD: Bytes = 64;

/**
 * The fill-race guard (docs/architecture.md "Fill race"). Every invalidation advances one sequence number
 * and stamps each tag it names with it; a fill remembers the sequence number when it began and
 * may store its result only if none of the result's tags was stamped later.
 *
 * Stamping instead of snapshotting per-tag counters means a fill does not need to know its tags
 * when it begins: an HTTP response names its tags (Surrogate-Key) only when it arrives, and is
 * still checked against every invalidation since the request left.
 */
export class Generations {
  #seq = 0;
  #allStamp = 0;
  readonly #stamps = new Map<Tag, number>();
  /** What the stamps account for: their tags and `STAMP_OVERHEAD` each. */
  #stampBytes = 0;
  /** Open tickets and how many fills hold each, so pruning keeps the stamps they still need. */
  readonly #open = new Map<Ticket, number>();

  begin(): Ticket {
    const ticket = this.#seq;
    this.#open.set(ticket, (this.#open.get(ticket) ?? 0) + 1);
    return ticket;
  }

  end(ticket: Ticket): void {
    const count = this.#open.get(ticket);
    if (count === undefined) return;
    if (count <= 1) this.#open.delete(ticket);
    else this.#open.set(ticket, count - 1);
  }

  bump(tags: Iterable<Tag>): void {
    const stamp = ++this.#seq;
    for (const tag of tags) {
      if (!this.#stamps.has(tag)) this.#stampBytes += stampBytes(tag);
      this.#stamps.set(tag, stamp);
    }
    if (this.#stamps.size > PRUNE_AT || this.#stampBytes > PRUNE_AT_BYTES) this.#prune();
  }

  bumpAll(): void {
    this.#allStamp = ++this.#seq;
  }

  /** True when no tag in `tags` (and no `all`) was invalidated after `ticket` was taken. */
  unchangedSince(ticket: Ticket, tags: readonly Tag[]): boolean {
    if (this.#allStamp > ticket) return false;
    for (const tag of tags) {
      const stamp = this.#stamps.get(tag);
      if (stamp !== undefined && stamp > ticket) return false;
    }
    return true;
  }

  /** How many tag stamps are kept (for tests of the pruning). */
  get stampCount(): number {
    return this.#stamps.size;
  }

  /** Bytes the kept stamps account for (for tests of the bound). */
  get stampBytes(): Bytes {
    return this.#stampBytes;
  }

  /**
   * A stamp at or below the oldest open ticket can no longer refuse any fill. When the open
   * tickets still need more than half the limits (a fill held open across many invalidations),
   * the stamps are replaced by one stamp of everything: every fill open now is refused, as if
   * all had been invalidated (default deny), and memory stays bounded.
   */
  #prune(): void {
    let oldest = this.#seq;
    for (const ticket of this.#open.keys()) if (ticket < oldest) oldest = ticket;
    for (const [tag, stamp] of this.#stamps) {
      if (stamp > oldest) continue;
      this.#stamps.delete(tag);
      this.#stampBytes -= stampBytes(tag);
    }
    if (this.#stamps.size > PRUNE_AT / 2 || this.#stampBytes > PRUNE_AT_BYTES / 2) {
      this.#allStamp = this.#seq;
      this.#stamps.clear();
      this.#stampBytes = 0;
    }
  }
}

function stampBytes(tag: Tag): Bytes {
  return tag.length * 2 + STAMP_OVERHEAD;
}
