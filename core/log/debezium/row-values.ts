import { createHash } from 'node:crypto';
import { ChangeEvent, Row } from '../../event/change-event';
import { SourceDetails } from '../../event/source-details';
import { DecimalHandling } from './decimal';
import { isMysqlJson, mysqlConverter } from './mysql-values';
import { isPostgresJson, postgresConverter, ValueConverter } from './postgres-values';

export interface DebeziumRows {
  key: Row;
  before: Row | null;
  after: Row | null;
}

/**
 * Row values as Debezium's connectors write them, column by column from the
 * types the source attached (SourceDetails.columnTypes). Events without
 * column types (written before this existed, or by a source that does not
 * send them) keep their values as the event holds them.
 */
export class DebeziumValues {
  /** Converters per table shape: the sources share one columnTypes object per shape. */
  private readonly cache = new WeakMap<object, Map<string, { convert: ValueConverter; json: boolean }>>();

  constructor(private readonly decimals: DecimalHandling) {}

  rows(event: ChangeEvent, details: SourceDetails | undefined, placeholder: { unchanged?: string[]; value: string }): DebeziumRows {
    const types = details?.columnTypes;
    const after = event.op === 'd' ? null : event.after;
    if (!types) return { key: event.key, before: event.before, after: withPlaceholders(after, placeholder, undefined) };
    const columns = this.convertersOf(types, event.source.connector);
    const convert = (row: Row | null, json: Record<string, string> | undefined): Row | null => {
      if (!row) return row;
      const out: Row = {};
      for (const [name, value] of Object.entries(row)) {
        const column = columns.get(name);
        if (value === null || value === undefined || !column) out[name] = value;
        else if (column.json) out[name] = json?.[name] ?? (typeof value === 'string' ? value : JSON.stringify(value));
        else out[name] = column.convert(value);
      }
      return out;
    };
    return {
      key: convert(event.key, details?.jsonText?.after ?? details?.jsonText?.before)!,
      before: convert(event.before, details?.jsonText?.before),
      after: withPlaceholders(convert(after, details?.jsonText?.after), placeholder, types),
    };
  }

  private convertersOf(types: Readonly<Record<string, string>>, connector: ChangeEvent['source']['connector']): Map<string, { convert: ValueConverter; json: boolean }> {
    let columns = this.cache.get(types);
    if (!columns) {
      columns = new Map();
      for (const [name, type] of Object.entries(types)) {
        columns.set(
          name,
          connector === 'postgresql'
            ? { convert: postgresConverter(type, this.decimals), json: isPostgresJson(type) }
            : { convert: mysqlConverter(type, this.decimals), json: isMysqlJson(type) },
        );
      }
      this.cache.set(types, columns);
    }
    return columns;
  }
}

/** Columns the source did not send (Postgres unchanged TOAST) get Debezium's unavailable.value.placeholder. */
function withPlaceholders(row: Row | null, placeholder: { unchanged?: string[]; value: string }, types: Readonly<Record<string, string>> | undefined): Row | null {
  if (!row || !placeholder.unchanged?.length) return row;
  return { ...row, ...Object.fromEntries(placeholder.unchanged.map((column) => [column, placeholderOf(types?.[column], placeholder.value)])) };
}

/**
 * The placeholder in the column's own type, as Debezium's PostgreSQL connector
 * writes it (UnchangedToastedPlaceholder): bytes for bytea, a one-element list
 * for text-like arrays, the placeholder's bytes as numbers for int4/int8/date
 * arrays, its name-based UUID for uuid arrays; the string otherwise.
 */
function placeholderOf(type: string | undefined, value: string): unknown {
  const bytes = Buffer.from(value, 'utf8');
  switch (type?.replace(/\(.*\)/, '')) {
    case 'bytea':
      return bytes.toString('base64');
    case 'text[]':
    case 'varchar[]':
    case 'bpchar[]':
      return [value];
    case 'bytea[]':
      return [bytes.toString('base64')];
    case 'int4[]':
    case 'date[]':
    case 'int8[]':
      return [...bytes].map((b) => (b > 127 ? b - 256 : b));
    case 'uuid[]':
      return [nameUuid(bytes)];
    default:
      return value;
  }
}

/** Java's UUID.nameUUIDFromBytes: an MD5 (version 3) UUID. */
function nameUuid(bytes: Buffer): string {
  const md5 = createHash('md5').update(bytes).digest();
  md5[6] = (md5[6] & 0x0f) | 0x30;
  md5[8] = (md5[8] & 0x3f) | 0x80;
  const hex = md5.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
