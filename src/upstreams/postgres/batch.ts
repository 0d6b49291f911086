/**
 * A client's extended-protocol messages up to each Sync: a batch is held back while it may still
 * be answered from the cache and forwarded otherwise, keeping the statements and portals the
 * upstream knows in step with the client's
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY).
 */
import { Backend, Frontend, Target } from './codes.js';
import type { Frame } from './framing.js';
import { bindReadsClock, parseDeclaresCatalogType, decodeBind, decodeExecute, decodeParse, decodeTarget } from './messages.js';
import type { ResponseQueue, UpstreamSlot } from './response-queue.js';
import { bindDigest } from './key.js';
import type { PreparedStatement, Session } from './session.js';

/** An extended-protocol batch up to its Sync, held back while it may still be a cache hit. */
export interface Batch {
  frames: Frame[];
  /** P, S (describe statement), B, D (describe portal), E, in the order seen. */
  shape: string;
  parse: { name: string; sql: string; typesAt: number; bytes: Buffer } | undefined;
  /** The statement a Describe S named: the Bind must be of that one (its description is the answer's). */
  described: string | undefined;
  sql: string | undefined;
  /** The parameter type OIDs the statement was parsed with (latin1 of the Parse's tail), part of the key. */
  types: string;
  /** For a Bind without Parse: the RowDescription/NoData the statement was described with (latin1), part of the key. */
  description: string;
  /** Parameter formats, values and result formats: the Bind's tail, part of the key (a long one as `bindDigest`). */
  bindTail: string;
  bindDigest: string | undefined;
  /** Set once the batch goes upstream. */
  slot: UpstreamSlot | undefined;
}

function newBatch(): Batch {
  return {
    frames: [],
    shape: '',
    parse: undefined,
    described: undefined,
    sql: undefined,
    types: '',
    description: '',
    bindTail: '',
    bindDigest: undefined,
    slot: undefined,
  };
}

/**
 * Adds `frame` to the batch if the batch stays a candidate for the cache: Parse? DescribeS? Bind
 * DescribeP? Execute, with the unnamed statement when it parses, the unnamed portal and no row
 * limit (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY).
 * `known` gives a statement the session prepared earlier.
 *
 * A named statement's Parse always goes upstream: the statement must exist there whenever the
 * client names it later, by any message or in SQL (EXECUTE, DEALLOCATE, PREPARE of the same name),
 * and a re-Parse of an existing name must meet the server's 42P05. Only the unnamed statement,
 * which SQL cannot name, is parsed upstream later if its Parse was answered from the cache.
 */
