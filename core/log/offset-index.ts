import { promises as fs } from 'node:fs';
import { crc32 } from 'node:zlib';
import { writeFileAtomic } from '../fs/durable-fs';

const MAGIC = 0x54574958; // "TWIX"
const HEADER_BYTES = 20; // magic, version, segment bytes, entry count, crc

/**
 * Sparse offset index of one segment: (offset - base, byte position) of a
 * record about every `intervalBytes`, so a read from any offset scans at most
 * that many bytes. Held in typed arrays (8 bytes per entry). A sealed
 * segment's index is saved as `<base>.index`, tagged with the segment's size
 * so a stale or torn index is detected and rebuilt by scanning.
 */
export class OffsetIndex {
  private relOffsets = new Uint32Array(64);
  private positions = new Uint32Array(64);
  private count = 0;
  private lastIndexedPos = -Infinity;

  constructor(readonly base: number, readonly intervalBytes: number) {}

  get entries(): number {
    return this.count;
  }

  /** Offers a record at `pos`; kept when it is at least intervalBytes past the last kept one. */
  maybeAdd(offset: number, pos: number): void {
    if (pos - this.lastIndexedPos < this.intervalBytes) return;
    if (this.count === this.relOffsets.length) this.grow();
    this.relOffsets[this.count] = offset - this.base;
    this.positions[this.count] = pos;
    this.count += 1;
    this.lastIndexedPos = pos;
  }

  /** Drops entries at or past `pos` (after cutting a torn tail or a failed write). */
  truncateTo(pos: number): void {
    while (this.count > 0 && this.positions[this.count - 1] >= pos) this.count -= 1;
    this.lastIndexedPos = this.count > 0 ? this.positions[this.count - 1] : -Infinity;
  }

  /** Byte position of the last indexed record whose offset is at most `offset` (0 when none). */
  lookup(offset: number): { offset: number; pos: number } {
    const rel = offset - this.base;
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.relOffsets[mid] <= rel) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? { offset: this.base, pos: 0 } : { offset: this.base + this.relOffsets[found], pos: this.positions[found] };
  }

  async save(file: string, segmentBytes: number): Promise<void> {
    const buf = Buffer.alloc(HEADER_BYTES + this.count * 8);
    buf.writeUInt32BE(MAGIC, 0);
    buf.writeUInt32BE(1, 4);
    buf.writeUInt32BE(segmentBytes, 8);
    buf.writeUInt32BE(this.count, 12);
    for (let i = 0; i < this.count; i++) {
      buf.writeUInt32BE(this.relOffsets[i], HEADER_BYTES + i * 8);
      buf.writeUInt32BE(this.positions[i], HEADER_BYTES + i * 8 + 4);
    }
    buf.writeUInt32BE(crc32(buf.subarray(HEADER_BYTES)), 16);
    await writeFileAtomic(file, buf);
  }

  /** The saved index of a segment of `segmentBytes`, or undefined when missing, torn or stale. */
  static async load(file: string, base: number, intervalBytes: number, segmentBytes: number): Promise<OffsetIndex | undefined> {
    const buf = await fs.readFile(file).catch(() => undefined);
    if (!buf || buf.length < HEADER_BYTES || buf.readUInt32BE(0) !== MAGIC || buf.readUInt32BE(4) !== 1) return undefined;
    const count = buf.readUInt32BE(12);
    if (buf.readUInt32BE(8) !== segmentBytes || buf.length !== HEADER_BYTES + count * 8) return undefined;
    if (crc32(buf.subarray(HEADER_BYTES)) !== buf.readUInt32BE(16)) return undefined;
    const index = new OffsetIndex(base, intervalBytes);
    for (let i = 0; i < count; i++) {
      if (index.count === index.relOffsets.length) index.grow();
      index.relOffsets[i] = buf.readUInt32BE(HEADER_BYTES + i * 8);
      index.positions[i] = buf.readUInt32BE(HEADER_BYTES + i * 8 + 4);
      index.count += 1;
    }
    index.lastIndexedPos = count > 0 ? index.positions[count - 1] : -Infinity;
    return index;
  }

  private grow(): void {
    const size = this.relOffsets.length * 2;
    const rel = new Uint32Array(size);
    const pos = new Uint32Array(size);
    rel.set(this.relOffsets);
    pos.set(this.positions);
    [this.relOffsets, this.positions] = [rel, pos];
  }
}
