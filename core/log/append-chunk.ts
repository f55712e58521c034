import { ChangeEvent } from '../event/change-event';
import { LARGE_STRING_CHARS } from './json-pieces';
import { roughEventBytes } from './large-record-gc';
import { partitionsOf } from './partitioner';
import { encodeRecord, FrameRunEncoder } from './record-codec';

/*
 * How FileLog.append turns events into frames: a chunk of an append at a time,
 * ordinary events encoded back to back into one scratch buffer and copied out
 * as one run per partition (written with one writev), an event with huge
 * strings as a frame of its own.
 */

/** An append larger than this is encoded and written in chunks, so its frames are not all in memory at once. */
export const APPEND_CHUNK_BYTES = 8 * 1024 * 1024;

export interface EncodedChunk {
  /** Per partition, runs of whole frames in append order (a run holds one frame or many back to back). */
  frames: Map<number, Buffer[]>;
  bytes: number;
  /** Index of the first event not in this chunk. */
  next: number;
}

const runEncoder = new FrameRunEncoder();
// Per frame in the encoder's scratch: its end and its partition (-1: every partition, a truncate).
const frameEnds: number[] = [];
const framePartitions: number[] = [];

/**
 * Frames of events[from..] per partition, up to about APPEND_CHUNK_BYTES (at least one event).
 * Ordinary events are encoded back to back into one scratch buffer, then copied out as one
 * run per partition; an event with huge strings gets a frame of its own (encodeRecord).
 */
export function encodeChunk(events: readonly ChangeEvent[], from: number, partitions: number, mayBeLarge: boolean): EncodedChunk {
  const frames = new Map<number, Buffer[]>();
  let bytes = 0;
  let i = from;
  runEncoder.reset();
  frameEnds.length = 0;
  framePartitions.length = 0;
  try {
    for (; i < events.length && (i === from || bytes < APPEND_CHUNK_BYTES); i++) {
      const event = events[i];
      const partition = event.op === 't' ? -1 : partitionsOf(event, partitions)[0];
      const copies = partition < 0 ? partitions : 1;
      if (!(mayBeLarge && roughEventBytes(event) >= LARGE_STRING_CHARS) && runEncoder.add(event)) {
        bytes += copies * (runEncoder.length - (frameEnds.length > 0 ? frameEnds[frameEnds.length - 1] : 0));
        frameEnds.push(runEncoder.length);
        framePartitions.push(partition);
        continue;
      }
      flushRuns(frames, partitions);
      const frame = encodeRecord(event);
      for (let p = partition < 0 ? 0 : partition; p < (partition < 0 ? partitions : partition + 1); p++) {
        // Each partition stamps its own offset into the frame: a truncate needs a copy per partition.
        pushRun(frames, p, partition < 0 && p > 0 ? Buffer.from(frame) : frame);
        bytes += frame.length;
      }
    }
    flushRuns(frames, partitions);
  } finally {
    runEncoder.reset();
  }
  return { frames, bytes, next: i };
}

function pushRun(frames: Map<number, Buffer[]>, partition: number, run: Buffer): void {
  const list = frames.get(partition);
  if (list) list.push(run);
  else frames.set(partition, [run]);
}

/** Copies the frames in the scratch buffer out, one run per partition, and empties it. */
function flushRuns(frames: Map<number, Buffer[]>, partitions: number): void {
  const count = frameEnds.length;
  if (count === 0) return;
  const sizes = new Array<number>(partitions).fill(0);
  let single = -2; // the one partition every frame goes to, or -1 when several
  for (let k = 0, start = 0; k < count; start = frameEnds[k], k++) {
    const p = framePartitions[k];
    const length = frameEnds[k] - start;
    if (p < 0) for (let q = 0; q < partitions; q++) sizes[q] += length;
    else sizes[p] += length;
    single = single === -2 ? p : single === p ? p : -1;
  }
  if (single >= 0) {
    pushRun(frames, single, Buffer.from(runEncoder.bytes(0, runEncoder.length)));
  } else {
    const runs: Array<Buffer | undefined> = sizes.map((size) => (size > 0 ? Buffer.allocUnsafe(size) : undefined));
    const filled = new Array<number>(partitions).fill(0);
    const scratch = runEncoder.bytes(0, runEncoder.length);
    for (let k = 0, start = 0; k < count; start = frameEnds[k], k++) {
      const p = framePartitions[k];
      const end = frameEnds[k];
      for (let q = p < 0 ? 0 : p; q < (p < 0 ? partitions : p + 1); q++) filled[q] += scratch.copy(runs[q]!, filled[q], start, end);
    }
    runs.forEach((run, p) => run && pushRun(frames, p, run));
  }
  runEncoder.reset();
  frameEnds.length = 0;
  framePartitions.length = 0;
}
