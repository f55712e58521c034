import { decimalValue, DecimalHandling, int64Value } from './decimal';
import { bitsBase64, ValueConverter } from './postgres-values';
import { epochDays, microsToMillis, timeMicros, timestampMicros, zonedTimestamp } from './temporal';

const same: ValueConverter = (value) => value;

/**
 * How Debezium's MySQL and MariaDB connectors write a column of COLUMN_TYPE
 * `type` (`bigint(20) unsigned`, `datetime(3)`) with their default settings:
 * time.precision.mode=adaptive_time_microseconds, binary.handling.mode=bytes,
 * bigint.unsigned.handling.mode=long; decimal.handling.mode as given.
 * The event's forms are connectors/mysql/types.ts's.
 */
export function mysqlConverter(type: string, decimals: DecimalHandling): ValueConverter {
  const lower = type.trim().toLowerCase();
  const base = /^[a-z]+/.exec(lower)?.[0] ?? '';
  const args = /^[a-z]+\(([^)]*)\)/.exec(lower)?.[1];
  const precision = args === undefined || args === '' ? null : Number(args.split(',')[0]);
  const unsigned = /\bunsigned\b/.test(lower);
  switch (base) {
    case 'bigint':
      // bigint.unsigned.handling.mode=long: values above 2^63-1 wrap to negative longs, as Debezium writes them.
      return unsigned ? (value) => (typeof value === 'string' && /^\d+$/.test(value) ? int64Value(BigInt.asIntN(64, BigInt(value)).toString()) : int64Value(value)) : int64Value;
    case 'decimal':
    case 'numeric':
      return textOr((text) => decimalValue(text, args === undefined ? 0 : Number(args.split(',')[1] ?? 0), decimals));
    case 'bit':
      // BIT(1) is a boolean (already so in the event); BIT(n): io.debezium.data.Bits, little-endian bytes.
      if (precision === null || precision === 1) return same;
      return (value) => {
        if (typeof value !== 'number' && typeof value !== 'string') return value;
        return bitsBase64(BigInt(value).toString(2), Math.ceil(precision / 8)) ?? value;
      };
    case 'set':
      // io.debezium.data.EnumSet: the members joined by commas (the event holds them as an array).
      return (value) => (Array.isArray(value) ? value.join(',') : value);
    case 'date':
      // A zero date has no epoch day: Debezium writes null for a nullable column.
      return textOr((text) => epochDays(text) ?? null);
    case 'time':
      // adaptive_time_microseconds: every TIME is io.debezium.time.MicroTime.
      return textOr((text) => timeMicros(text) ?? null);
    case 'datetime':
      // DATETIME(0..3): io.debezium.time.Timestamp (ms); DATETIME(4..6): MicroTimestamp (µs).
      return textOr((text) => {
        const micros = timestampMicros(text);
        if (micros === undefined) return null;
        return precision !== null && precision > 3 ? micros : microsToMillis(micros);
      });
    case 'timestamp':
      // io.debezium.time.ZonedTimestamp in UTC with the column's fractional digits (none for TIMESTAMP(0)).
      return textOr((text) => (text.startsWith('0000-00-00') ? null : (zonedTimestamp(text, precision ?? 0) ?? null)));
    default:
      return same;
  }
}

function textOr(convert: (text: string) => unknown): ValueConverter {
  return (value) => (typeof value === 'string' ? convert(value) : value);
}

/** MySQL JSON columns: io.debezium.data.Json, the document's text. */
export function isMysqlJson(type: string): boolean {
  return /^json\b/i.test(type.trim());
}
