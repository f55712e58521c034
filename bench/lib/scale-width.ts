// Scale scenario, part 1: how the Postgres source → durable log rate moves
// with table width (5 vs 50 columns) and row size (100 B vs 10 KB), each
// shape beside pg_recvlogical decoding an identical slot in the same run.
import { Client } from 'pg';
import { dropDatabase, freshDatabase } from './fresh-database';
import { alternate, BenchRow } from './report';
import { BenchContext, timeCommand } from './scenario';
import { SourceToLogResult, sourceToLogInChild } from './source-to-log';

export interface TableShape {
  columns: number;
  /** Bytes of column data per row (the key included). */
  rowBytes: number;
}

export const SHAPES: readonly TableShape[] = [
  { columns: 5, rowBytes: 100 },
  { columns: 50, rowBytes: 100 },
  { columns: 5, rowBytes: 10_240 },
  { columns: 50, rowBytes: 10_240 },
];

/** Rows per transaction of the workload: large enough that per-transaction costs do not hide the per-row ones. */
const TRANSACTION_ROWS = 100;

const kb = (bytes: number) => (bytes >= 1024 ? `${Math.round(bytes / 1024)} KB` : `${bytes} B`);

/** An int key and columns-1 text columns sharing the rest of the row's bytes. */
function tableSql(shape: TableShape): { create: string; select: string } {
  const textColumns = shape.columns - 1;
  const width = Math.max(1, Math.round((shape.rowBytes - 4) / textColumns));
  const names = Array.from({ length: textColumns }, (_, i) => `c${i + 1}`);
  // md5 of the key and column repeated: distinct per row, the same length for every row.
  const values = names.map((_, i) => `left(repeat(md5(g::text || '${i}'), ${Math.ceil(width / 32)}), ${width})`);
  return {
    create: `CREATE TABLE wide (id int PRIMARY KEY, ${names.map((n) => `${n} text`).join(', ')})`,
    select: `SELECT g, ${values.join(', ')}`,
  };
}

const databaseName = (shape: TableShape) => `bench_scale_${shape.columns}c_${shape.rowBytes}b`;

interface Prepared {
  url: string;
  endLsn: string;
  changes: number;
}

/** A database per shape, a pair of slots per run created before the inserts: every run decodes the same WAL. */
async function prepare(baseUrl: string, shape: TableShape, changes: number, runs: number): Promise<Prepared> {
  const url = await freshDatabase(baseUrl, databaseName(shape));
  const db = new Client({ connectionString: url });
  await db.connect();
  try {
    const { create, select } = tableSql(shape);
    await db.query(create);
    await db.query(`CREATE PUBLICATION bench FOR TABLE wide`);
    for (let run = 0; run < runs; run++) {
      for (const slot of [`ours_${run}`, `baseline_${run}`]) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    }
    await db.query(`CREATE PROCEDURE fill(total int) LANGUAGE plpgsql AS $$
      BEGIN
        FOR t IN 0 .. (total - 1) / ${TRANSACTION_ROWS} LOOP
          INSERT INTO wide ${select} FROM generate_series(t * ${TRANSACTION_ROWS} + 1, least((t + 1) * ${TRANSACTION_ROWS}, total)) g;
          COMMIT;
        END LOOP;
      END $$`);
    await db.query(`CALL fill(${changes})`);
    const { rows } = await db.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`);
    return { url, endLsn: rows[0].lsn, changes };
  } finally {
    await db.end();
  }
}

async function measureShape(ctx: BenchContext, baseUrl: string, shape: TableShape, changes: number): Promise<BenchRow> {
  const label = `${shape.columns} columns, ${kb(shape.rowBytes)} rows`;
  const prepared = await prepare(baseUrl, shape, changes, ctx.runs);
  ctx.say(`  width/size: ${label}: ${changes} inserts written; decoding them ${ctx.runs} time(s) each way`);
  const results: SourceToLogResult[] = [];
  const [ours, limit] = await alternate(
    ctx.runs,
    async (run) => {
      const result = await sourceToLogInChild({
        source: { name: 'bench', type: 'postgres', url: prepared.url, tables: ['public.wide'], slot: `ours_${run}`, publication: 'bench', snapshot: { mode: 'never' }, heartbeatIntervalMs: 0 },
        events: prepared.changes,
      });
      results.push(result);
      return result.rate;
    },
    async (run) => {
      const elapsed = await timeCommand('pg_recvlogical', ['-d', prepared.url, '--slot', `baseline_${run}`, '--start', '--endpos', prepared.endLsn,
        '-o', 'proto_version=1', '-o', 'publication_names=bench', '-f', '/dev/null', '--no-loop']);
      return prepared.changes / elapsed;
    },
  );
  await dropDatabase(baseUrl, databaseName(shape)); // its slots go with it
  const mbps = (rate: number) => ((rate * shape.rowBytes) / 1024 / 1024).toFixed(1);
  ctx.say(`    ours ${Math.round(ours.median)}/s, pg_recvlogical ${Math.round(limit.median)}/s`);
  return {
    scenario: `S1. Postgres source → durable log, ${label} (${changes.toLocaleString('en-US')} inserts)`,
    unit: 'rows/s',
    ours,
    baseline: limit,
    baselineName: 'pg_recvlogical → /dev/null',
    peakRssMb: Math.max(...results.map((r) => r.peakRssMb)),
    notes: `${TRANSACTION_ROWS}-row transactions; column data ${mbps(ours.median)} MB/s ours, ${mbps(limit.median)} MB/s pg_recvlogical; ` +
      `includes ${Math.min(...results.map((r) => r.firstEventSeconds)).toFixed(1)} s from start to first event ` +
      `(${Math.round(Math.max(...results.map((r) => (r.events - 1) / Math.max(1e-9, r.seconds - r.firstEventSeconds)))).toLocaleString('en-US')} rows/s after it, best run)`,
  };
}

/**
 * One row per shape. `changes` is the count for 100 B rows; 10 KB rows get a
 * fifth of it (the WAL and the log would otherwise be 100× larger).
 */
export async function widthAndSizeRows(ctx: BenchContext, changes: number): Promise<BenchRow[]> {
  const pg = await ctx.postgres();
  const rows: BenchRow[] = [];
  for (const shape of SHAPES) rows.push(await measureShape(ctx, pg.url, shape, shape.rowBytes > 1000 ? Math.max(100, Math.round(changes / 5)) : changes));
  return rows;
}
