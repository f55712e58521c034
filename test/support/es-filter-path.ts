/**
 * Elasticsearch's `filter_path` response filtering, as far as clients use it:
 * comma-separated dotted paths, `*` for any one field name (no `**`); arrays are filtered element by element; objects left empty are
 * dropped (as Elasticsearch does). Without a filter the body is unchanged.
 */
export function filterPath(body: unknown, filter: string | null): unknown {
  if (!filter) return body;
  const patterns = filter.split(',').map((p) => p.trim()).filter(Boolean).map((p) => p.split('.'));
  return keep(body, patterns) ?? {};
}

function keep(value: unknown, patterns: string[][]): unknown {
  if (patterns.some((p) => p.length === 0)) return value; // a pattern ends here: the whole value is kept
  if (Array.isArray(value)) {
    const kept = value.map((element) => keep(element, patterns)).filter((element) => element !== undefined);
    return kept.length > 0 ? kept : undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const out: Record<string, unknown> = {};
  for (const [field, child] of Object.entries(value)) {
    const next: string[][] = [];
    for (const [head, ...rest] of patterns) {
      if (head === '*' || head === field) next.push(rest);
    }
    if (next.length === 0) continue;
    const kept = keep(child, next);
    if (kept !== undefined) out[field] = kept;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
