/** A cursor over binlog event bytes (little-endian integers, as the binlog writes them). */
export class BinlogReader {
  constructor(public buffer: Buffer, public offset: number) {}

  skip(n: number): void {
    this.offset += n;
  }

  uint8(): number {
    return this.buffer[this.offset++];
  }

  uint16(): number {
    const b = this.buffer;
    const o = this.offset;
    this.offset += 2;
    return b[o] | (b[o + 1] << 8);
  }

  uint48(): number {
    const value = this.buffer.readUIntLE(this.offset, 6);
    this.offset += 6;
    return value;
  }

  /** A length-encoded integer (251, SQL NULL, reads as 0). */
  lenenc(): number {
    return this.lenencOrNull() ?? 0;
  }

  lenencOrNull(): number | null {
    const first = this.uint8();
    if (first < 251) return first;
    if (first === 251) return null;
    const size = first === 252 ? 2 : first === 253 ? 3 : first === 254 ? 8 : 0;
    if (size === 0) throw new RangeError(`invalid length-encoded integer at ${this.offset - 1}`);
    const value = size === 8 ? this.buffer.readUInt32LE(this.offset) + this.buffer.readUInt32LE(this.offset + 4) * 0x100000000 : this.buffer.readUIntLE(this.offset, size);
    this.offset += size;
    return value;
  }

  bytes(n: number): Buffer {
    if (this.offset + n > this.buffer.length) throw new RangeError(`read of ${n} bytes past the event at ${this.offset}`);
    const out = this.buffer.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  string(n: number): string {
    return this.bytes(n).toString('utf8');
  }
}
