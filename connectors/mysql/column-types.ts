import { ColumnShape } from './types';

const typesByShape = new WeakMap<readonly ColumnShape[], Readonly<Record<string, string>>>();

/**
 * Column name → COLUMN_TYPE (`json` for MariaDB's JSON columns, LONGTEXT with a
 * json_valid check), computed once per table shape: the Debezium topics map
 * these to Debezium's value types (core/log/debezium/mysql-values.ts).
 */
export function mysqlColumnTypesOf(columns: readonly ColumnShape[]): Readonly<Record<string, string>> {
  let types = typesByShape.get(columns);
  if (!types) {
    types = Object.freeze(Object.fromEntries(columns.map((c) => [c.name, c.kind === 'json' ? 'json' : (c.type ?? c.kind)])));
    typesByShape.set(columns, types);
  }
  return types;
}

/** JSON columns' text as the server gave it (the event holds them parsed); undefined when there are none. */
export function mysqlJsonText(columns: readonly ColumnShape[], raw: Record<string, unknown> | null | undefined): Record<string, string> | undefined {
  if (!raw) return undefined;
  let out: Record<string, string> | undefined;
  for (const column of columns) {
    if (column.kind !== 'json') continue;
    const value = raw[column.name];
    if (typeof value === 'string' || Buffer.isBuffer(value)) (out ??= {})[column.name] = String(value);
  }
  return out;
}
