/**
 * Lossless decoding of Postgres text-format values (DESIGN §2). The
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

type Decoder = (text: string) => unknown;

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
  [PgType.json, (text) => JSON.parse(text)],
  [PgType.jsonb, (text) => JSON.parse(text)],
  [PgType.date, asText],
  [PgType.timestamp, (text) => isoTimestamp(text)],
  [PgType.timestamptz, (text) => isoTimestamp(text)],
]);

/** Decodes one column value from its text form. Unknown types stay text. */
export function decodeValue(typeOid: number, text: string): unknown {
  const decoder = decoders.get(typeOid);
  return decoder ? decoder(text) : text;
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
  const match = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?$/.exec(text);
  if (!match) return text;
  const [, date, rawTime, sign, hours, minutes = '00', seconds] = match;
  const time = withMicroseconds(rawTime);
  if (!sign) return `${date}T${time}`;
  if (hours === '00' && minutes === '00' && !seconds) return `${date}T${time}Z`;
  return `${date}T${time}${sign}${hours}:${minutes}${seconds ? ':' + seconds : ''}`;
}

/** Postgres trims trailing zeros of fractional seconds; we always print six digits. */
function withMicroseconds(time: string): string {
  const [whole, fraction = ''] = time.split('.');
  return `${whole}.${fraction.padEnd(6, '0')}`;
}
