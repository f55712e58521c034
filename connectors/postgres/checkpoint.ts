import * as shared from '../shared/source-checkpoint';
import { Lsn, lsnCodec } from './lsn';

/** Key values are saved as the text Postgres printed for them. */
export type TableSnapshotProgress = shared.TableSnapshotProgress<string>;
export type SnapshotProgress = shared.SnapshotProgress<Lsn, string>;
export type ResyncTask = shared.ResyncTask<string>;

/** The cluster and timeline a position was read on (IDENTIFY_SYSTEM): LSNs of another cluster or timeline are another history. */
export interface ServerHistory {
  systemId: string;
  timeline: number;
}

/** Where the Postgres source resumes: an LSN, plus snapshot and resync progress when any (shared/source-checkpoint.ts). */
export type PostgresCheckpoint = shared.SourceCheckpoint<Lsn, string> & {
  /**
   * The source epoch (core/event/version.ts): raised each time positions went
   * backwards (a new cluster, a restore from backup, a failover to a server
   * behind the saved LSN); placed first in every version. 0 when absent.
   */
  epoch?: number;
  /** Where the position was read; absent in checkpoints written before it was recorded. */
  server?: ServerHistory;
};

const codec = shared.checkpointCodec<Lsn, string>('Postgres', lsnCodec);

/**
 * The plain form stays the LSN text, prefixed with `epoch=N;` (epoch 1 and
 * later) and `server=SYSTEMID/TIMELINE;` when known; the JSON form (snapshot
 * or resync progress) carries them as the fields `epoch` and `server`, so
 * readers of that JSON (cdc status, the console) keep working.
 */
export function serializeCheckpoint(checkpoint: PostgresCheckpoint): string {
  const text = codec.serialize(checkpoint);
  const server = checkpoint.server ? `${checkpoint.server.systemId}/${checkpoint.server.timeline}` : undefined;
  if (text.startsWith('{')) {
    if (!checkpoint.epoch && !server) return text;
    return JSON.stringify({ ...JSON.parse(text), epoch: checkpoint.epoch || undefined, server });
  }
  return `${checkpoint.epoch ? `epoch=${checkpoint.epoch};` : ''}${server ? `server=${server};` : ''}${text}`;
}

const PREFIX = /^(epoch|server)=([^;]*);/;

export function parseCheckpoint(text: string): PostgresCheckpoint {
  let epoch: number | undefined;
  let server: string | undefined;
  let rest = text;
  for (let match = PREFIX.exec(rest); match; match = PREFIX.exec(rest)) {
    if (match[1] === 'epoch') epoch = Number(match[2]);
    else server = match[2];
    rest = rest.slice(match[0].length);
  }
  const checkpoint: PostgresCheckpoint = codec.parse(rest);
  if (rest.startsWith('{')) {
    const raw = JSON.parse(rest) as { epoch?: unknown; server?: unknown };
    if (typeof raw.epoch === 'number') epoch = raw.epoch;
    if (typeof raw.server === 'string') server = raw.server;
  }
  if (epoch !== undefined && (!Number.isInteger(epoch) || epoch < 0)) throw new Error(`malformed Postgres source checkpoint ${JSON.stringify(text.slice(0, 80))}: epoch ${epoch}`);
  if (epoch) checkpoint.epoch = epoch;
  if (server !== undefined) {
    const match = /^(\d+)\/(\d+)$/.exec(server);
    if (!match) throw new Error(`malformed Postgres source checkpoint ${JSON.stringify(text.slice(0, 80))}: server "${server}" (expected SYSTEMID/TIMELINE)`);
    checkpoint.server = { systemId: match[1], timeline: Number(match[2]) };
  }
  return checkpoint;
}

/** The checkpoint text with its epoch and server set (the source stamps every batch it emits). */
export function stampCheckpoint(text: string, epoch: number, server: ServerHistory): string {
  // Streaming with no resync queued, every transaction's checkpoint is a bare LSN as formatLsn() prints it: prefixed
  // directly, with what serializeCheckpoint() would give, instead of parsed and printed again.
  if (CANONICAL_LSN.test(text)) return `${epoch ? `epoch=${epoch};` : ''}server=${server.systemId}/${server.timeline};${text}`;
  return serializeCheckpoint({ ...parseCheckpoint(text), epoch, server });
}

/** An LSN as formatLsn() prints it: uppercase hex halves without leading zeros. */
const CANONICAL_LSN = /^(?:0|[1-9A-F][0-9A-F]{0,7})\/(?:0|[1-9A-F][0-9A-F]{0,7})$/;
