/** How a catalog question reaches PostgreSQL: in band over a client's session, or over sidecache's own connection. */
export interface CatalogTransport {
  /** The rows of `text` with `values` bound ($1, …), as node-postgres would type them; rejects when it cannot be asked. */
  query<R>(database: string, user: string, text: string, values: readonly unknown[]): Promise<R[]>;
  /** Ends whatever holds `database` open (before a DROP DATABASE is forwarded). */
  closeDatabase(database: string): Promise<void>;
  close(): Promise<void>;
}
