import * as shared from '../shared/source-checkpoint';
import { Lsn, lsnCodec } from './lsn';

/** Key values are saved as the text Postgres printed for them. */
export type TableSnapshotProgress = shared.TableSnapshotProgress<string>;
export type SnapshotProgress = shared.SnapshotProgress<Lsn, string>;
export type ResyncTask = shared.ResyncTask<string>;
/** Where the Postgres source resumes: an LSN, plus snapshot and resync progress when any (shared/source-checkpoint.ts). */
export type PostgresCheckpoint = shared.SourceCheckpoint<Lsn, string>;

const codec = shared.checkpointCodec<Lsn, string>('Postgres', lsnCodec);
export const serializeCheckpoint = codec.serialize;
export const parseCheckpoint = codec.parse;
