// Scenario 1: Postgres source → durable log, beside pg_recvlogical draining an
// identical slot to /dev/null in the same run (the server's decoding is the
// physical limit). Alone: node dist/bench/pg-source.js [--pg-changes 500000] [--runs 3]
// (BENCH_NULL_LOG=1 skips the log append, isolating the source's own cost.)
import { Client } from 'pg';
import { alternate, BenchRow } from './lib/report';
import { main } from './lib/runner';
import { BenchContext, Scenario, timeCommand } from './lib/scenario';
import { SourceToLogResult, sourceToLogInChild } from './lib/source-to-log';

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

/** One database, one pair of slots per run created before the workload: every run decodes the same WAL. */
async function prepare(baseUrl: string, changes: number, runs: number): Promise<Prepared> {
  const admin = new Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query('DROP DATABASE IF EXISTS bench_pg_source WITH (FORCE)');
  await admin.query('CREATE DATABASE bench_pg_source');
  await admin.end();
  const url = baseUrl.replace(/\/[^/]*$/, '/bench_pg_source');
  const db = new Client({ connectionString: url });
  await db.connect();
  try {
    await db.query(`CREATE TABLE items (id int PRIMARY KEY, name text, qty int, updated_at timestamptz(6))`);
    await db.query(`CREATE PUBLICATION bench FOR TABLE items`);
    for (let run = 0; run < runs; run++) {
      for (const slot of [`ours_${run}`, `baseline_${run}`]) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    }
    for (const statement of WORKLOAD(changes)) await db.query(statement);
    const { rows } = await db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`);
    return { url, endLsn: rows[0].lsn, changes: Math.floor(changes / 2 / 5) * 5 + Math.ceil(changes / 2) };
  } finally {
    await db.end();
  }
}

async function dropSlots(url: string): Promise<void> {
  const db = new Client({ connectionString: url });
  await db.connect();
  await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`);
  await db.end();
}

/** pg_recvlogical decodes the slot up to the end LSN and writes to /dev/null. */
async function baseline(p: Prepared, run: number): Promise<number> {
  const elapsed = await timeCommand('pg_recvlogical', ['-d', p.url, '--slot', `baseline_${run}`, '--start', '--endpos', p.endLsn,
    '-o', 'proto_version=1', '-o', 'publication_names=bench', '-f', '/dev/null', '--no-loop']);
  return p.changes / elapsed;
}

export const pgSourceScenario: Scenario = {
  name: 'pg-source',
  summary: 'Postgres WAL → durable log, rows/s, vs pg_recvlogical on an identical slot',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const pg = await ctx.postgres();
    const prepared = await prepare(pg.url, ctx.option('pg-changes', ctx.quick ? 20_000 : 500_000), ctx.runs);
    ctx.say(`  ${prepared.changes} changes written; decoding them ${ctx.runs} time(s) each way`);
    const results: SourceToLogResult[] = [];
    const [ours, limit] = await alternate(
      ctx.runs,
      async (run) => {
        const result = await sourceToLogInChild({
          source: { name: 'bench', type: 'postgres', url: prepared.url, tables: ['public.items'], slot: `ours_${run}`, publication: 'bench', snapshot: { mode: 'never' }, heartbeatIntervalMs: 0 },
          events: prepared.changes,
        });
        results.push(result);
        return result.rate;
      },
      (run) => baseline(prepared, run),
    );
    await dropSlots(prepared.url);
    const startup = Math.min(...results.map((r) => r.firstEventSeconds));
    return [{
      scenario: `1. Postgres source → durable log (${prepared.changes.toLocaleString('en-US')} changes)`,
      unit: 'rows/s',
      ours,
      baseline: limit,
      baselineName: 'pg_recvlogical → /dev/null',
      peakRssMb: Math.max(...results.map((r) => r.peakRssMb)),
      notes: `half in 5-row transactions, half in one; includes ${startup.toFixed(1)} s from start to first event`,
    }];
  },
};

if (require.main === module) main([pgSourceScenario]);
