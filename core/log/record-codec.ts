import { crc32 } from 'node:zlib';
import { ChangeEvent } from '../event/change-event';
import { jsonPieces, LARGE_STRING_CHARS, parseJsonBuffer } from './json-pieces';
import { compactionKeyOf } from './log-keys';

/**
 * Framing of one record in a segment file (format 2):
 *   [u32 BE body length][u32 BE crc32 of body]
 *   body = [u64 offset][u64 append time ms][u8 attributes][u8 version length][u16 key length]
 *          [version (ASCII)][compaction key (UTF-8)][payload = UTF-8 JSON of the ChangeEvent]
 * Offsets are stored, not implied by position, so compacted segments keep the
 * original offsets with gaps. Version and key sit outside the JSON so the
 * compactor never parses payloads. The checksum tells a complete record from a
 * torn or corrupt one after a crash.
 */
export const PREFIX_BYTES = 8;
const FIXED_BODY_BYTES = 20;
export const FRAME_OVERHEAD = PREFIX_BYTES + FIXED_BODY_BYTES;

export const ATTR_DELETE = 1;
export const ATTR_TRUNCATE = 2;

/**
 * Largest body accepted. A length above this read back from disk is garbage
 * (a torn header), not a record, so recovery stops on it instead of trying to
 * read gigabytes.
 */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/**
 * The frame of one event with offset and time left blank: stampFrame() fills
 * them in (and the checksum) when the writer knows the record's offset.
 */
export function encodeRecord(event: ChangeEvent): Buffer {
  const payload = jsonPieces(event);
  const key = compactionKeyOf(event);
  const version = event.source.version ?? '';
  // Written straight into the frame: no intermediate buffers (appends are CPU bound on encoding).
  const payloadBytes = payload.bytes;
  const keyBytes = Buffer.byteLength(key, 'utf8');
  const versionBytes = Buffer.byteLength(version, 'latin1');
  const bodyLength = FIXED_BODY_BYTES + versionBytes + keyBytes + payloadBytes;
  if (bodyLength > MAX_PAYLOAD_BYTES || keyBytes > 0xffff || versionBytes > 0xff) {
    throw new RangeError(
      `change event of ${event.source.schema}.${event.source.table} (version ${event.source.version}) is ${payloadBytes} bytes ` +
        `once encoded with a ${keyBytes}-byte key; the file log accepts at most ${MAX_PAYLOAD_BYTES} bytes per event and 65535 per key`,
    );
  }
  const frame = Buffer.allocUnsafe(PREFIX_BYTES + bodyLength);
  frame.writeUInt32BE(bodyLength, 0);
  frame.fill(0, 4, 24);
  frame.writeUInt8(event.op === 'd' ? ATTR_DELETE : event.op === 't' ? ATTR_TRUNCATE : 0, 24);
  frame.writeUInt8(versionBytes, 25);
  frame.writeUInt16BE(keyBytes, 26);
  frame.write(version, FRAME_OVERHEAD, 'latin1');
  frame.write(key, FRAME_OVERHEAD + versionBytes, 'utf8');
  let at = FRAME_OVERHEAD + versionBytes + keyBytes;
  for (const piece of payload.pieces) at += frame.write(piece, at, 'utf8');
  return frame;
}

/** Writes the record's offset and append time into a frame from encodeRecord, then its checksum. */
export function stampFrame(frame: Buffer, offset: number, appendTimeMs: number): void {
  stampFrameAt(frame, 0, frame.length, offset, appendTimeMs);
}

/** stampFrame() of the frame at `buf[pos, pos + frameLength)` (a run of frames written back to back). */
export function stampFrameAt(buf: Buffer, pos: number, frameLength: number, offset: number, appendTimeMs: number): void {
  writeU64(buf, pos + 8, offset);
  writeU64(buf, pos + 16, appendTimeMs);
  buf.writeUInt32BE(crc32(buf.subarray(pos + PREFIX_BYTES, pos + frameLength)), pos + 4);
}

/** Length of the frame starting at `pos` of a run written by FrameRunEncoder/encodeRecord (trusted: we wrote it). */
export function frameLengthAt(buf: Buffer, pos: number): number {
  return PREFIX_BYTES + buf.readUInt32BE(pos);
}

