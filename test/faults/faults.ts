// The faults a case can inject. Each returns when the fault is over (cleared),
// so the case can time recovery from that moment.
import { execFileSync } from 'node:child_process';
import { mkdirSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { isRoot } from '../support/ensure-binary';
import { mariadbQuery, redisRaw } from '../support/servers';
import { Pipeline } from './pipeline';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Restarts the source database (fast shutdown, start again on the same port). */
export async function restartSource(p: Pipeline): Promise<void> {
  if (p.source === 'postgres') await p.lab.pg!.restart();
  else await p.lab.mariadb!.restart();
}

/** Which of our Postgres backends to end: the walsender, the snapshot/resync readers, or the control connection. */
export type PgBackend = 'walsender' | 'reader' | 'control';

/**
 * pg_terminate_backend of the service's backends of one kind in the case's database.
 * Ours are those not opened by the load generator or the harness; readers are
 * the ones running a SELECT on a captured table (or holding an exported snapshot).
 */
export async function terminatePgBackends(p: Pipeline, kind: PgBackend): Promise<number> {
  const admin = new Client({ connectionString: p.lab.pg!.url, application_name: 'fault-harness' });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    const isReader = `(query ~* 'from\\s+("?public"?\\.)?"?(customers|orders|order_items)' OR query ~* 'SET TRANSACTION SNAPSHOT')`;
    const where = kind === 'walsender'
      ? `backend_type = 'walsender'`
      : `backend_type = 'client backend' AND ${kind === 'reader' ? isReader : `NOT ${isReader}`}`;
    // Wait a little for one to exist: the service may be reconnecting (a reader only lives during a snapshot or resync).
    const deadline = Date.now() + (kind === 'reader' ? 2000 : 10_000);
    for (;;) {
      const { rows } = await admin.query(
        `SELECT pid, pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE datname = $1 AND pid <> pg_backend_pid() AND coalesce(application_name, '') NOT IN ('fault-load', 'fault-harness') AND ${where}`, [p.name]);
      if (rows.length > 0 || Date.now() > deadline) return rows.length;
      await sleep(200);
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
}

/** KILL of every binlog dump thread (SHOW PROCESSLIST command 'Binlog Dump'), waiting up to 10 s for one to exist (it may be reconnecting). */
export async function killBinlogDump(p: Pipeline): Promise<number> {
  const port = p.lab.mariadb!.port;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const list = await mariadbQuery(port, `SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'`);
    const ids = list.split('\n').map((l) => l.trim()).filter(Boolean);
    for (const id of ids) await mariadbQuery(port, `KILL ${id}`).catch(() => undefined);
    if (ids.length > 0 || Date.now() > deadline) return ids.length;
    await sleep(200);
  }
}

/** Redis stopped (saving its data set, as a persistent Redis would) for `ms`, then started on the same port. */
export async function redisOutage(p: Pipeline, ms: number): Promise<void> {
  const redis = p.lab.redis;
  await redisRaw(redis.port, 'SHUTDOWN SAVE\r\n', /.*/, 5000).catch(() => undefined);
  while (redis.pid !== undefined) await sleep(50);
  await sleep(ms);
  await redis.start();
}

/** The warehouse Postgres stopped (fast shutdown) for `ms`, then started again. */
export async function warehousePgOutage(p: Pipeline, ms: number): Promise<void> {
  const pg = p.lab.warehousePg!;
  process.kill(pg.pid!, 'SIGINT');
  while (pg.pid !== undefined) await sleep(50);
  await sleep(ms);
  await pg.start();
}

/** The Elasticsearch server answering 503 for the first half of `ms`, then 429. */
export async function esOutage(p: Pipeline, ms: number): Promise<void> {
  p.lab.es.answerEveryRequestWith(503);
  await sleep(ms / 2);
  p.lab.es.answerEveryRequestWith(429);
  await sleep(ms / 2);
  p.lab.es.answerEveryRequestWith(null);
}

/** A small tmpfs for the embedded log (root only); returns a reason when it cannot be had. */
export function mountTmpfs(dir: string, megabytes: number): string | null {
  if (!isRoot()) return 'needs root to mount a tmpfs';
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', dir], { stdio: 'pipe' });
    return null;
  } catch (error) {
    return `mount -t tmpfs failed: ${(error as Error).message.split('\n')[0]}`;
  }
}

export function unmountTmpfs(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
  } catch { /* not mounted */ }
}

/** Fills the filesystem of `dir` to the brim with a filler file; returns its path. */
export function fillDisk(dir: string): string {
  const file = join(dir, 'filler.bin');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  try {
    for (;;) {
      try {
        writeSync(fd, chunk);
      } catch {
        // The last partial chunk: fill what is left byte-wise in smaller pieces.
        for (let size = 1 << 19; size >= 512; size >>= 1) {
          try { for (;;) writeSync(fd, chunk, 0, size); } catch { /* next smaller size */ }
        }
        return file;
      }
    }
  } finally {
    closeSync(fd);
  }
}

export function freeDisk(file: string): void {
  rmSync(file, { force: true });
}
