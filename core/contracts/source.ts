import { ChangeEvent } from '../event/change-event';

/** Changes of one or more committed transactions, and where to resume after them. */
export interface SourceBatch {
  events: ChangeEvent[];
  /**
   * Serialized source position to acknowledge once `events` are durable in the
   * log: a restart from it neither skips nor repeats whole transactions.
   */
  checkpoint: string;
  /** Commit time of the last transaction in the batch, ms since epoch. */
  commitTimeMs: number;
}

export interface SourceStreamOptions {
  /** Last durable checkpoint, or null on first start. */
  from: string | null;
  /** Hands a batch to the runtime; awaiting it applies backpressure. */
  emit(batch: SourceBatch): Promise<void>;
  signal: AbortSignal;
  /**
   * Called once every change committed from now on is sure to be captured
   * (slot created / binlog position pinned), even while a snapshot still runs.
   */
  onStreaming(): void;
  /** Where the source reports progress that operators watch (metrics, status). */
  progress: SourceProgress;
  /**
   * Whether the log reads the events' SOURCE_DETAILS (ChangeLog.readsSourceDetails);
   * when false, the source may leave them out. Undefined: build them.
   */
  sourceDetails?: boolean;
  /**
   * Awaited before each chunk a resync reads: waits, a bounded time, while the
   * sinks fall behind, so a resync (background work) does not make live
   * changes late. Undefined: no pacing.
   */
  paceResync?(signal: AbortSignal): Promise<void>;
}

export interface SourceProgress {
  /** A snapshot of `table` (schema.table) has read `rowsRead` more rows; about `rowsRemaining` are left. */
  snapshotRows(table: string, rowsRead: number, rowsRemaining: number): void;
  /** Source log not yet acknowledged (Postgres WAL after confirmed_flush_lsn, MySQL binlog), in bytes. */
  backlogBytes(bytes: number): void;
  /** A resync task was dropped because its request cannot succeed (status shows it). */
  resyncDropped?(failure: { requestId: string; table: string; where?: string; error: string }): void;
  /**
   * The source's history: its epoch (core/event/version.ts) at every start, and
   * with `kind` when something happened to it (positions went backwards, a
   * failover, a lost slot), `detail` saying what and what the source did.
   */
  history?(event: { epoch: number; kind?: string; detail?: string }): void;
}

/**
 * The Source contract. A source reads changes in commit order; it never
 * persists positions itself (the runtime does, after the log is durable).
 * One instance serves one connection attempt: the runtime makes a new one
 * for each retry.
 */
export interface Source {
  readonly name: string;
  /** Resolves when the signal aborts; rejects when the stream fails. */
  stream(options: SourceStreamOptions): Promise<void>;
  /** Everything up to `checkpoint` is durable: the database may discard it. */
  acknowledge(checkpoint: string): Promise<void>;
  close(): Promise<void>;
  /**
   * Re-reads tables (`schema.table`) while streaming goes on, without locks.
   * Resolves once the request is durable (it survives restarts); the copy runs
   * in the background of the stream. `joined`: every table already waited, not
   * started, in a request with the same condition; its id is returned.
   */
  resync?(request: ResyncRequest): Promise<{ requestId: string; joined?: boolean }>;
  /**
   * Stops a queued or running resync request (the chunk being read finishes
   * first) and removes its tasks from the durable checkpoint; resolves with the
   * tables it had left. Rejects when no such request is queued.
   */
  cancelResync?(requestId: string): Promise<{ requestId: string; cancelled: string[] }>;
}

export interface ResyncRequest {
  tables: string[];
  /** Optional SQL condition limiting the rows re-read. */
  where?: string;
}
