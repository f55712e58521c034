import { LogRecord } from '../log/change-log';

/**
 * The Sink contract. The runtime hands batches in log order per partition,
 * calls flush() and only then commits the log offsets. A sink must be
 * idempotent: a replayed or stale event (version not newer) changes nothing.
 */
export interface Sink {
  readonly name: string;
  open(): Promise<void>;
  write(batch: readonly LogRecord[]): Promise<void>;
  /** Resolves once everything written so far is durable in the target. */
  flush(): Promise<void>;
  close(): Promise<void>;
  /**
   * For sinks that store log offsets in the same transaction as their data
   * (exactly-once in effect): the next offset to read per partition, as
   * stored in the target, or null when the target holds none yet. The runner
   * resumes from these instead of the log's consumer offsets.
   */
  storedOffsets?(): Promise<Map<number, number> | null>;
  /**
   * Most records the runner hands in one write (default DEFAULT_MAX_BATCH):
   * a sink paying a fixed cost per flush (a transaction's statements) asks for more.
   */
  readonly batchRecords?: number;
}

/**
 * Generations for reprocessing (docs/architecture.md §3): a sink instance told to write a
 * generation newer than the live one builds it beside the live one (a new ES
 * index behind the alias, new warehouse tables behind the reader-facing names,
 * Redis keys stamped with a higher epoch) while the live generation keeps
 * serving; promote() then switches readers atomically and drops the old one.
 */
export interface GenerationalSink extends Sink {
  /** The generation readers see now, as recorded in the target (1 for a fresh target). Works before open(). */
  liveGeneration(): Promise<number>;
  /** Makes this instance write `generation` instead of the live one; call before open(). */
  useGeneration(generation: number): void;
  /** The generation this instance writes (known after open()). */
  readonly generation: number;
  /**
   * Switches readers to this instance's generation in one atomic step and drops
   * the older generation. Call once it has caught up with the log, after the
   * instance writing the old generation has stopped.
   */
  promote(): Promise<void>;
}

export function isGenerational(sink: Sink): sink is GenerationalSink {
  return typeof (sink as Partial<GenerationalSink>).promote === 'function';
}
