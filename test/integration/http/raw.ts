import net from 'node:net';
import { type RawResponse, request } from '../../helpers/client.js';
import { waitFor } from '../../helpers/wait.js';

/**
 * A request whose target and fields are sent exactly as given: `path` may be `//a`, `/./a`,
 * `/%70a` or an absolute URL (a URL string passed to node:http or fetch would be normalised first).
 */
export function send(base: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  return request(base, { ...options, path });
}

/** One client connection written byte for byte; `received` is everything read so far. */
export class RawConnection {
  readonly #socket: net.Socket;
  #received = '';
  #closed = false;

  constructor(base: string) {
    const { port } = new URL(base);
    this.#socket = net.connect(Number(port), '127.0.0.1');
    this.#socket.on('data', (d: Buffer) => (this.#received += d.toString('latin1')));
    this.#socket.on('close', () => (this.#closed = true));
    this.#socket.on('error', () => {});
  }

  get received(): string {
    return this.#received;
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(text: string): void {
    this.#socket.write(text);
  }

  /** Waits until `count` responses (status lines) have arrived, each with a complete head. */
  async responses(count: number): Promise<string[]> {
    const split = (): string[] => this.#received.split(/(?=HTTP\/1\.1 \d{3} )/).filter((r) => r !== '');
    await waitFor(() => split().length >= count && split()[count - 1]!.includes('\r\n\r\n'), `${count} responses`);
    return split();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
