import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { SidecacheServer } from '../server.js';
import { PrimaryServer } from '../workers/primary.js';
import { runWorker } from '../workers/worker.js';
import { isLogLevel, Logger } from '../log.js';
import { configPath, loadWithFiles } from './config-file.js';

function makeLogger(): Logger {
  const level = process.env.SIDECACHE_LOG_LEVEL ?? 'info';
  return new Logger({ level: isLogLevel(level) ? level : 'info' });
}

/** `sidecache start`: runs until SIGTERM or SIGINT; SIGHUP reloads. */
export async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  const log = makeLogger();
  // A worker of `workers: N` (the same command, forked by the primary): it builds what the primary sends.
  if (cluster.isWorker) return runWorker(log);
  // SIGHUP re-reads the file (nginx, PgBouncer): what can change live does; an invalid file changes
  // nothing. Installed first: without a handler a SIGHUP ends the process, so one that comes while
  // starting is kept and applied once started.
  let server: SidecacheServer | PrimaryServer | undefined;
  let reloadWhenStarted = false;
  const reload = (): void => {
    if (server === undefined) {
      reloadWhenStarted = true;
      return log.info('SIGHUP while starting: the file is read again once started');
    }
    server.reloadFromFile().catch((err: unknown) => log.error('reload refused; the running configuration stays', { err: (err as Error).message }));
  };
  process.on('SIGHUP', reload);
  const file = configPath(values.config);
  const config = await loadWithFiles(file);
  log.info('config loaded', { file });
  const starting = config.workers > 1 ? new PrimaryServer(config, { log, configFile: file }) : new SidecacheServer(config, { log, configFile: file });
  try {
    await starting.start();
  } catch (err) {
    // A worker that could not start (its listeners' addresses, say): the others and the buses go too.
    if (starting instanceof PrimaryServer) await starting.stop();
    throw err;
  }
  server = starting;
  if (reloadWhenStarted) reload();
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('second signal: exiting at once', { signal });
        process.exit(1);
      }
      stopping = true;
      log.info('stopping', { signal, graceMs: starting.config.shutdownGrace });
      starting.stop().then(
        () => resolve(0),
        (err: unknown) => {
          log.error('stop failed', { err });
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
