import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LogRecord } from './change-log';
import { scanFrames, ScannedFrame, writeAt, writevAt } from './frame-scanner';
import { OffsetIndex } from './offset-index';
import { decodePayload } from './record-codec';

/** Segment files are named by the offset of their first record, zero-padded so they sort. */
export function segmentFileName(baseOffset: number, suffix = '.log'): string {
  return `${String(baseOffset).padStart(20, '0')}${suffix}`;
}

export interface SegmentReadResult {
  records: LogRecord[];
  bytes: number;
  /** True when the read stopped at the limit position (nothing more below it). */
  exhausted: boolean;
  /** The length of the frame that stopped the read, when it was the first and not smaller than `refuseFrom`. */
  refused?: number;
}

/**
 * Bigger writes go through the ordinary handle and the writer's fdatasync, as before: written with O_DSYNC,
 * the bulk appends of a MariaDB source (big transactions) peaked 55 MB higher (322–325 MB against 261–267)
 * at the same speed. The latency gain is for small transactions' appends, far below this.
 */
const SYNCED_WRITE_MAX_BYTES = 256 * 1024;

/**
 * One segment file of a partition: records with offsets from `base` upward
 * (with gaps once compacted), an offset index, and a read hint so sequential
 * reads never search. Readers hold a reference while reading; a segment
 * replaced by compaction is closed once its last reader is done (its file is
 * already unlinked; the open handle keeps the bytes readable).
 */
export class Segment {
  /** Bytes of valid records: everything below is durable (or, for the active segment, published). */
  size: number;
  private hint: { offset: number; pos: number } | undefined;
  private refs = 0;
  private retired = false;
  private closing: Promise<void> | undefined;
  /** A second handle opened with O_DSYNC: appends through it are durable when written (see useSyncedAppends). */
  private syncedFh: fs.FileHandle | undefined;
  /** Bytes written through the ordinary handle since the last sync. */
  private dirty = false;

  private constructor(
    readonly partition: number,
    readonly base: number,
    readonly file: string,
    private readonly fh: fs.FileHandle,
    readonly index: OffsetIndex,
    size: number,
  ) {
    this.size = size;
  }

