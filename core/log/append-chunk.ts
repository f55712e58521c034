import { ChangeEvent } from '../event/change-event';
import { LARGE_STRING_CHARS } from './json-pieces';
import { roughEventBytes } from '../event/rough-size';
import { partitionOfRow } from './partitioner';
import { encodeRecord, FrameRunEncoder, RUN_HANDOVER_BYTES } from './record-codec';

/*
 * How FileLog.append turns events into frames: a chunk of an append at a time,
 * ordinary events encoded back to back into a scratch buffer per partition
 * (handed over as one run once it holds RUN_HANDOVER_BYTES, so a scratch never
 * grows and is never copied), an event with huge strings or a truncate (which
 * goes to every partition) as a frame of its own.
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

/** One scratch encoder per partition, reused across appends (encodeChunk is synchronous). */
const encoders: FrameRunEncoder[] = [];

/**
 * Frames of events[from..] per partition, up to about APPEND_CHUNK_BYTES (at least one event).
 */
export function encodeChunk(events: readonly ChangeEvent[], from: number, partitions: number, mayBeLarge: boolean): EncodedChunk {
  const frames = new Map<number, Buffer[]>();
  while (encoders.length < partitions) encoders.push(new FrameRunEncoder());
  let bytes = 0;
  let i = from;
  try {
    for (; i < events.length && (i === from || bytes < APPEND_CHUNK_BYTES); i++) {
      const event = events[i];
      const partition = event.op === 't' ? -1 : partitionOfRow(event, partitions);
      if (partition >= 0 && !(mayBeLarge && roughEventBytes(event) >= LARGE_STRING_CHARS)) {
        const encoder = encoders[partition];
        const before = encoder.length;
        if (encoder.add(event)) {
          bytes += encoder.length - before;
          if (encoder.length >= RUN_HANDOVER_BYTES) pushRun(frames, partition, encoder.takeFrames());
          continue;
        }
      }
      // A frame of its own lands after the frames encoded before it in every partition it goes to.
      handOverAll(frames, partitions);
      const frame = encodeRecord(event);
      for (let p = partition < 0 ? 0 : partition; p < (partition < 0 ? partitions : partition + 1); p++) {
        // Each partition stamps its own offset into the frame: a truncate needs a copy per partition.
        pushRun(frames, p, partition < 0 && p > 0 ? Buffer.from(frame) : frame);
        bytes += frame.length;
      }
    }
    handOverAll(frames, partitions);
  } finally {
    for (const encoder of encoders) encoder.reset();
  }
  return { frames, bytes, next: i };
}

function pushRun(frames: Map<number, Buffer[]>, partition: number, run: Buffer): void {
  const list = frames.get(partition);
  if (list) list.push(run);
  else frames.set(partition, [run]);
}

/** Hands the frames in every partition's scratch over as runs, emptying them. */
function handOverAll(frames: Map<number, Buffer[]>, partitions: number): void {
  for (let p = 0; p < partitions; p++) if (encoders[p].length > 0) pushRun(frames, p, encoders[p].takeFrames());
}
