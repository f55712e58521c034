import { ExactNumber } from './json-text';

/** decimal.handling.mode: how DECIMAL/NUMERIC values are written (Debezium's default: precise). */
export type DecimalHandling = 'precise' | 'string' | 'double';

/**
 * A decimal's text (`-12.340`) as unscaled integer and scale, as Java's
 * BigDecimal holds it; null for text that is not a plain decimal (NaN, Infinity).
 */
export function parseDecimal(text: string): { unscaled: bigint; scale: number } | null {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match || (match[2] === '' && !match[3])) return null;
  const [, sign, whole, fraction = ''] = match;
  return { unscaled: BigInt(`${sign === '-' ? '-' : ''}${whole || '0'}${fraction}`), scale: fraction.length };
}

/** The value at `scale` digits after the point (Debezium sets a fixed-scale column's scale). */
export function withScale(decimal: { unscaled: bigint; scale: number }, scale: number): { unscaled: bigint; scale: number } {
  if (decimal.scale === scale) return decimal;
  if (decimal.scale < scale) return { unscaled: decimal.unscaled * 10n ** BigInt(scale - decimal.scale), scale };
  return { unscaled: decimal.unscaled / 10n ** BigInt(decimal.scale - scale), scale };
}

/** BigDecimal.stripTrailingZeros(), then a negative scale raised to 0 (Debezium's VariableScaleDecimal). */
export function stripTrailingZeros(decimal: { unscaled: bigint; scale: number }): { unscaled: bigint; scale: number } {
  let { unscaled, scale } = decimal;
  if (unscaled === 0n) return { unscaled: 0n, scale: 0 };
  while (scale > 0 && unscaled % 10n === 0n) {
    unscaled /= 10n;
    scale -= 1;
  }
  return { unscaled, scale };
}

/** BigInteger.toByteArray(): the shortest big-endian two's-complement bytes, as base64 (how JsonConverter writes BYTES). */
export function unscaledBase64(unscaled: bigint): string {
  const bytes: number[] = [];
  let rest = unscaled;
  for (;;) {
    const byte = Number(rest & 0xffn);
    bytes.unshift(byte);
    rest >>= 8n;
    if ((rest === 0n && (byte & 0x80) === 0) || (rest === -1n && (byte & 0x80) !== 0)) break;
  }
  return Buffer.from(bytes).toString('base64');
}

/**
 * A decimal value as Debezium writes it. `scale` is the column's fixed scale,
 * or null for Postgres's unconstrained NUMERIC (precise: a {scale, value} struct).
 * precise: base64 of the unscaled bytes; string: the plain digits; double: a number.
 * NaN and infinities: null in precise mode (no Decimal holds them), else as Debezium's double/string.
 */
export function decimalValue(text: string, scale: number | null, mode: DecimalHandling): unknown {
  if (mode === 'double') {
    const value = Number(text);
    return Number.isFinite(value) ? value : text;
  }
  const decimal = parseDecimal(text);
  if (mode === 'string') return decimal && scale !== null ? plain(withScale(decimal, scale)) : text;
  if (!decimal) return null;
  if (scale === null) {
    const stripped = stripTrailingZeros(decimal);
    return { scale: stripped.scale, value: unscaledBase64(stripped.unscaled) };
  }
  return unscaledBase64(withScale(decimal, scale).unscaled);
}

/** BigDecimal.toPlainString(). */
function plain({ unscaled, scale }: { unscaled: bigint; scale: number }): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  return negative ? `-${text}` : text;
}

/** An integer column's value (the event may hold it as exact digits) as a JSON number. */
export function int64Value(value: unknown): unknown {
  if (typeof value === 'number' || typeof value === 'bigint') return typeof value === 'bigint' ? new ExactNumber(value.toString()) : value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number.isSafeInteger(Number(value)) ? Number(value) : new ExactNumber(value.replace(/^(-?)0+(?=\d)/, '$1'));
  return value;
}
