import { crc32 } from 'node:zlib';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ChangeEvent } from '../event/change-event';
import { fsyncDir } from '../fs/durable-fs';
import { readAt, READ_CHUNK_BYTES } from './frame-scanner';
import { encodeRecord, stampFrame } from './record-codec';
import { segmentFileName } from './segment';

/**
 * Rewrites a format-1 partition (one segment; frames [u32 length][u32 crc][JSON],
 * offsets implied by position) into a format-2 segment with stored offsets,
 * keys and versions. Idempotent per partition: a file that is already
 * format 2 (a crash between partitions) is left alone.
 */
export async function upgradePartitionFromFormat1(dir: string): Promise<number> {
  const file = path.join(dir, segmentFileName(0));
  if (!(await isFormat1(file))) return 0;
  const fh = await fs.open(file, 'r');
  const next = `${file}.tmp`; // removed at open if a crash leaves it
  const out = await fs.open(next, 'w', 0o644);
  let offset = 0;
  try {
    const size = (await fh.stat()).size;
    let pos = 0;
    let buf: Buffer = Buffer.alloc(0);
    let bufPos = 0;
    while (pos + 8 <= size) {
      if (pos + 8 > bufPos + buf.length) [buf, bufPos] = [await readAt(fh, pos, Math.min(READ_CHUNK_BYTES, size - pos)), pos];
      const length = buf.readUInt32BE(pos - bufPos);
      if (length === 0 || pos + 8 + length > size) break; // torn tail: never acknowledged
      if (pos + 8 + length > bufPos + buf.length) [buf, bufPos] = [await readAt(fh, pos, Math.max(READ_CHUNK_BYTES, 8 + length)), pos];
      const payload = buf.subarray(pos - bufPos + 8, pos - bufPos + 8 + length);
      if (crc32(payload) !== buf.readUInt32BE(pos - bufPos + 4)) break;
      const event = JSON.parse(payload.toString('utf8')) as ChangeEvent;
      const frame = encodeRecord(event);
      stampFrame(frame, offset, event.ts_ms);
      await out.write(frame);
      offset += 1;
      pos += 8 + length;
    }
    await out.sync();
  } finally {
    await out.close();
    await fh.close();
  }
  await fs.rename(next, file);
  await fsyncDir(dir);
  return offset;
}

/** A format-1 payload is JSON ("{"); a format-2 body starts with the offset's high byte (0). */
async function isFormat1(file: string): Promise<boolean> {
  const fh = await fs.open(file, 'r').catch(() => undefined);
  if (!fh) return false;
  try {
    const first = await readAt(fh, 0, 9);
    return first.length >= 9 && first[8] === 0x7b;
  } finally {
    await fh.close();
  }
}
