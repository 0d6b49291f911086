import { Redis } from 'ioredis';
import type { Bytes, Millis } from '../../units.js';
import { type BusTransport, type Subscription, within } from '../bus.js';
import { advance, compareIds, lostSince, startingPosition, type StreamPosition } from './stream-position.js';
import { defineStreamRead, MESSAGE_FIELD, messagesOf, readStream } from './stream-read.js';

/** Entries read per script call: enough to keep up with a burst, few enough to keep one reply small. */
const BATCH = 100;
/** A batch holds at most this many bytes of messages as large as `maxMessageBytes` (at least one entry). */
const BATCH_BYTES = 16 * 1024 ** 2;
/**
 * The least time an XREAD BLOCK gets to come back after its timeout: Redis times blocked clients
 * out from its event loop, which wakes `hz` times a second (10 by default,
 * https://redis.io/docs/latest/operate/oss_and_stack/management/config-file/), so a short BLOCK ends up to 100 ms late.
 */
const BLOCK_SLACK_MS: Millis = 250;

/**
 * A durable bus: a Redis stream (https://redis.io/docs/latest/develop/data-types/streams/) read
 * on a connection of its own from the last entry applied. Unlike pub/sub, what is added while
 * the bus is down waits in the stream: a reconnect resumes where the last subscription stopped
 * (`resumed`), and only a stream trimmed or deleted past that point (stream-position.ts) is a gap.
 * The first subscription of a transport starts after the stream's last entry.
 *
 * Reading alternates a script (stream-read.ts: the gap check and the entries, atomically) with
 * `XREAD BLOCK <heartbeat>` while nothing is left to read (the entry it wakes with is applied at
 * once, one round trip after the XADD), which also proves the connection is
 * alive: an XREAD not answered within another heartbeat (at least BLOCK_SLACK_MS), or a script
 * within one, is a lost connection.
 */
export class RedisStreamBus implements BusTransport {
  readonly name: string;
  readonly #url: string;
  readonly #stream: string;
  readonly #maxLen: number;
  readonly #connectTimeoutMs: Millis;
  readonly #heartbeatMs: Millis;
  readonly #batch: number;
  /** The last entry applied by any subscription of this transport; undefined before the first, or after a loss. */
  #position: StreamPosition | undefined;

  constructor(options: { url: string; stream: string; name: string; maxLen: number; connectTimeoutMs: Millis; heartbeatMs: Millis; maxMessageBytes: Bytes }) {
    this.name = options.name;
    this.#url = options.url;
    this.#stream = options.stream;
    this.#maxLen = options.maxLen;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#heartbeatMs = options.heartbeatMs;
    this.#batch = Math.max(1, Math.min(BATCH, Math.floor(BATCH_BYTES / options.maxMessageBytes)));
  }

