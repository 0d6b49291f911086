/** The PostgreSQL versions sidecache supports, and the verdict on one server's. */

/** The oldest and newest PostgreSQL major versions sidecache supports (README, "What is cached"). */
export const OLDEST_SUPPORTED = 13;
export const NEWEST_SUPPORTED = 18;

/** Whether a server of major version `major` is one sidecache supports; a message when it is not, or is newer than tested. */
export function serverSupport(major: number): { supported: boolean; note: string } {
  if (major < OLDEST_SUPPORTED) return { supported: false, note: `not supported: older than PostgreSQL ${OLDEST_SUPPORTED}, the oldest sidecache supports` };
  if (major > NEWEST_SUPPORTED) return { supported: true, note: `newer than PostgreSQL ${NEWEST_SUPPORTED}, the newest sidecache is tested with` };
  return { supported: true, note: `supported (${OLDEST_SUPPORTED} to ${NEWEST_SUPPORTED})` };
}

/**
 * The error a session of an unsupported server is refused the cache with, from the `server_version`
 * it reported at startup ("15.4", "9.6.24", "16beta1 (Debian …)"); undefined when it is supported
 * or cannot be read.
 */
export function unsupportedServer(serverVersion: string | undefined): Error | undefined {
  const major = Number.parseInt(serverVersion ?? '', 10);
  if (!Number.isFinite(major) || serverSupport(major).supported) return undefined;
  return Object.assign(new Error(`PostgreSQL ${serverVersion} is older than ${OLDEST_SUPPORTED}, the oldest sidecache supports`), {
    code: UNSUPPORTED_SERVER,
  });
}

/** The `code` of unsupportedServer's error. */
export const UNSUPPORTED_SERVER = 'SC_UNSUPPORTED_SERVER';
