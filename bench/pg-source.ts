// Postgres source → durable log, beside pg_recvlogical draining an identical slot
// to /dev/null in the same run (the server's decoding is the physical limit).
// Run: npm run bench:pg -- [--changes 500000] [--runs 3]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { PostgresSource } from '../connectors/postgres/postgres-source';
import { postgresSourceConfig } from '../connectors/postgres/config';
import { ChangeEvent } from '../core/event/change-event';
import { Metrics } from '../core/http/metrics';
import { FileLog } from '../core/log/file-log';
import { JsonStateFile } from '../core/runtime/json-state';
import { createLogger } from '../core/runtime/logger';
import { SourceRunner } from '../core/runtime/source-runner';
import { startPostgres, stopAll } from '../test/support/servers';
import { BenchRow, formatTable, repeat, writeJson } from './lib/report';

const option = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const CHANGES = option('changes', 500_000);
const RUNS = option('runs', 3);
const logger = createLogger('bench', () => undefined);

/** Half the changes in small transactions (5 rows each), half in one large transaction; one statement each. */
const WORKLOAD = (changes: number) => [
  `CREATE PROCEDURE small_transactions(total int) LANGUAGE plpgsql AS $$
   BEGIN
     FOR t IN 0 .. total / 5 - 1 LOOP
       INSERT INTO items SELECT t * 5 + g, 'item ' || (t * 5 + g), g, now() FROM generate_series(1, 5) g;
       COMMIT;
     END LOOP;
   END $$`,
  `CALL small_transactions(${Math.floor(changes / 2)})`,
  `UPDATE items SET qty = qty + 1 WHERE id <= ${Math.ceil(changes / 2)}`,
];

interface Prepared {
  url: string;
  endLsn: string;
  changes: number;
}

async function prepare(baseUrl: string, run: number): Promise<Prepared> {
  const admin = new Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE bench${run}`);
  await admin.end();
  const url = baseUrl.replace(/\/[^/]*$/, `/bench${run}`);
  const db = new Client({ connectionString: url });
  await db.connect();
  await db.query(`CREATE TABLE items (id int PRIMARY KEY, name text, qty int, updated_at timestamptz(6))`);
  await db.query(`CREATE PUBLICATION bench FOR TABLE items`);
  for (const slot of ['ours', 'baseline']) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
  for (const statement of WORKLOAD(CHANGES)) await db.query(statement);
  const { rows } = await db.query<{ lsn: string; n: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`);
  await db.end();
  return { url, endLsn: rows[0].lsn, changes: Math.floor(CHANGES / 2 / 5) * 5 + Math.ceil(CHANGES / 2) };
}

/** pg_recvlogical decodes the slot up to the end LSN and writes to /dev/null. */
function baseline(p: Prepared): number {
  const started = process.hrtime.bigint();
  const result = spawnSync('pg_recvlogical', ['-d', p.url, '--slot', 'baseline', '--start', '--endpos', p.endLsn, '-o', 'proto_version=1', '-o', 'publication_names=bench', '-f', '/dev/null', '--no-loop'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`pg_recvlogical failed: ${result.stderr}`);
  return p.changes / (Number(process.hrtime.bigint() - started) / 1e9);
}

/** Our source and runner appending durably into the embedded log, until every change is in it. */
async function ours(p: Prepared): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-pg-'));
  const started = process.hrtime.bigint();
  const log = new FileLog({ dir: join(dir, 'log'), partitions: 8 });
  await log.open();
  let appended = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const countingLog = Object.create(log) as FileLog;
  countingLog.append = async (events: readonly ChangeEvent[]) => {
    if (!process.env.BENCH_NULL_LOG) await log.append(events); // BENCH_NULL_LOG=1 isolates the source's own cost
    const before = appended;
    appended += events.length;
    if (process.env.BENCH_TRACE && Math.floor(before / 10000) !== Math.floor(appended / 10000)) console.error(`  ${appended} at ${Number(process.hrtime.bigint() - started) / 1e6} ms (batch ${events.length})`);
    if (appended >= p.changes) done();
  };
  const config = postgresSourceConfig.parse({ name: 'bench', type: 'postgres', url: p.url, tables: ['public.items'], slot: 'ours', publication: 'bench', snapshot: { mode: 'never' }, heartbeatIntervalMs: 0 });
  const runner = new SourceRunner({
    name: 'bench',
    createSource: () => new PostgresSource(config, logger),
    log: countingLog,
    state: new JsonStateFile(join(dir, 'state.json')),
    metrics: new Metrics(),
    logger,
  });
  const stop = new AbortController();
  const running = runner.run(stop.signal);
  await finished;
  const rate = p.changes / (Number(process.hrtime.bigint() - started) / 1e9);
  stop.abort();
  await running;
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  return rate;
}

async function main(): Promise<void> {
  const pg = await startPostgres();
  try {
    const prepared: Prepared[] = [];
    for (let run = 0; run < RUNS; run++) prepared.push(await prepare(pg.url, run));
    const baselineRate = await repeat(RUNS, async (run) => baseline(prepared[run]));
    const ourRate = await repeat(RUNS, async (run) => ours(prepared[run]));
    const row: BenchRow = {
      scenario: `Postgres source → durable log (${prepared[0].changes.toLocaleString('en-US')} changes)`,
      unit: 'rows/s',
      ours: ourRate,
      baseline: baselineRate,
      baselineName: 'pg_recvlogical → /dev/null',
    };
    console.log(formatTable([row]));
    writeJson(join('bench', 'results', 'pg-source.json'), [row]);
  } finally {
    await stopAll();
  }
}

main().catch(async (error) => {
  console.error(error);
  await stopAll().catch(() => undefined);
  process.exit(1);
});
