import { roughEventBytes } from '../../core/event/rough-size';

/**
 * Rows per snapshot chunk unless configured (`snapshot.chunkSize`), and bytes
 * of row data a snapshot or resync chunk aims at. Small on purpose: a chunk's
 * rows, events and queued batch live until it is appended, and with V8's young
 * generation bounded (core/runtime/gc-tuning.ts) a bigger chunk outlives the
 * scavenges and is copied into the old generation, which then has to be
 * collected. Measured (snapshot → log, 1M rows of 5 columns, alternating
 * runs): 10,000 rows per chunk 60–72k rows/s with the collector at 42% of the
 * CPU, 2,000 rows 111–125k rows/s at 22% (1,000: 106–114k); rows of 10 KB read
 * ~400 at a time (a 4 MiB target) peaked at 359 MB, 100 at a time at 122–128 MB,
 * as fast.
 */
export const DEFAULT_CHUNK_ROWS = 2_000;
export const CHUNK_TARGET_BYTES = 1024 * 1024;

/** Events of a chunk whose size is measured (a larger chunk's are sampled evenly). */
const SAMPLE = 256;

/**
 * Rows per chunk, bounded by bytes as well as by the configured count: a
 * table of 10 KB rows read 10,000 at a time holds 100 MB per chunk, several
 * times over (driver rows, events, the queued batch, each parallel reader).
 * After each chunk the next one's row count follows the average row size
 * seen so far, never above `maxRows` and never below one row.
 */
export class ChunkSizer {
  private rows = 0;
  private bytes = 0;

  constructor(private readonly maxRows: number, private readonly targetBytes = CHUNK_TARGET_BYTES) {}

  /** Rows to ask for in the next chunk. */
  next(): number {
    if (this.rows === 0 || this.bytes === 0) return this.maxRows;
    const perRow = this.bytes / this.rows;
    return Math.max(1, Math.min(this.maxRows, Math.floor(this.targetBytes / perRow)));
  }

  /**
   * Records the events of a chunk just read. A large chunk is sized from an
   * even sample of its events (SAMPLE of them, first and last included):
   * walking every value of 10,000 events costs as much as building them.
   */
  observe(events: ReadonlyArray<{ before: unknown; after: unknown }>): void {
    const n = events.length;
    if (n === 0) return;
    if (n <= SAMPLE) {
      for (const event of events) this.bytes += roughEventBytes(event);
    } else {
      let sampled = 0;
      for (let i = 0; i < SAMPLE; i++) sampled += roughEventBytes(events[Math.round((i * (n - 1)) / (SAMPLE - 1))]);
      this.bytes += (sampled / SAMPLE) * n;
    }
    this.rows += n;
  }
}
