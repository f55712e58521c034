import { TableShape } from '../binlog-decoder';
import { columnShape } from '../types';
import { BinlogReader } from './binlog-reader';
import { cp1252 } from './cp1252';

/**
 * TABLE_MAP_EVENT → a decoding plan for the rows events that follow, read
 * from the raw event bytes. It rebuilds exactly what @vlasky/zongji 0.9.0
 * derives from binlog_row_metadata=FULL (lib/binlog_event.js TableMap:
 * _readColumnMetadata, _readOptionalMetadata, buildColumnSchemas), so the
 * TableShape and every value come out the same as on the zongji path.
 *
 * A table is not planned (its events stay on the zongji path, see
 * native-rows-decoder.ts) when the map lacks FULL metadata (zongji then asks
 * INFORMATION_SCHEMA), has a column type this decoder does not read, or a
 * text column in a charset other than utf8mb3/utf8mb4/latin1 (zongji decodes
 * those with iconv; latin1 is decoded here as iconv's cp1252, as MySQL means it).
 */

/** Column type codes of the binlog (MySQL's enum_field_types). */
export const T = {
  DECIMAL: 0, TINY: 1, SHORT: 2, LONG: 3, FLOAT: 4, DOUBLE: 5, NULL: 6, TIMESTAMP: 7, LONGLONG: 8, INT24: 9,
  DATE: 10, TIME: 11, DATETIME: 12, YEAR: 13, NEWDATE: 14, VARCHAR: 15, BIT: 16, TIMESTAMP2: 17, DATETIME2: 18, TIME2: 19,
  BLOB_COMPRESSED: 140, VARCHAR_COMPRESSED: 141,
  JSON: 245, NEWDECIMAL: 246, ENUM: 247, SET: 248, TINY_BLOB: 249, MEDIUM_BLOB: 250, LONG_BLOB: 251, BLOB: 252, VAR_STRING: 253, STRING: 254, GEOMETRY: 255,
} as const;

/** How one column's value is read from a row image. */
export const enum Read {
  Int8, UInt8, Int16, UInt16, Int24, UInt24, Int32, UInt32, Int64, UInt64,
  Float, Double, Decimal, Date, DateTime2, Timestamp2, Time2, Year, Bit,
  /** VARCHAR / CHAR text (1- or 2-byte length), utf8; latin1 (cp1252). */
  Text,
  TextLatin1,
  /** VARBINARY: the bytes. */
  VarBinary,
  /** BINARY(n): the bytes, zero-padded to n. */
  Binary,
  /** BLOB/TEXT family: `lengthSize`-byte length; utf8 text unless the charset is binary. */
  Blob,
  BlobText,
  BlobTextLatin1,
  Enum,
  Set,
}

export interface ColumnPlan {
  name: string;
  read: Read;
  /** VARCHAR/CHAR: bytes of the length prefix; BLOB: of the length; ENUM/SET: of the value; BIT: bytes; BINARY: width. */
  size: number;
  /** DECIMAL precision and scale; fractional digits of temporal types. */
  precision: number;
  scale: number;
  /** ENUM/SET members. */
  members: string[];
}

export interface TablePlan {
  tableId: number;
  shape: TableShape;
  columns: ColumnPlan[];
}

export type TableMapResult =
  | { kind: 'planned'; plan: TablePlan }
  /** The table is filtered out (not captured): its rows events are dropped, as zongji does. */
  | { kind: 'skipped'; tableId: number }
  /** Left to zongji, with the reason (for the fallback log and counter). */
  | { kind: 'fallback'; tableId: number; schema: string; table: string; reason: string };

const NUMERIC = new Set<number>([T.DECIMAL, T.TINY, T.SHORT, T.INT24, T.LONG, T.LONGLONG, T.NEWDECIMAL, T.FLOAT, T.DOUBLE, T.YEAR]);
const CHARACTER = new Set<number>([T.VARCHAR, T.VAR_STRING, T.STRING, T.BLOB, T.TINY_BLOB, T.MEDIUM_BLOB, T.LONG_BLOB, T.BLOB_COMPRESSED, T.VARCHAR_COMPRESSED]);
const BINARY_COLLATION = 63;
const BLOB_NAMES: Record<number, [string, string]> = { 1: ['tinyblob', 'tinytext'], 2: ['blob', 'text'], 3: ['mediumblob', 'mediumtext'], 4: ['longblob', 'longtext'] };
const INT_NAMES: Record<number, string> = { [T.TINY]: 'tinyint', [T.SHORT]: 'smallint', [T.INT24]: 'mediumint', [T.LONG]: 'int', [T.LONGLONG]: 'bigint', [T.FLOAT]: 'float', [T.DOUBLE]: 'double' };
const INT_READS: Record<number, [Read, Read]> = {
  [T.TINY]: [Read.Int8, Read.UInt8], [T.SHORT]: [Read.Int16, Read.UInt16], [T.INT24]: [Read.Int24, Read.UInt24],
  [T.LONG]: [Read.Int32, Read.UInt32], [T.LONGLONG]: [Read.Int64, Read.UInt64],
};

