import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ChangeEvent } from '../event/change-event';
import { Logger } from '../runtime/logger';
import { AppendHint, ChangeLog, ConsumeOptions, LogRecord } from './change-log';
import { CompactionOptions, CompactionStats, Compactor } from './compactor';
import { ConsumerOffsets } from './consumer-offsets';
import { lockDirectory } from '../fs/dir-lock';
import { fsyncDir, readJsonIfExists, writeFileAtomic } from '../fs/durable-fs';
import { upgradePartitionFromFormat1 } from './format-upgrade';
import { DurabilityOptions, freeBytes, GroupCommitWriter } from './group-commit-writer';
import { consumeAllPartitions, ReadAheads } from './partition-consumer';
import { RecentReads } from './recent-reads';
import { PartitionLog, PartitionRead, ReadOptions } from './partition-log';
import { EncodedChunk, encodeChunk } from './append-chunk';
import { LARGE_STRING_CHARS } from './json-pieces';
import { roughEventBytes } from '../event/rough-size';
import { LARGE_RECORD_BYTES, LargeRecordTurns, reclaimAfterLargeRecord } from './large-record-gc';

export interface FileLogOptions {
  dir: string;
  partitions: number;
  /** Roll to a new segment file past this size (default 64 MiB). */
  segmentBytes?: number;
  /** Bytes between offset-index entries (default 8 KiB). */
  indexIntervalBytes?: number;
  durability?: Partial<DurabilityOptions>;
  compaction?: Partial<CompactionOptions>;
  /** Where compaction reports what it did. */
  logger?: Logger;
}

export const FILE_LOG_DEFAULTS = {
  segmentBytes: 64 * 1024 * 1024,
  indexIntervalBytes: 8 * 1024,
  durability: { fsync: 'group', groupCommitMs: 0 } satisfies DurabilityOptions,
  compaction: {
    enabled: true,
    intervalMs: 60_000,
    minDirtyRatio: 0.5,
    tombstoneRetentionMs: 24 * 3600_000,
    maxKeysPerPass: 1_000_000,
  } satisfies CompactionOptions,
};

const FORMAT = 2;


/**
 * The embedded change-event log (docs/architecture.md §1): one directory holding
 *   meta.json                        { "partitions": N, "format": 2 }
 *   partitions/<n>/<base>.log        segment files of framed records (record-codec.ts)
 *   partitions/<n>/<base>.index      offset index of each sealed segment
 *   consumers/<consumer>.json        committed offsets
 * Appends go through one GroupCommitWriter, so their bytes never interleave;
 * records become readable only once durable. A Compactor rewrites sealed
 * segments in the background. The directory is locked to one process.
 */
export class FileLog implements ChangeLog {
  readonly partitions: number;
  /** One writer in call order; a failed group fails all queued behind it, and chunks after a failure are refused. */
  readonly orderedConcurrentAppends = true;
  private readonly dir: string;
  private state: 'new' | 'opening' | 'open' | 'closing' | 'closed' = 'new';
  private files: PartitionLog[] = [];
  private consumers: ConsumerOffsets;
  private writer: GroupCommitWriter | undefined;
  private compactor: Compactor | undefined;
  private closing: Promise<void> | undefined;
  private unlock: (() => Promise<void>) | undefined;
  /** Resolves once the chunked append in progress (if any) has handed all its chunks to the writer. */
  private chunkedTail: Promise<void> | undefined;
  /** Turns of huge records between appends and consumers (memory bounded by bytes, not counts). */
  readonly largeRecords = new LargeRecordTurns();
  readonly readAheads = new ReadAheads();
  /** Batches read by one consumer, handed to the others (recent-reads.ts). */
  private readonly recentReads: RecentReads;

  constructor(private readonly options: FileLogOptions) {
    if (!options.dir) throw new Error('file-log: options.dir is required');
    if (!Number.isInteger(options.partitions) || options.partitions < 1) {
      throw new Error(`file-log: partitions must be a positive integer, got ${options.partitions}`);
    }
    this.dir = path.resolve(options.dir);
    this.partitions = options.partitions;
    this.recentReads = new RecentReads(options.partitions);
    this.consumers = new ConsumerOffsets(path.join(this.dir, 'consumers'), this.partitions);
  }

