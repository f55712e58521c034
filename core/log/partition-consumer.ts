import { ConsumeOptions } from './change-log';
import { reclaimAfterLargeRecord } from './large-record-gc';
import { LogOffsetGoneError } from './offset-gone';
import { PartitionRead } from './partition-log';

/** What consumeAllPartitions() needs from a log that one process owns entirely. */
export interface OwnedPartitions {
  readonly partitions: number;
  committedOffsets(consumer: string): Promise<number[]>;
  /** Per partition, the oldest offset still held (the base of its first segment) and the end offset. */
  heldOffsets(partition: number): { oldest: number; end: number };
  commit(consumer: string, partition: number, nextOffset: number): Promise<void>;
  readBatch(partition: number, offset: number, maxRecords: number): Promise<PartitionRead>;
  waitForAppend(partition: number, offset: number, signal: AbortSignal): Promise<void>;
}

/**
 * consume() for the embedded log: this process owns every partition, so
 * each partition is a loop of read → handle → commit, waiting (without
 * polling) for appends when caught up. A failing handler stops every loop
 * and consume() rejects with its error.
 */
export async function consumeAllPartitions(log: OwnedPartitions, options: ConsumeOptions): Promise<void> {
  const { consumer, signal } = options;
  const maxBatch = options.maxBatch ?? 1000;
  const all = Array.from({ length: log.partitions }, (_, p) => p);
  const committed = await log.committedOffsets(consumer);
  const stored = (await options.startOffsets?.(all)) ?? null;
  const next = committed.map((offset, p) => stored?.get(p) ?? offset);
  if (signal.aborted) return;
  options.onAssign?.(all);

  const stop = new AbortController();
  const onAbort = () => stop.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  let failure: unknown;
  /** Reads and applies one batch; returns where the next one starts (null: caught up) and its bytes. Records die with this frame. */
  const step = async (partition: number): Promise<{ nextOffset: number; bytes: number } | null> => {
    const { records, nextOffset, bytes } = await log.readBatch(partition, next[partition], maxBatch);
    if (records.length === 0 && nextOffset === next[partition]) return null;
    if (records.length > 0) await options.handle({ partition, records, nextOffset });
    return { nextOffset, bytes: bytes ?? 0 };
  };
  const loop = async (partition: number) => {
    while (!stop.signal.aborted) {
      // A segment deleted from outside (or a sink's stored offset from another log): never skip to what is there.
      const { oldest, end } = log.heldOffsets(partition);
      if (next[partition] < oldest || next[partition] > end) {
        throw new LogOffsetGoneError({ consumer, partition, offset: next[partition], oldest, end });
      }
      const done = await step(partition);
      if (!done) {
        await log.waitForAppend(partition, next[partition], stop.signal);
        continue;
      }
      reclaimAfterLargeRecord(done.bytes);
      if (stop.signal.aborted) return; // the batch may be half applied: it is replayed on the next start
      await log.commit(consumer, partition, done.nextOffset);
      next[partition] = done.nextOffset;
    }
  };
  try {
    await Promise.all(
      all.map((p) =>
        loop(p).catch((error: unknown) => {
          failure ??= error;
          stop.abort();
        }),
      ),
    );
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (failure) throw failure;
}
