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
  /** Read aheads shared by the consumers of this log. */
  readonly readAheads: ReadAheads;
}

/** A batch read from a partition, with the end of the turn it was read in (kept for a huge record until applied). */
interface BatchRead {
  batch: PartitionRead;
  bytes: number;
  endTurn: () => void;
}

/**
 * Reading a partition's next batch while one is applied keeps a warehouse catching up busy (its transaction leaves
 * this thread idle): the quick big-values fault case recovered in 25–30 s instead of 35–36 (a Redis backlog replay,
 * bound by this thread, gained nothing). A read ahead holds a decoded batch, so the log's consumers together have at
 * most READ_AHEADS of them at once (one per partition of every sink: 23–28 s, but peak RSS 306–312 MB), only after a
 * batch smaller than PREFETCH_AFTER_BYTES, and a read ahead stops before a record of PREFETCH_REFUSE_FROM or more
 * (read once the batch before it is applied).
 */
export class ReadAheads {
  private taken = 0;

  constructor(readonly limit = READ_AHEADS) {}

  /** True (and one taken) when a read ahead may start; give it back with release(). */
  take(): boolean {
    if (this.taken >= this.limit) return false;
    this.taken++;
    return true;
  }

  release(): void {
    this.taken--;
  }
}

const READ_AHEADS = 4;
const PREFETCH_AFTER_BYTES = 1024 * 1024;
const PREFETCH_REFUSE_FROM = 1024 * 1024;

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
  /** Reads the batch at `offset`; a prefetch (see loop) declines a record of PREFETCH_REFUSE_FROM or more (null). */
  const read = async (partition: number, offset: number, prefetch: boolean): Promise<BatchRead | null> => {
    let endTurn = await log.largeRecords.shared();
    let batch: PartitionRead;
    try {
      batch = await log.readBatch(partition, offset, maxBatch, { consumer, refuseFrom: prefetch ? PREFETCH_REFUSE_FROM : LARGE_RECORD_BYTES });
      if (batch.refusedBytes !== undefined) {
        endTurn();
        if (prefetch) return null;
        endTurn = await log.largeRecords.exclusive();
        batch = await log.readBatch(partition, offset, maxBatch, { consumer });
      }
    } catch (error) {
      endTurn();
      throw error;
    }
    const bytes = batch.bytes ?? 0;
    if (bytes < LARGE_RECORD_BYTES) endTurn();
    return { batch, bytes, endTurn };
  };
  /** Applies a batch read by read(); returns where the next one starts (null: caught up) and its bytes. */
  const apply = async (partition: number, { batch, bytes, endTurn }: BatchRead): Promise<{ nextOffset: number; bytes: number } | null> => {
    const { nextOffset } = batch;
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
    let prefetched: Promise<BatchRead | null> | null = null;
    try {
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
        let current: BatchRead;
        try {
          current = (await prefetched) ?? (await read(partition, next[partition], false))!;
        } finally {
          if (prefetched) log.readAheads.release();
          prefetched = null;
        }
        // The next batch is read and decoded while this one is applied (see ReadAheads).
        if (current.batch.records.length > 0 && current.bytes < PREFETCH_AFTER_BYTES && !stop.signal.aborted && log.readAheads.take()) {
          prefetched = read(partition, current.batch.nextOffset, true);
          prefetched.catch(() => undefined); // surfaces when awaited
        }
        const done = await apply(partition, current);
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
    } finally {
      if (prefetched) log.readAheads.release(); // stopped with a read ahead not applied: read again on the next start
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
