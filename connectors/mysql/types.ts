import { isInteger, isSafeNumber, parse as parseLossless } from 'lossless-json';
import { withMicroseconds } from '../shared/time-text';

/**
 * Lossless JSON forms of MySQL/MariaDB values (docs/architecture.md §2), the same whether
 * a row comes from the snapshot (mysql2 query) or from the binlog decoder:
 *
 *   TINYINT … INT (signed or not), MEDIUMINT   number
 *   BIGINT (signed or not), DECIMAL             string with the exact digits
 *   FLOAT                                       number: the shortest decimal that reads back as the same float32
 *   DOUBLE                                      number
 *   BIT(1)                                      boolean
 *   BIT(2..32) / BIT(33..64)                    number / string of decimal digits (like INT vs BIGINT)
 *   CHAR, VARCHAR, TEXT, ENUM                   string
 *   SET                                         array of the member strings, in definition order
 *   BINARY, VARBINARY, BLOB                     base64 string
 *   DATE                                        `2024-02-29`
 *   TIME                                        `-838:59:59.000000` (always 6 fractional digits)
 *   DATETIME                                    `2024-02-29T12:34:56.123456` (no zone: DATETIME has none)
 *   TIMESTAMP                                   `2024-02-29T12:34:56.123456Z` (UTC)
 *   YEAR                                        number (0 for YEAR 0000)
 *   JSON                                        parsed; integers beyond 2^53 as exact strings
 *
 * Zero dates ('0000-00-00') keep their zeros in the same layout. Types not
 * listed (GEOMETRY, MariaDB UUID/INET) pass through as the decoder gives them
 * (binary as base64) and are not guaranteed to match between snapshot and binlog.
 */
export type ColumnKind =
  | 'integer' | 'bigint' | 'decimal' | 'float' | 'double' | 'bit'
  | 'text' | 'binary' | 'enum' | 'set' | 'json'
  | 'date' | 'time' | 'datetime' | 'timestamp' | 'year' | 'other';

export interface ColumnShape {
  name: string;
  kind: ColumnKind;
  /** BIT(n): n. */
  bits?: number;
  /** The COLUMN_TYPE it was made from (`datetime(3)`, `decimal(10,2)`), for the Debezium topics' value types. */
  type?: string;
}

/**
 * What a decoder or query hands over for each kind (the decoder contract):
 * integers as number | bigint | string, BIGINT and DECIMAL as number or exact
 * string, FLOAT/DOUBLE as number (FLOAT as its exact float32 value), BIT and
 * binary strings as Buffer, temporal types as MySQL's text form
 * (`2024-02-29 12:34:56.123`, TIMESTAMP rendered in UTC), YEAR as number,
 * ENUM and SET as MySQL's text (`a,c`), JSON as its text.
 */
export type RawValue = unknown;

const KIND_BY_TYPE: Record<string, ColumnKind> = {
  tinyint: 'integer', smallint: 'integer', mediumint: 'integer', int: 'integer', integer: 'integer',
  bigint: 'bigint', decimal: 'decimal', numeric: 'decimal', float: 'float', double: 'double', real: 'double', bit: 'bit',
  char: 'text', varchar: 'text', tinytext: 'text', text: 'text', mediumtext: 'text', longtext: 'text',
  binary: 'binary', varbinary: 'binary', tinyblob: 'binary', blob: 'binary', mediumblob: 'binary', longblob: 'binary',
  enum: 'enum', set: 'set', json: 'json', date: 'date', time: 'time', datetime: 'datetime', timestamp: 'timestamp', year: 'year',
};

/**
 * The shape of a column from its type as information_schema.COLUMNS.COLUMN_TYPE
 * writes it (`bigint(20) unsigned`, `bit(10)`, `enum('a','b')`), which is also
 * the form the binlog decoder rebuilds from the binlog's own metadata.
 * `isJson` marks MariaDB JSON columns, which are LONGTEXT with a json_valid check.
 */
export function columnShape(name: string, columnType: string, isJson = false): ColumnShape {
  const base = /^[a-z]+/.exec(columnType.trim().toLowerCase())?.[0] ?? '';
  const kind = isJson ? 'json' : (KIND_BY_TYPE[base] ?? 'other');
  const shape: ColumnShape = { name, kind, type: columnType };
  if (kind === 'bit') shape.bits = Number(/\((\d+)\)/.exec(columnType)?.[1] ?? 1);
  return shape;
}

/** The JSON form of one column value (see the table above). */
export function normalizeValue(column: ColumnShape, raw: RawValue): unknown {
  if (raw === null || raw === undefined) return null;
  switch (column.kind) {
    case 'integer':
    case 'year':
      return Number(raw);
    case 'bigint':
    case 'decimal':
      return String(raw);
    case 'float':
      return shortestFloat32(Number(raw));
    case 'double':
      return Number(raw);
    case 'bit':
      return bitValue(asBuffer(raw), column.bits ?? 64);
    case 'binary':
      return asBuffer(raw).toString('base64');
    case 'text':
    case 'enum':
      return Buffer.isBuffer(raw) ? raw.toString('utf8') : String(raw);
    case 'set':
      return String(raw) === '' ? [] : String(raw).split(',');
    case 'json':
      return typeof raw === 'string' || Buffer.isBuffer(raw) ? parseJsonLosslessly(String(raw)) : raw;
    case 'date':
      return String(raw);
    case 'time':
      return withMicroseconds(String(raw));
    case 'datetime':
      return isoDateTime(String(raw));
    case 'timestamp':
      return isoDateTime(String(raw)) + 'Z';
    default:
      return Buffer.isBuffer(raw) ? raw.toString('base64') : raw;
  }
}

/**
 * Integers in JSON beyond double precision (e.g. 12345678901234567890) stay
 * exact, as strings; every other number is a double, as JSON.parse reads it
 * (3.40282e38 stays a number even though its digits print differently).
 */
export function parseJsonLosslessly(text: string): unknown {
  return parseLossless(text, null, (digits: string) => (isInteger(digits) && !isSafeNumber(digits) ? digits : Number(digits)));
}

/**
 * A float32 printed as a double shows digits the column never held
 * (1.2345678 stored is 1.2345677614212036); the shortest decimal that rounds
 * to the same float32 is what was written.
 */
export function shortestFloat32(value: number): number {
  if (!Number.isFinite(value)) return value;
  const single = Math.fround(value);
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(single.toPrecision(digits));
    if (Math.fround(candidate) === single) return candidate;
  }
  return single;
}

function bitValue(bytes: Buffer, bits: number): boolean | number | string {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  if (bits === 1) return value !== 0n;
  return bits <= 32 ? Number(value) : value.toString();
}

function asBuffer(raw: RawValue): Buffer {
  return Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw), 'utf8');
}


/** `2024-02-29 12:34:56.1` → `2024-02-29T12:34:56.100000`. */
function isoDateTime(text: string): string {
  const space = text.indexOf(' ');
  if (space < 0) return text;
  return `${text.slice(0, space)}T${withMicroseconds(text.slice(space + 1))}`;
}
