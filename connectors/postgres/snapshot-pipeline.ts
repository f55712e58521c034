import { Client } from 'pg';
import { ChunkSizer } from '../shared/chunk-sizer';
import { CapturedTable } from './slot';
import { chunkEndKey, ChunkRange, ChunkRow, Field, keyIndexes, lockForReading, readChunk } from './snapshot-chunks';

type Rows = ChunkRow[];

interface InFlight {
  range: ChunkRange;
  reader: Client;
  rows: Promise<Rows>;
}

export interface ChunkPipelineOptions {
  /** The table's own reader: reads chunks, and finds where the next ones end. */
  lead: Client;
  /** Readers with no table left to read (shared by the snapshot): borrowed to read chunks ahead. */
  idle: Client[];
  table: CapturedTable;
  /** Primary-key columns; without them (ctid order) chunks are read one after the other. */
  key: string[] | undefined;
  fields: Field[];
  /** The last key read before (a resumed snapshot), as text. */
  after: string[] | undefined;
  sizer: ChunkSizer;
}

/**
 * A table's chunks, in key order, read ahead on several connections of the
 * same exported snapshot: while one chunk's events are built and queued, the
 * next ones stream in. Which rows make a chunk does not change: a chunk ahead
 * ends at the key of its `limit`-th row (chunkEndKey), exactly where reading
 * one after the other would have ended it. The chunk that finds fewer rows
 * left than its limit is read without an upper end, and is the last.
 *
 * The first chunk is read alone, so the ChunkSizer knows the row size before
 * several chunks are held at once. Without a primary key, or with no reader
 * to spare, chunks are read one at a time (the order is the same).
 */
export class ChunkPipeline {
  private readonly queue: InFlight[] = [];
  private readonly borrowed: Client[] = [];
  private after: string[] | undefined;
  /** A chunk without an upper end is in flight (or was the last): the next one starts where it ends. */
  private blocked = false;
  private observed = false;
  /** A reader could not get the table's lock (DDL waiting on it): no more borrowing for this table. */
  private noBorrowing = false;
  private planning: Promise<void> | undefined;
  private failure: unknown;
  private closed = false;

  private readonly keyAt: number[];

  constructor(private readonly options: ChunkPipelineOptions) {
    this.after = options.after;
    this.keyAt = keyIndexes(options.fields, options.key);
  }

  /** The next chunk in key order: its rows (column → text) and the range they were read from. */
  async next(): Promise<{ rows: Rows; range: ChunkRange }> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      this.plan();
      if (this.queue.length > 0) break;
      if (!this.planning) throw new Error(`internal: snapshot of ${this.options.table.schema}.${this.options.table.table} has no chunk to read after ${JSON.stringify(this.after)}`);
      await this.planning;
    }
    const head = this.queue.shift()!;
    const rows = await head.rows;
    if (!head.range.upto && head.range.limit !== undefined && rows.length >= head.range.limit && rows.length > 0) {
      this.after = this.keyOf(rows[rows.length - 1]);
      this.blocked = false;
    }
    this.plan();
    return { rows, range: head.range };
  }

  /** The events of a chunk just read: sizes the chunks after it. */
  observe(events: ReadonlyArray<{ before: unknown; after: unknown }>): void {
    this.options.sizer.observe(events);
    this.observed = true;
  }

  /** The table is finished (or failed): borrowed readers go back to the idle ones unless a read is still running on them. */
  close(): void {
    this.closed = true;
    for (const chunk of this.queue) chunk.rows.catch(() => undefined);
    if (this.queue.length === 0 && !this.planning) this.options.idle.push(...this.borrowed.splice(0));
  }

  private plan(): void {
    if (this.planning || this.blocked || this.closed || this.failure !== undefined) return;
    this.planning = this.fill()
      .catch((error: unknown) => void (this.failure = error))
      .finally(() => (this.planning = undefined));
  }

  private async fill(): Promise<void> {
    const { key, lead, table } = this.options;
    while (!this.blocked && !this.closed) {
      const limit = this.options.sizer.next();
      if (key && this.observed) await this.borrow();
      if (!key || !this.observed || this.borrowed.length === 0) {
        // One at a time: the chunk's own end decides where the next one starts.
        if (this.queue.length === 0) this.dispatch({ after: this.after, limit });
        this.blocked = this.queue.length > 0;
        return;
      }
      // Chunks ahead of the one being turned into events: one per borrowed reader, so parallelism N holds N chunks at most.
      if (this.queue.length >= this.borrowed.length) return;
      const upto = await chunkEndKey(lead, table, key, this.after, limit);
      if (this.closed) return;
      if (!upto) {
        this.dispatch({ after: this.after, limit });
        this.blocked = true;
        return;
      }
      this.dispatch({ after: this.after, upto, limit });
      this.after = upto;
    }
  }

  private async borrow(): Promise<void> {
    const { idle, table } = this.options;
    while (!this.noBorrowing && !this.closed && idle.length > 0) {
      const reader = idle.pop()!;
      if (await lockForReading(reader, table)) this.borrowed.push(reader);
      else {
        idle.push(reader);
        this.noBorrowing = true;
      }
    }
  }

  /** Starts reading a chunk on the reader with the fewest chunks queued (a borrowed one on a tie, keeping the lead free to plan). */
  private dispatch(range: ChunkRange): void {
    const readers = [...this.borrowed, this.options.lead];
    const load = (reader: Client) => this.queue.filter((c) => c.reader === reader).length;
    const reader = readers.reduce((best, r) => (load(r) < load(best) ? r : best));
    const rows = readChunk(reader, this.options.table, this.options.key, this.options.fields, range);
    rows.catch(() => undefined); // awaited in order by next(); a failure ahead must not go unhandled meanwhile
    this.queue.push({ range, reader, rows });
  }

  /** A row's key as text, where the next chunk starts. */
  keyOf(row: ChunkRow): string[] {
    return this.keyAt.map((i) => row[i] as string);
  }
}
