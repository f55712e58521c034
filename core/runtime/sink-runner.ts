import { Sink } from '../contracts/sink';
import { Metrics } from '../http/metrics';
import { ChangeLog, DEFAULT_MAX_BATCH, LogBatch } from '../log/change-log';
import { Backoff, sleep } from './backoff';
import { AttemptFailure, ComponentHealth } from './component-health';
import { Logger } from './logger';
import { consumeWithTablePauses } from './table-pauses';

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
  /**
   * A batch whose write and flush have not finished after this long marks the
   * sink not ready (its server is gone or hangs; many clients queue commands
   * while they reconnect instead of failing). Default 5000 ms.
   */
  stallMs?: number;
  /**
   * A write and flush of a batch that has not settled after this long fails
   * the attempt: the runner closes the sink and the supervisor restarts it
   * (counted in cdc_component_restarts_total, reason "stalled"); the log
   * replays the batch. A write that never settles cannot go unnoticed.
   * Failing attempts are retried as before; each one is bounded. Default 60000 ms.
   */
  hangMs?: number;
  /** Awaited before each batch is written (a rebuilt generation yields to a live one that lags). */
  beforeBatch?: (signal: AbortSignal) => Promise<void>;
}

/** How long closing a sink may take when its attempt ends (a hung write may hold it). */
const CLOSE_TIMEOUT_MS = 10_000;

/** A sink that can name the work a hung write waits for (e.g. the warehouse's DuckDB statement). */
interface ReportsPendingWork {
  pendingWork(olderThanMs: number): string | null;
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
  readonly health: ComponentHealth;
  private reportsLag: boolean;
  readonly consumer: string;
  private lastAppliedCommitMs = 0;
  /** The lag in seconds as last reported (0 while this runner does not report lag). */
  private reportedLagSeconds = 0;
  private readonly startedAtMs = Date.now();
  /** Batches being written (partitions apply concurrently on the Kafka log), with when each started. */
  private readonly inFlight = new Set<{ startedMs: number; where: string }>();

  constructor(private readonly options: SinkRunnerOptions) {
    this.consumer = options.consumer ?? sinkConsumerName(options.sink.name);
    this.reportsLag = options.reportLag ?? true;
    this.health = new ComponentHealth('sink', options.sink.name, options.metrics, this.reportsLag);
  }

  /** Whether this runner owns the sink's lag, latency and up metrics (switched on when a rebuilt generation goes live). */
  get reportLag(): boolean {
    return this.reportsLag;
  }

  set reportLag(value: boolean) {
    if (value && !this.reportsLag) this.health.takeGauge();
    this.reportsLag = value;
  }

  /** The lag in seconds as last reported to the metrics (0 while this runner does not report lag). */
  get lagSeconds(): number {
    return this.reportedLagSeconds;
  }

  /** Connected and applying: no write failing or hanging. */
  get ready(): boolean {
    return this.health.isUp;
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
    const lagTimer = setInterval(() => {
      void this.updateLag();
      this.checkStall();
    }, this.options.lagIntervalMs ?? 1000);
    try {
      await consumeWithTablePauses(log, sink.name, {
        consumer: this.consumer,
        signal,
        maxBatch: this.options.maxBatch ?? sink.batchRecords ?? DEFAULT_MAX_BATCH,
        startOffsets: sink.storedOffsets ? (partitions) => this.storedOffsets(partitions, signal) : undefined,
        onAssign: (partitions) => {
          this.health.up();
          logger.info('replaying log into sink', { sink: sink.name, partitions: partitions.join(',') || 'none' });
        },
        handle: (batch) => this.apply(batch, signal),
      });
    } catch (error) {
      if (!signal.aborted) this.health.failed(error); // the supervisor restarts the runner: counted, and /readyz says why
      throw error;
    } finally {
      clearInterval(lagTimer);
      if (signal.aborted) this.health.stopped();
      await this.closeSink();
    }
  }

