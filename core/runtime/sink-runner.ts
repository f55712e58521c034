import { Sink } from '../../sinks/sink';
import { Metrics } from '../http/metrics';
import { ChangeLog, LogRecord } from '../log/change-log';
import { Backoff, sleep } from './backoff';
import { Logger } from './logger';

export interface SinkRunnerOptions {
  sink: Sink;
  log: ChangeLog;
  metrics: Metrics;
  logger: Logger;
  maxBatch?: number;
}

/**
 * Replays the log into one sink: per partition, read from the committed
 * offset, write, flush, then commit. A crash between flush and commit replays
 * the batch, which the sink's version guard makes harmless.
 */
export class SinkRunner {
  ready = false;
  private readonly consumer: string;
  private lastAppliedCommitMs = 0;
  private readonly nextOffsets: number[] = [];

  constructor(private readonly options: SinkRunnerOptions) {
    this.consumer = `sink-${options.sink.name}`;
  }

  async run(signal: AbortSignal): Promise<void> {
    const { sink, log, logger } = this.options;
    await this.retry('open', signal, () => sink.open());
    if (signal.aborted) return;
    const committed = await log.committedOffsets(this.consumer);
    committed.forEach((offset, partition) => (this.nextOffsets[partition] = offset));
    logger.info('replaying log into sink', { sink: sink.name, from: committed.join(',') });
    this.ready = true;
    const lagTimer = setInterval(() => void this.updateLag(), 1000);
    try {
      await Promise.all(committed.map((_, partition) => this.runPartition(partition, signal)));
    } finally {
      clearInterval(lagTimer);
      this.ready = false;
      await sink.close().catch(() => undefined);
    }
  }

  private async runPartition(partition: number, signal: AbortSignal): Promise<void> {
    const { sink, log, metrics } = this.options;
    const maxBatch = this.options.maxBatch ?? 1000;
    while (!signal.aborted) {
      const offset = this.nextOffsets[partition];
      const records = await log.read(partition, offset, maxBatch);
      if (records.length === 0) {
        await log.waitForAppend(partition, offset, signal);
        continue;
      }
      await this.retry(`write partition ${partition} offsets ${offset}..${offset + records.length - 1}`, signal, async () => {
        await sink.write(records);
        await sink.flush();
      });
      if (signal.aborted) return; // the batch may be half written; it is replayed on the next start
      const next = records[records.length - 1].offset + 1;
      await log.commit(this.consumer, partition, next);
      this.nextOffsets[partition] = next;
      this.noteApplied(records);
      metrics.sinkEvents.inc({ sink: sink.name, result: 'processed' }, records.length);
    }
  }

  private noteApplied(records: readonly LogRecord[]): void {
    for (const { event } of records) this.lastAppliedCommitMs = Math.max(this.lastAppliedCommitMs, event.source.ts_ms);
  }

  private async updateLag(): Promise<void> {
    const { log, metrics, sink } = this.options;
    const ends = await log.endOffsets();
    const lag = ends.reduce((sum, end, p) => sum + Math.max(0, end - (this.nextOffsets[p] ?? 0)), 0);
    metrics.sinkLagEvents.set({ sink: sink.name }, lag);
    const seconds = lag === 0 || this.lastAppliedCommitMs === 0 ? 0 : (Date.now() - this.lastAppliedCommitMs) / 1000;
    metrics.sinkLagSeconds.set({ sink: sink.name }, seconds);
    ends.forEach((end, partition) => metrics.logEndOffset.set({ partition: String(partition) }, end));
  }

  /** Runs `action` until it succeeds or the signal aborts, backing off between failures. */
  private async retry(what: string, signal: AbortSignal, action: () => Promise<void>): Promise<void> {
    const backoff = new Backoff();
    while (!signal.aborted) {
      try {
        return await action();
      } catch (error) {
        const delayMs = backoff.nextDelayMs();
        this.options.logger.error(`sink ${this.options.sink.name}: ${what} failed: ${(error as Error).message}; retrying`, { inMs: delayMs });
        await sleep(delayMs, signal);
      }
    }
  }
}
