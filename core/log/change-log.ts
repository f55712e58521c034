import { ChangeEvent } from '../event/change-event';

/** One event stored in the log, with its place. */
export interface LogRecord {
  partition: number;
  /** Position of the record within its partition: 0, 1, 2, ... */
  offset: number;
  event: ChangeEvent;
}

/**
 * The ordered change-event log between sources and sinks (DESIGN §1).
 * Events of one row always land in one partition, in append order.
 * Offsets are per partition; a consumer's committed offset is the NEXT offset
 * it will read (so a fresh consumer starts at 0).
 */
export interface ChangeLog {
  readonly partitions: number;
  open(): Promise<void>;
  /** Appends the events in order; resolves only once they are durable. */
  append(events: readonly ChangeEvent[]): Promise<void>;
  /** Up to `maxRecords` records of `partition` starting at `offset`; [] when none yet. */
  read(partition: number, offset: number, maxRecords: number): Promise<LogRecord[]>;
  /** Per partition, the offset the next appended record will get. */
  endOffsets(): Promise<number[]>;
  /** Resolves once `partition` holds a record at `offset`, or when `signal` aborts. */
  waitForAppend(partition: number, offset: number, signal: AbortSignal): Promise<void>;
  /** Per partition, the next offset `consumer` will read (0 when it never committed). */
  committedOffsets(consumer: string): Promise<number[]>;
  /** Durably records that `consumer` has processed `partition` up to `nextOffset` (exclusive). */
  commit(consumer: string, partition: number, nextOffset: number): Promise<void>;
  close(): Promise<void>;
}
