import { ChangeEvent, Row } from '../event/change-event';
import { SourceDetails, sourceDetails } from '../event/source-details';
import { parseVersion } from '../event/version';
import { DecimalHandling } from './debezium/decimal';
import { jsonText } from './debezium/json-text';
import { DebeziumValues } from './debezium/row-values';

/**
 * Our change event as Debezium writes it: the message value of Debezium's
 * JsonConverter with schemas.enable=false, field for field (names, JSON types,
 * nulls included), for the PostgreSQL, MySQL and MariaDB connectors.
 *
 * The internal event stays as the sinks need it; only this output renames:
 * - source.version is the producer's release (Debezium: its own release, e.g.
 *   "2.7.0.Final"; here "tidewater-<version>"). Our sort key rides along in the
 *   message header `cdc.version`, never in the value.
 * - source.snapshot is "true" | "last" | "false" | "incremental" (Debezium's
 *   SnapshotRecord strings); resync rows are Debezium's incremental snapshot.
 *
 * Row values are converted per column type (core/log/debezium/*-values.ts) from
 * the types the source attaches (core/event/source-details.ts), as Debezium's
 * connectors write them with default settings; decimal.handling.mode is an option.
 * What our events do not carry is written as Debezium writes an unknown (null),
 * or derived as noted below; docs/debezium.md lists every difference.
 */
export interface DebeziumRecord {
  /** The primary-key object as JSON (null for a truncate, which has no key). */
  key: string | null;
  /** The envelope as JSON; null for the tombstone that follows a delete. */
  value: string | null;
  /** Kafka headers Debezium adds (a primary-key change's __debezium.newkey / __debezium.oldkey). */
  headers?: Record<string, string>;
}

export type DebeziumConnector = 'postgresql' | 'mysql' | 'mariadb';

export interface DebeziumTransaction {
  id: string;
  total_order: number;
  data_collection_order: number;
}

export interface DebeziumEnvelope {
  before: Row | null;
  after: Row | null;
  source: Record<string, unknown>;
  transaction: DebeziumTransaction | null;
  op: ChangeEvent['op'];
  ts_ms: number;
  ts_us: number;
  ts_ns: number;
}

export interface DebeziumFormatOptions {
  /** source.version: the release of the producer, e.g. "tidewater-0.1.0". */
  release: string;
  /** The connector name when already known for this source (see debeziumConnector). */
  connector?: DebeziumConnector;
  /** Row value conversion (decimal.handling.mode); default precise, as Debezium. */
  values?: DebeziumValues;
}

const defaultValues = new Map<DecimalHandling, DebeziumValues>();
/** The value converter of a decimal mode, shared (it caches converters per table shape). */
export function debeziumValues(decimals: DecimalHandling = 'precise'): DebeziumValues {
  let values = defaultValues.get(decimals);
  if (!values) defaultValues.set(decimals, (values = new DebeziumValues(decimals)));
  return values;
}

/** The envelope of one event; `order` numbers it within its transaction (see TransactionOrder). */
export function debeziumEnvelope(event: ChangeEvent, options: DebeziumFormatOptions, order?: { total: number; perTable: number }): DebeziumEnvelope {
  return envelopeAndKey(event, options, order).envelope;
}

function envelopeAndKey(event: ChangeEvent, options: DebeziumFormatOptions, order?: { total: number; perTable: number }): { envelope: DebeziumEnvelope; key: Row } {
  const connector = options.connector ?? debeziumConnector(event);
  const details = sourceDetails(event);
  const source = connector === 'postgresql' ? postgresSource(event, details, options) : binlogSource(event, details, connector, options);
  const rows = (options.values ?? debeziumValues()).rows(event, details, { unchanged: event.unchanged, value: UNAVAILABLE_VALUE });
  const envelope: DebeziumEnvelope = {
    before: rows.before,
    after: rows.after,
    source,
    transaction: transactionOf(event, connector, order),
    op: event.op,
    ...timestamps(event.ts_ms),
  };
  return { envelope, key: rows.key };
}

/**
 * Debezium's topic for an event: `<topic.prefix>.<schema>.<table>` (MySQL:
 * `<topic.prefix>.<database>.<table>`). `topicPrefix` includes its trailing
 * dot; by default the source's name plays Debezium's topic.prefix.
 */
export function debeziumTopic(event: ChangeEvent, topicPrefix?: string): string {
  return `${topicPrefix ?? `${event.source.name}.`}${event.source.schema}.${event.source.table}`;
}

/**
 * Key and value of an event, plus the tombstone Debezium writes after each
 * delete. The two halves of a primary-key change carry Debezium's headers:
 * the delete (and its tombstone) `__debezium.newkey`, the create `__debezium.oldkey`,
 * each the other key as JSON (how Kafka Connect's SimpleHeaderConverter writes a key struct).
 */
