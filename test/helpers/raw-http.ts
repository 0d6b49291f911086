/** Raw HTTP bytes to a listener, for requests fetch cannot make (an Upgrade handshake). */
import net from 'node:net';

/** Sends `bytes` to the listener at `base` and returns what it answers until it closes. */
export function rawRequest(base: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(bytes));
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
  });
}
