import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Records at least this large are followed by a full garbage collection. */
export const LARGE_RECORD_BYTES = 16 * 1024 * 1024;

let collect: (() => void) | null | undefined;

/**
 * V8 lets large-object garbage (the JSON text and buffers of a 50 MB row)
 * pile up to its allocation limit, hundreds of MB, before a full collection.
 * After appending or applying a record at least LARGE_RECORD_BYTES long, a
 * full GC returns that memory at once, so rows with huge values keep the
 * process within a few times the row size. Costs a few ms, only for such rows.
 */
export function reclaimAfterLargeRecord(bytes: number): void {
  if (bytes < LARGE_RECORD_BYTES) return;
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    } catch {
      collect = null;
    }
  }
  collect?.();
}

/**
 * One huge record at a time in a file log's process: an append of a row of
 * LARGE_RECORD_BYTES or more (from encoding until durable) and a consumer's
 * read (from reading until the batch is applied) take turns, so a 50 MB row
 * being written and another being applied never add up.
 */
export class LargeRecordTurns {
  private tail: Promise<void> = Promise.resolve();

  /** Resolves with the function that ends this turn. */
  async take(): Promise<() => void> {
    const previous = this.tail;
    let end: () => void = () => undefined;
    this.tail = new Promise<void>((resolve) => (end = resolve));
    await previous;
    return end;
  }
}

/** A cheap upper-bound guess of an event's encoded size from its string values (two levels deep), without encoding it. */
export function roughEventBytes(event: { before: unknown; after: unknown }): number {
  const size = (v: unknown, depth: number): number => {
    if (typeof v === 'string') return v.length;
    if (v === null || typeof v !== 'object' || depth > 2) return 16;
    let sum = 0;
    for (const x of Array.isArray(v) ? v : Object.values(v)) sum += size(x, depth + 1) + 8;
    return sum;
  };
  return size(event.before, 0) + size(event.after, 0);
}
