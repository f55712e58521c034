import { crc32 } from 'node:zlib';
import { ChangeEvent, keyString } from '../event/change-event';

/**
 * The partitions an event belongs to: hash(schema.table, key) so all events
 * of one row share a partition. A truncate has no key and concerns every row
 * of its table, so it goes to every partition, ordered with that table's rows.
 */
export function partitionsOf(event: ChangeEvent, partitionCount: number): number[] {
  if (event.op === 't') return Array.from({ length: partitionCount }, (_, i) => i);
  return [partitionOfRow(event, partitionCount)];
}

/** The one partition of a row change (not a truncate): partitionsOf(event)[0] without the array. */
export function partitionOfRow(event: ChangeEvent, partitionCount: number): number {
  return partitionOfKey(event.source.schema, event.source.table, keyString(event.key), partitionCount);
}

/** crc32 of `schema.table\0`, per table: the key's bytes continue it (the same value as crc32 of the whole text). */
const tableCrcs = new Map<string, Map<string, number>>();

export function partitionOfKey(schema: string, table: string, key: string, partitionCount: number): number {
  let tables = tableCrcs.get(schema);
  if (!tables) tableCrcs.set(schema, (tables = new Map()));
  let prefix = tables.get(table);
  if (prefix === undefined) {
    prefix = crc32(`${schema}.${table}\u0000`);
    if (tables.size < MAX_CACHED_TABLES) tables.set(table, prefix);
  }
  return crc32(key, prefix) % partitionCount;
}

/** Tables per schema whose prefix checksum is kept (a bound for sources with very many tables). */
const MAX_CACHED_TABLES = 10_000;
