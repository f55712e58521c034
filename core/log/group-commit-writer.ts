import { statfs } from 'node:fs/promises';
import { PartitionLog } from './partition-log';

/** Queued appends are grouped into one write+fdatasync up to about this many bytes. */
const GROUP_COMMIT_BYTES = 8 * 1024 * 1024;

/**
 * When an append counts as durable:
 * - `group` (default): after fdatasync; appends queued while a sync runs share the next one;
 * - `always`: after its own fdatasync (no sharing: lowest throughput, same guarantee);
 * - `none`: after write(): survives a crash of the process (kill -9), not of the machine.
 */
export type FsyncPolicy = 'group' | 'always' | 'none';

export interface DurabilityOptions {
  fsync: FsyncPolicy;
  /** With `group`: wait this long before each sync to gather more appends (latency for throughput). */
  groupCommitMs: number;
}

interface QueuedAppend {
  frames: Map<number, Buffer[]>;
  bytes: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The single writer of a file log. Appends are queued in call order and
 * written one group at a time, so bytes of concurrent appends never
 * interleave and offsets follow call order; the durability policy decides
 * how appends share syncs.
 *
 * A failed write or sync (ENOSPC, EIO) rejects its group and every append
 * queued behind it (their callers retry in order, so no later append lands
 * before an earlier failed one), then cuts each partition back to its last
 * published, synced frame. When even that cut fails, it is tried again before
 * the next write: the log recovers by itself once the disk has room again.
 */
export class GroupCommitWriter {
  private queue: QueuedAppend[] = [];
  private queuedBytes = 0;
  private draining: Promise<void> | undefined;
  /** Set while torn bytes of a failed write may still sit past the published end. */
  private torn: Error | undefined;
  /** Failed groups so far, and the error the last one got (see FileLog.append: chunks of a later append must not land). */
  failures = 0;
  lastFailure: Error | undefined;

  constructor(
    private readonly partitions: readonly PartitionLog[],
    private readonly dir: string,
    private readonly durability: DurabilityOptions,
  ) {}

  /** Resolves once the frames (already routed to partitions) are durable and readable. */
  submit(frames: Map<number, Buffer[]>, bytes: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frames, bytes, resolve, reject });
      this.queuedBytes += bytes;
      if (!this.draining) this.draining = this.drain();
    });
  }

  /** Resolves once every submitted append has settled. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    await Promise.resolve(); // lets `draining` be set, and appends of this tick join the first group
    while (this.queue.length > 0) {
      const { fsync, groupCommitMs } = this.durability;
      if (fsync === 'group' && groupCommitMs > 0 && this.queuedBytes < GROUP_COMMIT_BYTES) {
        await new Promise((resolve) => setTimeout(resolve, groupCommitMs));
      }
      if (this.torn && !(await this.cutTornBytes())) {
        const error = await this.failureOf(this.torn, 'cutting its partial write back to the last complete record failed again');
        this.failures += 1;
        this.lastFailure = error;
        for (const a of this.queue.splice(0)) a.reject(error);
        this.queuedBytes = 0;
        break;
      }
      const group = this.takeGroup();
      try {
        await this.writeGroup(group);
        for (const a of group) a.resolve();
      } catch (err) {
        this.torn = err as Error;
        this.failures += 1;
        this.lastFailure = err as Error;
        const later = this.queue.splice(0);
        this.queuedBytes = 0;
        const cut = await this.cutTornBytes();
        const error = await this.failureOf(
          err as Error,
          cut ? 'the partial write was cut back to the last complete record' : 'cutting the partial write failed too; it is tried again before the next append',
        );
        for (const a of [...group, ...later]) a.reject(error);
      }
    }
    this.draining = undefined;
  }

  /** Cuts every partition back to its published end; true once nothing torn is left. */
  private async cutTornBytes(): Promise<boolean> {
    try {
      await Promise.all(this.partitions.map((p) => p.discardPending()));
      this.torn = undefined;
      return true;
    } catch {
      return false;
    }
  }

  /** The error an append gets: the directory, the cause, the free space, and that nothing of it was acknowledged. */
  private async failureOf(cause: Error, state: string): Promise<Error> {
    const free = await freeBytes(this.dir);
    const error = new Error(
      `file-log: appending to ${this.dir} failed: ${cause.message} (${free === undefined ? 'free space unknown' : `${free} bytes free`} on its file system). ` +
        `Nothing of this append was acknowledged; ${state}, and appends succeed again once the disk has room (free space, or grow the volume)`,
    );
    (error as NodeJS.ErrnoException).code = (cause as NodeJS.ErrnoException).code;
    return error;
  }

  private takeGroup(): QueuedAppend[] {
    const limit = this.durability.fsync === 'always' ? 1 : Infinity;
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < limit && (count === 0 || bytes + this.queue[count].bytes <= GROUP_COMMIT_BYTES)) {
      bytes += this.queue[count].bytes;
      count += 1;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, count);
  }

  /** Writes every touched partition, syncs them all (per policy), and only then makes the records visible. */
  private async writeGroup(group: readonly QueuedAppend[]): Promise<void> {
    const byPartition = new Map<number, Buffer[]>();
    for (const a of group) {
      for (const [p, frames] of a.frames) {
        const list = byPartition.get(p) ?? [];
        if (list.length === 0) byPartition.set(p, list);
        for (const frame of frames) list.push(frame);
      }
    }
    const touched = [...byPartition.keys()].map((p) => this.partitions[p]);
    const now = Date.now();
    // On failure drain() cuts the unpublished bytes of every partition.
    await Promise.all(touched.map((p) => p.rollIfFull(byPartition.get(p.partition)!.reduce((sum, f) => sum + f.length, 0))));
    await Promise.all(touched.map((p) => p.write(byPartition.get(p.partition)!, now)));
    if (this.durability.fsync !== 'none') await Promise.all(touched.map((p) => p.sync()));
    // Published together, so a truncate sent to every partition appears everywhere at once.
    for (const p of touched) p.publish();
  }
}

/** Bytes available to us on the file system holding `dir` (undefined when statfs fails). */
export async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const s = await statfs(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}
