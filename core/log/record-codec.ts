import { crc32 } from 'node:zlib';
import { ChangeEvent } from '../event/change-event';

/**
 * Framing of one record in a segment file:
 *   [u32 BE payload length][u32 BE crc32 of payload][payload = UTF-8 JSON of the ChangeEvent]
 * The length lets a reader skip records without parsing them; the checksum
 * tells a complete record from a torn or corrupted one after a crash.
 */
export const HEADER_BYTES = 8;

/**
 * Largest payload accepted. A length above this read back from disk is
 * garbage (a torn header), not a record, so recovery can stop on it instead
 * of trying to read gigabytes.
 */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** The framed bytes of one event. */
export function encodeRecord(event: ChangeEvent): Buffer {
  const payload = Buffer.from(JSON.stringify(event), 'utf8');
  if (payload.length > MAX_PAYLOAD_BYTES) {
    throw new RangeError(
      `change event of ${event.source.schema}.${event.source.table} is ${payload.length} bytes once encoded; ` +
        `the file log accepts at most ${MAX_PAYLOAD_BYTES} bytes per event`,
    );
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(crc32(payload), 4);
  payload.copy(frame, HEADER_BYTES);
  return frame;
}

/** What sits at a position of a buffer holding frames. */
export type FrameCheck =
  | { kind: 'ok'; payloadStart: number; payloadLength: number; frameLength: number }
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
  if (available < HEADER_BYTES) {
    return { kind: 'short', needed: HEADER_BYTES, reason: `only ${available} of the ${HEADER_BYTES} header bytes are present` };
  }
  const length = buf.readUInt32BE(pos);
  // Zero-filled tails (preallocated blocks after a crash) would pass the crc
  // check with length 0, and a real payload is never empty.
  if (length === 0) return { kind: 'corrupt', reason: 'zero-length record (zero-filled bytes)' };
  if (length > MAX_PAYLOAD_BYTES) return { kind: 'corrupt', reason: `record length ${length} exceeds the ${MAX_PAYLOAD_BYTES}-byte maximum` };
  const frameLength = HEADER_BYTES + length;
  if (available < frameLength) {
    return { kind: 'short', needed: frameLength, reason: `only ${available - HEADER_BYTES} of the ${length} payload bytes are present` };
  }
  const payloadStart = pos + HEADER_BYTES;
  const expected = buf.readUInt32BE(pos + 4);
  const actual = crc32(buf.subarray(payloadStart, payloadStart + length));
  if (actual !== expected) {
    return { kind: 'corrupt', reason: `crc32 mismatch (stored ${hex(expected)}, computed ${hex(actual)})` };
  }
  return { kind: 'ok', payloadStart, payloadLength: length, frameLength };
}

/** The event of a checked frame. */
export function decodePayload(buf: Buffer, payloadStart: number, payloadLength: number): ChangeEvent {
  return JSON.parse(buf.toString('utf8', payloadStart, payloadStart + payloadLength)) as ChangeEvent;
}

/** Decodes one whole frame (as made by encodeRecord); throws if it is not one valid record. */
export function decodeRecord(frame: Buffer): ChangeEvent {
  const check = checkFrame(frame, 0);
  if (check.kind !== 'ok') throw new Error(`not a valid record: ${check.reason}`);
  if (check.frameLength !== frame.length) {
    throw new Error(`not a single record: ${frame.length - check.frameLength} bytes follow the frame`);
  }
  return decodePayload(frame, check.payloadStart, check.payloadLength);
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}
