import { ChangeEvent } from '../event/change-event';

/** One event stored in the log, with its place. */
export interface LogRecord {
  partition: number;
  /**
   * Position of the record within its partition. Offsets grow with every
   * append and never change; they may have gaps (records removed by
   * compaction, Kafka tombstones and control records).
   */
  offset: number;
  event: ChangeEvent;
  /** The Kafka topic the record came from; set by the Kafka log only. */
  topic?: string;
}

/** What a caller already knows about an append; a backend may use it to skip work. */
export interface AppendHint {
  /** roughEventBytes() (core/event/rough-size.ts) of the largest event, when the caller computed it anyway. */
  largestEventBytes?: number;
}

/** Consecutive records of one partition handed to a consumer. */
export interface LogBatch {
  partition: number;
  topic?: string;
  /** In offset order; never empty. */
  records: LogRecord[];
  /** The next offset to read after this batch (past its last record and any gap after it). */
  nextOffset: number;
}

/** Records per batch a consumer hands over when ConsumeOptions.maxBatch is not given. */
export const DEFAULT_MAX_BATCH = 1000;

export interface ConsumeOptions {
  /**
   * The consumer's name: its committed offsets are kept under it (embedded:
   * `consumers/<name>.json`; Kafka: consumer group `<prefix><name>`).
   */
  consumer: string;
  /** Stops consuming; consume() resolves once in-flight batches have settled. */
  signal: AbortSignal;
  /** Most records in one batch (default DEFAULT_MAX_BATCH). */
  maxBatch?: number;
  /**
   * Asked whenever partitions are (re)assigned: the next offset to read per
   * partition, overriding the committed offsets (for sinks that store offsets
   * with their data). Partitions missing from the map start at the committed offset.
   */
  startOffsets?(partitions: readonly number[]): Promise<ReadonlyMap<number, number> | null>;
  /** Told the partitions this process now owns (the embedded log: all of them, once). */
  onAssign?(partitions: readonly number[]): void;
  /**
   * Applies one batch. Batches of one partition come one at a time, in order;
   * different partitions may run concurrently. Once it resolves (and the
   * signal has not aborted), the log commits `nextOffset` for the partition.
   * A rejection stops consume() with that error.
   */
  handle(batch: LogBatch): Promise<void>;
}

/**
 * The ordered change-event log between sources and sinks (docs/architecture.md §1), with
 * two backends: the embedded file log and Kafka.
 * Events of one row always land in one partition, in append order; a
 * truncate lands in every partition. Offsets are per partition; a consumer's
 * committed offset is the NEXT offset it will read (a fresh consumer starts
 * at the beginning). Reading goes through consume(), so the backend owns
 * partition assignment: one process owns every partition of the embedded
 * log, a Kafka consumer group spreads them over processes.
 */
export interface ChangeLog {
  /** Partitions per topic (the embedded log has one "topic"). */
  readonly partitions: number;
  open(): Promise<void>;
  /**
   * True when an append may be called before the previous one settled: appends land in call order, and
   * when one fails, every later append still pending fails too (so none lands after a failed one).
   */
  readonly orderedConcurrentAppends?: boolean;
  /**
   * True when the log reads the events' SOURCE_DETAILS (core/event/source-details.ts: a
   * Kafka log publishing Debezium topics). Sources skip building them otherwise: per
   * change they cost a fifth of the MariaDB source's time and a tenth of Postgres's.
   */
  readonly readsSourceDetails?: boolean;
  /** Appends the events in order; resolves only once they are durable. */
  append(events: readonly ChangeEvent[], hint?: AppendHint): Promise<void>;
  /**
   * Per partition, the offset the next appended record will get (Kafka: the
   * high watermark; with a topic per table, summed over the table topics).
   */
  endOffsets(): Promise<number[]>;
  /** Per partition, the next offset `consumer` will read (0 when it never committed); summed like endOffsets(). */
  committedOffsets(consumer: string): Promise<number[]>;
  /** Durably records that `consumer` has processed `partition` up to `nextOffset` (exclusive). */
  commit(consumer: string, partition: number, nextOffset: number): Promise<void>;
  /** Bytes free on the file system holding the log (the embedded log only; Kafka's disks are the brokers'). */
  diskFreeBytes?(): Promise<number | undefined>;
  /**
   * Runs `work` while no compaction pass runs or starts (the embedded log only): a consumer registered
   * inside it is seen by every pass's tombstone decisions, never by half a pass.
   */
  withCompactionHeld?<T>(work: () => Promise<T>): Promise<T>;
  /** Reads batches from the committed offsets until the signal aborts, committing after each handled batch. */
  consume(options: ConsumeOptions): Promise<void>;
  close(): Promise<void>;
}
