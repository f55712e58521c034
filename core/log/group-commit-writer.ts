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
 */
export class GroupCommitWriter {
  private queue: QueuedAppend[] = [];
  private queuedBytes = 0;
  private draining: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly partitions: readonly PartitionLog[],
    private readonly dir: string,
    private readonly durability: DurabilityOptions,
  ) {}

  /** Throws once a write or sync has failed: the log must be reopened. */
  assertHealthy(): void {
    if (this.failure) throw this.failure;
  }

  /** Resolves once the frames (already routed to partitions) are durable and readable. */
  submit(frames: Map<number, Buffer[]>, bytes: number): Promise<void> {
    this.assertHealthy();
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
      const group = this.takeGroup();
      try {
        await this.writeGroup(group);
        for (const a of group) a.resolve();
      } catch (err) {
        this.failure = new Error(
          `file-log: writing to ${this.dir} failed: ${(err as Error).message}. The log refuses appends from now on ` +
            `because it can no longer tell what reached the disk; close it and open it again (recovery cuts torn records)`,
        );
        for (const a of [...group, ...this.queue.splice(0)]) a.reject(this.failure);
        this.queuedBytes = 0;
      }
    }
    this.draining = undefined;
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
    try {
      await Promise.all(touched.map((p) => p.rollIfFull(byPartition.get(p.partition)!.reduce((sum, f) => sum + f.length, 0))));
      await Promise.all(touched.map((p) => p.write(byPartition.get(p.partition)!, now)));
      if (this.durability.fsync !== 'none') await Promise.all(touched.map((p) => p.sync()));
    } catch (err) {
      await Promise.allSettled(touched.map((p) => p.discardPending()));
      throw err;
    }
    // Published together, so a truncate sent to every partition appears everywhere at once.
    for (const p of touched) p.publish();
  }
}
