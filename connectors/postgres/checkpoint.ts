import { formatLsn, Lsn, parseLsn } from './lsn';

/** Progress of one table's snapshot. `afterKey` holds the text values of the last key read. */
export interface TableSnapshotProgress {
  done: boolean;
  rows: number;
  afterKey?: string[];
}

/** A snapshot in progress: its consistent point and what is read already. */
export interface SnapshotProgress {
  /** The slot's consistent point: every snapshot row carries this position. */
  lsn: Lsn;
  tables: Record<string, TableSnapshotProgress>;
}

/**
 * Where the Postgres source resumes. While streaming it is the plain LSN text
 * (`0/16B3748`): the end of the last complete transaction in the log. During
 * the bootstrap snapshot it is JSON that also says which tables and keys are
 * read, so a crash resumes the snapshot instead of starting over.
 */
export interface PostgresCheckpoint {
  lsn: Lsn;
  snapshot?: SnapshotProgress;
  /** Tables queued for a lock-free resync, the first one in progress. */
  resync?: ResyncTask[];
}

/** One table to re-read while streaming goes on (DBLog watermarks, see resync.ts). */
export interface ResyncTask {
  requestId: string;
  table: string;
  /** Optional SQL condition limiting the rows re-read. */
  where?: string;
  rows: number;
  afterKey?: string[];
}

export function serializeCheckpoint(checkpoint: PostgresCheckpoint): string {
  const resync = checkpoint.resync?.length ? checkpoint.resync : undefined;
  if (!checkpoint.snapshot && !resync) return formatLsn(checkpoint.lsn);
  return JSON.stringify({
    lsn: formatLsn(checkpoint.lsn),
    snapshot: checkpoint.snapshot ? { lsn: formatLsn(checkpoint.snapshot.lsn), tables: checkpoint.snapshot.tables } : undefined,
    resync,
  });
}

export function parseCheckpoint(text: string): PostgresCheckpoint {
  if (!text.startsWith('{')) return { lsn: parseLsn(text) };
  let raw: { lsn: string; snapshot?: { lsn: string; tables: Record<string, TableSnapshotProgress> }; resync?: ResyncTask[] };
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`malformed Postgres source checkpoint ${JSON.stringify(text.slice(0, 80))}: ${(error as Error).message}`);
  }
  const checkpoint: PostgresCheckpoint = { lsn: parseLsn(raw.lsn) };
  if (raw.snapshot) checkpoint.snapshot = { lsn: parseLsn(raw.snapshot.lsn), tables: raw.snapshot.tables };
  if (raw.resync?.length) checkpoint.resync = raw.resync;
  return checkpoint;
}
