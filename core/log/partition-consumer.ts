import { ConsumeOptions, DEFAULT_MAX_BATCH } from './change-log';
import { LARGE_RECORD_BYTES, LargeRecordTurns, reclaimAfterLargeRecord } from './large-record-gc';
import { LogOffsetGoneError } from './offset-gone';
import { PartitionRead, ReadOptions } from './partition-log';

/** What consumeAllPartitions() needs from a log that one process owns entirely. */
export interface OwnedPartitions {
  readonly partitions: number;
  committedOffsets(consumer: string): Promise<number[]>;
  /** Per partition, the oldest offset still held (the base of its first segment) and the end offset. */
  heldOffsets(partition: number): { oldest: number; end: number };
  commit(consumer: string, partition: number, nextOffset: number): Promise<void>;
  readBatch(partition: number, offset: number, maxRecords: number, options?: ReadOptions): Promise<PartitionRead>;
  waitForAppend(partition: number, offset: number, signal: AbortSignal): Promise<void>;
  /** Turns of huge records shared with the appends of this process. */
  readonly largeRecords: LargeRecordTurns;
}

/**
 * consume() for the embedded log: this process owns every partition, so
 * each partition is a loop of read → handle → commit (the commit finishing
 * while the next batch is handled), waiting (without polling) for appends
 * when caught up. A failing handler stops every loop
 * and consume() rejects with its error.
 */
export async function consumeAllPartitions(log: OwnedPartitions, options: ConsumeOptions): Promise<void> {
  const { consumer, signal } = options;
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
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
  // Memory is bounded by bytes across partitions and the appends of this process: reads run side by side in shared
  // turns, each at most MAX_READ_BYTES (or one record), but a record of LARGE_RECORD_BYTES or more is read only in an
  // exclusive turn, kept until its batch is applied, so no other read or huge append adds to it meanwhile.
  /** Reads and applies one batch; returns where the next one starts (null: caught up) and its bytes. */
  const step = async (partition: number): Promise<{ nextOffset: number; bytes: number } | null> => {
    let endTurn = await log.largeRecords.shared();
    let batch: PartitionRead;
    try {
      batch = await log.readBatch(partition, next[partition], maxBatch, { refuseFrom: LARGE_RECORD_BYTES });
      if (batch.refusedBytes !== undefined) {
        endTurn();
        endTurn = await log.largeRecords.exclusive();
        batch = await log.readBatch(partition, next[partition], maxBatch);
      }
    } catch (error) {
      endTurn();
      throw error;
    }
    const { nextOffset, bytes = 0 } = batch;
    if (bytes < LARGE_RECORD_BYTES) endTurn();
    if (batch.records.length === 0) {
      endTurn();
      return nextOffset === next[partition] ? null : { nextOffset, bytes };
    }
    try {
      await options.handle({ partition, records: batch.records, nextOffset });
    } finally {
      if (bytes >= LARGE_RECORD_BYTES) {
        batch.records = []; // unreachable now, so the collection below frees them before the next turn
        reclaimAfterLargeRecord(bytes);
        endTurn();
      }
    }
    return { nextOffset, bytes };
  };
  // A batch's offset is committed (an fsync'd file write) while the next batches are read and applied, so records
  // appended meanwhile do not wait for it. Commits stay in call order (ConsumerOffsets writes them one file write at
  // a time, and those arriving during a write share the next one), and consume() settles them all before it returns.
  const commits = new Set<Promise<void>>();
  const loop = async (partition: number) => {
    while (!stop.signal.aborted) {
      // A segment deleted from outside (or a sink's stored offset from another log): never skip to what is there.
      const { oldest, end } = log.heldOffsets(partition);
      if (next[partition] < oldest || next[partition] > end) {
        throw new LogOffsetGoneError({ consumer, partition, offset: next[partition], oldest, end });
      }
      if (next[partition] > committed[partition]) {
        // The sink's stored offset is ahead of the log's commit (a stop between its flush and the commit): the log
        // learns it now, or lag would read the gap until the next record of this partition arrives.
        await log.commit(consumer, partition, next[partition]);
        committed[partition] = next[partition];
      }
      const done = await step(partition);
      if (!done) {
        await log.waitForAppend(partition, next[partition], stop.signal);
        continue;
      }
      if (stop.signal.aborted) return; // the batch may be half applied: it is replayed on the next start
      const commit = log.commit(consumer, partition, done.nextOffset).catch((error: unknown) => {
        failure ??= error;
        stop.abort();
      });
      commits.add(commit);
      void commit.then(() => commits.delete(commit));
      next[partition] = done.nextOffset;
      committed[partition] = done.nextOffset; // asked for: the check above must not commit it again
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
    await Promise.all(commits);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (failure) throw failure;
}
