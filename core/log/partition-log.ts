import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LogRecord } from './change-log';
import { fsyncDir } from '../fs/durable-fs';
import { reclaimAfterLargeRecord } from './large-record-gc';
import { frameLengthAt, stampFrameAt } from './record-codec';
import { Segment, segmentFileName } from './segment';
import { finishInterruptedSwaps } from './segment-swap';

/** One read() returns at most about this many bytes of records (at least one record). */
export const MAX_READ_BYTES = 4 * 1024 * 1024;

export interface PartitionLogOptions {
  /** A segment is sealed and a new one started once it holds this many bytes. */
  segmentBytes: number;
  /** Bytes between offset-index entries. */
  indexIntervalBytes: number;
  /** Small appends to the active segment are durable when written (O_DSYNC: see Segment.useSyncedAppends). */
  syncedAppends?: boolean;
}

export interface PartitionRead {
  records: LogRecord[];
  /** Where the next read continues: past the last record, or past a gap left by compaction. */
  nextOffset: number;
  /** Bytes of the records' frames. */
  bytes?: number;
  /** Set, with no records, when the next record's frame is this long and the read was asked to refuse it (ReadOptions). */
  refusedBytes?: number;
}

export interface ReadOptions {
  /** The consumer reading (FileLog.consume): its batches are shared with the log's other consumers (recent-reads.ts). */
  consumer?: string;
  /** A next record whose frame is this long or longer is not read: the read returns `refusedBytes` instead. */
  refuseFrom?: number;
}

type Waiter = { offset: number; resolve: () => void };

/**
 * One partition of the file log: a directory of segment files, the last one
 * active. Appended bytes are written past the published end and become
 * readable only through publish(), after the writer synced them, so readers
 * never see records that are not durable. Segments before the active one are
 * sealed; only they are ever rewritten (by the compactor, via replace()).
 */
export class PartitionLog {
  private segments: Segment[];
  private end: number;
  /** Lengths of the frames written to the active segment but not yet published (offsets end, end + 1, ...). */
  private pending: number[] = [];
  private pendingBytes = 0;
  private readonly waiters = new Set<Waiter>();
  private readonly reads = new Set<Promise<unknown>>();

  private constructor(
    readonly partition: number,
    readonly dir: string,
    private readonly options: PartitionLogOptions,
    segments: Segment[],
    end: number,
  ) {
    this.segments = segments;
    this.end = end;
  }

  static async open(partition: number, dir: string, options: PartitionLogOptions): Promise<PartitionLog> {
    await fs.mkdir(dir, { recursive: true });
    await finishInterruptedSwaps(dir);
    const bases = (await fs.readdir(dir))
      .filter((name) => /^\d{20}\.log$/.test(name))
      .map((name) => Number(name.slice(0, 20)))
      .sort((a, b) => a - b);
    if (bases.length === 0) bases.push(0);
    const segments: Segment[] = [];
    let end = 0;
    try {
      for (let i = 0; i < bases.length; i++) {
        const sealed = i < bases.length - 1;
        const opened = await Segment.open(partition, dir, bases[i], { intervalBytes: options.indexIntervalBytes, sealed });
        segments.push(opened.segment);
        if (!sealed) end = opened.lastOffset === undefined ? bases[i] : opened.lastOffset + 1;
      }
      if (options.syncedAppends) await segments[segments.length - 1].useSyncedAppends();
    } catch (err) {
      await Promise.allSettled(segments.map((s) => s.close()));
      throw err;
    }
    return new PartitionLog(partition, dir, options, segments, end);
  }

  get endOffset(): number {
    return this.end;
  }

