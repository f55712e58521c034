import { roughEventBytes } from '../../core/event/rough-size';

/** Bytes of row data one snapshot or resync chunk aims at (the rows, their events and the batch queued for the log). */
export const CHUNK_TARGET_BYTES = 4 * 1024 * 1024;

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
