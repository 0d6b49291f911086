// A writer that tells every sidecache what it changed. Run it with:
//   node examples/writers/update-and-publish.mjs <table> <id> <new name>
// Environment: PGHOST, PGPORT, PGUSER, PGDATABASE (as for psql), REDIS_URL, SIDECACHE_CHANNEL,
// SIDECACHE_STREAM.
//
// Three ways to publish, use any (or all, as here):
// - pg_notify inside the transaction: PostgreSQL delivers it at COMMIT, and only if the
//   transaction commits, so an invalidation can neither overtake the write nor announce a
//   rolled-back one.
// - Redis PUBLISH after COMMIT returns: the write is visible by then; publishing before COMMIT
//   could let a reader re-fill the cache with the old row. At most once: a sidecache that is
//   disconnected then misses it (and flushes its whole cache when it is back).
// - Redis XADD after COMMIT returns, to a stream a `redis-stream` bus reads: the entry waits in
//   the stream for a sidecache that is down, which applies it when it is back instead of
//   flushing. MAXLEN ~ keeps the stream bounded; the message goes in the field `msg`.
import pg from 'pg';
import { Redis } from 'ioredis';

export async function updateAndPublish(db, redis, { channel, stream }, { table, id, name }) {
  const message = JSON.stringify({ tables: [table], tags: [`${table}:${id}`] });
  await db.query('BEGIN');
  try {
    await db.query(`UPDATE ${pg.escapeIdentifier(table)} SET name = $1 WHERE id = $2`, [name, id]);
    await db.query('SELECT pg_notify($1, $2)', [channel, message]);
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK');
    throw err;
  }
  await redis.publish(channel, message);
  await redis.xadd(stream, 'MAXLEN', '~', 10000, '*', 'msg', message);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [table, id, name] = process.argv.slice(2);
  if (!table || !id || name === undefined) {
    console.error('usage: node update-and-publish.mjs <table> <id> <new name>');
    process.exit(2);
  }
  const db = new pg.Client();
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  await db.connect();
  try {
    const bus = { channel: process.env.SIDECACHE_CHANNEL ?? 'sidecache', stream: process.env.SIDECACHE_STREAM ?? 'sidecache' };
    await updateAndPublish(db, redis, bus, { table, id: Number(id), name });
    console.log(`updated ${table} ${id} and published`);
  } finally {
    await db.end();
    redis.disconnect();
  }
}
