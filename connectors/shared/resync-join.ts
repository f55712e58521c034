import { ResyncTask } from './source-checkpoint';

/**
 * The queued request a new one can join instead of queueing its tables again,
 * or null. It must hold, for every table asked for, a task with the same
 * condition that has not read a chunk yet and is not the one in progress
 * (tasks[0], whose chunk may be in flight): every row it reads is then read
 * after the new request was made, which is all the new one asks for. Without
 * this, resyncs asked again while one waits (a retrying script, an operator,
 * `cdc verify --repair` run twice) each re-read the whole table and flood the
 * log and every sink with the same rows.
 */
export function joinableRequest<K>(tasks: readonly ResyncTask<K>[], tables: readonly string[], where: string | undefined): string | null {
  const waiting = tasks.slice(1).filter((t) => t.rows === 0 && t.afterKey === undefined && t.where === where);
  for (const candidate of new Set(waiting.map((t) => t.requestId))) {
    const queued = new Set(waiting.filter((t) => t.requestId === candidate).map((t) => t.table));
    if (tables.every((table) => queued.has(table))) return candidate;
  }
  return null;
}
