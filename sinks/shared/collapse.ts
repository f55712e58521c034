import { ChangeEvent, keyString, Row } from '../../core/event/change-event';

/** `schema.table` + NUL + joined key: one row's identity across tables. */
export function rowIdentity(event: ChangeEvent): string {
  return `${event.source.schema}.${event.source.table}\u0000${keyString(event.key)}`;
}

/**
 * Deduplicates a batch of row changes (no truncates) to the newest change per
 * row, so a MERGE or bulk request touches each row once. Duplicates (equal
 * versions) count once. When the newest change lists `unchanged` columns, their
 * values are taken from the row's older changes in the same batch when one has
 * them; only columns no change of the batch carries stay in `unchanged`, for the
 * sink to keep from the stored row.
 */
export function newestPerRow(events: readonly ChangeEvent[]): ChangeEvent[] {
  const byRow = new Map<string, ChangeEvent[]>();
  for (const event of events) {
    const id = rowIdentity(event);
    const list = byRow.get(id);
    if (list) list.push(event);
    else byRow.set(id, [event]);
  }
  const out: ChangeEvent[] = [];
  for (const changes of byRow.values()) out.push(changes.length === 1 ? changes[0] : fold(changes));
  return out;
}

function fold(changes: ChangeEvent[]): ChangeEvent {
  const ordered = [...changes].sort((a, b) => (a.source.version < b.source.version ? -1 : a.source.version > b.source.version ? 1 : 0));
  let latest = ordered[0];
  let image: Row | null = latest.op === 'd' ? null : latest.after;
  // Columns of a row created in this batch whose value the source never sent (see unchanged-columns.ts).
  let unknowable = new Set(isNewRow(latest) ? latest.unchanged ?? [] : []);
  for (const event of ordered.slice(1)) {
    if (event.source.version === latest.source.version) continue; // a duplicate
    latest = event;
    if (event.op === 'd' || event.after === null) {
      image = null;
      unknowable = new Set();
      continue;
    }
    if (isNewRow(event)) unknowable = new Set(event.unchanged ?? []);
    if (!event.unchanged?.length || image === null) {
      image = event.after;
      continue;
    }
    const after: Row = { ...event.after };
    const stillUnknown: string[] = [];
    for (const column of event.unchanged) {
      if (image && column in image) after[column] = image[column];
      else stillUnknown.push(column);
    }
    latest = { ...event, after };
    if (stillUnknown.length) latest.unchanged = stillUnknown;
    else delete latest.unchanged;
    // Still unknown because the row began in this batch without it: nothing stored to keep it from either.
    if (stillUnknown.some((column) => unknowable.has(column))) latest.op = 'c';
    image = after;
  }
  return latest;
}

function isNewRow(event: ChangeEvent): boolean {
  return event.op === 'c' || event.op === 'r';
}