export function debeziumRecords(event: ChangeEvent, options: DebeziumFormatOptions & { tombstones: boolean }, order?: { total: number; perTable: number }): DebeziumRecord[] {
  // The truncate a snapshot writes below its rows (so our sinks drop rows deleted meanwhile) has no Debezium counterpart.
  if (event.op === 't' && event.source.snapshot) return [];
  const { envelope, key: keyRow } = envelopeAndKey(event, options, order);
  // Debezium keys by the primary key only: a table without one (REPLICA IDENTITY FULL) gets a null key.
  const key = event.op === 't' || sourceDetails(event)?.noPrimaryKey ? null : jsonText(keyRow);
  const headers = keyChangeHeaders(event, options);
  const value = jsonText(envelope);
  const records: DebeziumRecord[] = [{ key, value, ...(headers && { headers }) }];
  if (event.op === 'd' && options.tombstones) records.push({ key, value: null, ...(headers && { headers }) });
  return records;
}

export const NEW_KEY_HEADER = '__debezium.newkey';
export const OLD_KEY_HEADER = '__debezium.oldkey';

function keyChangeHeaders(event: ChangeEvent, options: DebeziumFormatOptions): Record<string, string> | undefined {
  const details = sourceDetails(event);
  if (!details?.newKey && !details?.oldKey) return undefined;
  const values = options.values ?? debeziumValues();
  // The other key, converted as a key of this table (same column types).
  const other = (row: Row) => jsonText(values.rows({ ...event, op: 'c', key: row, before: null, after: null }, details, { value: UNAVAILABLE_VALUE }).key);
  if (event.op === 'd' && details.newKey) return { [NEW_KEY_HEADER]: other(details.newKey) };
  if (event.op === 'c' && details.oldKey) return { [OLD_KEY_HEADER]: other(details.oldKey) };
  return undefined;
}

/**
 * Debezium reports MariaDB sources as connector "mariadb" (its own connector
 * since 2.5). Our events say "mysql" for both; MariaDB is recognised by its
 * GTID form domain-server-sequence (in txId, or after "@" in the position).
 * Snapshot rows carry neither in the event: the source marks them (SourceDetails.mariadb)
 * when the snapshot's GTID state is MariaDB's, and DebeziumPublisher remembers a
 * source once seen as MariaDB (resync rows). A MariaDB server whose binlog has
 * no GTID yet (nothing ever written) snapshots as "mysql".
 */
export function debeziumConnector(event: ChangeEvent): DebeziumConnector {
  if (event.source.connector === 'postgresql') return 'postgresql';
  return sourceDetails(event)?.mariadb || mariadbGtidServer(event) !== null ? 'mariadb' : 'mysql';
}

function postgresSource(event: ChangeEvent, details: SourceDetails | undefined, options: DebeziumFormatOptions): Record<string, unknown> {
  const lsn = parseLsn(event.source.position);
  const lastCommit = details?.lastCommitLsn === undefined ? null : parseLsn(details.lastCommitLsn);
  return {
    version: options.release,
    connector: 'postgresql',
    name: event.source.name,
    ...timestamps(event.source.ts_ms),
    snapshot: snapshotOf(event, details),
    db: event.source.db,
    // Debezium: a JSON string array [last commit's end LSN, this change's LSN], each a decimal string (null when unknown).
    sequence: lsn === null ? null : JSON.stringify([lastCommit === null ? null : String(lastCommit), String(lsn)]),
    schema: event.source.schema,
    table: event.source.table,
    txId: event.source.txId !== undefined && /^\d+$/.test(event.source.txId) ? Number(event.source.txId) : null,
    lsn,
    xmin: null,
  };
}

function binlogSource(event: ChangeEvent, details: SourceDetails | undefined, connector: 'mysql' | 'mariadb', options: DebeziumFormatOptions): Record<string, unknown> {
  const place = parseBinlogPlace(event.source.position);
  const index = versionIndex(event);
  return {
    version: options.release,
    connector,
    name: event.source.name,
    ...timestamps(event.source.ts_ms),
    snapshot: snapshotOf(event, details),
    db: event.source.db,
    sequence: null,
    table: event.source.table,
    // The originating server: from the binlog event header when the source attached it, else the middle part of a MariaDB GTID; 0 for snapshot rows, as Debezium.
    server_id: details?.serverId ?? mariadbGtidServer(event) ?? 0,
    gtid: event.source.txId ?? null,
    file: place?.file ?? '',
    // Debezium: the rows event's own position and the row within it, when the source attached them; else the transaction's first event and the change's index in the transaction.
    pos: details?.binlogEvent?.pos ?? place?.pos ?? 0,
    row: details?.binlogEvent?.row ?? (index === null || index === 0 ? 0 : index - 1),
    thread: details?.thread ?? null,
    query: null,
  };
}

