import { PartitionFile } from './partition-file';

/** Queued appends are grouped into one write+fdatasync up to about this many bytes. */
const GROUP_COMMIT_BYTES = 8 * 1024 * 1024;

interface QueuedAppend {
  frames: Map<number, Buffer[]>;
  bytes: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * The single writer of a file log. Appends are queued in call order and
 * written one group at a time, so bytes of concurrent appends never
 * interleave; appends that arrive while a group is syncing share the next
 * write+fdatasync (group commit). A later issue plugs other policies in here.
 */
export class GroupCommitWriter {
  private queue: QueuedAppend[] = [];
  private draining: Promise<void> | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly files: readonly PartitionFile[],
    private readonly dir: string,
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
      }
    }
    this.draining = undefined;
  }

  private takeGroup(): QueuedAppend[] {
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && (count === 0 || bytes + this.queue[count].bytes <= GROUP_COMMIT_BYTES)) {
      bytes += this.queue[count].bytes;
      count += 1;
    }
    return this.queue.splice(0, count);
  }

  /** Writes every touched partition, fdatasyncs them all, and only then makes the records visible. */
  private async writeGroup(group: readonly QueuedAppend[]): Promise<void> {
    const byPartition = new Map<number, Buffer[]>();
    for (const a of group) {
      for (const [p, frames] of a.frames) {
        const list = byPartition.get(p) ?? [];
        if (list.length === 0) byPartition.set(p, list);
        for (const frame of frames) list.push(frame);
      }
    }
    const touched = [...byPartition.keys()].map((p) => this.files[p]);
    try {
      await Promise.all(touched.map((f) => f.write(byPartition.get(f.partition)!)));
      await Promise.all(touched.map((f) => f.sync()));
    } catch (err) {
      await Promise.allSettled(touched.map((f) => f.discardPending()));
      throw err;
    }
    // Published together, so a truncate sent to every partition appears everywhere at once.
    for (const f of touched) f.publish();
  }
}
