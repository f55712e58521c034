// A child process for the warehouse crash test: replays a deterministic,
// partitioned change history into a warehouse sink the way the sink runner
// does (per partition: write a batch, flush, next; partitions concurrently),
// resuming from the sink's stored offsets. Prints "flushing <p>" as a flush
// starts and "flushed <p> <next>" once it is done. Usage: node warehouse-writer.js '<json WriterSpec>'
import { LogRecord } from '../../core/log/change-log';
import { createLogger } from '../../core/runtime/logger';
import { DeadLetterStore } from '../../sinks/shared/dead-letters';
import { warehouseSinkConfig } from '../../sinks/warehouse/config';
import { WarehouseSink } from '../../sinks/warehouse/warehouse-sink';
import { partitionedHistory } from './partitioned-history';

export interface WriterSpec {
  config: Record<string, unknown>;
  dataDir: string;
  changes: number;
  partitions: number;
  batch: number;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as WriterSpec;
  const sink = new WarehouseSink(warehouseSinkConfig.parse(spec.config), { logger: createLogger('writer', () => undefined), dataDir: spec.dataDir },
    new DeadLetterStore(spec.dataDir, 'writer'));
  await sink.open();
  const logs = partitionedHistory(spec.changes, spec.partitions);
  const stored = (await sink.storedOffsets()) ?? new Map<number, number>();
  await Promise.all(logs.map(async (records, partition) => {
    for (let next = stored.get(partition) ?? 0; next < records.length; ) {
      const batch: LogRecord[] = records.slice(next, next + spec.batch);
      await sink.write(batch);
      process.stdout.write(`flushing ${partition}\n`);
      await sink.flush();
      next += batch.length;
      process.stdout.write(`flushed ${partition} ${next}\n`);
    }
  }));
  await sink.close();
  process.stdout.write('done\n');
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