  /** ioredis's own reconnecting and queueing are off: the runner reconnects, so that every reconnect is checked for a gap. */
  #client(): Redis {
    return new Redis(this.#url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: this.#connectTimeoutMs,
      retryStrategy: () => null,
    });
  }

  async subscribe(onMessage: (payload: Buffer) => void, onLost: (reason: string) => void): Promise<Subscription> {
    const client = this.#client();
    defineStreamRead(client);
    // Until the position is settled, a failure is this attempt's rejection; only after, a loss.
    let reading = false;
    let early: string | undefined;
    let over = false;
    const end = (): void => {
      over = true;
      client.disconnect();
    };
    const lose = (reason: string): void => {
      if (over) return;
      if (!reading) return void (early ??= reason);
      end();
      onLost(reason);
    };
    client.on('error', (err: Error) => lose(err.message));
    client.on('close', () => lose('the connection closed'));
    client.on('end', () => lose('the connection ended'));
    let runId = '';
    const previous = this.#position;
    let position: StreamPosition | undefined;
    const ready = async (): Promise<void> => {
      await client.connect();
      runId = await serverRunId(client);
      const { snapshot } = await readStream(client, this.#stream, previous?.id ?? '0-0', 0);
      const resumable = previous !== undefined && lostSince(previous, snapshot, runId) === undefined;
      // Read its last ID before resolving: nothing added once subscribe() resolves is missed.
      position = resumable ? previous : startingPosition(snapshot, runId);
    };
    try {
      await within(ready(), this.#connectTimeoutMs, 'connecting and reading the stream', end);
    } catch (err) {
      end();
      throw err;
    }
    if (over || early !== undefined) {
      end();
      throw new Error(early ?? 'the connection closed while reading the stream');
    }
    // Taken only now: a failed attempt's starting point would let the next one resume past what it never read.
    this.#position = position;
    reading = true;
    void this.#read(client, runId, onMessage, () => over, lose);
    return {
      resumed: position === previous,
      close: async () => {
        if (over) return;
        // QUIT would wait behind the XREAD BLOCK in progress: the connection has nothing left to say.
        end();
      },
    };
  }

  /** Reads until the subscription ends; any failure (a timeout, an error reply, a gap) is a loss. */
  async #read(client: Redis, runId: string, onMessage: (payload: Buffer) => void, isOver: () => boolean, lose: (reason: string) => void): Promise<void> {
    const beat = this.#heartbeatMs;
    /** The entry the last XREAD BLOCK woke with, applied at once and skipped when the script reads it again. */
    let applied: string | undefined;
    try {
      while (!isOver()) {
        const from = this.#position!;
        const { snapshot, entries } = await within(readStream(client, this.#stream, from.id, this.#batch), beat, 'reading the stream', () =>
          lose(`no answer to a stream read within ${beat} ms`),
        );
        if (isOver()) return;
        const lost = lostSince(from, snapshot, runId);
        if (lost !== undefined) {
          // The next subscription starts afresh (not resumed): the runner flushes.
          this.#position = undefined;
          return lose(lost);
        }
        for (const entry of entries) {
          if (isOver()) return;
          if (applied === undefined || compareIds(entry.id, applied) > 0) for (const payload of entryMessages(entry)) onMessage(payload);
          this.#position = advance(this.#position!, entry.id);
        }
        applied = undefined;
        if (entries.length > 0) continue;
        // Waits for an entry after the position. The entry it brings is applied at once (an
        // invalidation applied early is harmless), but the position moves only through the
        // script, whose gap check covers what may have been trimmed before this read.
        const deadline = beat + Math.max(beat, BLOCK_SLACK_MS);
        const woken = await within(client.xreadBuffer('COUNT', 1, 'BLOCK', beat, 'STREAMS', this.#stream, from.id), deadline, 'XREAD BLOCK', () =>
          lose(`no answer to XREAD BLOCK ${beat} within ${deadline} ms`),
        );
        const entry = woken?.[0]?.[1][0];
        if (entry === undefined || isOver()) continue;
        applied = entry[0].toString();
        for (const payload of entryMessages({ id: applied, fields: entry[1] })) onMessage(payload);
      }
    } catch (err) {
      lose((err as Error).message);
    }
  }

  /** `XADD <stream> [MAXLEN ~ n] * msg <payload>` on a short-lived connection of its own. */
  async publish(payload: string): Promise<void> {
    const client = this.#client();
    // A failure reaches the caller as the rejection, with the socket's error (ioredis rejects with "Connection is closed").
    let cause: Error | undefined;
    client.on('error', (err: Error) => void (cause ??= err));
    const trim = this.#maxLen > 0 ? ['MAXLEN', '~', String(this.#maxLen)] : [];
    const add = async (): Promise<void> => {
      await client.connect();
      await client.xadd(this.#stream, ...trim, '*', MESSAGE_FIELD, payload);
    };
    try {
      await within(add(), this.#connectTimeoutMs, `XADD to ${this.#stream}`, () => client.disconnect());
    } catch (err) {
      throw cause ?? err;
    } finally {
      client.disconnect();
    }
  }
}

/**
 * The messages of one entry. An entry without a `msg` field carries none: it is handed on as an
 * empty message, which the runner refuses and counts like any malformed one.
 */
function entryMessages(entry: Parameters<typeof messagesOf>[0]): Buffer[] {
  const found = messagesOf(entry);
  return found.length > 0 ? found : [Buffer.alloc(0)];
}

/** Redis's `run_id` (INFO server): it changes when the server restarts or another one answers (a failover). */
async function serverRunId(client: Redis): Promise<string> {
  const info = await client.info('server');
  return /^run_id:(\w+)/m.exec(info)?.[1] ?? '';
}
