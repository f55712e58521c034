// Scale scenario, part 4: how the DuckDB warehouse's rate moves with the size of
// the table it keeps current. A table is filled with N rows (not timed), then
// changes to keys scattered over the whole table (one in 20 a delete) are
// replayed into it, 4,000 per transaction (four partitions' batches of 1,000,
// as the sink runner groups them). Set beside the DuckDB appender writing the
// same number of rows into an empty table; the notes give the rate relative to
// the smallest table.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { LogRecord } from '../../core/log/change-log';
import { createLogger } from '../../core/runtime/logger';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { WarehouseSink } from '../../sinks/warehouse/warehouse-sink';
import { duckdbAppender } from '../sink-baselines';
import { benchRow } from '../sink-workload';
import { BenchRow, summarize } from './report';
import { BenchContext } from './scenario';

const TRANSACTION = 4000;
const logger = createLogger('bench', () => undefined);
const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

interface TableSizeRun {
  changes: number;
  appender: number;
  fill: number;
}

/** Change events with growing versions; `next(id, op)` makes the next one. */
function eventSource() {
  let step = 0;
  let offset = 0;
  return (id: number, op: ChangeEvent['op']): LogRecord => {
    step++;
    const event: ChangeEvent = {
      op,
      key: { id },
      before: null,
      after: op === 'd' ? null : benchRow(id, step),
      source: { connector: 'postgresql', name: 'bench', db: 'shop', schema: 'public', table: 'items', position: String(step), version: makeVersion(BigInt(1_000_000 + step), 1), ts_ms: 1_700_000_000_000 + step },
      ts_ms: Date.now(),
    };
    return { partition: 0, offset: offset++, event };
  };
}

async function runOnce(rows: number, changes: number): Promise<TableSizeRun> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-scale-table-'));
  try {
    const sink = new WarehouseSink(warehouseSinkConfig.parse({ name: 'bench', type: 'warehouse', engine: 'duckdb', path: join(dir, 'warehouse.duckdb') }),
      { logger, dataDir: dir }, new DeadLetterStore(dir, 'bench'));
    await sink.open();
    const next = eventSource();
    const fillStarted = process.hrtime.bigint();
    for (let id = 0; id < rows; id += TRANSACTION) {
      await sink.write(Array.from({ length: Math.min(TRANSACTION, rows - id) }, (_, i) => next(id + i, 'c')));
      await sink.flush();
    }
    const fill = rows / seconds(fillStarted);
    let seed = 20261202;
    const started = process.hrtime.bigint();
    for (let n = 0; n < changes; n += TRANSACTION) {
      await sink.write(Array.from({ length: Math.min(TRANSACTION, changes - n) }, (_, i) => {
        seed = (seed * 1103515245 + 12345) % 2147483648; // scattered keys, the same in every run
        return next(seed % rows, (n + i) % 20 === 7 ? 'd' : 'u');
      }));
      await sink.flush();
    }
    const rate = changes / seconds(started);
    await sink.close();
    const appender = await duckdbAppender(dir, { events: changes, keys: changes, partitions: 1, batch: TRANSACTION });
    return { changes: rate, appender: appender.perSecond, fill };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function tableSizeRows(ctx: BenchContext, changes: number, sizes: readonly number[]): Promise<BenchRow[]> {
  const measured: { rows: number; runs: TableSizeRun[] }[] = [];
  for (const rows of sizes) {
    const runs: TableSizeRun[] = [];
    for (let run = 0; run < ctx.runs; run++) runs.push(await runOnce(rows, changes));
    measured.push({ rows, runs });
    ctx.say(`  table of ${rows} rows: ${Math.round(summarize(runs.map((r) => r.changes)).median)} changes/s (filled at ${Math.round(summarize(runs.map((r) => r.fill)).median)} rows/s)`);
  }
  const smallest = summarize(measured[0].runs.map((r) => r.changes)).median;
  return measured.map(({ rows, runs }) => {
    const ours = summarize(runs.map((r) => r.changes));
    return {
      scenario: `S4. replay → warehouse DuckDB, scattered changes into a table of ${rows.toLocaleString('en-US')} rows (${changes.toLocaleString('en-US')} changes)`,
      unit: 'changes/s',
      ours,
      baseline: summarize(runs.map((r) => r.appender)),
      baselineName: 'DuckDB appender alone, same number of rows into an empty table',
      notes: `transactions of ${TRANSACTION}, 1 in 20 a delete; ×${(ours.median / smallest).toFixed(2)} of the ${measured[0].rows.toLocaleString('en-US')}-row table; table filled at ${Math.round(summarize(runs.map((r) => r.fill)).median).toLocaleString('en-US')} rows/s (not timed)`,
    };
  });
}