  /** Closes the sink, without waiting longer than CLOSE_TIMEOUT_MS for work that hangs (its restart opens it anew). */
  private async closeSink(): Promise<void> {
    const { sink, logger } = this.options;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS)));
    const outcome = await Promise.race([sink.close().catch(() => undefined), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') logger.warn(`sink ${sink.name}: closing has not finished after ${CLOSE_TIMEOUT_MS / 1000} s (work still hangs); going on without it`);
  }

  /** A batch hanging longer than stallMs: the sink is not ready until it completes. */
  private checkStall(): void {
    const oldest = [...this.inFlight].sort((a, b) => a.startedMs - b.startedMs)[0];
    const pendingMs = oldest ? Date.now() - oldest.startedMs : 0;
    if (pendingMs > (this.options.stallMs ?? 5000) && this.health.isUp) {
      const problem = `writing ${oldest.where} has not finished after ${Math.round(pendingMs / 1000)} s (${this.waitingFor() ?? "is the sink's server reachable?"})`;
      this.health.degraded(problem);
      this.options.logger.warn(`sink ${this.options.sink.name}: ${problem}`);
    }
  }

  /** What the sink's hung work waits for, when it can tell. */
  private waitingFor(): string | null {
    const sink = this.options.sink as Partial<ReportsPendingWork>;
    const pending = typeof sink.pendingWork === 'function' ? sink.pendingWork(1000) : null;
    return pending ? `waiting for ${pending}` : null;
  }

  private async apply(batch: LogBatch, signal: AbortSignal): Promise<void> {
    const { sink, metrics } = this.options;
    const { records, partition } = batch;
    if (this.options.beforeBatch) {
      await this.options.beforeBatch(signal);
      if (signal.aborted) return;
    }
    const where = `${batch.topic ? `topic ${batch.topic} ` : ''}partition ${partition} offsets ${records[0].offset}..${records[records.length - 1].offset}`;
    const startedAt = performance.now();
    const entry = { startedMs: Date.now(), where };
    this.inFlight.add(entry);
    const hangMs = this.options.hangMs ?? 60_000;
    try {
      // Each attempt is bounded: failing ones are retried, one that never settles ends the runner's attempt.
      await this.retry(`write ${where}`, signal, async () => {
        let timer: NodeJS.Timeout | undefined;
        const hung = new Promise<'hung'>((resolve) => (timer = setTimeout(() => resolve('hung'), hangMs)));
        const writing = (async () => {
          await sink.write(records);
          await sink.flush();
        })();
        writing.catch(() => undefined); // a write given up on may still fail later
        try {
          if ((await Promise.race([writing, hung])) !== 'hung') return;
        } finally {
          clearTimeout(timer);
        }
        const detail = this.waitingFor();
        throw new AttemptFailure(
          `sink ${sink.name}: writing ${where} has not finished after ${Math.round(hangMs / 1000)} s${detail ? ` (${detail})` : ''}; ` +
            `restarting the sink (the batch is replayed from the log)`,
          'stalled',
        );
      });
    } finally {
      this.inFlight.delete(entry);
    }
    if (signal.aborted) return; // maybe half written: the log does not commit it, and it is replayed
    this.health.up();
    const now = Date.now();
    metrics.sinkApplySeconds.observe({ sink: sink.name }, (performance.now() - startedAt) / 1000);
    const endToEnd = this.reportLag ? metrics.endToEndSeconds.labels({ sink: sink.name }) : null;
    for (const { event } of records) {
      this.lastAppliedCommitMs = Math.max(this.lastAppliedCommitMs, event.source.ts_ms);
      endToEnd?.observe(Math.max(0, now - event.source.ts_ms) / 1000);
    }
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
      this.reportedLagSeconds = seconds;
    } catch (error) {
      if (!this.ready) return; // stopping, or not started yet
      this.options.logger.warn(`sink ${sink.name}: cannot read the log's offsets for the lag metrics: ${(error as Error).message}`);
    }
  }

  /** Runs `action` until it succeeds or the signal aborts, backing off between failures. */
  private async retry(what: string, signal: AbortSignal, action: () => Promise<void>): Promise<void> {
    // Capped at 5 s: a sink whose server is back catches up within seconds.
    const backoff = new Backoff(500, 5000);
    while (!signal.aborted) {
      try {
        return await action();
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof AttemptFailure && error.reason === 'stalled') throw error; // retrying would queue behind the hung work
        const reason = this.health.failed(new Error(`${what} failed: ${(error as Error).message}`, { cause: error }));
        const delayMs = backoff.nextDelayMs();
        this.options.logger.error(`sink ${this.options.sink.name}: ${what} failed: ${(error as Error).message}; retrying`, { inMs: delayMs, reason });
        await sleep(delayMs, signal);
      }
    }
  }
}
