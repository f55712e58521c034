// Changes the embedded log holds twice (same table, key, version and op): a
// replay after a crash may append them again by design (sinks are idempotent),
// so this is reported as a note, not a failure; the warehouse history is the
// place where a duplicate change is a failure.
import { join } from 'node:path';
import { keyString } from '../../core/event/change-event';
import { FileLog } from '../../core/log/file-log';
import { PARTITIONS, Pipeline } from './pipeline';


export async function logDuplicates(p: Pipeline): Promise<number> {
  const log = new FileLog({ dir: p.options.logDir ?? join(p.dataDir, 'var', 'log'), partitions: PARTITIONS });
  await log.open();
  const seen = new Set<string>();
  let duplicates = 0;
  try {
    const ends = await log.endOffsets();
    for (let partition = 0; partition < ends.length; partition++) {
      for (let offset = 0; offset < ends[partition];) {
        const { records, nextOffset } = await log.readBatch(partition, offset, 5000);
        for (const { event } of records) {
          if (event.op === 't') continue;
          const id = `${event.source.table}\u0000${keyString(event.key)}\u0000${event.source.version}\u0000${event.op}`;
          if (seen.has(id)) duplicates++;
          else seen.add(id);
        }
        if (nextOffset <= offset) break;
        offset = nextOffset;
      }
    }
  } finally {
    await log.close();
  }
  return duplicates;
}
