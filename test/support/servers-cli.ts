// Entry point of scripts/throwaway-servers.sh, for the demo and benchmarks:
//   node dist/test/support/servers-cli.js postgres redis [mariadb] [kafka:TOPIC:PARTITIONS ...]
// Prints `export NAME='value'` lines, then READY, then runs until SIGTERM/SIGINT/SIGHUP,
// until stdin closes (only when stdin is a pipe or socket), or until its parent dies;
// then stops every server and exits 0.
import * as fs from 'node:fs';
import { startKafkaMock, startMariadb, startPostgres, startRedis, stopAll } from './servers';

const USAGE = 'usage: throwaway-servers.sh [postgres] [redis] [mariadb] [kafka[:TOPIC[:PARTITIONS]] ...]';
const shellQuote = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;

interface Wanted { postgres: boolean; redis: boolean; mariadb: boolean; kafka?: { name: string; partitions: number }[] }

function parse(args: string[]): Wanted {
  const w: Wanted = { postgres: false, redis: false, mariadb: false };
  for (const a of args) {
    if (a === 'postgres' || a === 'redis' || a === 'mariadb') w[a] = true;
    else if (a === 'kafka' || a.startsWith('kafka:')) {
      const [, name, partitions] = a.split(':');
      w.kafka ??= [];
      if (name) w.kafka.push({ name, partitions: partitions ? Number(partitions) : 1 });
    } else throw new Error(`unknown server "${a}"\n${USAGE}`);
  }
  if (!args.length) throw new Error(USAGE);
  return w;
}

async function main(): Promise<void> {
  const w = parse(process.argv.slice(2));
  let stopping = false;
  const shutdown = async (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`throwaway-servers: ${why}, stopping\n`);
    try {
      await stopAll();
      process.exit(0);
    } catch (err) {
      process.stderr.write(`throwaway-servers: ${(err as Error).message}\n`);
      process.exit(1);
    }
  };
  // Registered before any server starts, so these handlers own the signals.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => void shutdown(sig));

  const [pg, redis, mysql, kafka] = await Promise.all([
    w.postgres ? startPostgres() : undefined,
    w.redis ? startRedis() : undefined,
    w.mariadb ? startMariadb() : undefined,
    w.kafka ? startKafkaMock({ topics: w.kafka }) : undefined,
  ]);
  if (stopping) return;
  const lines: string[] = [];
  if (pg) lines.push(`export PG_URL=${shellQuote(pg.url)}`);
  if (redis) lines.push(`export REDIS_URL=${shellQuote(redis.url)}`);
  if (mysql) lines.push(`export MYSQL_URL=${shellQuote(mysql.url)}`);
  if (kafka) lines.push(`export KAFKA_BROKERS=${shellQuote(kafka.bootstrap)}`);
  process.stdout.write(`${lines.join('\n')}\nREADY\n`);

  // Only a pipe or socket on stdin means "a parent holds me": /dev/null or a file would
  // end at once, and reading a TTY from a background job would stop us with SIGTTIN.
  const st = fs.fstatSync(0);
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on('end', () => void shutdown('stdin closed'));
    process.stdin.on('error', () => void shutdown('stdin error'));
    process.stdin.resume();
  }
  // If our parent dies we are re-parented: stop instead of leaking servers.
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) void shutdown('parent exited'); }, 1000);
}

main().catch(async (err) => {
  process.stderr.write(`throwaway-servers: ${(err as Error).message}\n`);
  await stopAll().catch(() => undefined);
  process.exit(1);
});
