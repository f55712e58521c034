import { Sink } from '../../sinks/sink';
import { Metrics } from '../http/metrics';
import { ChangeLog, LogBatch } from '../log/change-log';
import { Backoff, sleep } from './backoff';
import { Logger } from './logger';

export interface SinkRunnerOptions {
  sink: Sink;
  log: ChangeLog;
  metrics: Metrics;
  logger: Logger;
  maxBatch?: number;
  /** How often lag metrics are refreshed (default 1 s). */
  lagIntervalMs?: number;
  /** The log consumer to read as (default `sink-<name>`; a reprocess reads as `sink-<name>-g<generation>`). */
  consumer?: string;
  /** Whether this runner reports the sink's lag metrics (default true; a generation being rebuilt does not). */
  reportLag?: boolean;
}

/** How far a runner has read the log: per partition, its committed offsets and the log's end offsets. */
export interface SinkProgress {
  committed: number[];
  ends: number[];
  /** Records not yet applied, over all partitions. */
  lagEvents: number;
}

/** The log consumer name of a sink: `sink-<name>` (embedded: consumers/sink-<name>.json; Kafka: group <prefix>sink-<name>). */
export function sinkConsumerName(sinkName: string): string {
  return `sink-${sinkName}`;
}

/**
 * Replays the log into one sink. The log owns partition assignment (all
 * partitions for the embedded log; a share of them per process in a Kafka
 * consumer group); per batch the runner writes, flushes, and only then the
 * log commits the offset. A crash between flush and commit replays the
 * batch, which the sink's version guard makes harmless. A sink that keeps
 * offsets with its data (storedOffsets) resumes from those instead.
 */
export class SinkRunner {
  ready = false;
  /** Whether this runner owns the sink's lag metrics (switched on when a rebuilt generation goes live). */
  reportLag: boolean;
  readonly consumer: string;
  private lastAppliedCommitMs = 0;
  private readonly startedAtMs = Date.now();

  constructor(private readonly options: SinkRunnerOptions) {
    this.consumer = options.consumer ?? sinkConsumerName(options.sink.name);
    this.reportLag = options.reportLag ?? true;
  }

  get sink(): Sink {
    return this.options.sink;
  }

  async progress(): Promise<SinkProgress> {
    const { log } = this.options;
    const [ends, committed] = await Promise.all([log.endOffsets(), log.committedOffsets(this.consumer)]);
    const lagEvents = ends.reduce((sum, end, p) => sum + Math.max(0, end - (committed[p] ?? 0)), 0);
    return { committed, ends, lagEvents };
  }

  async run(signal: AbortSignal): Promise<void> {
    const { sink, log, logger } = this.options;
    await this.retry('open', signal, () => sink.open());
    if (signal.aborted) return;
    const lagTimer = setInterval(() => void this.updateLag(), this.options.lagIntervalMs ?? 1000);
    try {
      await log.consume({
        consumer: this.consumer,
        signal,
        maxBatch: this.options.maxBatch ?? 1000,
        startOffsets: sink.storedOffsets ? (partitions) => this.storedOffsets(partitions, signal) : undefined,
        onAssign: (partitions) => {
          this.ready = true;
          logger.info('replaying log into sink', { sink: sink.name, partitions: partitions.join(',') || 'none' });
        },
        handle: (batch) => this.apply(batch, signal),
      });
    } finally {
      clearInterval(lagTimer);
      this.ready = false;
      await sink.close().catch(() => undefined);
    }
  }

  private async apply(batch: LogBatch, signal: AbortSignal): Promise<void> {
    const { sink, metrics } = this.options;
    const { records, partition } = batch;
    const where = `${batch.topic ? `topic ${batch.topic} ` : ''}partition ${partition} offsets ${records[0].offset}..${records[records.length - 1].offset}`;
    await this.retry(`write ${where}`, signal, async () => {
      await sink.write(records);
      await sink.flush();
    });
    if (signal.aborted) return; // maybe half written: the log does not commit it, and it is replayed
    for (const { event } of records) this.lastAppliedCommitMs = Math.max(this.lastAppliedCommitMs, event.source.ts_ms);
    metrics.sinkEvents.inc({ sink: sink.name, result: 'processed' }, records.length);
  }

  /** The sink's own offsets for the assigned partitions, retried until they can be read. */
  private async storedOffsets(partitions: readonly number[], signal: AbortSignal): Promise<ReadonlyMap<number, number> | null> {
    let stored: Map<number, number> | null = null;
    await this.retry('read its stored offsets', signal, async () => {
      stored = (await this.options.sink.storedOffsets!()) ?? null;
    });
    if (!stored) return null;
    const wanted = new Set(partitions);
    const found = stored as Map<number, number>;
    this.options.logger.info('resuming from the offsets stored in the sink', {
      sink: this.options.sink.name,
      offsets: [...found].filter(([p]) => wanted.has(p)).map(([p, o]) => `${p}:${o}`).join(','),
    });
    return found;
  }

  private async updateLag(): Promise<void> {
    const { metrics, sink } = this.options;
    if (!this.reportLag) return;
    try {
      const lag = (await this.progress()).lagEvents;
      metrics.sinkLagEvents.set({ sink: sink.name }, lag);
      // Before the first event is applied (e.g. just after a restart with a backlog), the runner's
      // start time is the best lower bound we have: lag reads "at least this long", never 0.
      const since = this.lastAppliedCommitMs || this.startedAtMs;
      const seconds = lag === 0 ? 0 : (Date.now() - since) / 1000;
      metrics.sinkLagSeconds.set({ sink: sink.name }, seconds);
    } catch (error) {
      if (!this.ready) return; // stopping, or not started yet
      this.options.logger.warn(`sink ${sink.name}: cannot read the log's offsets for the lag metrics: ${(error as Error).message}`);
    }
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