function extendBatch(batch: Batch, frame: Frame, known: (name: string) => PreparedStatement | undefined): boolean {
  const { shape } = batch;
  const statementSql = (name: string): string | undefined => (batch.parse !== undefined && batch.parse.name === name ? batch.parse.sql : known(name)?.sql);
  switch (frame.code) {
    case Frontend.Parse: {
      const parse = decodeParse(frame.bytes);
      if (shape !== '' || parse.name !== '') return false;
      if (parseDeclaresCatalogType(frame.bytes, parse.typesAt)) return false;
      // Fields named, not spread: V8 defines spread properties on its slow path, once per Parse.
      batch.parse = { name: parse.name, sql: parse.sql, typesAt: parse.typesAt, bytes: frame.bytes };
      batch.types = frame.bytes.toString('latin1', parse.typesAt);
      batch.shape = 'P';
      return true;
    }
    case Frontend.Describe: {
      const { kind, name } = decodeTarget(frame.bytes);
      if (kind === Target.Statement && (shape === 'P' || shape === '') && statementSql(name) !== undefined) {
        batch.described = name;
        batch.shape += 'S';
        return true;
      }
      if (kind === Target.Portal && name === '' && shape.endsWith('B')) {
        batch.shape += 'D';
        return true;
      }
      return false;
    }
    case Frontend.Bind: {
      if (!['', 'P', 'PS', 'S'].includes(shape)) return false;
      const bind = decodeBind(frame.bytes);
      // The key holds the parsed or described statement's types and shape: the Bind must be of that one.
      if (batch.parse !== undefined && bind.statement !== batch.parse.name) return false;
      if (batch.described !== undefined && bind.statement !== batch.described) return false;
      const sql = statementSql(bind.statement);
      if (bind.portal !== '' || sql === undefined) return false;
      // A parameter such as 'now' for a timestamptz parameter reads the clock at execution.
      if (bindReadsClock(frame.bytes, bind.restAt)) return false;
      if (batch.parse === undefined) {
        // The statement was prepared earlier: its parameter types and the row shape it was described
        // with belong to the key (after ALTER TABLE the server answers such a statement with 0A000,
        // never with rows of the new shape). Never described: nothing vouches for its shape.
        const statement = known(bind.statement)!;
        if (statement.description === undefined) return false;
        if (parseDeclaresCatalogType(statement.parse, statement.typesAt)) return false;
        batch.types = statement.parse.toString('latin1', statement.typesAt);
        batch.description = statement.description.toString('latin1');
      }
      batch.sql = sql;
      batch.bindDigest = bindDigest(frame.bytes, bind.restAt);
      if (batch.bindDigest === undefined) batch.bindTail = frame.bytes.toString('latin1', bind.restAt);
      batch.shape += 'B';
      return true;
    }
    case Frontend.Execute: {
      const { portal, maxRows } = decodeExecute(frame.bytes);
      if (portal !== '' || maxRows !== 0 || !(shape.endsWith('B') || shape.endsWith('D'))) return false;
      batch.shape += 'E';
      return true;
    }
    default:
      return false;
  }
}

/** Whether the batch runs its statement (ends with Execute), so its response is a result. */
export function executes(batch: Batch): boolean {
  return batch.shape.endsWith('E');
}

/** What the batches of one connection need from it. */
export interface BatchOptions {
  readonly session: Session;
  readonly queue: ResponseQueue;
  /** Writes bytes to the upstream. */
  send(bytes: Buffer): void;
  /** Whether a SQL text may be cached at all (else running it makes its slot uncertain). */
  isCacheable(sql: string): boolean;
}

/** The extended-protocol batch of one connection in progress, and the forwarding of every batch. */
export class Batches {
  #batch: Batch | undefined;
  readonly #options: BatchOptions;

  constructor(options: BatchOptions) {
    this.#options = options;
  }

  /** Whether messages have come since the last Sync. */
  get pending(): boolean {
    return this.#batch !== undefined;
  }