/**
 * Encodes frames (as encodeRecord does, offset and time left blank) back to
 * back into one reused scratch buffer: no buffer per record, no separate
 * UTF-8 length pass (the bytes written are the length), and JSON.stringify
 * without a replacer (V8's fast path). Events whose JSON reaches
 * LARGE_STRING_CHARS are refused (add() returns false): encodeRecord() keeps
 * their huge strings out of an extra copy.
 */
export class FrameRunEncoder {
  private buf: Buffer = Buffer.allocUnsafe(SCRATCH_START_BYTES);
  /** Bytes of frames in the scratch buffer. */
  length = 0;

  /** Appends the frame of `event`; false (nothing written) when the event is too large for this path. */
  add(event: ChangeEvent): boolean {
    const text = JSON.stringify(event);
    if (text.length >= LARGE_STRING_CHARS) return false;
    const key = compactionKeyOf(event);
    const version = event.source.version ?? '';
    const start = this.length;
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    this.ensure(start + FRAME_OVERHEAD + version.length + 3 * (key.length + text.length));
    const buf = this.buf;
    buf.fill(0, start + 4, start + 24);
    buf[start + 24] = event.op === 'd' ? ATTR_DELETE : event.op === 't' ? ATTR_TRUNCATE : 0;
    let at = start + FRAME_OVERHEAD;
    const versionBytes = buf.write(version, at, 'latin1');
    at += versionBytes;
    const keyBytes = buf.write(key, at, 'utf8');
    at += keyBytes;
    const payloadBytes = buf.write(text, at, 'utf8');
    at += payloadBytes;
    const bodyLength = at - start - PREFIX_BYTES;
    if (bodyLength > MAX_PAYLOAD_BYTES || keyBytes > 0xffff || version.length > 0xff) {
      throw new RangeError(
        `change event of ${event.source.schema}.${event.source.table} (version ${event.source.version}) is ${payloadBytes} bytes ` +
          `once encoded with a ${keyBytes}-byte key; the file log accepts at most ${MAX_PAYLOAD_BYTES} bytes per event and 65535 per key`,
      );
    }
    buf.writeUInt32BE(bodyLength, start);
    buf[start + 25] = versionBytes;
    buf.writeUInt16BE(keyBytes, start + 26);
    this.length = at;
    return true;
  }

  /** The scratch bytes (valid until the next add() or reset()). */
  bytes(from: number, to: number): Buffer {
    return this.buf.subarray(from, to);
  }

  /**
   * The frames written so far, as a buffer of their own, and an empty scratch:
   * a mostly full scratch is handed over whole (no copy) and replaced, a
   * mostly empty one is copied out and kept.
   */
  takeFrames(): Buffer {
    let frames: Buffer;
    if (2 * this.length >= this.buf.length) {
      frames = this.buf.subarray(0, this.length);
      this.buf = Buffer.allocUnsafe(SCRATCH_START_BYTES);
    } else {
      frames = Buffer.from(this.buf.subarray(0, this.length));
    }
    this.reset();
    return frames;
  }

  reset(): void {
    this.length = 0;
    if (this.buf.length > SCRATCH_KEEP_BYTES) this.buf = Buffer.allocUnsafe(SCRATCH_START_BYTES);
  }

