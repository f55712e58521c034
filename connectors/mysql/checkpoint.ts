import * as shared from '../shared/source-checkpoint';
import { BinlogPosition, binlogPositionCodec } from './binlog-position';

/** A primary-key value as saved in a checkpoint: JSON values, binary keys as `{ "base64": ... }`. */
export type SavedKeyValue = string | number | null | { base64: string };

export type TableSnapshotProgress = shared.TableSnapshotProgress<SavedKeyValue>;
export type SnapshotProgress = shared.SnapshotProgress<BinlogPosition, SavedKeyValue>;
export type ResyncTask = shared.ResyncTask<SavedKeyValue>;
/**
 * Where the MySQL source resumes: `binlog.000042:1234@0-1-42` while streaming,
 * plus snapshot and resync progress when any (shared/source-checkpoint.ts).
 */
export type MysqlCheckpoint = shared.SourceCheckpoint<BinlogPosition, SavedKeyValue>;

const codec = shared.checkpointCodec<BinlogPosition, SavedKeyValue>('MySQL', binlogPositionCodec);
export const serializeCheckpoint = codec.serialize;
export const parseCheckpoint = codec.parse;

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
