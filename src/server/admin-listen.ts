/** The admin listener's start, the same for one process and for the primary of `workers`. */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseListen } from '../config/fields.js';
import type { AdminConfig } from '../config/schema.js';
import { formatAddress, isLoopback, listen } from '../listen.js';
import type { Logger } from '../log.js';

/** Listens on `admin.listen`; warns when it is reachable beyond loopback without a token. */
export async function listenAdmin(
  server: http.Server,
  admin: AdminConfig,
  log: Logger,
  onAcceptError?: (err: NodeJS.ErrnoException) => void,
): Promise<AddressInfo> {
  const address = await listen(server, admin.listen, 'admin', onAcceptError);
  log.info('admin listening', { address: formatAddress(address), token: admin.token !== '' });
  if (admin.token === '' && !isLoopback(parseListen(admin.listen)?.host ?? '')) {
    log.warnOnce('SC_WARN_ADMIN_OPEN', `admin listens on ${admin.listen} without a token: anyone who reaches it can invalidate the cache`);
  }
  return address;
}
