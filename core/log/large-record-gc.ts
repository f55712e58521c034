import { collectGarbageNow } from '../runtime/collect-garbage';

/**
 * Records at least this large take exclusive turns (LargeRecordTurns) and are
 * followed by a full garbage collection. 4 MiB, not 16: the fault suite's quick
 * big case (a 200k-row transaction, then three 5 MB rows through three sinks)
 * peaked at 274 / 282 / 266 MB against 299 / 303 / 307 MB on the same seeds,
 * recovering as fast (10.7-11.9 s against 11.2-11.7 s): 5 MB rows no longer pass
 * through every sink at once, and their garbage goes at once.
 */
export const LARGE_RECORD_BYTES = 4 * 1024 * 1024;

/**
 * V8 lets large-object garbage (the JSON text and buffers of a 50 MB row)
 * pile up to its allocation limit, hundreds of MB, before a full collection.
 * After appending or applying a record at least LARGE_RECORD_BYTES long, a
 * full GC returns that memory at once, so rows with huge values keep the
 * process within a few times the row size. Costs a few ms, only for such rows.
 */
export function reclaimAfterLargeRecord(bytes: number): void {
  if (bytes >= LARGE_RECORD_BYTES) collectGarbageNow();
}

/**
 * One huge record at a time in a file log's process: an append of a row of
 * LARGE_RECORD_BYTES or more (from encoding until durable) and a consumer's
 * batch holding one (from reading until applied) take exclusive turns, so a
 * 50 MB row being written and another being applied never add up. Ordinary
 * reads take shared turns: they run side by side (partitions must not queue
 * behind each other's reads: that was milliseconds of latency per batch) and
 * only wait while a huge record is in memory. Turns are granted in the order
 * asked, so a stream of shared turns never starves an exclusive one.
 */
export class LargeRecordTurns {
  private sharedHolders = 0;
  private exclusiveHeld = false;
  private readonly waiting: Array<{ exclusive: boolean; grant: () => void }> = [];

  /** Resolves with the function that ends this turn; other shared turns may run meanwhile. */
  shared(): Promise<() => void> {
    return this.ask(false);
  }

  /** Resolves, once every earlier turn has ended, with the function that ends this one. */
  exclusive(): Promise<() => void> {
    return this.ask(true);
  }

  private ask(exclusive: boolean): Promise<() => void> {
    return new Promise((resolve) => {
      this.waiting.push({ exclusive, grant: () => resolve(this.ender(exclusive)) });
      this.grantWaiting();
    });
  }

  private ender(exclusive: boolean): () => void {
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (exclusive) this.exclusiveHeld = false;
      else this.sharedHolders -= 1;
      this.grantWaiting();
    };
  }

  private grantWaiting(): void {
    while (this.waiting.length > 0 && !this.exclusiveHeld) {
      const next = this.waiting[0];
      if (next.exclusive && this.sharedHolders > 0) return;
      this.waiting.shift();
      if (next.exclusive) this.exclusiveHeld = true;
      else this.sharedHolders += 1;
      next.grant();
    }
  }
}