function transactionOf(event: ChangeEvent, connector: DebeziumConnector, order: { total: number; perTable: number } | undefined): DebeziumTransaction | null {
  if (event.source.snapshot || !order) return null;
  let id: string | null = null;
  if (connector === 'postgresql') {
    const commit = commitPosition(event);
    if (event.source.txId !== undefined) id = commit === null ? event.source.txId : `${event.source.txId}:${commit}`;
  } else {
    const place = parseBinlogPlace(event.source.position);
    id = event.source.txId ?? (place ? `file=${place.file},pos=${place.pos}` : null);
  }
  return id === null ? null : { id, total_order: order.total, data_collection_order: order.perTable };
}

/**
 * Numbers the events of each transaction as Debezium's transaction block does:
 * total_order over the whole transaction, data_collection_order per table.
 * Events reach it in log order; a transaction's events are consecutive.
 */
export class TransactionOrder {
  private current: string | null = null;
  private total = 0;
  private readonly perTable = new Map<string, number>();

  next(event: ChangeEvent): { total: number; perTable: number } | undefined {
    if (event.source.snapshot) return undefined;
    const tx = `${event.source.name}\u0000${event.source.txId ?? ''}\u0000${commitPosition(event) ?? event.source.position}`;
    const index = versionIndex(event);
    // A new transaction, or the same one replayed from its start after a restart.
    if (tx !== this.current || index === 1) {
      this.current = tx;
      this.total = 0;
      this.perTable.clear();
    }
    const table = `${event.source.schema}.${event.source.table}`;
    const perTable = (this.perTable.get(table) ?? 0) + 1;
    this.perTable.set(table, perTable);
    this.total = index ?? this.total + 1;
    return { total: this.total, perTable };
  }
}

/** Debezium's unavailable.value.placeholder default, for columns the source did not send (Postgres unchanged TOAST). */
export const UNAVAILABLE_VALUE = '__debezium_unavailable_value';

function snapshotOf(event: ChangeEvent, details: SourceDetails | undefined): string {
  if (event.source.snapshot && details?.resync) return 'incremental';
  if (event.source.snapshot && details?.snapshotMark) return details.snapshotMark;
  return event.source.snapshot === 'last' ? 'last' : event.source.snapshot ? 'true' : 'false';
}

function timestamps(ms: number): { ts_ms: number; ts_us: number; ts_ns: number } {
  // Our times have millisecond precision; Debezium's finer fields then end in zeros, as its own source.ts_us/ts_ns do.
  return { ts_ms: ms, ts_us: ms * 1000, ts_ns: ms * 1_000_000 };
}

/** The event's version parsed once (an event is numbered, then formatted): null when it is not ours (e.g. empty). */
let lastParsed: { version: string; parts: { commit: number; index: number } | null } = { version: '', parts: null };
function versionParts(event: ChangeEvent): { commit: number; index: number } | null {
  const { version } = event.source;
  if (lastParsed.version !== version) {
    let parts: { commit: number; index: number } | null;
    try {
      const parsed = parseVersion(version);
      parts = { commit: Number(parsed.commitPosition), index: parsed.index };
    } catch {
      parts = null;
    }
    lastParsed = { version, parts };
  }
  return lastParsed.parts;
}

function versionIndex(event: ChangeEvent): number | null {
  return versionParts(event)?.index ?? null;
}

/** The commit position part of the version (Postgres: the commit LSN), as a number. */
function commitPosition(event: ChangeEvent): number | null {
  return versionParts(event)?.commit ?? null;
}

/** `16/B374D848` → 94469556296. */
export function parseLsn(text: string): number | null {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) return null;
  return Number((BigInt('0x' + match[1]) << 32n) | BigInt('0x' + match[2]));
}

/** `binlog.000042:1234[@gtid]` → file and offset. */
function parseBinlogPlace(text: string): { file: string; pos: number } | null {
  const match = /^(.+):(\d+)(?:@.*)?$/.exec(text);
  return match ? { file: match[1], pos: Number(match[2]) } : null;
}

const MARIADB_GTID = /^(\d+)-(\d+)-(\d+)$/;

function mariadbGtidServer(event: ChangeEvent): number | null {
  const fromTx = event.source.txId !== undefined ? MARIADB_GTID.exec(event.source.txId) : null;
  if (fromTx) return Number(fromTx[2]);
  const at = event.source.position.indexOf('@');
  if (at < 0) return null;
  // A GTID state lists one GTID per domain: any of them says MariaDB; the snapshot's server id is unknown.
  const first = MARIADB_GTID.exec(event.source.position.slice(at + 1).split(',')[0]);
  return first ? 0 : null;
}