  /** Parse, Bind, Describe, Execute, Close or Flush: held while the batch may be a hit, else forwarded. */
  add(frame: Frame): void {
    const batch = (this.#batch ??= newBatch());
    if (batch.slot === undefined && extendBatch(batch, frame, (name) => this.#options.session.statements.get(name))) {
      batch.frames.push(frame);
      return;
    }
    if (batch.slot === undefined) this.release();
    this.#forward(frame, batch.slot!);
  }

  /**
   * A message that leaves its batch no chance of a hit, of which only the first part may have
   * come (a Bind longer than an entry may be): the batch goes upstream now, this message with it.
   */
  pass(frame: Frame): void {
    const batch = (this.#batch ??= newBatch());
    this.release();
    this.#forward(frame, batch.slot!);
  }

  /** Sends a held batch upstream: it is not (or no longer) a candidate for the cache. */
  release(): void {
    const batch = this.#batch;
    if (batch === undefined || batch.slot !== undefined) return;
    batch.slot = this.#options.queue.open([], false);
    this.forward(batch, batch.slot);
    batch.frames = [];
  }

  /**
   * The Sync that ends the batch. When the batch already went upstream (or there was none), the
   * Sync follows it there; a batch still held back is returned, for the caller to answer from the
   * cache or to send with `forward`.
   */
  end(sync: Frame): Batch | undefined {
    const batch = this.#batch;
    this.#batch = undefined;
    if (batch === undefined) this.#options.queue.open([], false);
    if (batch === undefined || batch.slot !== undefined) {
      this.#options.send(sync.bytes);
      return undefined;
    }
    return batch;
  }

  /** Sends the held frames of `batch` upstream as part of `slot`. */
  forward(batch: Batch, slot: UpstreamSlot): void {
    for (const f of batch.frames) this.#forward(f, slot);
  }

  /**
   * The batch was answered from the cache with `bytes`: its Parse (of the unnamed statement) is
   * known to the session, not yet to the upstream, described as the stored response says.
   */
  answered(batch: Batch, bytes: Buffer): void {
    const parse = batch.parse;
    if (parse === undefined) return;
    const statement: PreparedStatement = { sql: parse.sql, parse: parse.bytes, typesAt: parse.typesAt, upstream: false, description: undefined };
    this.#options.session.statements.set(parse.name, statement);
    if (/[SD]/.test(batch.shape)) statement.description = describedShape(bytes);
    if (batch.shape.includes('B')) this.#options.session.portals.set('', statement);
  }

  /** Forwards one extended frame, keeping the statements the upstream knows in step with the client's. */
  #forward(frame: Frame, slot: UpstreamSlot): void {
    const { session } = this.#options;
    if (frame.code !== Frontend.Flush) slot.replies++;
    switch (frame.code) {
      case Frontend.Parse: {
        const { name, sql, typesAt } = decodeParse(frame.bytes);
        // A named statement that exists stays as it is: the server refuses the Parse (42P05).
        if (name !== '' && session.statements.has(name)) {
          slot.parses.push(() => undefined);
          break;
        }
        const statement: PreparedStatement = { sql, parse: frame.bytes, typesAt, upstream: true, description: undefined };
        session.statements.set(name, statement);
        // The server's word: a Parse that failed (or was skipped after an error) made no statement.
        slot.parses.push(() => {
          if (session.statements.get(name) === statement) session.statements.delete(name);
        });
        break;
      }
      case Frontend.Bind: {
        const { portal, statement } = decodeBind(frame.bytes);
        this.#materialize(statement, slot);
        const prepared = session.statements.get(statement);
        if (prepared !== undefined) session.portals.set(portal, prepared);
        else session.portals.delete(portal);
        break;
      }
      case Frontend.Describe:
      case Frontend.Close: {
        const { kind, name } = decodeTarget(frame.bytes);
        if (kind === Target.Statement) this.#materialize(name, slot);
        if (frame.code === Frontend.Describe) {
          // Its RowDescription/NoData describes that statement (a placeholder keeps the order for unknown names).
          const described = kind === Target.Statement ? session.statements.get(name) : session.portals.get(name);
          slot.describes.push(described ?? { description: undefined });
        }
        if (frame.code === Frontend.Close) {
          if (kind === Target.Statement) session.statements.delete(name);
          else session.portals.delete(name);
        }
        break;
      }
      case Frontend.Execute: {
        const sql = session.portals.get(decodeExecute(frame.bytes).portal)?.sql;
        if (sql === undefined) {
          // A portal sidecache does not know (from SQL PREPARE or DECLARE): it may run anything.
          slot.uncertain = true;
          slot.unknown = true;
        } else {
          slot.executed.push(sql);
          if (!this.#options.isCacheable(sql)) slot.uncertain = true;
          slot.result ??= 'bypass';
        }
        break;
      }
    }
    this.#options.send(frame.bytes);
  }

  /** A statement answered from the cache was never parsed upstream: parse it now, unseen by the client. */
  #materialize(name: string, slot: UpstreamSlot): void {
    const statement = this.#options.session.statements.get(name);
    if (statement === undefined || statement.upstream) return;
    this.#options.send(statement.parse);
    statement.upstream = true;
    slot.swallowParse++;
  }
}

/** The RowDescription or NoData frame in a stored response, if any. */
function describedShape(bytes: Buffer): Buffer | undefined {
  for (let at = 0; at + 5 <= bytes.length; at += 1 + bytes.readInt32BE(at + 1)) {
    const code = bytes[at];
    if (code === Backend.RowDescription || code === Backend.NoData) return bytes.subarray(at, at + 1 + bytes.readInt32BE(at + 1));
  }
  return undefined;
}
