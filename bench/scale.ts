// Scale scenarios: what a user asks before adopting. How throughput and memory
// move with table width (5 vs 50 columns) and row size (100 B vs 10 KB) on the
// Postgres source → log path, with partitions (1, 4, 16) on the log append and
// a Redis replay, through a 10M-row snapshot (peak RSS must stay flat), and
// with the size of the table the DuckDB warehouse keeps current;
// every figure beside its physical limit measured in the same run.
// Alone: npm run bench -- scale [--quick] [--scale-changes N] [--scale-events N] [--scale-snapshot-rows N] [--scale-table-rows N]
import { BenchRow } from './lib/report';
import { main } from './lib/runner';
import { BenchContext, Scenario } from './lib/scenario';
import { partitionRows } from './lib/scale-partitions';
import { largeSnapshotRows } from './lib/scale-snapshot';
import { tableSizeRows } from './lib/scale-table-size';
import { widthAndSizeRows } from './lib/scale-width';

export const scaleScenario: Scenario = {
  name: 'scale',
  onlyWhenNamed: true, // minutes even with --quick (a 1M-row snapshot), a quarter of an hour or more in full
  summary: 'width 5/50 columns and rows of 100 B/10 KB (source → log), partitions 1/4/16 (append, Redis replay), a 10M-row snapshot with flat RSS, DuckDB warehouse into tables of 20k/1M rows',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const changes = ctx.option('scale-changes', ctx.quick ? 20_000 : 100_000);
    const events = ctx.option('scale-events', ctx.quick ? 50_000 : 200_000);
    const snapshotRows = ctx.option('scale-snapshot-rows', ctx.quick ? 1_000_000 : 10_000_000);
    const tableRows = ctx.option('scale-table-rows', ctx.quick ? 200_000 : 1_000_000);
    ctx.say(`  width/size: ${changes} inserts of 100 B rows, ${Math.round(changes / 5)} of 10 KB; partitions: ${events} events; snapshot: ${snapshotRows} rows`);
    return [
      ...(await widthAndSizeRows(ctx, changes)),
      ...(await partitionRows(ctx, events)),
      ...(await largeSnapshotRows(ctx, snapshotRows)),
      ...(await tableSizeRows(ctx, ctx.quick ? 20_000 : 100_000, [20_000, tableRows])),
    ];
  },
};

if (require.main === module) main([scaleScenario]);
