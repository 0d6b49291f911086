/**
 * What a project's globalSetup tells the test workers about the PostgreSQL server of its run
 * (vitest `provide`/`inject`: the setup runs in another process, before the workers exist).
 * Absent in the default project, whose server is the machine's (PGHOST/PGPORT, see pg.ts).
 */
export interface ProvidedPgServer {
  host: string;
  port: number;
  /** The directory of its initdb, pg_ctl and postgres; throwaway clusters of the run use them too. */
  bin: string;
  /** Major version, for the rare case that truly differs between versions. */
  major: number;
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgServer?: ProvidedPgServer;
  }
}
