import { LogRecord } from '../core/log/change-log';

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
}