  private ensure(bytes: number): void {
    if (bytes <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(bytes, 2 * this.buf.length));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
}

const SCRATCH_START_BYTES = 256 * 1024;
/** An encoder holding this many bytes of frames hands them over (takeFrames) before it would grow. */
export const RUN_HANDOVER_BYTES = 224 * 1024;
/** A scratch buffer grown past this (an append of many MB) is dropped after use, so an idle log holds little. */
const SCRATCH_KEEP_BYTES = 4 * 1024 * 1024;

/** A valid frame's fields; positions are within the buffer that was checked. */
export interface FrameInfo {
  frameLength: number;
  offset: number;
  appendTimeMs: number;
  attributes: number;
  versionStart: number;
  keyStart: number;
  payloadStart: number;
  payloadLength: number;
}

/** The version string of a checked frame. */
export function frameVersion(buf: Buffer, f: FrameInfo): string {
  return buf.toString('latin1', f.versionStart, f.keyStart);
}

/** The compaction key of a checked frame (see log-keys.ts). */
export function frameKey(buf: Buffer, f: FrameInfo): string {
  return buf.toString('utf8', f.keyStart, f.payloadStart);
}

/** What sits at a position of a buffer holding frames. */
export type FrameCheck =
  | ({ kind: 'ok' } & FrameInfo)
  /** The buffer ends inside the frame: read more (or, at the end of the file, a torn tail). */
  | { kind: 'short'; needed: number; reason: string }
  /** The frame can never be valid: bad length or checksum. */
  | { kind: 'corrupt'; reason: string };

/**
 * Checks the frame starting at `pos` of `buf` without parsing its JSON.
 * `needed` of a short frame is the byte count from `pos` that would hold it whole.
 */
export function checkFrame(buf: Buffer, pos: number, end = buf.length): FrameCheck {
  const available = end - pos;
  if (available < PREFIX_BYTES) {
    return { kind: 'short', needed: PREFIX_BYTES, reason: `only ${available} of the ${PREFIX_BYTES} header bytes are present` };
  }
  const length = buf.readUInt32BE(pos);
  // Zero-filled tails (preallocated blocks after a crash) would otherwise look like records.
  if (length === 0) return { kind: 'corrupt', reason: 'zero-length record (zero-filled bytes)' };
  if (length < FIXED_BODY_BYTES) return { kind: 'corrupt', reason: `record length ${length} is below the ${FIXED_BODY_BYTES}-byte minimum` };
  if (length > MAX_PAYLOAD_BYTES) return { kind: 'corrupt', reason: `record length ${length} exceeds the ${MAX_PAYLOAD_BYTES}-byte maximum` };
  const frameLength = PREFIX_BYTES + length;
  if (available < frameLength) {
    return { kind: 'short', needed: frameLength, reason: `only ${available - PREFIX_BYTES} of the ${length} record bytes are present` };
  }
  const expected = buf.readUInt32BE(pos + 4);
  const actual = crc32(buf.subarray(pos + PREFIX_BYTES, pos + frameLength));
  if (actual !== expected) {
    return { kind: 'corrupt', reason: `crc32 mismatch (stored ${hex(expected)}, computed ${hex(actual)})` };
  }
  const versionLength = buf.readUInt8(pos + 25);
  const keyLength = buf.readUInt16BE(pos + 26);
  const versionStart = pos + FRAME_OVERHEAD;
  const payloadStart = versionStart + versionLength + keyLength;
  if (payloadStart > pos + frameLength) return { kind: 'corrupt', reason: 'version and key lengths exceed the record length' };
  return {
    kind: 'ok',
    frameLength,
    offset: readU64(buf, pos + 8),
    appendTimeMs: readU64(buf, pos + 16),
    attributes: buf.readUInt8(pos + 24),
    versionStart,
    keyStart: versionStart + versionLength,
    payloadStart,
    payloadLength: pos + frameLength - payloadStart,
  };
}

/** The event of a checked frame. */
export function decodePayload(buf: Buffer, payloadStart: number, payloadLength: number): ChangeEvent {
  return parseJsonBuffer(buf, payloadStart, payloadStart + payloadLength) as ChangeEvent;
}

/** Decodes one whole frame; throws if it is not one valid record. */
export function decodeRecord(frame: Buffer): { offset: number; event: ChangeEvent } {
  const check = checkFrame(frame, 0);
  if (check.kind !== 'ok') throw new Error(`not a valid record: ${check.reason}`);
  if (check.frameLength !== frame.length) {
    throw new Error(`not a single record: ${frame.length - check.frameLength} bytes follow the frame`);
  }
  return { offset: check.offset, event: decodePayload(frame, check.payloadStart, check.payloadLength) };
}

// Offsets and times stay below 2^53, so two u32 halves hold them exactly.
function writeU64(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32BE(Math.floor(value / 0x1_0000_0000), at);
  buf.writeUInt32BE(value % 0x1_0000_0000, at + 4);
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}
