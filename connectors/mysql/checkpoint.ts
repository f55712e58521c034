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
  /**
   * The server whose binlog `position` names (MariaDB: server_id; MySQL:
   * server_uuid). A start on another server (failover, a VIP or DNS switch, a
   * changed URL) cannot use the file:offset: it finds the GTID there instead
   * (failover.ts). Absent in checkpoints written before it was recorded.
   */
  server?: string;
};

const codec = shared.checkpointCodec<BinlogPosition, SavedKeyValue>('MySQL', binlogPositionCodec);

/**
 * Prefixes before the position or JSON: `server=ID;` (the server the position
 * belongs to), then `epoch=N;` from epoch 1 on. A checkpoint with neither keeps
 * the older text.
 */
const SERVER_PREFIX = /^server=([0-9A-Za-z_-]+);/;
const EPOCH_PREFIX = /^epoch=(\d+);/;

export function serializeCheckpoint(checkpoint: MysqlCheckpoint): string {
  return stamp(codec.serialize(checkpoint), checkpoint.epoch ?? 0, checkpoint.server);
}

export function parseCheckpoint(text: string): MysqlCheckpoint {
  const { server, epoch, bare } = splitPrefixes(text);
  return { ...codec.parse(bare), ...(epoch ? { epoch } : {}), ...(server ? { server } : {}) };
}

/** The checkpoint text with its epoch set to `epoch` (the source stamps every batch it emits); its server is kept. */
export function withCheckpointEpoch(text: string, epoch: number): string {
  const { server, bare } = splitPrefixes(text);
  return stamp(bare, epoch, server);
}

/** The checkpoint text stamped with the source's epoch and the server its position belongs to. */
export function withCheckpointOrigin(text: string, origin: { epoch: number; server?: string }): string {
  return stamp(splitPrefixes(text).bare, origin.epoch, origin.server);
}

function stamp(bare: string, epoch: number, server: string | undefined): string {
  return `${server ? `server=${server};` : ''}${epoch ? `epoch=${epoch};` : ''}${bare}`;
}

function splitPrefixes(text: string): { server?: string; epoch: number; bare: string } {
  let bare = text;
  const server = SERVER_PREFIX.exec(bare);
  if (server) bare = bare.slice(server[0].length);
  const epoch = EPOCH_PREFIX.exec(bare);
  if (epoch) bare = bare.slice(epoch[0].length);
  return { server: server?.[1], epoch: epoch ? Number(epoch[1]) : 0, bare };
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
