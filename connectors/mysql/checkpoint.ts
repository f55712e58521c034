import { BinlogPosition, formatBinlogPosition, parseBinlogPosition } from './binlog-position';

/** A primary-key value as saved in a checkpoint: JSON values, binary keys as `{ "base64": ... }`. */
export type SavedKeyValue = string | number | null | { base64: string };

/** Progress of one table's snapshot: rows read so far and the last key read. */
export interface TableSnapshotProgress {
  done: boolean;
  rows: number;
  afterKey?: SavedKeyValue[];
}

/** A snapshot in progress: its consistent binlog position and what is read already. */
export interface SnapshotProgress {
  /** Every snapshot row carries this position's version; streaming starts here. */
  position: BinlogPosition;
  tables: Record<string, TableSnapshotProgress>;
}

/**
 * Where the MySQL source resumes. While streaming it is the plain position
 * text (`binlog.000042:1234@0-1-42`): the end of the last complete
 * transaction in the log. During the bootstrap snapshot it is JSON that also
 * says which tables and keys are read, so a crash resumes the snapshot
 * instead of starting over.
 */
export interface MysqlCheckpoint {
  position: BinlogPosition;
  snapshot?: SnapshotProgress;
  /** Tables queued for a lock-free resync, the first one in progress (resync.ts). */
  resync?: ResyncTask[];
}

/** One table to re-read while streaming goes on (DBLog watermarks, see resync.ts). */
export interface ResyncTask {
  requestId: string;
  /** `db.table`. */
  table: string;
  /** Optional SQL condition limiting the rows re-read. */
  where?: string;
  /** Rows read so far. */
  rows: number;
  /** The last key of the last chunk handed over; the next chunk starts after it. */
  afterKey?: SavedKeyValue[];
}

export function serializeCheckpoint(checkpoint: MysqlCheckpoint): string {
  const resync = checkpoint.resync?.length ? checkpoint.resync : undefined;
  if (!checkpoint.snapshot && !resync) return formatBinlogPosition(checkpoint.position);
  return JSON.stringify({
    position: formatBinlogPosition(checkpoint.position),
    snapshot: checkpoint.snapshot ? { position: formatBinlogPosition(checkpoint.snapshot.position), tables: checkpoint.snapshot.tables } : undefined,
    resync,
  });
}

export function parseCheckpoint(text: string): MysqlCheckpoint {
  if (!text.startsWith('{')) return { position: parseBinlogPosition(text) };
  let raw: { position: string; snapshot?: { position: string; tables: Record<string, TableSnapshotProgress> }; resync?: ResyncTask[] };
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`malformed MySQL source checkpoint ${JSON.stringify(text.slice(0, 80))}: ${(error as Error).message}`);
  }
  if (typeof raw.position !== 'string') throw new Error(`malformed MySQL source checkpoint ${JSON.stringify(text.slice(0, 80))}: no "position"`);
  const checkpoint: MysqlCheckpoint = { position: parseBinlogPosition(raw.position) };
  if (raw.snapshot) checkpoint.snapshot = { position: parseBinlogPosition(raw.snapshot.position), tables: raw.snapshot.tables ?? {} };
  if (Array.isArray(raw.resync) && raw.resync.length > 0) checkpoint.resync = raw.resync;
  return checkpoint;
}

/** Key values as a query returned them → JSON-safe form. */
export function saveKey(values: unknown[]): SavedKeyValue[] {
  return values.map((v) => {
    if (Buffer.isBuffer(v)) return { base64: v.toString('base64') };
    if (v === null || typeof v === 'string' || typeof v === 'number') return v;
    return String(v);
  });
}

/** The saved form → query parameters. */
export function restoreKey(values: SavedKeyValue[]): unknown[] {
  return values.map((v) => (v !== null && typeof v === 'object' ? Buffer.from(v.base64, 'base64') : v));
}
