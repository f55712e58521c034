import { parse as parseLossless } from 'lossless-json';
import { withMicroseconds } from '../shared/time-text';

/**
 * Lossless decoding of Postgres text-format values (docs/architecture.md §2). The
 * replication connection runs with DateStyle=ISO, TimeZone=UTC and
 * extra_float_digits=3, so the text forms below are the ones we parse.
 * No value goes through a JS Date, and no 64-bit or NUMERIC value through Number.
 */
export const PgType = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  numeric: 1700,
  jsonb: 3802,
} as const;

export type Decoder = (text: string) => unknown;

const integer: Decoder = (text) => Number(text);
const asText: Decoder = (text) => text;
const float: Decoder = (text) => {
  const value = Number(text);
  // NaN and ±Infinity have no JSON number form: keep Postgres's spelling.
  return Number.isFinite(value) ? value : text;
};

const decoders = new Map<number, Decoder>([
  [PgType.bool, (text) => text === 't'],
  [PgType.bytea, decodeBytea],
  [PgType.int2, integer],
  [PgType.int4, integer],
  [PgType.oid, integer],
  [PgType.int8, asText],
  [PgType.numeric, asText],
  [PgType.float4, float],
  [PgType.float8, float],
  [PgType.json, parseJsonLosslessly],
  [PgType.jsonb, parseJsonLosslessly],
  [PgType.date, asText],
  [PgType.timestamp, (text) => isoTimestamp(text)],
  [PgType.timestamptz, (text) => isoTimestamp(text)],
]);

/** Decodes one column value from its text form. Unknown types stay text. */
export function decodeValue(typeOid: number, text: string): unknown {
  const decoder = decoders.get(typeOid);
  return decoder ? decoder(text) : text;
}

/** The decoder of a built-in type, or undefined when the type needs the catalog (arrays, domains, enums ...). */
export function builtinDecoder(typeOid: number): Decoder | undefined {
  return decoders.get(typeOid) ?? (TEXT_LIKE.has(typeOid) ? asText : undefined);
}

/** Built-in types whose text form is already the JSON value we want. */
const TEXT_LIKE = new Set([
  18, 19, 25, 1042, 1043, // char, name, text, bpchar, varchar
  2950, 1083, 1266, 1186, // uuid, time, timetz, interval (ISO 8601 with IntervalStyle=iso_8601)
  790, 650, 869, 829, 774, 1560, 1562, // money, cidr, inet, macaddr, macaddr8, bit, varbit
  3614, 3615, 142, 28, 1700, 20, // tsvector, tsquery, xml, xid, numeric, int8
]);

/**
 * Integers beyond 2^53 in JSON (e.g. 12345678901234567890) would be rounded by
 * JSON.parse: they are kept as strings holding their exact digits. Other
 * numbers are doubles in JSON anyway and stay numbers (the MySQL source agrees).
 */
export function parseJsonLosslessly(text: string): unknown {
  return parseLossless(text, null, (digits: string) => (/^-?\d+$/.test(digits) && !Number.isSafeInteger(Number(digits)) ? digits : Number(digits)));
}

/** `\x0a0b` → base64. */
function decodeBytea(text: string): string {
  if (!text.startsWith('\\x')) throw new Error(`unexpected bytea text form (expected hex "\\x..."): ${text.slice(0, 20)}`);
  return Buffer.from(text.slice(2), 'hex').toString('base64');
}

/**
 * `2024-01-02 03:04:05.12` → `2024-01-02T03:04:05.120000` (always six
 * fractional digits, so equal instants print alike and strings sort by time);
 * with a UTC offset `+00` → `...Z`, other offsets → `+HH:MM`.
 * infinity / -infinity and BC dates keep their Postgres spelling.
 */
export function isoTimestamp(text: string): string {
  const fast = isoTimestampFast(text);
  if (fast !== undefined) return fast;
  const match = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?$/.exec(text);
  if (!match) return text;
  const [, date, rawTime, sign, hours, minutes = '00', seconds] = match;
  const time = withMicroseconds(rawTime);
  if (!sign) return `${date}T${time}`;
  if (hours === '00' && minutes === '00' && !seconds) return `${date}T${time}Z`;
  return `${date}T${time}${sign}${hours}:${minutes}${seconds ? ':' + seconds : ''}`;
}

/**
 * isoTimestamp() of the common forms, without a regular expression:
 * `YYYY-MM-DD HH:MM:SS[.f+]` with no offset or `+00`. Anything else
 * (other offsets, BC, infinity, five-digit years) gives undefined.
 */
function isoTimestampFast(text: string): string | undefined {
  const length = text.length;
  if (length < 19 || text.charCodeAt(4) !== 0x2d || text.charCodeAt(7) !== 0x2d || text.charCodeAt(10) !== 0x20 || text.charCodeAt(13) !== 0x3a || text.charCodeAt(16) !== 0x3a) return undefined;
  for (let i = 0; i < 19; i++) if (i !== 4 && i !== 7 && i !== 10 && i !== 13 && i !== 16 && !isDigit(text.charCodeAt(i))) return undefined;
  let end = length;
  let zone = '';
  if (length >= 22 && text.charCodeAt(length - 3) === 0x2b && text.charCodeAt(length - 2) === 0x30 && text.charCodeAt(length - 1) === 0x30) {
    end = length - 3;
    zone = 'Z';
  }
  if (end === 19) return `${text.slice(0, 10)}T${text.slice(11, 19)}.000000${zone}`;
  if (text.charCodeAt(19) !== 0x2e || end === 20) return undefined;
  for (let i = 20; i < end; i++) if (!isDigit(text.charCodeAt(i))) return undefined;
  const digits = end - 20;
  return `${text.slice(0, 10)}T${text.slice(11, end)}${digits < 6 ? ZERO_PAD[digits] : ''}${zone}`;
}

/** Zeros that make `digits` fractional digits six. */
const ZERO_PAD = ['000000', '00000', '0000', '000', '00', '0'];

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

