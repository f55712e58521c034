/**
 * JSON text with exact 64-bit integers: Debezium's JsonConverter writes INT64
 * values as plain JSON numbers, which a JS number cannot hold beyond 2^53.
 * Row values that must keep every digit are ExactNumber; jsonText() writes
 * them as bare digits and everything else as JSON.stringify would.
 */
export class ExactNumber {
  constructor(readonly digits: string) {}
}

/** An integer as a JSON number: a plain number when exact, else its digits. */
export function integerValue(value: bigint): number | ExactNumber {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : new ExactNumber(value.toString());
}

export function jsonText(value: unknown): string {
  if (value instanceof ExactNumber) return value.digits;
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : jsonText(v))).join(',')}]`;
  const parts: string[] = [];
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${jsonText(v)}`);
  }
  return `{${parts.join(',')}}`;
}
