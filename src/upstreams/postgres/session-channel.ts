/**
 * One client connection's upstream session as a carrier of in-band catalog questions: when it may
 * carry one, and what of the reply the client still sees. Notifications are the client's (LISTEN
 * delivers them between transactions, ours included), as is a FATAL error (the session ends); a
 * ParameterStatus reaches the client only when the value at the end of the question differs from
 * the one the client knows (a reload changed it meanwhile), never for the question's own settings.
 */
import { Backend, TxStatus } from './codes.js';
import type { CatalogChannel } from './catalog-in-band.js';
import type { Frame } from './framing.js';
import { QUESTION_STATEMENT, type QuestionReply } from './in-band-question.js';
import { decodeErrorFields, decodeParameterStatus, decodeReadyStatus } from './messages.js';
import type { ResponseQueue } from './response-queue.js';
import type { Session } from './session.js';

/** What the channel needs from its connection. */
export interface SessionChannelOptions {
  readonly session: Session;
  readonly queue: ResponseQueue;
  /** Whether the connection is past authentication and open. */
  ready(): boolean;
  /** Writes bytes upstream. */
  send(bytes: Buffer): void;
  /** Writes bytes to the client. */
  toClient(bytes: Buffer): void;
}

export class SessionChannel implements CatalogChannel {
  readonly #options: SessionChannelOptions;

  constructor(options: SessionChannelOptions) {
    this.#options = options;
  }

  get database(): string {
    return this.#options.session.database;
  }

  get user(): string {
    return this.#options.session.user;
  }

  /**
   * Only between the client's requests, outside a transaction (a question inside one could take
   * its snapshot or abort it), with nothing of the client's upstream, and while the session's
   * texts are UTF-8 (the reply is read as UTF-8). Never on a replication connection (no extended
   * protocol there), nor on one whose client named a statement as sidecache's question does.
   */
  get free(): boolean {
    const { session, queue } = this.#options;
    return (
      this.#options.ready() &&
      queue.idle &&
      session.txStatus === TxStatus.Idle &&
      session.readsAsServer &&
      !session.replication &&
      !session.statements.has(QUESTION_STATEMENT)
    );
  }

  ask(bytes: Buffer, reply: QuestionReply<unknown>, lost: () => void): void {
    const { session, queue } = this.#options;
    const parameters = new Map<string, { value: string; frame: Buffer }>();
    queue.openInternal({
      frame: (frame: Frame) => {
        if (frame.code === Backend.ParameterStatus) {
          const [name, value] = decodeParameterStatus(frame.bytes);
          parameters.set(name, { value, frame: Buffer.from(frame.bytes) });
          return false;
        }
        if (frame.code === Backend.NotificationResponse) this.#options.toClient(frame.bytes);
        if (frame.code === Backend.ErrorResponse && ['FATAL', 'PANIC'].includes(decodeErrorFields(frame.bytes).severity)) this.#options.toClient(frame.bytes);
        if (!reply.frame(frame)) return false;
        session.txStatus = decodeReadyStatus(frame.bytes);
        for (const [name, { value, frame: status }] of parameters) {
          if (session.parameter(name) === value) continue;
          session.serverParameter(name, value);
          this.#options.toClient(status);
        }
        return true;
      },
      close: lost,
    });
    this.#options.send(bytes);
  }
}
