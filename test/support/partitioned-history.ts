// A change history laid out as the log would hold it: rows hashed to
// partitions (each row's changes in order in one partition), a truncate
// appended to every partition.
import { keyString } from '../../core/event/change-event';
import { LogRecord } from '../../core/log/change-log';
import { changeHistory } from './sink-history';

export function partitionedHistory(changes: number, partitions: number, seed = 77): LogRecord[][] {
  const logs: LogRecord[][] = Array.from({ length: partitions }, () => []);
  for (const event of changeHistory({ changes, seed, keysPerTable: Math.max(40, changes / 10), truncateAt: 0.6 })) {
    const targets = event.op === 't' ? logs.map((_, p) => p) : [hash(`${event.source.table}:${keyString(event.key)}`) % partitions];
    for (const p of targets) logs[p].push({ partition: p, offset: logs[p].length, event });
  }
  return logs;
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
