import { LogRecord } from './change-log';
import { PartitionRead } from './partition-log';

/**
 * Batches the log's consumers read recently, handed to the other consumers
 * that ask for the same offsets instead of being read and decoded again.
 * Every sink of the service reads every record: decoding its JSON (and
 * checking its CRC) was the costliest function of the service catching up
 * after a database restart (9% of its CPU with three sinks, plus the garbage
 * of three decoded copies). A read still in progress is shared with a
 * consumer asking for the same offset, and a consumer whose offset falls
 * inside a kept batch gets the rest of it and reads in step from then on.
 * How much is shared depends on the sinks keeping in step: three consumers
 * reading one backlog side by side read 2.7x faster; in the fault suite's
 * restart-resync catch-up 18% of the records handed to sinks were shared;
 * at the end of the log under a steady load ~3% (each sink applies at its
 * own pace, so each reads from its own offset whenever records arrive).
 *
 * Sinks must not change a record they are handed (a sink that did would
 * change it for the others): they copy first. With CDC_FREEZE_RECORDS=1 (the
 * tests set it) every consumer read is frozen (record, event, its source,
 * key, before, after and unchanged list), shared or not, so such a sink fails
 * loudly in any test. Not by default: freezing cost the service catching up
 * after a restart 1.3% of its CPU, about what sharing saved there.
 */
export class RecentReads {
  private readonly byPartition: Entry[][];
  /** Consumers reading now (consume() calls in progress), by name. */
  private readonly active = new Map<string, number>();
  /** Per active consumer, the offset it last asked for in each partition. */
  private readonly positions = new Map<string, number[]>();
  /** Kept entries, oldest first (in-flight reads are not in it). */
  private readonly kept: Entry[] = [];
  private keptBytes = 0;

  constructor(partitions: number, private readonly maxBytes = RECENT_READS_MAX_BYTES) {
    this.byPartition = Array.from({ length: partitions }, () => []);
  }

  /** A consumer starts reading; the returned function says it stopped. */
  join(consumer: string): () => void {
    this.active.set(consumer, (this.active.get(consumer) ?? 0) + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const count = (this.active.get(consumer) ?? 1) - 1;
      if (count > 0) this.active.set(consumer, count);
      else {
        this.active.delete(consumer);
        this.positions.delete(consumer);
      }
      if (this.active.size < 2) this.clear();
    };
  }

  /**
   * The records from `offset` of a batch another consumer read (or is
   * reading), at most `maxRecords`; null (synchronously) when none covers
   * `offset`. The promise gives null when that read turned out not to be
   * shareable (the caller then reads for itself).
   */
  take(partition: number, consumer: string, offset: number, maxRecords: number): Promise<PartitionRead | null> | null {
    this.moveTo(consumer, partition, offset);
    const entry = this.byPartition[partition].find((e) => (e.end === undefined ? e.start === offset : e.start <= offset && offset < e.end));
    if (!entry || maxRecords <= 0) return null;
    entry.servedTo.add(consumer);
    if (entry.end !== undefined && !this.wanted(entry)) this.drop(entry);
    return entry.reading.then((read) => slice(read, offset, maxRecords), () => null);
  }

  /** Hands back `reading` (a consumer's read from disk) and keeps it for the other consumers when it is small enough. */
  share(partition: number, consumer: string, offset: number, reading: Promise<PartitionRead>): Promise<PartitionRead> {
    this.moveTo(consumer, partition, offset);
    const entries = this.byPartition[partition];
    const shareable = this.active.size >= 2 && !entries.some((e) => e.start === offset);
    const frozen = process.env.CDC_FREEZE_RECORDS === '1' ? reading.then(freezeRead) : reading;
    if (!shareable) return frozen; // one consumer: no extra turn of the microtask queue
    const entry: Entry = { partition, start: offset, end: undefined, bytes: 0, servedTo: new Set([consumer]), reading: frozen };
    entries.push(entry);
    const remove = () => this.drop(entry);
    entry.reading.then((read) => {
      // Not kept when cleared meanwhile (a consumer left).
      if (!isShareable(read) || !entries.includes(entry)) return remove();
      entry.end = read.nextOffset;
      entry.bytes = read.bytes ?? 0;
      // Checked before it is kept: a batch nobody else wants must not push out one somebody does.
      if (!this.wanted(entry)) return remove();
      this.kept.push(entry);
      this.keptBytes += entry.bytes;
      const keptHere = entries.filter((e) => e.end !== undefined);
      if (keptHere.length > MAX_KEPT_PER_PARTITION) this.drop(keptHere[0]);
      while (this.keptBytes > this.maxBytes) this.drop(this.kept[0]);
    }, remove);
    // The reader gets an array of its own: the kept one is sliced for the others.
    return entry.reading.then((read) => ({ ...read, records: read.records.slice() }));
  }

