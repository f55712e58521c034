import { PositionCodec } from '../../core/event/position';

/** Progress of one table's snapshot: rows read so far and the last key read (`K`: how a key value is saved). */
export interface TableSnapshotProgress<K> {
  done: boolean;
  rows: number;
  afterKey?: K[];
}

/** A snapshot in progress: its consistent position and what is read already. */
export interface SnapshotProgress<P, K> {
  /** Every snapshot row carries this position's version; streaming starts here. */
  position: P;
  tables: Record<string, TableSnapshotProgress<K>>;
}

/** One table to re-read while streaming goes on (DBLog watermarks). */
export interface ResyncTask<K> {
  requestId: string;
  /** `schema.table` (MySQL: `db.table`). */
  table: string;
  /** Optional SQL condition limiting the rows re-read. */
  where?: string;
  /** Rows read so far. */
  rows: number;
  /** The last key of the last chunk handed over; the next chunk starts after it. */
  afterKey?: K[];
}

/**
 * Where a source resumes. While it just streams, the plain position text (the
 * end of the last complete transaction in the log), readable by anyone.
 * During a snapshot or with resyncs queued, JSON that also says which tables
 * and keys are read, so a crash resumes at the next chunk instead of starting over.
 */
export interface SourceCheckpoint<P, K> {
  position: P;
  snapshot?: SnapshotProgress<P, K>;
  resync?: ResyncTask<K>[];
}

export interface CheckpointCodec<P, K> {
  serialize(checkpoint: SourceCheckpoint<P, K>): string;
  parse(text: string): SourceCheckpoint<P, K>;
}

/** The checkpoint text format shared by the sources; `connector` names them in errors. */
export function checkpointCodec<P, K>(connector: string, position: PositionCodec<P>): CheckpointCodec<P, K> {
  const malformed = (text: string, why: string) => new Error(`malformed ${connector} source checkpoint ${JSON.stringify(text.slice(0, 80))}: ${why}`);
  return {
    serialize(checkpoint) {
      const resync = checkpoint.resync?.length ? checkpoint.resync : undefined;
      if (!checkpoint.snapshot && !resync) return position.serialize(checkpoint.position);
      return JSON.stringify({
        position: position.serialize(checkpoint.position),
        snapshot: checkpoint.snapshot ? { position: position.serialize(checkpoint.snapshot.position), tables: checkpoint.snapshot.tables } : undefined,
        resync,
      });
    },
    parse(text) {
      if (!text.startsWith('{')) return { position: position.parse(text) };
      let raw: { position?: unknown; snapshot?: { position: string; tables?: Record<string, TableSnapshotProgress<K>> }; resync?: ResyncTask<K>[] };
      try {
        raw = JSON.parse(text);
      } catch (error) {
        throw malformed(text, (error as Error).message);
      }
      if (typeof raw.position !== 'string') throw malformed(text, 'no "position"');
      const checkpoint: SourceCheckpoint<P, K> = { position: position.parse(raw.position) };
      if (raw.snapshot) checkpoint.snapshot = { position: position.parse(raw.snapshot.position), tables: raw.snapshot.tables ?? {} };
      if (Array.isArray(raw.resync) && raw.resync.length > 0) checkpoint.resync = raw.resync;
      return checkpoint;
    },
  };
}
