/**
 * Table routing for sinks: include and exclude lists of `schema.table`,
 * `schema.*` or `*`, as written in a sink's config. Exclusion wins.
 */
export function matchesTable(pattern: string, schema: string, table: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return pattern.slice(0, -2) === schema;
  return pattern === `${schema}.${table}`;
}

export class TableFilter {
  /** Verdicts by schema, then table: asked for every event of every sink, so no `schema.table` string is built per call. */
  private readonly decided = new Map<string, Map<string, boolean>>();

  constructor(private readonly include: readonly string[], private readonly exclude: readonly string[] = []) {}

  includes(schema: string, table: string): boolean {
    let tables = this.decided.get(schema);
    if (!tables) this.decided.set(schema, (tables = new Map()));
    let verdict = tables.get(table);
    if (verdict === undefined) {
      verdict = this.include.some((p) => matchesTable(p, schema, table)) && !this.exclude.some((p) => matchesTable(p, schema, table));
      tables.set(table, verdict);
    }
    return verdict;
  }
}

/** How specific a pattern is: `*` < `schema.*` < `schema.table`. */
function specificity(pattern: string): number {
  return pattern === '*' ? 0 : pattern.endsWith('.*') ? 1 : 2;
}

/**
 * Per-table options keyed by table pattern. The options of every matching
 * pattern are merged, the more specific pattern's keys winning, so
 * `{ "*": { ttlSeconds: 60 }, "public.orders": { keyTemplate: ... } }` gives
 * public.orders both.
 */
export class TableOptions<T extends object> {
  private readonly ordered: [string, T][];
  /** Merged options by schema, then table (see TableFilter.decided). */
  private readonly resolved = new Map<string, Map<string, T>>();

  constructor(options: Readonly<Record<string, T>>) {
    this.ordered = Object.entries(options).sort(([a], [b]) => specificity(a) - specificity(b));
  }

  for(schema: string, table: string): T {
    let tables = this.resolved.get(schema);
    if (!tables) this.resolved.set(schema, (tables = new Map()));
    let merged = tables.get(table);
    if (!merged) {
      merged = {} as T;
      for (const [pattern, options] of this.ordered) if (matchesTable(pattern, schema, table)) merged = { ...merged, ...options };
      tables.set(table, merged);
    }
    return merged;
  }
}
