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
export type MysqlCheckpoint = shared.SourceCheckpoint<BinlogPosition, SavedKeyValue> & {
  /**
   * The source epoch (core/event/version.ts): raised each time the binlog's
   * positions went backwards (RESET MASTER, failover to a server with lower
   * binlog numbers); placed first in every version. 0 when absent.
   */
  epoch?: number;
};

const codec = shared.checkpointCodec<BinlogPosition, SavedKeyValue>('MySQL', binlogPositionCodec);

/** Checkpoints of epoch 1 and later start with `epoch=N;` (epoch 0 keeps the older text). */
const EPOCH_PREFIX = /^epoch=(\d+);/;

export function serializeCheckpoint(checkpoint: MysqlCheckpoint): string {
  const text = codec.serialize(checkpoint);
  return checkpoint.epoch ? `epoch=${checkpoint.epoch};${text}` : text;
}

export function parseCheckpoint(text: string): MysqlCheckpoint {
  const match = EPOCH_PREFIX.exec(text);
  if (!match) return codec.parse(text);
  return { ...codec.parse(text.slice(match[0].length)), epoch: Number(match[1]) };
}

/** The checkpoint text with its epoch set to `epoch` (the source stamps every batch it emits). */
export function withCheckpointEpoch(text: string, epoch: number): string {
  const bare = text.replace(EPOCH_PREFIX, '');
  return epoch ? `epoch=${epoch};${bare}` : bare;
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
