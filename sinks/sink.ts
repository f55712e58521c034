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
}
