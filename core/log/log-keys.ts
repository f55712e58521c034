import { ChangeEvent } from '../event/change-event';

/**
 * The identity a log compacts by, the same in both backends (it is also the
 * Kafka message key): one row, `["schema","table",{key}]`, or, for a
 * truncate, the whole table, `["schema","table"]`. JSON keeps composite keys
 * unambiguous where joining with ":" would not ("1:2"+"3" vs "1"+"2:3").
 */
export function compactionKeyOf(event: ChangeEvent): string {
  const { schema, table } = event.source;
  if (event.op === 't') return JSON.stringify([schema, table]);
  // The same text as JSON.stringify([schema, table, key]), without a new array and the names encoded again per event.
  return `${rowKeyPrefix(schema, table)}${JSON.stringify(event.key) ?? 'null'}]`;
}

/** `["schema","table",` per table, made once. */
const rowKeyPrefixes = new Map<string, Map<string, string>>();

function rowKeyPrefix(schema: string, table: string): string {
  let tables = rowKeyPrefixes.get(schema);
  if (!tables) rowKeyPrefixes.set(schema, (tables = new Map()));
  let prefix = tables.get(table);
  if (prefix === undefined) tables.set(table, (prefix = `${JSON.stringify([schema, table]).slice(0, -1)},`));
  return prefix;
}

/**
 * The table's key (`["schema","table"]`) from any compaction key, without
 * parsing the row key: it scans past the first two JSON strings.
 */
export function tableKeyOf(compactionKey: string): string {
  let i = 1; // after "["
  for (let field = 0; field < 2; field++) {
    i += 1; // opening quote
    while (compactionKey[i] !== '"') i += compactionKey[i] === '\\' ? 2 : 1;
    i += 2; // closing quote and "," or "]"
  }
  return `${compactionKey.slice(0, i - 1)}]`;
}
