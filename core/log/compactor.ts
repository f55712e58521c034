import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Logger } from '../runtime/logger';
import { readCompactionMark, writeCompactionMark } from './compaction-marks';
import { CompactionPlan } from './compaction-plan';
import { READ_CHUNK_BYTES, writeAt } from './frame-scanner';
import { PartitionLog } from './partition-log';
import { Segment } from './segment';
import { cleanedFileName, commitSwap } from './segment-swap';

export interface CompactionOptions {
  enabled: boolean;
  /** How often partitions are checked. */
  intervalMs: number;
  /** A partition is compacted once this share of its sealed bytes was appended since its last pass. */
  minDirtyRatio: number;
  /** Deletes and truncates stay this long after their append (and until every consumer read them). */
  tombstoneRetentionMs: number;
  /** Distinct row keys one pass remembers (at most PLAN_MAX_BYTES of them, ~90 bytes each: ~180k of a typical row); more take more passes. */
  maxKeysPerPass: number;
}

export interface CompactionStats {
  segmentsBefore: number;
  segmentsAfter: number;
  recordsRemoved: number;
  bytesBefore: number;
  bytesAfter: number;
}

const COPY_BUFFER_BYTES = 1024 * 1024;

/** The read and write buffers one pass reuses for every segment (see compactPartition). */
interface PassBuffers {
  read: Buffer;
  write: Buffer;
}

/**
 * Background key compaction of the embedded log (docs/architecture.md §3: the log stays a
 * complete, bounded copy a sink can replay from offset zero). It rewrites
 * sealed segments only, off the append path: appends go to the active
 * segment meanwhile, readers keep reading the old files until the swap, and
 * compacted segments keep their records' original offsets (with gaps).
 */
