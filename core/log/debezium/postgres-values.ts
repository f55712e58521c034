import { decimalValue, DecimalHandling, int64Value } from './decimal';
import { epochDays, intervalMicros, microsToMillis, timeMicros, timestampMicros, zonedTime, zonedTimestamp } from './temporal';

export type ValueConverter = (value: unknown) => unknown;

const same: ValueConverter = (value) => value;

/** Keeps values a converter does not recognise (infinity, BC dates) as the event holds them. */
function orSame(convert: (text: string) => unknown): ValueConverter {
  return (value) => {
    if (typeof value !== 'string') return value;
    const converted = convert(value);
    return converted === undefined ? value : converted;
  };
}

/**
 * How Debezium's PostgreSQL connector writes a column of type `type`
 * (connectors/postgres/column-types.ts names) with its default settings:
 * time.precision.mode=adaptive, binary.handling.mode=bytes (base64 in JSON),
 * interval.handling.mode=numeric, hstore/json as strings; decimal.handling.mode as given.
 * `jsonText` gives a JSON column's text as Postgres sent it.
 */
export function postgresConverter(type: string, decimals: DecimalHandling): ValueConverter {
  if (type.endsWith('[]')) {
    // Arrays: Debezium's ARRAY of the element type, each element converted alike (nested arrays too).
    const element = postgresConverter(type.slice(0, -2), decimals);
    const each: ValueConverter = (value) => (Array.isArray(value) ? value.map((v) => (v === null ? null : each(v))) : element(value));
    return each;
  }
  const [, base, args] = /^([a-z0-9_:]+)(?:\((.*)\))?$/.exec(type) ?? [, type, undefined];
  const precision = args === undefined ? null : Number(args.split(',')[0]);
  switch (base) {
    case 'int8':
    case 'oid':
      return int64Value;
    case 'numeric':
      // numeric(p,s): Decimal with scale s; unconstrained numeric: VariableScaleDecimal (precise) or as is.
      return orSame((text) => decimalValue(text, args === undefined ? null : Number(args.split(',')[1]), decimals));
    case 'date':
      return orSame(epochDays);
    case 'time':
      // adaptive: TIME(0..3) io.debezium.time.Time (ms), TIME(4..6) and TIME MicroTime (µs).
      return orSame((text) => {
        const micros = timeMicros(text);
        return micros === undefined ? undefined : precision !== null && precision <= 3 ? microsToMillis(micros) : micros;
      });
    case 'timestamp':
      return orSame((text) => {
        const micros = timestampMicros(text);
        return micros === undefined ? undefined : precision !== null && precision <= 3 ? microsToMillis(micros) : micros;
      });
    case 'timestamptz':
      // The column's precision in fractional digits; an unqualified column has precision 6.
      return orSame((text) => zonedTimestamp(text, precision ?? 6));
    case 'timetz':
      return orSame(zonedTime);
    case 'interval':
      return orSame(intervalMicros);
    case 'bit':
      // BIT(1) is a boolean; BIT(n): io.debezium.data.Bits, little-endian bytes of ceil(n/8).
      return orSame((text) => (precision === 1 || precision === null ? text === '1' : bitsBase64(text, Math.ceil(precision / 8))));
    default:
      return same;
  }
}

/** A bit string (`1010`, most significant bit first) as Debezium's Bits: little-endian bytes, padded to `bytes`. */
export function bitsBase64(text: string, bytes: number): string | undefined {
  if (!/^[01]+$/.test(text)) return undefined;
  let value = BigInt(`0b${text}`);
  const out: number[] = [];
  while (value > 0n) {
    out.push(Number(value & 0xffn));
    value >>= 8n;
  }
  while (out.length < bytes) out.push(0);
  return Buffer.from(out).toString('base64');
}

/** JSON and JSONB: io.debezium.data.Json, the document's text. */
export function isPostgresJson(type: string): boolean {
  return type === 'json' || type === 'jsonb';
}
