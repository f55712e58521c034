import { ChangeEvent, keyString } from '../../core/event/change-event';
import { parseVersion } from '../../core/event/version';

/** The commit position of a version, as decimal text (the history's `_cdc_commit_seq`). */
export function commitSeq(version: string): string {
  return parseVersion(version).commitPosition.toString();
}

/**
 * One table's batch laid out for the engine's staging table, all text, one
 * row per change: its place in history (`hist`), whether it is the batch's
 * newest change of its row (`latest`), and its row image as JSON, from which
 * the engine extracts the typed columns in SQL (one JSON parse per row beats
 * handing every value over one by one). A newest change whose unchanged TOAST
 * columns were filled from older changes of the batch gets a row of its own.
 */
export interface StagedBatch {
  stageColumns: string[];
  rows: (string | null)[][];
  /** Stage row number → the newest change it holds (for dead letters). */
  latestByRow: Map<number, ChangeEvent>;
  /** Columns some newest change left unchanged (the MERGE keeps the stored value for those rows). */
  unchangedColumns: Set<string>;
}

export const STAGE_COLUMNS = ['r', 'hist', 'latest', 'op', 'version', 'commit_seq', 'position', 'commit_ts', 'tx', 'key', 'key_json', 'before', 'after', 'unchanged'];

export function stageBatch(history: readonly ChangeEvent[], latest: readonly ChangeEvent[]): StagedBatch {
  const newest = new Set(latest);
  const rows: (string | null)[][] = [];
  const latestByRow = new Map<number, ChangeEvent>();
  const seen = new Set<string>();
  const add = (event: ChangeEvent, hist: boolean, isLatest: boolean) => {
    if (isLatest) latestByRow.set(rows.length, event);
    const deleted = event.op === 'd' || event.op === 't' || !event.after;
    rows.push([
      String(rows.length),
      hist ? '1' : null,
      isLatest ? '1' : null,
      event.op,
      event.source.version,
      commitSeq(event.source.version),
      event.source.position,
      new Date(event.source.ts_ms).toISOString(),
      event.source.txId ?? null,
      keyString(event.key),
      deleted ? JSON.stringify(event.key) : null,
      event.before ? JSON.stringify(event.before) : null,
      deleted ? null : JSON.stringify(event.after),
      event.unchanged?.length ? JSON.stringify(event.unchanged) : null,
    ]);
  };
  for (const event of history) {
    const id = `${keyString(event.key)}\u0000${event.source.version}`;
    if (seen.has(id)) continue; // a duplicate in the log: history holds each change once
    seen.add(id);
    add(event, true, newest.delete(event));
  }
  // Newest changes the batch does not hold as they are (unchanged columns filled in from older changes).
  for (const event of newest) add(event, false, true);
  const unchangedColumns = new Set(latest.flatMap((e) => e.unchanged ?? []));
  return { stageColumns: STAGE_COLUMNS, rows, latestByRow, unchangedColumns };
}