  async open(): Promise<void> {
    if (this.state !== 'new') throw new Error(`file-log: ${this.dir} was already opened by this FileLog; create a new FileLog to open it again`);
    this.state = 'opening';
    const opened: PartitionLog[] = [];
    const segmentBytes = this.options.segmentBytes ?? FILE_LOG_DEFAULTS.segmentBytes;
    const indexIntervalBytes = this.options.indexIntervalBytes ?? FILE_LOG_DEFAULTS.indexIntervalBytes;
    const durability = { ...FILE_LOG_DEFAULTS.durability, ...this.options.durability };
    const syncedAppends = durability.fsync !== 'none';
    try {
      await fs.mkdir(this.dir, { recursive: true });
      this.unlock = await lockDirectory(this.dir, 'file-log:');
      const partitionsDir = path.join(this.dir, 'partitions');
      await this.checkMeta(partitionsDir);
      await fs.mkdir(path.join(this.dir, 'consumers'), { recursive: true });
      await Promise.all(
        Array.from({ length: this.partitions }, async (_, p) => {
          opened[p] = await PartitionLog.open(p, path.join(partitionsDir, String(p)), { segmentBytes, indexIntervalBytes, syncedAppends });
        }),
      );
      // New files and directories must survive a crash as much as the data in them.
      await Promise.all(opened.map((f) => fsyncDir(f.dir)));
      await fsyncDir(partitionsDir);
      await fsyncDir(this.dir);
      if (this.closing) throw new Error(`file-log: ${this.dir} was closed while opening`);
      this.files = opened;
      this.writer = new GroupCommitWriter(opened, this.dir, durability);
      this.compactor = new Compactor(
        opened,
        { ...FILE_LOG_DEFAULTS.compaction, ...this.options.compaction, segmentBytes },
        () => this.consumers.lowestCommitted(),
        this.options.logger,
      );
      this.compactor.start();
      this.state = 'open';
    } catch (err) {
      await Promise.allSettled(opened.filter(Boolean).map((f) => f.close()));
      await this.unlock?.();
      this.unlock = undefined;
      if (!this.closing) this.state = 'new';
      throw err;
    }
  }

  /** The partition count is fixed at creation: changing it would move rows between partitions. */
  private async checkMeta(partitionsDir: string): Promise<void> {
    const file = path.join(this.dir, 'meta.json');
    const meta = (await readJsonIfExists(file)) as { partitions?: unknown; format?: unknown } | undefined;
    const write = () => writeFileAtomic(file, `${JSON.stringify({ partitions: this.partitions, format: FORMAT })}\n`);
    if (meta === undefined) return write();
    if (meta.partitions !== this.partitions) {
      throw new Error(
        `file-log: ${this.dir} was created with ${meta.partitions} partitions but is being opened with ${this.partitions}; ` +
          `changing the count would move rows between partitions and break per-row order. ` +
          `Configure partitions: ${meta.partitions}, or rebuild into a new directory`,
      );
    }
    if (meta.format === 1) {
      // Written by the first release: one segment per partition, offsets implied by position.
      for (let p = 0; p < this.partitions; p++) await upgradePartitionFromFormat1(path.join(partitionsDir, String(p)));
      return write();
    }
    if (meta.format !== FORMAT) {
      throw new Error(`file-log: ${file} has format ${JSON.stringify(meta.format)}; this version reads formats 1 and ${FORMAT} only`);
    }
  }

  /**
   * Appends in call order. Events are encoded now (a bad event fails its own
   * append before anything is written), in chunks of about APPEND_CHUNK_BYTES:
   * a larger append (rows with 50 MB values) hands its chunks to the writer
   * one after the other, holding at most two in memory, and later appends wait
   * until all of its chunks are handed over.
   */
  append(events: readonly ChangeEvent[], hint?: AppendHint): Promise<void> {
    let first: EncodedChunk | undefined;
    let large = false;
    // Without a hint every event is measured here (once); with one, only an append holding a big row is.
    let mayBeLarge = true;
    try {
      this.assertOpen();
      const largest = hint?.largestEventBytes ?? events.reduce((max, e) => Math.max(max, roughEventBytes(e)), 0);
      large = largest >= LARGE_RECORD_BYTES;
      mayBeLarge = largest >= LARGE_STRING_CHARS;
      if (!large) first = encodeChunk(events, 0, this.partitions, mayBeLarge);
    } catch (error) {
      return Promise.reject(error);
    }
    if (first && first.next >= events.length && !this.chunkedTail) {
      const bytes = first.bytes;
      return this.writer!.submit(first.frames, bytes).then(() => reclaimAfterLargeRecord(bytes));
    }
    const before = this.chunkedTail;
    // A chunk handed over after an earlier append failed would land after records that never did: refuse it.
    const failuresAtCall = this.writer!.failures;
    let handedOver: () => void = () => undefined;
    const tail = new Promise<void>((resolve) => (handedOver = resolve));
    this.chunkedTail = tail;
    const run = async () => {
      let durable: Promise<void> | undefined;
      let endTurn: (() => void) | undefined;
      try {
        try {
          await before;
          // A huge row is encoded only once no other huge record is in memory (see LargeRecordTurns).
          if (large) endTurn = await this.largeRecords.exclusive();
          for (let chunk = first ?? encodeChunk(events, 0, this.partitions, mayBeLarge); ; ) {
            const bytes = chunk.bytes;
            if (this.writer!.failures !== failuresAtCall) {
              throw new Error(`file-log: an earlier append failed before this one was written, so nothing of it was: ${this.writer!.lastFailure?.message}`);
            }
            const submitted = this.writer!.submit(chunk.frames, bytes).then(() => reclaimAfterLargeRecord(bytes));
            submitted.catch(() => undefined);
            if (durable) await durable; // the previous chunk: at most two chunks alive
            durable = submitted;
            if (chunk.next >= events.length) break;
            chunk = encodeChunk(events, chunk.next, this.partitions, mayBeLarge);
          }
        } finally {
          handedOver();
          if (this.chunkedTail === tail) this.chunkedTail = undefined;
        }
        await durable;
      } finally {
        endTurn?.();
      }
    };
    return run();
  }

