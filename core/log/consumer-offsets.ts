import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { readJsonIfExists, writeFileAtomic } from '../fs/durable-fs';

const CONSUMER_NAME = /^[A-Za-z0-9._-]+$/;

/** Commits waiting for the next write of one consumer's file. */
interface PendingCommits {
  offsets: Map<number, number>;
  settle: Array<(error?: Error) => void>;
}

/**
 * How long a commit waits for others to join its file write. Every write is
 * an fsync'd replace of the file (open, write, fsync, rename, fsync of the
 * directory); a sink applying small batches commits after each, and under a
 * trickle of small transactions three sinks' commits took ~10% of the main
 * thread. A commit's caller does not wait for it before the next batch, so the
 * linger costs only replay after a crash (sinks absorb replays) and lag
 * metrics up to this much behind.
 */
export const COMMIT_LINGER_MS = 100;

/**
 * Committed offsets of the file log's consumers: one JSON file per consumer,
 * `<dir>/<consumer>.json` = { "offsets": [next offset per partition] },
 * replaced atomically. Operations on one consumer run one at a time so two
 * commits can never write the file concurrently; commits of several
 * partitions that arrive while a write runs share the next one (a sink
 * commits every partition after every batch: one fsync'd file write each
 * would queue them behind each other), as do those arriving within
 * COMMIT_LINGER_MS of the first.
 */
export class ConsumerOffsets {
  private readonly cache = new Map<string, number[]>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly pending = new Map<string, PendingCommits>();
  /** File writes made so far (each an fsync'd replace of a consumer's file). */
  writes = 0;

  constructor(
    private readonly dir: string,
    private readonly partitions: number,
  ) {}

  static validateName(consumer: string): void {
    if (typeof consumer !== 'string' || !CONSUMER_NAME.test(consumer) || consumer === '.' || consumer === '..') {
      throw new Error(
        `file-log: invalid consumer name ${JSON.stringify(consumer)}: it names a file, so use only letters, digits, '.', '_' and '-'`,
      );
    }
  }

  get(consumer: string): Promise<number[]> {
    ConsumerOffsets.validateName(consumer);
    return this.serialize(consumer, async () => [...(await this.load(consumer))]);
  }

  /** Resolves once the file holding `nextOffset` for `partition` is durable. */
  set(consumer: string, partition: number, nextOffset: number): Promise<void> {
    ConsumerOffsets.validateName(consumer);
    return new Promise<void>((resolve, reject) => {
      let batch = this.pending.get(consumer);
      if (!batch) {
        const created: PendingCommits = { offsets: new Map(), settle: [] };
        this.pending.set(consumer, created);
        // Runs after the write in progress (if any) and the linger; commits arriving until then join this batch.
        void this.serialize(consumer, async () => {
          await new Promise((resolve) => setTimeout(resolve, COMMIT_LINGER_MS));
          return this.writePending(consumer, created);
        });
        batch = created;
      }
      batch.offsets.set(partition, nextOffset);
      batch.settle.push((error) => (error ? reject(error) : resolve()));
    });
  }

  private async writePending(consumer: string, batch: PendingCommits): Promise<void> {
    if (this.pending.get(consumer) === batch) this.pending.delete(consumer); // later commits start the next batch
    try {
      const offsets = [...(await this.load(consumer))];
      for (const [partition, nextOffset] of batch.offsets) offsets[partition] = nextOffset;
      this.writes++;
      await writeFileAtomic(this.fileOf(consumer), `${JSON.stringify({ offsets })}\n`);
      // Only after the file is durable, so a failed write leaves the old view.
      this.cache.set(consumer, offsets);
    } catch (error) {
      batch.settle.forEach((settle) => settle(error as Error));
      return;
    }
    batch.settle.forEach((settle) => settle());
  }

  /**
   * Per partition, the lowest committed offset over every consumer that ever
   * committed (undefined when there is none): compaction keeps tombstones
   * until all of them have read past.
   */
  async lowestCommitted(): Promise<number[] | undefined> {
    const names = (await fs.readdir(this.dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
    let lowest: number[] | undefined;
    for (const name of names) {
      if (!CONSUMER_NAME.test(name)) continue;
      const offsets = await this.get(name);
      lowest = lowest ? lowest.map((o, p) => Math.min(o, offsets[p])) : offsets;
    }
    return lowest;
  }

  /** Resolves once every started operation has finished. */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }

  private serialize<T>(consumer: string, op: () => Promise<T>): Promise<T> {
    const previous = this.chains.get(consumer) ?? Promise.resolve();
    const next = previous.then(op, op);
    const tail = next.catch(() => undefined);
    this.chains.set(consumer, tail);
    // Drop the chain once it is idle so the map does not grow with every consumer ever seen.
    void tail.then(() => {
      if (this.chains.get(consumer) === tail) this.chains.delete(consumer);
    });
    return next;
  }

  private async load(consumer: string): Promise<number[]> {
    const cached = this.cache.get(consumer);
    if (cached) return cached;
    const file = this.fileOf(consumer);
    const data = (await readJsonIfExists(file)) as { offsets?: unknown } | undefined;
    let offsets: number[];
    if (data === undefined) {
      offsets = new Array<number>(this.partitions).fill(0);
    } else if (
      Array.isArray(data.offsets) &&
      data.offsets.length === this.partitions &&
      data.offsets.every((o) => Number.isInteger(o) && o >= 0)
    ) {
      offsets = data.offsets as number[];
    } else {
      throw new Error(
        `file-log: ${file} does not hold ${this.partitions} committed offsets ({"offsets": [..]}); ` +
          `fix or delete the file (deleting makes consumer "${consumer}" start again from offset 0)`,
      );
    }
    this.cache.set(consumer, offsets);
    return offsets;
  }

  private fileOf(consumer: string): string {
    return path.join(this.dir, `${consumer}.json`);
  }
}