  /** The oldest offset held: the base of the first segment (compaction keeps it; only a deleted segment moves it). */
  get startOffset(): number {
    return this.segments[0].base;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1];
  }

  /** Segments no writer touches any more: what the compactor may rewrite. */
  sealedSegments(): readonly Segment[] {
    return this.segments.slice(0, -1);
  }

  /** First offset of the active segment: every offset below it is in a sealed segment. */
  get activeBase(): number {
    return this.active.base;
  }

  /** Bytes on disk over all segments. */
  get bytes(): number {
    return this.segments.reduce((sum, s) => sum + s.size, 0);
  }

  /** Seals the active segment when `incomingBytes` would overfill it, and starts the next one; only between writes. */
  async rollIfFull(incomingBytes: number): Promise<void> {
    const active = this.active;
    if (active.size === 0 || active.size + incomingBytes <= this.options.segmentBytes || this.pending.length > 0) return;
    await active.sync();
    await active.saveIndex();
    const { segment } = await Segment.open(this.partition, this.dir, this.end, { intervalBytes: this.options.indexIntervalBytes, sealed: false });
    if (this.options.syncedAppends) await segment.useSyncedAppends();
    await fsyncDir(this.dir);
    this.segments = [...this.segments, segment];
  }

  /**
   * Stamps offsets on the frames and writes them past the published end; they stay invisible until publish().
   * Each buffer of `runs` holds one or more whole frames back to back; they are written with one
   * vectored write, without joining them first.
   */
  async write(runs: readonly Buffer[], appendTimeMs: number): Promise<void> {
    let offset = this.end + this.pending.length;
    let total = 0;
    for (const run of runs) {
      for (let pos = 0; pos < run.length; ) {
        const length = frameLengthAt(run, pos);
        stampFrameAt(run, pos, length, offset, appendTimeMs);
        this.pending.push(length);
        offset += 1;
        pos += length;
      }
      total += run.length;
    }
    const at = this.active.size + this.pendingBytes;
    this.pendingBytes += total;
    await this.active.writeRuns(runs, at);
  }

  sync(): Promise<void> {
    return this.active.sync();
  }

  /** Makes the written frames readable and wakes waiters. */
  publish(): void {
    const active = this.active;
    for (const length of this.pending) {
      active.index.maybeAdd(this.end, active.size);
      active.size += length;
      this.end += 1;
    }
    this.pending = [];
    this.pendingBytes = 0;
    for (const waiter of this.waiters) if (this.end > waiter.offset) waiter.resolve();
  }

  /** After a failed write or sync: forget unpublished frames and cut the file back to the last published frame (rejects when the cut fails). */
  async discardPending(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    await this.active.truncate(this.active.size);
  }

  /** Up to `max` durable records from `offset` on (skipping compaction gaps), about MAX_READ_BYTES at most. */
  read(offset: number, max: number, options: ReadOptions = {}, maxBytes = MAX_READ_BYTES): Promise<PartitionRead> {
    // The file bytes of a huge record are garbage once decoded: collect them before the record is handed on.
    const reading = this.readRecords(offset, max, maxBytes, options.refuseFrom).then((read) => (reclaimAfterLargeRecord(read.bytes ?? 0), read));
    this.reads.add(reading);
    return reading.finally(() => this.reads.delete(reading));
  }

  private async readRecords(offset: number, max: number, maxBytes: number, refuseFrom = Infinity): Promise<PartitionRead> {
    const end = this.end;
    const segments = this.segments;
    const active = segments[segments.length - 1];
    const activeLimit = active.size; // bytes past it may be mid-append
    if (offset >= end || max <= 0) return { records: [], nextOffset: offset };
    let i = segments.length - 1;
    while (i > 0 && segments[i].base > offset) i -= 1;
    let from = Math.max(offset, segments[i].base);
    const records: LogRecord[] = [];
    let bytes = 0;
    // Held for the whole read, so a compaction swap cannot close a segment under us.
    segments.forEach((s) => s.acquire());
    try {
      for (; i < segments.length; i++) {
        const segment = segments[i];
        const limit = segment === active ? activeLimit : segment.size;
        // After records of an earlier segment, a long frame waits for the next read (it would pass maxBytes).
        const result = await segment.read(from, max - records.length, maxBytes - bytes, limit, records.length === 0 ? refuseFrom : 0);
        if (result.refused !== undefined) {
          if (records.length === 0) return { records, nextOffset: from, bytes, refusedBytes: result.refused };
          return { records, nextOffset: records[records.length - 1].offset + 1, bytes };
        }
        for (const r of result.records) records.push(r);
        bytes += result.bytes;
        if (!result.exhausted || records.length >= max || bytes >= maxBytes) {
          return { records, nextOffset: records.length > 0 ? records[records.length - 1].offset + 1 : from, bytes };
        }
        if (i + 1 < segments.length) from = segments[i + 1].base;
      }
    } finally {
      segments.forEach((s) => s.release());
    }
    return { records, nextOffset: end, bytes };
  }

  /** Resolves once a record at `offset` or later is readable, or when `signal` aborts or the log closes. */
  waitFor(offset: number, signal: AbortSignal): Promise<void> {
    if (this.end > offset || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter: Waiter = {
        offset,
        resolve: () => {
          this.waiters.delete(waiter);
          signal.removeEventListener('abort', waiter.resolve);
          resolve();
        },
      };
      this.waiters.add(waiter);
      signal.addEventListener('abort', waiter.resolve, { once: true });
    });
  }

  /** Swaps compacted output in for `old` (consecutive sealed segments); readers of `old` finish first. */
  replace(old: readonly Segment[], replacement: Segment | undefined): void {
    const first = this.segments.indexOf(old[0]);
    if (first < 0 || old.some((s, k) => this.segments[first + k] !== s) || first + old.length >= this.segments.length) {
      throw new Error(`file-log: partition ${this.partition}: compaction tried to replace segments that are no longer sealed and consecutive`);
    }
    const next = [...this.segments];
    next.splice(first, old.length, ...(replacement ? [replacement] : []));
    this.segments = next;
    old.forEach((s) => s.retire());
  }

  async close(): Promise<void> {
    for (const waiter of this.waiters) waiter.resolve();
    await Promise.allSettled([...this.reads]);
    await Promise.all(this.segments.map((s) => s.close()));
  }

  segmentFile(base: number, suffix = '.log'): string {
    return path.join(this.dir, segmentFileName(base, suffix));
  }
}
