/**
 * Debezium's temporal value types (io.debezium.time.*), computed from the
 * text forms our events hold (docs/architecture.md §2). Values these parsers do
 * not recognise (Postgres infinity, BC dates, MySQL zero dates) are returned as
 * `undefined` so the caller can decide.
 */
const MS_PER_DAY = 86_400_000;

interface DateParts { year: number; month: number; day: number }

function dateParts(text: string): DateParts | undefined {
  const match = /^(\d{4,})-(\d\d)-(\d\d)/.exec(text);
  if (!match) return undefined;
  return { year: Number(match[1]), month: Number(match[2]), day: Number(match[3]) };
}

function epochMsOfDate({ year, month, day }: DateParts): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day); // Date.UTC would read years 0..99 as 19xx
  return date.getTime();
}

/** io.debezium.time.Date: days since 1970-01-01 (`2024-02-29` → 19782). Zero dates: undefined. */
export function epochDays(text: string): number | undefined {
  const parts = dateParts(text);
  if (!parts || parts.month === 0 || parts.day === 0 || /BC$/.test(text)) return undefined;
  return Math.round(epochMsOfDate(parts) / MS_PER_DAY);
}

/** Microseconds of `HH:MM:SS[.ffffff]` (negative and beyond 24 h for MySQL TIME). */
export function timeMicros(text: string): number | undefined {
  const match = /^(-?)(\d+):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?$/.exec(text);
  if (!match) return undefined;
  const [, sign, h, m, s = '0', fraction = ''] = match;
  const micros = ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1_000_000 + Number(fraction.slice(0, 6).padEnd(6, '0'));
  return sign === '-' ? -micros : micros;
}

/** Microseconds since the epoch of `YYYY-MM-DD[T ]HH:MM:SS[.ffffff]` read as UTC (Debezium's (Micro)Timestamp of a zone-less value). */
export function timestampMicros(text: string): number | undefined {
  const match = /^(\d{4,}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]00(?::?00)?)?$/.exec(text);
  if (!match) return undefined;
  const parts = dateParts(match[1])!;
  if (parts.month === 0 || parts.day === 0) return undefined;
  return (epochMsOfDate(parts) / 1000) * 1_000_000 + timeMicros(match[2])!;
}

/** Milliseconds since the epoch, truncated toward the past as Java's Instant.toEpochMilli. */
export function microsToMillis(micros: number): number {
  return Math.floor(micros / 1000);
}

/**
 * io.debezium.time.ZonedTimestamp: the instant in UTC, ISO-8601 with `Z`, with
 * exactly `fractionDigits` fractional digits (Debezium formats a column of
 * precision p with p digits since 2.2); 0 or null: Java's ISO_OFFSET_DATE_TIME
 * (no fraction when it is zero, else without trailing zeros).
 * Input: a UTC timestamp text (`2024-01-02T03:04:05.120000Z`).
 */
export function zonedTimestamp(text: string, fractionDigits: number | null): string | undefined {
  const match = /^(\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(?:Z|\+00(?::?00)?)$/.exec(text);
  if (!match) return undefined;
  return `${match[1]}${fraction(match[2] ?? '', fractionDigits)}Z`;
}

/** io.debezium.time.ZonedTime of a Postgres TIMETZ (`12:34:56.5+02`): the time in UTC, ISO_OFFSET_TIME. */
export function zonedTime(text: string): string | undefined {
  const match = /^(\d\d):(\d\d):(\d\d)(?:\.(\d+))?([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?$/.exec(text);
  if (!match) return undefined;
  const [, h, m, s, frac = '', sign, oh, om = '00', os = '00'] = match;
  const offset = (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60 + Number(os));
  const seconds = (((Number(h) * 3600 + Number(m) * 60 + Number(s) - offset) % 86_400) + 86_400) % 86_400;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}${fraction(frac, null)}Z`;
}

/** Java's fraction printing: fixed width, or minimal digits (none for zero). */
function fraction(digits: string, width: number | null): string {
  if (width !== null && width > 0 && width <= 9) return `.${digits.padEnd(width, '0').slice(0, width)}`;
  // appendFraction(NANO_OF_SECOND, 0, 9, true): as many digits as needed, trailing zeros dropped.
  const trimmed = digits.replace(/0+$/, '');
  return trimmed === '' ? '' : `.${trimmed}`;
}

const DAYS_PER_MONTH_AVG = 365.25 / 12;

/**
 * io.debezium.time.MicroDuration of a Postgres interval in ISO-8601 form
 * (IntervalStyle=iso_8601: `P1Y2M3DT4H5M6.5S`): microseconds with Debezium's
 * average month of 365.25/12 days.
 */
export function intervalMicros(text: string): number | undefined {
  const match = /^P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)D)?(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d+)?)S)?)?$/.exec(text);
  if (!match || text === 'P' || text.endsWith('T')) return undefined;
  const [years, months, days, hours, minutes] = match.slice(1, 6).map((v) => Number(v ?? 0));
  const seconds = Number(match[6] ?? 0);
  const numberOfDays = (years * 12 + months) * DAYS_PER_MONTH_AVG + days;
  const numberOfSeconds = ((numberOfDays * 24 + hours) * 60 + minutes) * 60 + seconds;
  return Math.trunc(numberOfSeconds * 1e6);
}