  /**
   * Opens (creating when missing) the segment `base` of `dir`. A sealed segment
   * with a valid saved index opens without a scan; otherwise the file is
   * scanned, a torn or corrupt tail is cut (it was never acknowledged), and
   * `lastOffset` reports the offset of the last record.
   */
  static async open(
    partition: number,
    dir: string,
    base: number,
    options: { intervalBytes: number; sealed: boolean },
  ): Promise<{ segment: Segment; lastOffset: number | undefined; scanned: boolean }> {
    const file = path.join(dir, segmentFileName(base));
    // Not O_APPEND: positional writes must land at the durable end we track.
    const fh = await fs.open(file, constants.O_RDWR | constants.O_CREAT, 0o644);
    try {
      const fileSize = (await fh.stat()).size;
      const indexFile = path.join(dir, segmentFileName(base, '.index'));
      if (options.sealed) {
        const saved = await OffsetIndex.load(indexFile, base, options.intervalBytes, fileSize);
        if (saved) return { segment: new Segment(partition, base, file, fh, saved, fileSize), lastOffset: undefined, scanned: false };
      }
      const index = new OffsetIndex(base, options.intervalBytes);
      let lastOffset: number | undefined;
      let validEnd = 0;
      let outOfOrder: string | undefined;
      const { bad } = await scanFrames(fh, 0, fileSize, (f) => {
        if (f.offset < base || (lastOffset !== undefined && f.offset <= lastOffset)) {
          outOfOrder = `record offset ${f.offset} does not follow ${lastOffset ?? `the segment base ${base}`}`;
          return false;
        }
        index.maybeAdd(f.offset, f.pos);
        lastOffset = f.offset;
        validEnd = f.pos + f.frameLength;
        return true;
      });
      if (bad || outOfOrder) {
        const reason = bad?.reason ?? outOfOrder;
        // Kafka does the same: everything from the first invalid frame on was
        // never acknowledged (appends resolve only once synced), so it can go.
        await fh.truncate(validEnd);
        await fh.sync();
        console.error(
          `file-log: partition ${partition}: cut a torn record at byte ${validEnd} (offset ${lastOffset === undefined ? base : lastOffset + 1}): ` +
            `${reason}; dropped ${fileSize - validEnd} bytes from ${file}`,
        );
      }
      const segment = new Segment(partition, base, file, fh, index, validEnd);
      if (options.sealed) await segment.saveIndex();
      return { segment, lastOffset, scanned: true };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  /** Writes the index next to the file, so the next open skips the scan. */
  saveIndex(): Promise<void> {
    return this.index.save(path.join(path.dirname(this.file), segmentFileName(this.base, '.index')), this.size);
  }

  /**
   * Records from `fromOffset` (or the first after it, across gaps) below byte
   * `limit`, up to `max` records and about `maxBytes` (at least one record,
   * unless that record's frame is `refuseFrom` bytes or more: then none).
   */
  async read(fromOffset: number, max: number, maxBytes: number, limit: number, refuseFrom = Infinity): Promise<SegmentReadResult> {
    const start = this.hint && this.hint.offset === fromOffset && this.hint.pos <= limit ? this.hint : this.index.lookup(fromOffset);
    const records: LogRecord[] = [];
    let bytes = 0;
    let hint: { offset: number; pos: number } | undefined;
    // A long frame is read only if it is kept: below refuseFrom, and not past maxBytes after other records.
    const admit = (frameLength: number) => frameLength < refuseFrom && (records.length === 0 || bytes + frameLength <= maxBytes);
    const scan = await scanFrames(this.fh, start.pos, limit, (f) => {
      if (f.offset < fromOffset) return true;
      if (records.length >= max || (records.length > 0 && bytes + f.frameLength > maxBytes)) return false;
      records.push({ partition: this.partition, offset: f.offset, event: this.decode(f) });
      bytes += f.frameLength;
      hint = { offset: f.offset + 1, pos: f.pos + f.frameLength };
      return true;
    }, admit);
    const { bad, stoppedAt } = scan;
    if (bad) {
      throw new Error(
        `file-log: partition ${this.partition}: record at byte ${bad.pos} of ${this.file} is unreadable: ${bad.reason}. ` +
          `The file changed after the log was opened; stop the service and reopen the log`,
      );
    }
    if (hint) this.hint = hint;
    const refused = records.length === 0 && scan.refused !== undefined ? scan.refused : undefined;
    return { records, bytes, exhausted: stoppedAt >= limit, ...(refused !== undefined && { refused }) };
  }

  /** Walks every valid frame below `limit` (the compactor's view of the segment). */
  async forEachFrame(limit: number, visit: (f: ScannedFrame) => boolean | Promise<boolean>, scratch?: Buffer): Promise<void> {
    const { bad } = await scanFrames(this.fh, 0, limit, visit, undefined, scratch);
    if (bad) throw new Error(`file-log: partition ${this.partition}: ${this.file} is unreadable at byte ${bad.pos}: ${bad.reason}`);
  }

  private decode(f: ScannedFrame): LogRecord['event'] {
    try {
      return decodePayload(f.buf, f.payloadStart, f.payloadLength);
    } catch (err) {
      throw new Error(`file-log: partition ${this.partition}: record at offset ${f.offset} of ${this.file} is not valid JSON: ${(err as Error).message}`);
    }
  }

  write(data: Buffer, at: number): Promise<void> {
    this.dirty = true;
    return writeAt(this.fh, data, at);
  }

  /**
   * From now on, writeRuns() of up to SYNCED_WRITE_MAX_BYTES goes through a
   * handle opened with O_DSYNC: the write returns once durable, as write +
   * fdatasync would, but in one system call instead of two, each a hop to
   * libuv's thread pool and back, which on a busy event loop costs
   * milliseconds of latency per append. sync() then has nothing left to do
   * unless a bigger write went through the ordinary handle.
   */
  async useSyncedAppends(): Promise<void> {
    this.syncedFh ??= await fs.open(this.file, constants.O_WRONLY | constants.O_DSYNC);
  }

  /** Writes the buffers one after the other from byte `at` (vectored: no joined copy). */
  writeRuns(data: readonly Buffer[], at: number): Promise<void> {
    let bytes = 0;
    for (const buffer of data) bytes += buffer.length;
    const fh = this.syncedFh && bytes <= SYNCED_WRITE_MAX_BYTES ? this.syncedFh : this.fh;
    if (fh === this.fh) this.dirty = true;
    return data.length === 1 ? writeAt(fh, data[0], at) : writevAt(fh, data, at);
  }

  async sync(): Promise<void> {
    if (this.syncedFh && !this.dirty) return;
    this.dirty = false;
    try {
      await this.fh.datasync();
    } catch (error) {
      this.dirty = true; // still not durable: the next sync must not skip it
      throw error;
    }
  }

  /** Cuts unpublished bytes after a failed write, durably: a torn frame must never sit before the next append. */
  async truncate(at: number): Promise<void> {
    if ((await this.fh.stat()).size === at) return;
    await this.fh.truncate(at);
    await this.fh.datasync();
  }

  acquire(): void {
    this.refs += 1;
  }

  release(): void {
    this.refs -= 1;
    if (this.retired && this.refs === 0) void this.close();
  }

  /** Replaced by compaction: close once no reader holds it. */
  retire(): void {
    this.retired = true;
    if (this.refs === 0) void this.close();
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([this.fh.close(), this.syncedFh?.close()]).then(() => undefined, () => undefined);
    return this.closing;
  }
}
