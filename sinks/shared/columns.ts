import { ChangeEvent, Row } from '../../core/event/change-event';
import { BaseTableOptions } from './config';

/**
 * Applies a table's `columns` / `excludeColumns` to an event's row images
 * and its `unchanged` list. Key columns are always kept.
 */
export function projectEvent(event: ChangeEvent, options: BaseTableOptions): ChangeEvent {
  if (!options.columns && !options.excludeColumns) return event;
  const keep = columnPredicate(event.key, options);
  const projected: ChangeEvent = { ...event, before: projectRow(event.before, keep), after: projectRow(event.after, keep) };
  if (event.unchanged) projected.unchanged = event.unchanged.filter(keep);
  return projected;
}

function columnPredicate(key: Row, { columns, excludeColumns }: BaseTableOptions): (column: string) => boolean {
  const only = columns ? new Set(columns) : null;
  const drop = new Set(excludeColumns ?? []);
  return (column) => column in key || ((!only || only.has(column)) && !drop.has(column));
}

function projectRow(row: Row | null, keep: (column: string) => boolean): Row | null {
  if (!row) return row;
  const out: Row = {};
  for (const column of Object.keys(row)) if (keep(column)) out[column] = row[column];
  return out;
}
