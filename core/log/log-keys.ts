import { ChangeEvent } from '../event/change-event';

/**
 * The identity a log compacts by, the same in both backends (it is also the
 * Kafka message key): one row, `["schema","table",{key}]`, or, for a
 * truncate, the whole table, `["schema","table"]`. JSON keeps composite keys
 * unambiguous where joining with ":" would not ("1:2"+"3" vs "1"+"2:3").
 */
export function compactionKeyOf(event: ChangeEvent): string {
  const { schema, table } = event.source;
  return event.op === 't' ? JSON.stringify([schema, table]) : JSON.stringify([schema, table, event.key]);
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
