import { ChangeLog, LogBatch, LogRecord } from '../../core/log/change-log';

export interface ReadOptions {
  /** Where to start per partition instead of the committed offsets. */
  startOffsets?: ReadonlyMap<number, number>;
  /** Called with each batch; may abort via the returned signal's controller. */
  onBatch?: (batch: LogBatch, stop: () => void) => void;
  timeoutMs?: number;
  /** Records per batch (default 50). */
  maxBatch?: number;
}

/**
 * Consumes `log` as `consumer` until every partition's committed offset has
 * reached the end offsets seen at the start (or `onBatch` stops it); returns
 * the records per partition. Going through consume() and commit is the point:
 * it is the only way a sink reads either backend.
 */
export async function consumeUntilCaughtUp(log: ChangeLog, consumer: string, options: ReadOptions = {}): Promise<LogRecord[][]> {
  const ends = await log.endOffsets();
  const got: LogRecord[][] = ends.map(() => []);
  /** Per partition, the next offset after the last batch handed over. */
  const progress: number[] = ends.map(() => -1);
  const controller = new AbortController();
  const stop = () => controller.abort();
  const done = async () => {
    // Committed offsets also move past records a consumer skips (Kafka tombstones) without a batch;
    // with explicit start offsets (a replay) the old commits say nothing, so progress counts alone.
    const committed = options.startOffsets ? [] : await log.committedOffsets(consumer);
    return ends.every((end, p) => progress[p] >= end || (committed[p] ?? -1) >= end || (options.startOffsets?.get(p) ?? -1) >= end);
  };
  const timeoutMs = options.timeoutMs ?? 30_000;
  const watcher = (async () => {
    const deadline = Date.now() + timeoutMs;
    while (!controller.signal.aborted) {
      if (await done().catch(() => false)) return stop();
      if (Date.now() > deadline) {
        stop();
        throw new Error(`timed out after ${timeoutMs} ms consuming to ${ends.join(',')}; got ${got.map((r) => r.length).join(',')} records`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  await Promise.all([
    log.consume({
      consumer,
      signal: controller.signal,
      maxBatch: options.maxBatch ?? 50,
      startOffsets: options.startOffsets ? async () => options.startOffsets! : undefined,
      handle: async (batch) => {
        got[batch.partition].push(...batch.records);
        progress[batch.partition] = batch.nextOffset;
        options.onBatch?.(batch, stop);
      },
    }),
    watcher,
  ]);
  return got;
}
