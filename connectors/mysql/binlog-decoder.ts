import { BinlogPosition } from './binlog-position';
import { ColumnShape, RawValue } from './types';

/**
 * The binlog decoder contract: a replaceable reader that turns the server's
 * binlog stream into the few events the transaction assembler needs. The
 * zongji-based implementation is zongji-decoder.ts; a faster decoder of our
 * own can replace it without touching the rest of the source.
 */

/** A table as the binlog's own metadata describes it at the time of the event (binlog_row_metadata=FULL). */
export interface TableShape {
  schema: string;
  table: string;
  columns: ColumnShape[];
  /** Primary-key column names, in key order; empty when the table has none. */
  primaryKey: string[];
}

export type RawRow = Record<string, RawValue>;

export type DecodedEvent =
  /** Start of a transaction's event group (MariaDB GTID event, MySQL GTID / anonymous GTID / BEGIN). */
  | { kind: 'begin'; position: BinlogPosition; gtid: string | null; timestampMs: number; /** An XA transaction: it ends with XA PREPARE, its outcome comes later. */ xa?: boolean; /** The thread (connection) id that ran it, when the binlog says (MySQL's BEGIN, MariaDB 11.5+ GTID events). */ thread?: number }
  /** Row images of one rows event: `before` for update/delete, `after` for insert/update. */
  | { kind: 'rows'; op: 'insert' | 'update' | 'delete'; table: TableShape; rows: Array<{ before: RawRow | null; after: RawRow | null }>; timestampMs: number; /** Where this rows event starts in its binlog file, when known. */ eventPosition?: number; /** The server that wrote the event (its header's server_id), when the decoder reads headers (the native one does, zongji does not). */ serverId?: number; /** The event's size in the binlog, when the decoder knows it (the native one does): memory bounds count it. */ bytes?: number }
  /** End of a transaction (Xid, COMMIT, ROLLBACK of non-transactional changes, XA PREPARE). `end` is where the next group starts. */
  | { kind: 'commit'; end: BinlogPosition; gtid: string | null; timestampMs: number; /** The end of an XA PREPARE: the outcome (XA COMMIT / ROLLBACK) comes later. */ xaPrepare?: boolean }
  /**
   * A statement logged as text (DDL, or e.g. CREATE TABLE ... SELECT inside a transaction): `schema` is
   * the default database it ran in; `end` is where the next group starts, null inside a transaction.
   */
  | { kind: 'statement'; sql: string; schema: string; end: BinlogPosition | null; gtid: string | null; timestampMs: number }
  /** The server's heartbeat on an idle binlog: everything written so far was delivered. */
  | { kind: 'heartbeat' };

export interface DecoderStartOptions {
  connection: MysqlConnectionOptions;
  /** Replica server id announced to the server (must be unique among its replicas). */
  serverId: number;
  /** Where to start: a transaction boundary. */
  from: BinlogPosition;
  /** `db.table` names whose row events are wanted; other tables' row events may be skipped. */
  tables: string[];
  /** Heartbeat period asked of the server; 0 for none. */
  heartbeatIntervalMs: number;
  /** Called synchronously, in binlog order. */
  onEvent(event: DecodedEvent): void;
  /** The stream failed; no more events follow. */
  onError(error: Error): void;
}

export interface BinlogDecoder {
  /** Resolves once the server accepted the dump request. */
  start(options: DecoderStartOptions): Promise<void>;
  /** Stops reading from the socket (backpressure); events already parsed may still arrive. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export interface MysqlConnectionOptions {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** TLS as mysql2 takes it (PEM text); absent: plain text. */
  ssl?: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean; verifyIdentity: boolean };
  /** The CA file behind ssl.ca, for error messages (not a mysql2 option). */
  sslCaFile?: string;
}