/** Per-column metadata as zongji reads it (`type` set when STRING carries ENUM or SET). */
interface Meta { type?: number; size?: number; maxLength?: number; bits?: number; precision?: number; decimals?: number; lengthSize?: number }

/**
 * Parses a TABLE_MAP_EVENT. `r` is positioned at the event body (after the
 * 19-byte header) with `end` before the checksum; `skip(schema, table)` is
 * zongji's includeSchema filter.
 */
export function readTableMap(r: BinlogReader, end: number, skip: (schema: string, table: string) => boolean, charsetOf: (collation: number) => string, charsetMaxLength: (charset: string | null) => number): TableMapResult {
  const tableId = r.uint48();
  r.skip(2); // flags
  const schema = r.string(r.uint8());
  r.skip(1);
  const table = r.string(r.uint8());
  r.skip(1);
  if (skip(schema, table)) return { kind: 'skipped', tableId };
  const fallback = (reason: string): TableMapResult => ({ kind: 'fallback', tableId, schema, table, reason });
  const count = r.lenenc();
  const types: number[] = [];
  for (let i = 0; i < count; i++) types.push(r.uint8());
  r.lenenc(); // metadata block length (each type's metadata is read below, as zongji does)
  const metas: Meta[] = [];
  for (const type of types) {
    switch (type) {
      case T.FLOAT: case T.DOUBLE: metas.push({ size: r.uint8() }); break;
      case T.VARCHAR: metas.push({ maxLength: r.uint16() }); break;
      case T.BIT: { const bits = r.uint8(); metas.push({ bits: r.uint8() * 8 + bits }); break; }
      case T.NEWDECIMAL: metas.push({ precision: r.uint8(), decimals: r.uint8() }); break;
      case T.BLOB: metas.push({ lengthSize: r.uint8() }); break;
      case T.STRING: {
        const meta = (r.uint8() << 8) + r.uint8();
        const real = meta >> 8;
        metas.push(real === T.ENUM || real === T.SET ? { type: real, size: meta & 0xff } : { maxLength: (((meta >> 4) & 0x300) ^ 0x300) + (meta & 0xff) });
        break;
      }
      case T.TIMESTAMP2: case T.DATETIME2: case T.TIME2: metas.push({ decimals: r.uint8() }); break;
      case T.TINY: case T.SHORT: case T.INT24: case T.LONG: case T.LONGLONG: case T.DATE: case T.YEAR: metas.push({}); break;
      // Left to zongji: classic TIMESTAMP/TIME/DATETIME (ambiguous with MariaDB's 5.3 "hires" formats: zongji asks
      // INFORMATION_SCHEMA), MySQL's binary JSON, GEOMETRY, MariaDB COMPRESSED columns, VAR_STRING, DECIMAL, NULL, NEWDATE.
      default: return fallback(`column type ${type}`);
    }
  }
  const effective = types.map((t, i) => metas[i].type ?? t);
  const optional = readOptionalMetadata(r, end, count, effective);
  if (!optional || !optional.names || optional.names.length !== count) return fallback('no FULL binlog_row_metadata (column names)');
  const columns: ColumnPlan[] = [];
  const shapes = [];
  for (let i = 0; i < count; i++) {
    const type = effective[i];
    const meta = metas[i];
    const collation = optional.collations[i];
    const binary = collation === BINARY_COLLATION;
    const charset = collation === undefined || binary ? null : charsetOf(collation);
    if (charset !== null && charset !== 'utf8mb3' && charset !== 'utf8mb4' && charset !== 'latin1') return fallback(`charset ${charset} of column ${optional.names[i]}`);
    const latin1 = charset === 'latin1';
    const unsigned = optional.signedness?.[i];
    const plan: ColumnPlan = { name: optional.names[i], read: Read.Int8, size: 0, precision: 0, scale: 0, members: [] };
    let columnType: string;
    switch (type) {
      case T.TINY: case T.SHORT: case T.INT24: case T.LONG: case T.LONGLONG:
        columnType = INT_NAMES[type];
        plan.read = INT_READS[type][unsigned ? 1 : 0];
        break;
      case T.FLOAT: columnType = 'float'; plan.read = Read.Float; break;
      case T.DOUBLE: columnType = 'double'; plan.read = Read.Double; break;
      case T.NEWDECIMAL:
        columnType = `decimal(${meta.precision},${meta.decimals})`;
        plan.read = Read.Decimal;
        plan.precision = meta.precision!;
        plan.scale = meta.decimals!;
        break;
      case T.YEAR: columnType = 'year'; plan.read = Read.Year; break;
      case T.STRING: case T.VARCHAR: {
        const isChar = type === T.STRING;
        const maxLength = meta.maxLength!;
        plan.size = maxLength > 255 ? 2 : 1;
        if (binary) {
          columnType = `${isChar ? 'binary' : 'varbinary'}(${maxLength})`;
          plan.read = isChar ? Read.Binary : Read.VarBinary;
          if (isChar) plan.precision = maxLength; // the width BINARY(n) values are padded to
        } else {
          columnType = `${isChar ? 'char' : 'varchar'}(${Math.floor(maxLength / charsetMaxLength(charset))})`;
          plan.read = latin1 ? Read.TextLatin1 : Read.Text;
        }
        break;
      }
      case T.BLOB:
        columnType = (BLOB_NAMES[meta.lengthSize!] ?? BLOB_NAMES[2])[binary ? 0 : 1];
        plan.size = meta.lengthSize!;
        plan.read = charset === null ? Read.Blob : latin1 ? Read.BlobTextLatin1 : Read.BlobText;
        break;
      case T.ENUM: case T.SET: {
        const members = (optional.members?.[i] ?? []).map((b) => (latin1 ? cp1252(b, 0, b.length) : b.toString('utf8')));
        const keyword = type === T.ENUM ? 'enum' : 'set';
        columnType = `${keyword}(${members.map((m) => `'${m.replace(/'/g, "''")}'`).join(',')})`;
        plan.read = type === T.ENUM ? Read.Enum : Read.Set;
        plan.size = meta.size!;
        plan.members = members;
        break;
      }
      case T.BIT: columnType = `bit(${meta.bits})`; plan.read = Read.Bit; plan.size = (meta.bits! + 7) >> 3; break;
      case T.TIMESTAMP2: columnType = withPrecision('timestamp', meta.decimals!); plan.read = Read.Timestamp2; plan.precision = meta.decimals!; break;
      case T.DATETIME2: columnType = withPrecision('datetime', meta.decimals!); plan.read = Read.DateTime2; plan.precision = meta.decimals!; break;
      case T.TIME2: columnType = withPrecision('time', meta.decimals!); plan.read = Read.Time2; plan.precision = meta.decimals!; break;
      case T.DATE: columnType = 'date'; plan.read = Read.Date; break;
      default: return fallback(`column type ${type}`);
    }
    if (unsigned && NUMERIC.has(type) && type !== T.YEAR) columnType += ' unsigned';
    columns.push(plan);
    shapes.push(columnShape(plan.name, columnType));
  }
  const primaryKey: string[] = [];
  for (const index of optional.primaryKey ?? []) {
    if (index >= count) return fallback(`primary-key column ${index} of ${count}`);
    primaryKey.push(columns[index].name);
  }
  return { kind: 'planned', plan: { tableId, shape: { schema, table, columns: shapes, primaryKey }, columns } };
}