export class Compactor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  /** Callers inside holdWhile(): no pass starts while any is. */
  private holds = 0;
  /** compactNow() callers waiting for the holds to end. */
  private readonly awaitingNoHolds: (() => void)[] = [];
  /** Per partition: first offset not yet covered by a pass's key map. */
  private readonly dirtyFrom = new Map<number, number>();
  private readonly tombstoneCheckAt = new Map<number, number>();
  /** Partitions whose mark on disk was read (compaction-marks.ts): once per process. */
  private readonly marksRead = new Set<number>();

  constructor(
    private readonly partitions: readonly PartitionLog[],
    private readonly options: CompactionOptions & { segmentBytes: number },
    /** Per partition, the lowest committed offset of all consumers (undefined: no consumers). */
    private readonly consumedBelow: () => Promise<number[] | undefined>,
    private readonly logger: Logger | undefined,
  ) {}

  start(): void {
    if (!this.options.enabled) return;
    this.timer = setInterval(() => {
      if (!this.running && this.holds === 0) this.running = this.pass(false).finally(() => (this.running = undefined));
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /**
   * Runs `work` once no pass is in progress, and starts none until it ends. A pass reads the
   * consumers' offsets once, at its start: a rebuild that registered at offset zero during a pass
   * had the tombstones it still needed removed by that pass (a reprocess missed deletes).
   */
  async holdWhile<T>(work: () => Promise<T>): Promise<T> {
    this.holds++;
    try {
      while (this.running) await this.running.catch(() => undefined);
      return await work();
    } finally {
      this.holds--;
      if (this.holds === 0) for (const wake of this.awaitingNoHolds.splice(0)) wake();
    }
  }

  /**
   * Runs a pass over every partition now, whatever the dirty ratio (tests, benchmarks, operators),
   * once no pass runs and no holdWhile() caller works (never call it from inside holdWhile()).
   */
  async compactNow(): Promise<CompactionStats> {
    while (this.running || this.holds > 0) {
      if (this.running) await this.running.catch(() => undefined);
      else await new Promise<void>((resolve) => this.awaitingNoHolds.push(resolve));
    }
    const run = this.pass(true);
    this.running = run.finally(() => (this.running = undefined));
    return run;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  private async pass(force: boolean): Promise<CompactionStats> {
    const total: CompactionStats = { segmentsBefore: 0, segmentsAfter: 0, recordsRemoved: 0, bytesBefore: 0, bytesAfter: 0 };
    const consumed = await this.consumedBelow();
    await this.readMarks();
    // A background pass gives way to held work (a reprocess registering its consumer waits on it):
    // a pass over a partition without a mark (a log compacted before marks were kept) maps it from its start, seconds under load.
    const givesWay = () => this.stopped || (!force && this.holds > 0);
    for (const partition of this.partitions) {
      if (givesWay()) break;
      if (!force && !this.isDue(partition)) continue;
      try {
        const stats = await this.compactPartition(partition, consumed?.[partition.partition] ?? Infinity, givesWay);
        for (const k of Object.keys(total) as (keyof CompactionStats)[]) total[k] += stats[k];
        if (stats.recordsRemoved > 0 || stats.segmentsAfter < stats.segmentsBefore) {
          this.logger?.info(`compacted partition ${partition.partition}`, { ...stats });
        }
      } catch (error) {
        // The old segments stay in place; the next pass tries again.
        this.logger?.error(`compacting partition ${partition.partition} of ${partition.dir} failed: ${(error as Error).message}; retrying next pass`);
        if (force) throw error;
      }
    }
    return total;
  }

  /** Where the passes of the process before this one left off, once per partition. */
  private async readMarks(): Promise<void> {
    for (const partition of this.partitions) {
      if (this.marksRead.has(partition.partition)) continue;
      this.marksRead.add(partition.partition);
      const mark = await readCompactionMark(partition.dir);
      if (!mark || this.dirtyFrom.has(partition.partition)) continue;
      this.dirtyFrom.set(partition.partition, mark.dirtyFrom);
      if (mark.tombstoneCheckAt !== null) this.tombstoneCheckAt.set(partition.partition, mark.tombstoneCheckAt);
    }
  }

  private isDue(partition: PartitionLog): boolean {
    const sealed = partition.sealedSegments();
    if (sealed.length === 0) return false;
    if ((this.tombstoneCheckAt.get(partition.partition) ?? Infinity) <= Date.now()) return true;
    const from = this.dirtyFrom.get(partition.partition) ?? 0;
    const all = sealed.reduce((sum, s) => sum + s.size, 0);
    const dirty = sealed.filter((s) => s.base >= from).reduce((sum, s) => sum + s.size, 0);
    return all > 0 && dirty / all >= this.options.minDirtyRatio;
  }

  /**
   * Compacts one partition's sealed segments. When `givesWay()` turns true it stops between
   * segments: the groups already rewritten stay (each swap is complete), and the partition's
   * dirty mark stays where it was, so the next pass maps the rest again.
   */
  private async compactPartition(partition: PartitionLog, consumedBelow: number, givesWay: () => boolean): Promise<CompactionStats> {
    // Captured together: the first segment after the sealed ones starts at activeBase, even if a roll follows.
    const sealed = partition.sealedSegments();
    const activeBase = partition.activeBase;
    const stats = { segmentsBefore: sealed.length, segmentsAfter: sealed.length, recordsRemoved: 0, bytesBefore: 0, bytesAfter: 0 };
    stats.bytesBefore = stats.bytesAfter = sealed.reduce((sum, s) => sum + s.size, 0);
    if (sealed.length === 0) return stats;
    const { tombstoneRetentionMs, maxKeysPerPass, intervalMs } = this.options;
    const plan = new CompactionPlan({ maxKeys: maxKeysPerPass, tombstoneRetentionMs, nowMs: Date.now(), intervalMs }, consumedBelow);
    const from = this.dirtyFrom.get(partition.partition) ?? 0;
    // Every segment of the pass is read into (and rewritten from) these two buffers: a pass over tens
    // of MB allocated a Buffer per MB read and written, garbage V8 collects only once there is ~64 MB of it.
    const buffers: PassBuffers = { read: Buffer.allocUnsafe(READ_CHUNK_BYTES), write: Buffer.allocUnsafe(COPY_BUFFER_BYTES) };
    for (let i = 0; i < sealed.length; i++) {
      if (plan.mapEnd !== Infinity) break;
      if (givesWay()) return stats;
      // A segment wholly below `from` was mapped by an earlier pass: not read again (a long snapshot's
      // passes read every sealed byte to map only the newest ones).
      if ((i + 1 < sealed.length ? sealed[i + 1].base : activeBase) <= from) continue;
      await sealed[i].forEachFrame(sealed[i].size, (f) => f.offset < from || plan.add(f), buffers.read);
    }
    // Count what each segment keeps, then group neighbours whose kept bytes fit one segment.
    const kept = new Map<Segment, { bytes: number; removed: number }>();
    for (const segment of sealed) {
      if (givesWay()) return stats;
      const k = { bytes: 0, removed: 0 };
      await segment.forEachFrame(segment.size, (f) => {
        if (plan.keeps(f)) k.bytes += f.frameLength;
        else k.removed += 1;
        return true;
      }, buffers.read);
      kept.set(segment, k);
    }
    const groups: Segment[][] = [];
    let groupBytes = Infinity;
    for (const segment of sealed) {
      const bytes = kept.get(segment)!.bytes;
      if (groupBytes + bytes > this.options.segmentBytes) {
        groups.push([]);
        groupBytes = 0;
      }
      groups[groups.length - 1].push(segment);
      groupBytes += bytes;
    }
    for (let g = 0; g < groups.length; g++) {
      if (givesWay()) return stats;
      const group = groups[g];
      const removed = group.reduce((sum, s) => sum + kept.get(s)!.removed, 0);
      if (group.length === 1 && removed === 0) continue;
      const end = g + 1 < groups.length ? groups[g + 1][0].base : activeBase;
      const replacement = await this.rewrite(partition, group, end, plan, buffers);
      partition.replace(group, replacement);
      stats.recordsRemoved += removed;
      stats.segmentsAfter -= group.length - 1;
      stats.bytesAfter -= group.reduce((sum, s) => sum + s.size, 0) - replacement.size;
    }
    const dirtyFrom = plan.mapEnd === Infinity ? activeBase : plan.mapEnd;
    this.dirtyFrom.set(partition.partition, dirtyFrom);
    this.tombstoneCheckAt.set(partition.partition, plan.nextTombstoneExpiryMs);
    const tombstoneCheckAt = Number.isFinite(plan.nextTombstoneExpiryMs) ? plan.nextTombstoneExpiryMs : null;
    await writeCompactionMark(partition.dir, { dirtyFrom, tombstoneCheckAt }).catch((error: Error) => {
      // Only the next process's first pass does more work (it maps the partition from its start).
      this.logger?.warn(`could not save where compaction of partition ${partition.partition} left off in ${partition.dir}: ${error.message}`);
    });
    return stats;
  }

  /** Copies the kept frames of `group` into one new segment and swaps it in on disk (crash-safe). */
  private async rewrite(partition: PartitionLog, group: readonly Segment[], end: number, plan: CompactionPlan, buffers: PassBuffers): Promise<Segment> {
    const base = group[0].base;
    const cleaned = path.join(partition.dir, cleanedFileName(base));
    const out = await fs.open(cleaned, 'w', 0o644);
    try {
      const pending = buffers.write;
      let pendingBytes = 0;
      let written = 0;
      const write = async (data: Buffer) => {
        await writeAt(out, data, written);
        written += data.length;
      };
      const flush = async () => {
        if (pendingBytes > 0) await write(pending.subarray(0, pendingBytes));
        pendingBytes = 0;
      };
      for (const segment of group) {
        await segment.forEachFrame(segment.size, async (f) => {
          if (!plan.keeps(f)) return true;
          if (pendingBytes + f.frameLength > pending.length) await flush();
          // A frame bigger than the buffer is written from where it was read (valid until this visit returns).
          if (f.frameLength > pending.length) await write(f.buf.subarray(f.start, f.start + f.frameLength));
          else pendingBytes += f.buf.copy(pending, pendingBytes, f.start, f.start + f.frameLength);
          return true;
        }, buffers.read);
      }
      await flush();
      await out.sync();
    } finally {
      await out.close();
    }
    await commitSwap(partition.dir, base, end);
    const { segment } = await Segment.open(partition.partition, partition.dir, base, {
      intervalBytes: group[0].index.intervalBytes,
      sealed: true,
    });
    return segment;
  }
}
