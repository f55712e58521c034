import { crc32 } from 'node:zlib';
import { ChangeEvent, keyString } from '../event/change-event';

/**
 * The partitions an event belongs to: hash(schema.table, key) so all events
 * of one row share a partition. A truncate has no key and concerns every row
 * of its table, so it goes to every partition, ordered with that table's rows.
 */
export function partitionsOf(event: ChangeEvent, partitionCount: number): number[] {
  if (event.op === 't') return Array.from({ length: partitionCount }, (_, i) => i);
  return [partitionOfKey(event.source.schema, event.source.table, keyString(event.key), partitionCount)];
}

export function partitionOfKey(schema: string, table: string, key: string, partitionCount: number): number {
  return crc32(`${schema}.${table}\u0000${key}`) % partitionCount;
}
