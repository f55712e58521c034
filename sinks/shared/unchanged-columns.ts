import { ChangeEvent, keyString } from '../../core/event/change-event';

/**
 * Why a row change cannot be written whole, or null when it can. A new row
 * ('c' or 'r') that lists unchanged (TOAST) columns comes from a Postgres
 * primary-key change under REPLICA IDENTITY DEFAULT: the server sent neither
 * the column's value nor an old row to take it from (the row under the new
 * key does not exist yet). Writing it would store the row without those
 * columns (NULL in the warehouse), silently wrong: sinks dead-letter it.
 */
export function unfillableUnchanged(event: ChangeEvent): string | null {
  if ((event.op !== 'c' && event.op !== 'r') || !event.unchanged?.length || !event.after) return null;
  const table = `${event.source.schema}.${event.source.table}`;
  return `table ${table}, key ${keyString(event.key)}, position ${event.source.position}: the primary key changed while TOAST column(s) ` +
    `${event.unchanged.join(', ')} stayed unchanged, and with REPLICA IDENTITY DEFAULT Postgres does not send their values, so the row ` +
    `under its new key cannot be written whole. Fix: ALTER TABLE ${table} REPLICA IDENTITY FULL; then resync the row (cdc resync --table ${table})`;
}

/**
 * Why an update whose TOAST columns the source did not send cannot be written:
 * the sink holds no row to keep them from (it never got the row, e.g. after a
 * dead-lettered primary-key change). Writing it would store the row without them.
 */
export function noStoredRow(event: ChangeEvent): string {
  const table = `${event.source.schema}.${event.source.table}`;
  return `table ${table}, key ${keyString(event.key)}, position ${event.source.position}: TOAST column(s) ${(event.unchanged ?? []).join(', ')} ` +
    `were unchanged and not sent by the source, and the sink holds no row to keep them from, so the row cannot be written whole. ` +
    `Fix: resync the row (cdc resync --table ${table}); with ALTER TABLE ${table} REPLICA IDENTITY FULL a primary-key change carries them`;
}
