/**
 * Row keys from a template with the placeholders {schema}, {table} and {key}
 * (keyString(): one column as is, composite keys joined by ":" with ":" and
 * "\\" escaped inside parts; docs/architecture.md §4). {key} is required so that rows
 * never share a key, and only these placeholders exist so that the sink can
 * rebuild a row's key from its bookkeeping (truncate, generation sweep).
 */
const PLACEHOLDER = /\{([^{}]*)\}/g;
const KNOWN = new Set(['schema', 'table', 'key']);

/** Why a template is unusable, or null when it is fine. */
export function checkKeyTemplate(template: string): string | null {
  const names = [...template.matchAll(PLACEHOLDER)].map((m) => m[1]);
  const unknown = names.filter((n) => !KNOWN.has(n));
  if (unknown.length) return `unknown placeholder {${unknown[0]}}: use {schema}, {table} and {key}`;
  if (!names.includes('key')) return 'must contain {key}, or rows of one table would share a key';
  return null;
}

export function renderKey(template: string, schema: string, table: string, key: string): string {
  return template.replace(PLACEHOLDER, (_, name: string) => (name === 'schema' ? schema : name === 'table' ? table : key));
}

/** The template of one table as a function of the key (schema and table filled in once; it runs per event). */
export function keyRenderer(template: string, schema: string, table: string): (key: string) => string {
  const [before, ...rest] = renderKey(template, schema, table, '\u0000').split('\u0000');
  if (rest.length === 1) return (key) => before + key + rest[0];
  return (key) => renderKey(template, schema, table, key);
}
