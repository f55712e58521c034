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
