/**
 * Every error code sidecache raises, in one table. docs/contracts.md ("Error codes") documents
 * each of them; test/unit/docs.test.ts keeps the two in step.
 */
export const ERROR_CODES = {
  SC_ERR_CONFIG_READ: 'the configuration file could not be read',
  SC_ERR_CONFIG_INVALID: 'the configuration is invalid; the message lists every key path at fault',
  SC_ERR_LISTEN: 'a listener could not bind its address',
  SC_ERR_INVALIDATION_MESSAGE: 'an invalidation message does not follow the message contract',
  SC_ERR_FILL_TIMEOUT: 'a request waiting for a shared fill gave up at its deadline',
  SC_ERR_UPSTREAM_CONNECT:
    'a connection to an upstream could not be set up: the server refused TLS that sslmode requires, or closed the connection during TLS negotiation',
  SC_ERR_UPSTREAM_TIMEOUT: 'an upstream did not accept a connection within connectTimeout',
  SC_ERR_USAGE: 'the command line is wrong',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Warnings are logged once with their code and never stop sidecache. */
export const WARNING_CODES = {
  SC_WARN_ADMIN_OPEN: 'the admin server listens beyond loopback without a token',
  SC_WARN_CATALOG_UNAVAILABLE:
    'the PostgreSQL catalog could not be asked for a database and user, so nothing of theirs is cached; logged once per cause with the fix',
  SC_WARN_BAD_INVALIDATION: 'a bus carried a message that does not follow the message contract; it was counted and ignored',
  SC_WARN_WAL_SLOT_LAG: 'a replication slot of a postgres-wal bus holds back more WAL than its maxSlotLag; logged at most once a minute per bus',
  SC_WARN_UPSTREAM_FAILED: 'an upstream (HTTP origin or PostgreSQL server) failed or refused a client; logged at most once per listener and reason every 10 s',
  SC_WARN_BUS_PUBLISH: 'a bus could not publish a local invalidation; it waits in the bus outbox until the bus is back (logged at most once a minute per bus)',
} as const;

export type WarningCode = keyof typeof WARNING_CODES;

export class SidecacheError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SidecacheError';
    this.code = code;
  }
}

/** One problem found in a configuration file: where it is and what was expected there. */
export interface ConfigProblem {
  /** Key path such as `http[0].defaultTtl`; empty for the document itself. */
  path: string;
  message: string;
}

export class ConfigError extends SidecacheError {
  readonly problems: readonly ConfigProblem[];

  constructor(source: string, problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => (p.path ? `  ${p.path}: ${p.message}` : `  ${p.message}`));
    super('SC_ERR_CONFIG_INVALID', `invalid configuration in ${source}:\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export function isSidecacheError(err: unknown): err is SidecacheError {
  return err instanceof SidecacheError;
}