const withPrecision = (name: string, decimals: number) => (decimals ? `${name}(${decimals})` : name);

interface OptionalMetadata {
  names?: string[];
  signedness?: boolean[];
  collations: Array<number | undefined>;
  members?: Buffer[][];
  primaryKey?: number[];
}

const enum Field {
  Signedness = 1, DefaultCharset, ColumnCharset, ColumnName, SetStrValue, EnumStrValue, GeometryType,
  SimplePrimaryKey, PrimaryKeyWithPrefix, EnumAndSetDefaultCharset, EnumAndSetColumnCharset, ColumnVisibility,
}

/**
 * The optional metadata TLV block (MariaDB ≥ 10.5, MySQL ≥ 8.0), as zongji
 * reads it; null when it is malformed (zongji then drops all of it, and so
 * falls back to INFORMATION_SCHEMA).
 */
function readOptionalMetadata(r: BinlogReader, end: number, count: number, types: number[]): OptionalMetadata | null {
  r.skip((count + 7) >> 3); // nullability bits
  const result: OptionalMetadata = { collations: new Array(count) };
  if (r.offset >= end) return result;
  const numeric: number[] = [];
  const character: number[] = [];
  const enumSet: number[] = [];
  const enums: number[] = [];
  const sets: number[] = [];
  for (let i = 0; i < count; i++) {
    const type = types[i];
    if (NUMERIC.has(type)) numeric.push(i);
    else if (type === T.ENUM) { enumSet.push(i); enums.push(i); }
    else if (type === T.SET) { enumSet.push(i); sets.push(i); }
    else if (CHARACTER.has(type)) character.push(i);
  }
  const readBitmap = (indexes: number[], target: boolean[]) => {
    const start = r.offset;
    r.skip((indexes.length + 7) >> 3);
    indexes.forEach((column, i) => (target[column] = (r.buffer[start + (i >> 3)] & (0x80 >> (i % 8))) !== 0));
  };
  const readDefaultCharset = (fieldEnd: number, indexes: number[]) => {
    const collation = r.lenenc();
    for (const column of indexes) result.collations[column] = collation;
    while (r.offset < fieldEnd) {
      const position = r.lenenc();
      const other = r.lenenc();
      if (position < indexes.length) result.collations[indexes[position]] = other;
    }
  };
  const readColumnCharsets = (fieldEnd: number, indexes: number[]) => {
    for (let i = 0; r.offset < fieldEnd; i++) {
      const collation = r.lenenc();
      if (i < indexes.length) result.collations[indexes[i]] = collation;
    }
  };
  const readMembers = (fieldEnd: number, indexes: number[]) => {
    result.members ??= new Array(count);
    for (let i = 0; r.offset < fieldEnd; i++) {
      const n = r.lenenc();
      const values: Buffer[] = [];
      for (let j = 0; j < n; j++) values.push(r.bytes(r.lenenc()));
      if (i < indexes.length) result.members[indexes[i]] = values;
    }
  };
  try {
    while (r.offset < end) {
      const type = r.uint8();
      const length = r.lenencOrNull();
      if (length === null || r.offset + length > end) return null;
      const fieldEnd = r.offset + length;
      let handled = true;
      switch (type) {
        case Field.Signedness: readBitmap(numeric, (result.signedness = new Array(count))); break;
        case Field.DefaultCharset: readDefaultCharset(fieldEnd, character); break;
        case Field.ColumnCharset: readColumnCharsets(fieldEnd, character); break;
        case Field.ColumnName: {
          const names: string[] = [];
          while (r.offset < fieldEnd) names.push(r.string(r.lenenc()));
          result.names = names;
          break;
        }
        case Field.SetStrValue: readMembers(fieldEnd, sets); break;
        case Field.EnumStrValue: readMembers(fieldEnd, enums); break;
        case Field.EnumAndSetDefaultCharset: readDefaultCharset(fieldEnd, enumSet); break;
        case Field.EnumAndSetColumnCharset: readColumnCharsets(fieldEnd, enumSet); break;
        case Field.SimplePrimaryKey: {
          const key: number[] = [];
          while (r.offset < fieldEnd) key.push(r.lenenc());
          result.primaryKey = key;
          break;
        }
        case Field.PrimaryKeyWithPrefix: {
          const key: number[] = [];
          while (r.offset < fieldEnd) {
            key.push(r.lenenc());
            r.lenenc(); // prefix length
          }
          result.primaryKey = key;
          break;
        }
        case Field.GeometryType: // no GEOMETRY column is planned; read for the length check only
          while (r.offset < fieldEnd) r.lenenc();
          break;
        case Field.ColumnVisibility: r.skip((count + 7) >> 3); break;
        default: handled = false; // a field of a later server version: skipped
      }
      if (handled ? r.offset !== fieldEnd : r.offset > fieldEnd) return null;
      r.offset = fieldEnd;
    }
  } catch {
    return null; // read past the event: malformed
  }
  return result;
}