  /** Forgets every batch (a consumer left: the rest read again from disk). */
  clear(): void {
    for (const entries of this.byPartition) entries.length = 0;
    this.kept.length = 0;
    this.keptBytes = 0;
  }

  private moveTo(consumer: string, partition: number, offset: number): void {
    let positions = this.positions.get(consumer);
    if (!positions) this.positions.set(consumer, (positions = []));
    positions[partition] = offset;
  }

  /**
   * A batch is kept only for a consumer that has not had it and is at most
   * NEAR_OFFSETS behind it: the others are past it, or so far behind (a sink
   * catching up alone) that it would be dropped before they got there, and
   * held meanwhile (the fault suite's big-transaction case peaked 30-50 MB
   * higher while batches were kept for a warehouse 80,000 events behind).
   */
  private wanted(entry: Entry): boolean {
    for (const consumer of this.active.keys()) {
      if (entry.servedTo.has(consumer)) continue;
      const at = this.positions.get(consumer)?.[entry.partition];
      if (at === undefined || (at < entry.end! && at >= entry.start - NEAR_OFFSETS)) return true;
    }
    return false;
  }

  private drop(entry: Entry): void {
    const entries = this.byPartition[entry.partition];
    const at = entries.indexOf(entry);
    if (at >= 0) entries.splice(at, 1);
    const kept = this.kept.indexOf(entry);
    if (kept >= 0) {
      this.kept.splice(kept, 1);
      this.keptBytes -= entry.bytes;
    }
  }
}

interface Entry {
  partition: number;
  start: number;
  /** The read's nextOffset once it finished (undefined while in progress). */
  end: number | undefined;
  /** Frame bytes of the batch. */
  bytes: number;
  /** The consumers it was read by or handed to. */
  servedTo: Set<string>;
  reading: Promise<PartitionRead>;
}

/**
 * Frame bytes of kept batches at most (decoded, about three times as much
 * heap): a batch every sink is applying at once is held once instead of once
 * per sink, and one only a lagging sink will want is not held long.
 */
export const RECENT_READS_MAX_BYTES = 2 * 1024 * 1024;
const MAX_KEPT_PER_PARTITION = 2;
/** How far (in offsets) behind a batch a consumer may be for the batch to be kept for it. */
const NEAR_OFFSETS = 2000;
/** A batch of this many frame bytes or more is not shared: its records may be ones a reader asked to refuse (ReadOptions). */
const SHAREABLE_BELOW_BYTES = 1024 * 1024;

function isShareable(read: PartitionRead): boolean {
  return read.records.length > 0 && read.refusedBytes === undefined && (read.bytes ?? 0) < SHAREABLE_BELOW_BYTES;
}

/** The records of `read` from `offset` on, at most `max`, as a batch of its own; null when the read is not shareable or holds none from there. */
function slice(read: PartitionRead, offset: number, max: number): PartitionRead | null {
  if (!isShareable(read)) return null;
  const { records } = read;
  let lo = 0;
  let hi = records.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (records[mid].offset < offset) lo = mid + 1;
    else hi = mid;
  }
  if (lo >= records.length) return null;
  const end = Math.min(records.length, lo + max);
  return { records: records.slice(lo, end), nextOffset: end < records.length ? records[end].offset : read.nextOffset, bytes: read.bytes };
}

/** Freezes what a consumer may read of each record (nested JSON column values excepted); with CDC_FREEZE_RECORDS=1 only. */
function freezeRead(read: PartitionRead): PartitionRead {
  for (const record of read.records) freezeRecord(record);
  return read;
}

function freezeRecord(record: LogRecord): void {
  const event = record.event;
  Object.freeze(event.source);
  Object.freeze(event.key);
  if (event.before) Object.freeze(event.before);
  if (event.after) Object.freeze(event.after);
  if (event.unchanged) Object.freeze(event.unchanged);
  Object.freeze(event);
  Object.freeze(record);
}
