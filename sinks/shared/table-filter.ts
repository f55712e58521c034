/** Include list of `schema.table`, `schema.*` or `*`, as written in a sink's config. */
export class TableFilter {
  private readonly exact = new Set<string>();
  private readonly schemas = new Set<string>();
  private readonly all: boolean;

  constructor(patterns: readonly string[]) {
    this.all = patterns.includes('*');
    for (const pattern of patterns) {
      if (pattern.endsWith('.*')) this.schemas.add(pattern.slice(0, -2));
      else this.exact.add(pattern);
    }
  }

  includes(schema: string, table: string): boolean {
    return this.all || this.schemas.has(schema) || this.exact.has(`${schema}.${table}`);
  }
}
