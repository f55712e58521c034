import { ChangeEvent, Row } from '../../core/event/change-event';

/**
 * The column types sinks create tables and mappings from. Events carry values,
 * not declared types, so types are inferred from values and widened when a
 * later value does not fit: integer → double → text, anything mixed → text.
 * Lossless either way: bigint and NUMERIC arrive as strings and stay text
 * unless a table's options declare a type.
 */
export type ColumnType = 'boolean' | 'integer' | 'double' | 'text' | 'json';

/** Postgres and MySQL spell non-finite floats as text; they still belong in a double column. */
const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);

export function inferType(value: unknown): ColumnType | null {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'boolean':
      return 'boolean';
    case 'number':
      return Number.isSafeInteger(value) ? 'integer' : 'double';
    case 'string':
      return NON_FINITE.has(value) ? 'double' : 'text';
    case 'bigint':
      return 'text';
    default:
      return 'json';
  }
}

/** The narrowest type that holds values of both types. */
export function widen(a: ColumnType, b: ColumnType): ColumnType {
  if (a === b) return a;
  const numeric = (t: ColumnType) => t === 'integer' || t === 'double';
  if (numeric(a) && numeric(b)) return 'double';
  return 'text';
}

/** Column → type over the rows' non-null values, starting from `known`. Columns seen only as null are absent. */
export function inferColumns(rows: Iterable<Row>, known: ReadonlyMap<string, ColumnType> = new Map()): Map<string, ColumnType> {
  const types = new Map(known);
  for (const row of rows) {
    for (const column in row) {
      const type = inferType(row[column]);
      if (type === null) continue;
      const current = types.get(column);
      types.set(column, current ? widen(current, type) : type);
    }
  }
  return types;
}

/** Every row image of a set of events (after, or before for deletes) for inference. */
export function rowImages(events: readonly ChangeEvent[]): Row[] {
  const rows: Row[] = [];
  for (const event of events) {
    if (event.after) rows.push(event.after);
    rows.push(event.key);
  }
  return rows;
}