  /** Up to `maxRecords` records of `partition` from `offset` on (skipping compaction gaps); [] when none yet. */
  async read(partition: number, offset: number, maxRecords: number): Promise<LogRecord[]> {
    return (await this.readBatch(partition, offset, maxRecords)).records;
  }

  /** Like read(), plus where the next read continues (past any gap after the last record). */
  async readBatch(partition: number, offset: number, maxRecords: number, options: ReadOptions = {}): Promise<PartitionRead> {
    this.assertOpen();
    this.checkPartition(partition);
    if (!Number.isInteger(offset) || offset < 0) {
      throw new Error(`file-log: cannot read partition ${partition} at offset ${offset}: offsets are integers from 0`);
    }
    if (!Number.isInteger(maxRecords) || maxRecords < 0) {
      throw new Error(`file-log: maxRecords must be a non-negative integer, got ${maxRecords}`);
    }
    const { consumer } = options;
    if (consumer === undefined) return this.files[partition].read(offset, maxRecords, options);
    const shared = this.recentReads.take(partition, consumer, offset, maxRecords);
    const read = shared && (await shared);
    if (read) return read;
    return this.recentReads.share(partition, consumer, offset, this.files[partition].read(offset, maxRecords, options));
  }

  async endOffsets(): Promise<number[]> {
    this.assertOpen();
    return this.files.map((f) => f.endOffset);
  }

  /** Bytes available on the file system holding the log (undefined when unknown). */
  diskFreeBytes(): Promise<number | undefined> {
    return freeBytes(this.dir);
  }

  /** The oldest offset `partition` holds and its end offset. */
  heldOffsets(partition: number): { oldest: number; end: number } {
    this.assertOpen();
    this.checkPartition(partition);
    const file = this.files[partition];
    return { oldest: file.startOffset, end: file.endOffset };
  }

  /** Resolves once `partition` holds a record at `offset` or later, or when `signal` aborts. */
  async waitForAppend(partition: number, offset: number, signal: AbortSignal): Promise<void> {
    this.assertOpen();
    this.checkPartition(partition);
    return this.files[partition].waitFor(offset, signal);
  }

  async committedOffsets(consumer: string): Promise<number[]> {
    this.assertOpen();
    return this.consumers.get(consumer);
  }

  async commit(consumer: string, partition: number, nextOffset: number): Promise<void> {
    this.assertOpen();
    ConsumerOffsets.validateName(consumer);
    this.checkPartition(partition);
    const end = this.files[partition].endOffset;
    if (!Number.isInteger(nextOffset) || nextOffset < 0 || nextOffset > end) {
      throw new Error(
        `file-log: consumer "${consumer}" cannot commit offset ${nextOffset} on partition ${partition}: ` +
          `it must be an integer from 0 to the partition's end offset ${end} (the next offset to read)`,
      );
    }
    return this.consumers.set(consumer, partition, nextOffset);
  }

  consume(options: ConsumeOptions): Promise<void> {
    this.assertOpen();
    ConsumerOffsets.validateName(options.consumer);
    const leave = this.recentReads.join(options.consumer);
    return consumeAllPartitions(this, options).finally(leave);
  }

  withCompactionHeld<T>(work: () => Promise<T>): Promise<T> {
    return this.compactor ? this.compactor.holdWhile(work) : work();
  }

  /** Compacts every partition now, whatever its dirty ratio; resolves with what it removed. */
  compact(): Promise<CompactionStats> {
    this.assertOpen();
    return this.compactor!.compactNow();
  }

  /** Bytes of segment files per partition. */
  sizes(): number[] {
    this.assertOpen();
    return this.files.map((f) => f.bytes);
  }

  /** Waits for queued appends and commits, then closes the files. Calling it again waits for the same close. */
  close(): Promise<void> {
    this.closing ??= this.closeFiles();
    return this.closing;
  }

  private async closeFiles(): Promise<void> {
    const wasOpen = this.state === 'open';
    this.state = 'closing';
    if (wasOpen) {
      await this.compactor!.stop();
      await this.writer!.idle();
      await this.consumers.idle();
      await Promise.all(this.files.map((f) => f.close()));
    }
    await this.unlock?.();
    this.unlock = undefined;
    this.state = 'closed';
  }

  private assertOpen(): void {
    if (this.state === 'open') return;
    if (this.state === 'closing' || this.state === 'closed') {
      throw new Error(`file-log: ${this.dir} is closed; create a new FileLog and open() it to use the log again`);
    }
    throw new Error(`file-log: ${this.dir} is not open; call open() first`);
  }

  private checkPartition(partition: number): void {
    if (!Number.isInteger(partition) || partition < 0 || partition >= this.partitions) {
      throw new Error(`file-log: partition ${partition} does not exist in ${this.dir}; partitions are 0 to ${this.partitions - 1}`);
    }
  }
}
