import { ChangeEvent, Row } from '../../core/event/change-event';
import { snapshotVersion } from '../../core/event/version';
import { addSourceDetails } from '../../core/event/source-details';
import { pgColumnTypesOf } from './column-types';
import { formatLsn, Lsn } from './lsn';
import { CapturedTable } from './slot';
import { CTID, Field } from './snapshot-chunks';
import { TypeCatalog } from './type-catalog';

export interface SnapshotRowContext {
  sourceName: string;
  db: string;
  catalog: TypeCatalog;
  position: Lsn;
  /** Add SOURCE_DETAILS (column types, JSON text; only Debezium topics read them); default true. */
  details?: boolean;
}

/**
 * Builds a table's snapshot 'r' events from rows of text values (in `fields`
 * order, null for NULL). Everything that is the same for every row of the
 * table — decoders, column types, the snapshot's position and version — is
 * worked out once here, not per row. The types must be loaded in the catalog.
 */
export function snapshotRowEvents(fields: Field[], table: CapturedTable, key: string[] | undefined, context: SnapshotRowContext): (values: (string | null)[], now: number) => ChangeEvent {
  const columnTypes = pgColumnTypesOf(fields);
  const columns = fields.flatMap((f, index) => (f.name === CTID ? [] : [{ name: f.name, index, decode: context.catalog.decoderOf(f.dataTypeID) }]));
  // REPLICA IDENTITY FULL without a primary key: the whole row is the key.
  const keyColumns = key ?? columns.map((c) => c.name);
  // json/jsonb text as Postgres sent it, beside the parsed value (what pgJsonText() gives).
  const jsonColumns = columns.filter((c) => columnTypes[c.name] === 'json' || columnTypes[c.name] === 'jsonb');
  const position = formatLsn(context.position);
  const version = snapshotVersion(context.position);
  const { schema, table: tableName } = table;
  const { sourceName, db } = context;
  const decoders = columns.map((c) => c.decode);
  const names = columns.map((c) => c.name);
  const indexes = columns.map((c) => c.index);
  // The same for every row without json text: built once (addSourceDetails copies it into each event).
  const details = { columnTypes, ...(key ? {} : { noPrimaryKey: true as const }) };
  const withDetails = context.details !== false;
  return (values, now) => {
    const row: Row = {};
    for (let i = 0; i < names.length; i++) {
      const text = values[indexes[i]];
      row[names[i]] = text === null ? null : decoders[i](text);
    }
    const eventKey: Row = {};
    for (const name of keyColumns) eventKey[name] = row[name];
    const event: ChangeEvent = {
      op: 'r',
      key: eventKey,
      before: null,
      after: row,
      source: { connector: 'postgresql', name: sourceName, db, schema, table: tableName, position, version, snapshot: true, ts_ms: now },
      ts_ms: now,
    };
    if (!withDetails) return event;
    let json: Record<string, string> | undefined;
    for (const column of jsonColumns) {
      const text = values[column.index];
      if (text !== null) (json ??= {})[column.name] = text;
    }
    return addSourceDetails(event, json ? { ...details, jsonText: { after: json } } : details);
  };
}
