// The replay workload for the sink benchmark: N change events over K rows of
// one table, hashed to P partitions, generated lazily batch by batch (memory
// stays flat at 1M events), and a driver that replays them into a sink the way
// the sink runner does: per partition write a batch, flush, next; partitions
// concurrently.
import { ChangeEvent, Row } from '../core/event/change-event';
import { makeVersion } from '../core/event/version';
import { LogRecord } from '../core/log/change-log';
import { Sink } from '../core/contracts/sink';

export interface Workload {
  events: number;
  keys: number;
  partitions: number;
  batch: number;
  /** Tables the rows are spread over (row id modulo tables; default 1: `items`). */
  tables?: number;
}

/** The row image of key `id` at change number `step`: 8 columns, ~150 bytes of JSON. */
export function benchRow(id: number, step: number): Row {
  return {
    id,
    step,
    note: `row ${id} changed at step ${step}`,
    amount: `${(id * 37 + step) % 100000}.${String(step % 100).padStart(2, '0')}`,
    ratio: (step % 1000) / 7,
    flag: step % 2 === 0,
    status: ['new', 'paid', 'shipped', 'done'][step % 4],
    updated_at: new Date(1_700_000_000_000 + step * 1000).toISOString().replace('Z', '000Z'),
  };
}

function tableOf(w: Workload, id: number): string {
  return (w.tables ?? 1) > 1 ? `items_${id % w.tables!}` : 'items';
}

/**
 * Partition p's events: keys p, p+P, p+2P, ...; change i of the whole history
 * goes to partition i % P and touches one of that partition's keys. About one
 * change in 20 is a delete; a deleted row comes back as an insert.
 */
export function* partitionEvents(w: Workload, partition: number): Generator<LogRecord[]> {
  const perPartition = Math.ceil(w.events / w.partitions);
  const keysHere = Math.max(1, Math.floor(w.keys / w.partitions));
  const alive = new Uint8Array(keysHere);
  let offset = 0;
  let batch: LogRecord[] = [];
  for (let n = 0; n < perPartition; n++) {
    const step = n * w.partitions + partition;
    if (step >= w.events) break;
    const slot = (n * 7919) % keysHere; // visits every key of the partition, in a scattered order
    const id = slot * w.partitions + partition;
    const version = makeVersion(BigInt(1_000_000 + step), 1);
    let op: ChangeEvent['op'] = alive[slot] ? 'u' : 'c';
    if (alive[slot] && n % 20 === 7) op = 'd';
    alive[slot] = op === 'd' ? 0 : 1;
    const event: ChangeEvent = {
      op,
      key: { id },
      before: null,
      after: op === 'd' ? null : benchRow(id, step),
      source: { connector: 'postgresql', name: 'bench', db: 'shop', schema: 'public', table: tableOf(w, id), position: String(step), version, ts_ms: 1_700_000_000_000 + step },
      ts_ms: Date.now(),
    };
    batch.push({ partition, offset: offset++, event });
    if (batch.length === w.batch) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}

/** Replays the whole workload into the sink, in the batches its runner would hand it; resolves with the seconds it took. */
export async function replayInto(sink: Sink, w: Workload): Promise<number> {
  const asRun = { ...w, batch: batchOf(sink, w) };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: w.partitions }, async (_, partition) => {
    for (const batch of partitionEvents(asRun, partition)) {
      await sink.write(batch);
      await sink.flush();
    }
  }));
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** The records per write: the sink's own read size where it asks for one (as SinkRunner reads), else the workload's. */
export function batchOf(sink: Sink, w: Workload): number {
  return sink.batchRecords ?? w.batch;
}

/** Every row image of the workload (deletes left out), in partition order: what the raw baselines write. */
export function* rowImages(w: Workload): Generator<Row> {
  for (let p = 0; p < w.partitions; p++) {
    for (const batch of partitionEvents(w, p)) for (const { event } of batch) if (event.after) yield event.after;
  }
}
