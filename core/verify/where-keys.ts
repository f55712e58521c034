import { decodeKey } from '../event/change-event';

/**
 * An SQL condition selecting exactly these keys (keyString() form), for
 * `cdc resync --where`: `k IN (...)` for one key column, `(a = .. AND b = ..) OR ...`
 * for composite keys (the resync condition accepts comparisons, IN lists of
 * literals, AND, OR and parentheses, not row-value tuples).
 */
export function whereKeysSql(keyColumns: readonly string[], keys: readonly string[], quoteIdent: (name: string) => string, literal: (value: string) => string): string {
  if (keyColumns.length === 1) return `${quoteIdent(keyColumns[0])} IN (${keys.map(literal).join(', ')})`;
  const one = (key: string) => {
    const parts = decodeKey(key, keyColumns.length);
    return `(${keyColumns.map((c, i) => `${quoteIdent(c)} = ${literal(parts[i])}`).join(' AND ')})`;
  };
  return `(${keys.map(one).join(' OR ')})`;
}
