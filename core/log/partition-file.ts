import { constants, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { LogRecord } from './change-log';
import { checkFrame, decodePayload } from './record-codec';

/** Every INDEX_INTERVAL-th record's byte position is kept in memory. */
export const INDEX_INTERVAL = 256;
/** Reads go through the file in chunks of this size. */
export const READ_CHUNK_BYTES = 1024 * 1024;
/** One read() returns at most about this many bytes of records (at least one record). */
export const MAX_READ_BYTES = 4 * 1024 * 1024;

/** Segment files are named by the offset of their first record, zero-padded so they sort. */
export function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.log`;
}

type Waiter = { offset: number; resolve: () => void };
/** A valid frame met by a scan; payload positions are within `buf`. */
type Frame = { pos: number; offset: number; buf: Buffer; payloadStart: number; payloadLength: number; frameLength: number };
/** The frame that stopped a scan: torn or corrupt. */
type BadFrame = { pos: number; offset: number; reason: string };

/**
 * One partition of the file log: a single segment file for now (segment
 * rolling comes later and will live behind this class). Appended bytes are
 * written past the durable end and only become visible through publish(),
 * after the caller has synced them, so readers never see non-durable records.
 */
export class PartitionFile {
  /** Offset the next record gets; every record below it is durable. */
  private end = 0;
  /** Byte position just after the last durable record. */
  private endPos = 0;
  /** index[i] = byte position of record i * INDEX_INTERVAL (sparse, so memory stays small). */
  private readonly index: number[] = [];
  /** Frame lengths written after endPos but not yet published. */
  private pending: number[] = [];
  private pendingBytes = 0;
  private readonly waiters = new Set<Waiter>();
  private readonly reads = new Set<Promise<unknown>>();

  private constructor(
    readonly partition: number,
    readonly file: string,
    private readonly fh: fs.FileHandle,
  ) {}

  static async open(partition: number, dir: string): Promise<PartitionFile> {
    await fs.mkdir(dir, { recursive: true });
    const file = path.join(dir, segmentFileName(0));
    // Not O_APPEND: positional writes must land at the durable end we track.
    const fh = await fs.open(file, constants.O_RDWR | constants.O_CREAT, 0o644);
    const pf = new PartitionFile(partition, file, fh);
    try {
      await pf.recover();
    } catch (err) {
      await fh.close();
      throw err;
    }
    return pf;
  }

  get endOffset(): number {
    return this.end;
  }

  /** Rebuilds index and end from the file; cuts a torn tail left by a crash. */
  private async recover(): Promise<void> {
    const size = (await this.fh.stat()).size;
    const bad = await this.scan(0, 0, size, (f) => {
      if (f.offset % INDEX_INTERVAL === 0) this.index.push(f.pos);
      [this.end, this.endPos] = [f.offset + 1, f.pos + f.frameLength];
      return true;
    });
    if (!bad) return;
    // Kafka does the same: everything from the first invalid frame on was never
    // acknowledged (appends resolve only after fdatasync), so it can go.
    await this.fh.truncate(bad.pos);
    await this.fh.sync();
    console.error(
      `file-log: partition ${this.partition}: cut a torn record at byte ${bad.pos} (offset ${bad.offset}): ` +
        `${bad.reason}; dropped ${size - bad.pos} bytes from ${this.file}`,
    );
  }

  /**
   * Walks frames from byte `pos` (record `offset`) up to byte `limit`, reading
   * in chunks, calling `visit` on each valid frame until it returns false.
   * Returns the first bad (torn or corrupt) frame, if any.
   */
  private async scan(pos: number, offset: number, limit: number, visit: (f: Frame) => boolean): Promise<BadFrame | undefined> {
    let buf: Buffer = Buffer.alloc(0);
    let bufPos = pos;
    while (pos < limit) {
      let check = checkFrame(buf, pos - bufPos);
      if (check.kind === 'short') {
        buf = await this.readAt(pos, Math.min(Math.max(READ_CHUNK_BYTES, check.needed), limit - pos));
        bufPos = pos;
        check = checkFrame(buf, 0);
      }
      if (check.kind !== 'ok') return { pos, offset, reason: check.reason };
      if (!visit({ pos, offset, buf, ...check })) return undefined;
      pos += check.frameLength;
      offset += 1;
    }
    return undefined;
  }

  private async readAt(pos: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.fh.read(buf, filled, length - filled, pos + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buf.subarray(0, filled);
  }

  /** Up to `max` durable records from `offset`, and about MAX_READ_BYTES at most. */
  read(offset: number, max: number): Promise<LogRecord[]> {
    const reading = this.readRecords(offset, max);
    this.reads.add(reading);
    return reading.finally(() => this.reads.delete(reading));
  }

  private async readRecords(offset: number, max: number): Promise<LogRecord[]> {
    if (offset >= this.end || max <= 0) return [];
    const slot = Math.floor(offset / INDEX_INTERVAL);
    const records: LogRecord[] = [];
    let bytes = 0;
    // endPos is captured now: bytes past it may be mid-append.
    const bad = await this.scan(this.index[slot], slot * INDEX_INTERVAL, this.endPos, (f) => {
      if (f.offset < offset) return true;
      records.push({ partition: this.partition, offset: f.offset, event: this.decode(f) });
      bytes += f.frameLength;
      return records.length < max && bytes < MAX_READ_BYTES;
    });
    if (bad) {
      throw new Error(
        `file-log: partition ${this.partition}: record at byte ${bad.pos} (offset ${bad.offset}) of ${this.file} ` +
          `is unreadable: ${bad.reason}. The file changed after the log was opened; stop the service and reopen the log`,
      );
    }
    return records;
  }

  private decode(f: Frame): LogRecord['event'] {
    try {
      return decodePayload(f.buf, f.payloadStart, f.payloadLength);
    } catch (err) {
      throw new Error(`file-log: partition ${this.partition}: record at offset ${f.offset} of ${this.file} is not valid JSON: ${(err as Error).message}`);
    }
  }

  /** Writes frames after the durable end; they stay invisible until publish(). */
  async write(frames: readonly Buffer[]): Promise<void> {
    const data = frames.length === 1 ? frames[0] : Buffer.concat(frames);
    const at = this.endPos + this.pendingBytes;
    for (const frame of frames) this.pending.push(frame.length);
    this.pendingBytes += data.length;
    for (let done = 0; done < data.length; ) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, at + done);
      done += bytesWritten;
    }
  }

  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  /** Makes the synced frames readable and wakes waiters. */
  publish(): void {
    for (const length of this.pending) {
      if (this.end % INDEX_INTERVAL === 0) this.index.push(this.endPos);
      this.end += 1;
      this.endPos += length;
    }
    this.pending = [];
    this.pendingBytes = 0;
    for (const waiter of this.waiters) if (this.end > waiter.offset) waiter.resolve();
  }

  /** After a failed write or sync: forget unpublished frames and cut them (best effort). */
  async discardPending(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    await this.fh.truncate(this.endPos).catch(() => undefined);
  }

  /** Resolves once record `offset` is readable, or when `signal` aborts or the file closes. */
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

  async close(): Promise<void> {
    for (const waiter of this.waiters) waiter.resolve();
    await Promise.allSettled([...this.reads]);
    await this.fh.close();
  }
}
