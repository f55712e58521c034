// Made-up change histories for sink tests: several tables, inserts, updates
// (some with unchanged TOAST columns), deletes, re-inserts, a truncate, and the
// rows a reader must see afterwards. Values exercise precision: 20-digit
// numeric strings, 0.30000000000000004, nested JSON, unicode, nulls.
import { ChangeEvent, keyString, Row } from '../../core/event/change-event';
import { makeVersion } from '../../core/event/version';
import { LogRecord } from '../../core/log/change-log';
import { makeEvent } from './events';

export type Random = () => number;

/** A deterministic pseudo-random generator in [0, 1). */
export function seeded(seed: number): Random {
  let state = seed >>> 0 || 1;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state / 2 ** 32;
  };
}

export interface HistoryOptions {
  changes: number;
  keysPerTable?: number;
  seed?: number;
  /** Position of a truncate of public.items, as a fraction of the history (omit for none). */
  truncateAt?: number;
  /** Fraction of updates that leave the `doc` column out as unchanged TOAST. */
  toastRate?: number;
}

function rowFor(table: string, key: Row, step: number, random: Random): Row {
  const base: Row = {
    ...key,
    step,
    note: `${table} ${keyString(key)} at ${step} ✓`,
    amount: `${12345678901234567890n + BigInt(step)}.${String(step % 100).padStart(2, '0')}`,
    ratio: step % 3 === 0 ? 0.30000000000000004 : step / 7,
    flag: random() < 0.5,
    maybe: random() < 0.3 ? null : `v${step}`,
  };
  if (table === 'items') base.doc = { step, tags: ['a', `t${step % 5}`], big: '98765432109876543210', nested: { f: 1.5e-7 } };
  return base;
}

/** Changes in commit order: versions increase by commit; rows of two tables (one with a composite key). */
export function changeHistory(options: HistoryOptions): ChangeEvent[] {
  const { changes, keysPerTable = 40, seed = 42, truncateAt, toastRate = 0.2 } = options;
  const random = seeded(seed);
  const alive = new Set<string>();
  const events: ChangeEvent[] = [];
  const truncateIndex = truncateAt === undefined ? -1 : Math.floor(changes * truncateAt);
  for (let i = 0; i < changes; i++) {
    const version = makeVersion(BigInt(1000 + i), 1 + (i % 3));
    if (i === truncateIndex) {
      events.push(makeEvent({ table: 'items', op: 't', version }));
      for (const id of [...alive]) if (id.startsWith('items:')) alive.delete(id);
      continue;
    }
    const table = random() < 0.7 ? 'items' : 'order_lines';
    const n = Math.floor(random() * keysPerTable);
    const key: Row = table === 'items' ? { id: n } : { order_id: `${9_000_000_000_000_000_000n + BigInt(n % 7)}`, line: n };
    const id = `${table}:${keyString(key)}`;
    if (alive.has(id) && random() < 0.2) {
      events.push(makeEvent({ table, key, op: 'd', version }));
      alive.delete(id);
      continue;
    }
    const after = rowFor(table, key, i, random);
    const event = makeEvent({ table, key, op: alive.has(id) ? 'u' : 'c', after, version });
    if (table === 'items' && alive.has(id) && random() < toastRate) {
      delete after.doc;
      event.unchanged = ['doc'];
    }
    events.push(event);
    alive.add(id);
  }
  return events;
}

/** What a reader must see: `table:key` → row, unchanged columns keeping their previous value. */
export function finalRows(events: readonly ChangeEvent[]): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const e of events) {
    if (e.op === 't') {
      for (const id of [...rows.keys()]) if (id.startsWith(`${e.source.table}:`)) rows.delete(id);
      continue;
    }
    const id = `${e.source.table}:${keyString(e.key)}`;
    if (e.op === 'd') {
      rows.delete(id);
      continue;
    }
    const previous = rows.get(id);
    const row: Row = { ...e.after };
    for (const column of e.unchanged ?? []) if (previous && column in previous) row[column] = previous[column];
    rows.set(id, row);
  }
  return rows;
}

/**
 * A reordering the log allows: each row's changes keep their order (they share
 * a partition), rows interleave at random. A truncate lands anywhere: the
 * source appends it to every partition, so its place relative to other rows'
 * changes differs by partition; sinks judge it by version, not by arrival.
 */
export function shuffleWithinKeyOrder(events: readonly ChangeEvent[], random: Random): ChangeEvent[] {
  const queues = new Map<string, ChangeEvent[]>();
  events.forEach((e, i) => {
    const id = e.op === 't' ? `truncate ${i}` : `${e.source.table}:${keyString(e.key)}`;
    queues.set(id, [...(queues.get(id) ?? []), e]);
  });
  const lists = [...queues.values()];
  const out: ChangeEvent[] = [];
  while (lists.length) {
    const pick = Math.floor(random() * lists.length);
    out.push(lists[pick].shift()!);
    if (lists[pick].length === 0) lists.splice(pick, 1);
  }
  return out;
}

export function asRecords(events: readonly ChangeEvent[], partition = 0, firstOffset = 0): LogRecord[] {
  return events.map((event, i) => ({ partition, offset: firstOffset + i, event }));
}

/** Splits records into batches of random sizes between 1 and `max`. */
export function randomBatches<T>(items: readonly T[], max: number, random: Random): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; ) {
    const size = 1 + Math.floor(random() * max);
    batches.push(items.slice(i, i + size));
    i += size;
  }
  return batches;
}
