import { promises as fs } from 'node:fs';
import { checkFrame, FrameInfo } from './record-codec';

/** Files are read in chunks of this size. */
export const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * A valid frame met by a scan: `pos` in the file, `start` in `buf`, fields
 * relative to `buf`. Valid only during the visit (the scan reuses the object).
 */
export type ScannedFrame = FrameInfo & { pos: number; start: number; buf: Buffer };
/** The frame that stopped a scan: torn or corrupt. */
export type BadFrame = { pos: number; reason: string };

/**
 * Walks the frames of a file from byte `pos` up to byte `limit`, reading in
 * chunks, calling `visit` on each valid frame until it returns false.
 * Returns the first bad (torn or corrupt) frame, if any, else the position
 * where the walk stopped. A frame longer than a chunk is read whole only if
 * `admit` (when given) accepts its length; if not, the walk stops before it
 * and `refused` tells its length, so a caller can decline a huge record
 * before its bytes are in memory. With `scratch`, chunks that fit are read
 * into it, again and again (a visitor must keep nothing of `buf` after its
 * visit): a scan of many MB then makes no garbage Buffers for the collector.
 */
export async function scanFrames(
  fh: fs.FileHandle,
  pos: number,
  limit: number,
  visit: (frame: ScannedFrame) => boolean | Promise<boolean>,
  admit?: (frameLength: number) => boolean,
  scratch?: Buffer,
): Promise<{ bad?: BadFrame; stoppedAt: number; refused?: number }> {
  let buf: Buffer = Buffer.alloc(0);
  let bufPos = pos;
  while (pos < limit) {
    let check = checkFrame(buf, pos - bufPos);
    // Reads again when the buffer ends inside the frame: first a chunk, then, once the header tells, the whole frame.
    for (let reads = 0; check.kind === 'short' && reads < 2; reads++) {
      if (admit && check.needed > READ_CHUNK_BYTES && !admit(check.needed)) return { stoppedAt: pos, refused: check.needed };
      buf = await readAt(fh, pos, Math.min(Math.max(READ_CHUNK_BYTES, check.needed), limit - pos), scratch);
      bufPos = pos;
      check = checkFrame(buf, 0);
    }
    if (check.kind !== 'ok') return { bad: { pos, reason: check.reason }, stoppedAt: pos };
    const frame = check as ScannedFrame & { kind: 'ok' };
    frame.pos = pos;
    frame.start = pos - bufPos;
    frame.buf = buf;
    const more = visit(frame);
    if (!(more === true || (more !== false && (await more)))) return { stoppedAt: pos };
    pos += check.frameLength;
  }
  return { stoppedAt: pos };
}

/** `length` bytes of the file from `pos` (fewer at its end), read into `into` when it is big enough. */
export async function readAt(fh: fs.FileHandle, pos: number, length: number, into?: Buffer): Promise<Buffer> {
  const buf = into && into.length >= length ? into : Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await fh.read(buf, filled, length - filled, pos + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buf.subarray(0, filled);
}

export async function writeAt(fh: fs.FileHandle, data: Buffer, pos: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await fh.write(data, done, data.length - done, pos + done);
    done += bytesWritten;
  }
}

/** Largest number of buffers handed to one writev (below every system's IOV_MAX). */
const WRITEV_MAX_BUFFERS = 512;

/** Writes `data` one buffer after the other from byte `pos`, with vectored writes; handles short writes. */
export async function writevAt(fh: fs.FileHandle, data: readonly Buffer[], pos: number): Promise<void> {
  let i = 0;
  let skip = 0; // bytes of data[i] already written
  while (i < data.length) {
    const batch = data.slice(i, i + WRITEV_MAX_BUFFERS);
    if (skip > 0) batch[0] = batch[0].subarray(skip);
    const { bytesWritten } = await fh.writev(batch, pos);
    if (bytesWritten === 0 && batch.some((b) => b.length > 0)) throw new Error(`writev at byte ${pos} wrote nothing`);
    pos += bytesWritten;
    let left = bytesWritten + skip;
    while (i < data.length && left >= data[i].length) {
      left -= data[i].length;
      i += 1;
    }
    skip = left;
  }
}
