import { isGenerational, Sink } from '../contracts/sink';
import { AdminError } from '../http/admin';
import { Metrics } from '../http/metrics';
import { ChangeLog } from '../log/change-log';
import { Backoff, sleep } from './backoff';
import { DeadLetterStore, ReplayOutcome } from './dead-letters';
import { JsonStateFile } from './json-state';
import { Logger } from './logger';
import { ReprocessTracker, ReprocessStatus } from './reprocess-tracker';
import { SinkRunner, sinkConsumerName } from './sink-runner';
import { childController, supervise } from './supervise';
import { yieldWhileLagging } from './yield-to-lag';

/** `<dataDir>/sinks/<name>.json`: which log consumer the live generation reads as, and a reprocess under way. */
export interface SinkGenerationState {
  consumer: string;
  reprocess?: PendingReprocess;
}

interface PendingReprocess {
  generation: number;
  consumer: string;
  /** `promoting`: the old generation's runner has stopped for good; only the switch is left. */
  phase: 'building' | 'promoting';
  startedAt: string;
}

interface Running {
  runner: SinkRunner;
  /** The sink itself: the runner holds it behind `gate`, a replay writes to it directly inside gate.exclusive(). */
  sink: Sink;
  gate: BatchGate;
  controller: AbortController;
  done: Promise<void>;
}

/** While the live generation lags more than this, a rebuild's batches wait (yieldToLive). */
const LIVE_LAG_YIELD_SECONDS = 5;
/** The longest one batch of a rebuild waits: at least a batch per partition every 2 s. */
const REBUILD_YIELD_MAX_MS = 2000;

export interface ManagedSinkOptions {
  name: string;
  createSink(): Sink;
  log: ChangeLog;
  metrics: Metrics;
  logger: Logger;
  state: JsonStateFile<SinkGenerationState>;
  /**
   * Registers a rebuild's consumer at offset zero before it reads (embedded log): compaction keeps a
   * tombstone until every registered consumer has read past it, and a rebuild that has read a row
   * but not yet its delete must still find the delete.
   */
  registerConsumer?(consumer: string): Promise<void>;
  /** Drops a consumer's committed offsets once no generation reads as it (embedded log: its compaction waits for every consumer). */
  forgetConsumer?(consumer: string): Promise<void>;
  /** How often a reprocess checks whether it has caught up (default 250 ms). */
  pollMs?: number;
  /** The sink's dead letters: counted in status(), replayed by replayDeadLetters(). */
  deadLetters?: DeadLetterStore;
  /** How long a replay turn waits for the runner's batch in flight before giving up (default 30 s). */
  replayWaitMs?: number;
}

/**
 * One configured sink in this process: the runner of its live generation and,
 * during `cdc reprocess`, a second runner that rebuilds a new generation from
 * log offset zero under its own consumer name. Once the new one has read as
 * far as the live one, the live runner stops, the new one reads to the log end
 * as it was then, promote() switches readers, and the new runner stays as the
 * live one. The state file makes a restart continue where this stood.
 */
export class ManagedSink {
  private live: Running | null = null;
  private next: (Running & { pending: PendingReprocess; tracker: ReprocessTracker }) | null = null;
  private coordinating: Promise<void> = Promise.resolve();
  /** A reprocess request being set up (between its first check and its saved state): a second one must not start another runner. */
  private starting: Promise<unknown> | null = null;
  private signal: AbortSignal | null = null;
  private state: SinkGenerationState;
  /** A dead-letter replay under way (it and a reprocess exclude each other). */
  private replaying = false;

  constructor(private readonly options: ManagedSinkOptions) {
    this.state = { consumer: sinkConsumerName(options.name) };
  }

  get ready(): boolean {
    return (this.live ?? this.next)?.runner.ready ?? false;
  }

  /** How far behind the log what readers see is, in seconds (the live generation, or the rebuilt one once it promotes). */
  get lagSeconds(): number {
    return [this.live, this.next].find((generation) => generation?.runner.reportLag)?.runner.lagSeconds ?? 0;
  }

  /** Why it is not ready, for /readyz. */
  describeHealth(): string {
    return (this.live ?? this.next)?.runner.health.describe() ?? 'not started';
  }

  async run(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    this.state = (await this.options.state.read()) ?? this.state;
    const pending = this.state.reprocess;
    if (pending?.phase !== 'promoting') this.live = this.start(this.state.consumer);
    if (pending) this.rebuild(pending);
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    await Promise.all([this.live?.done, this.next?.done, this.coordinating]);
  }

  /** Starts rebuilding the sink into generation live+1 (POST /api/reprocess). */
  async reprocess(): Promise<{ sink: string; generation: number; consumer: string }> {
    const { name } = this.options;
    if (!this.signal || this.signal.aborted) throw new AdminError(503, `sink ${name} is not running in this process`);
    if (this.replaying) throw new AdminError(409, `sink ${name} is replaying its dead letters: start the reprocess once that is done`);
    if (this.state.reprocess || this.next || this.starting) {
      const generation = this.state.reprocess?.generation ?? this.next?.pending.generation;
      const progress = this.next ? await this.next.tracker.status(this.next.pending.phase).catch(() => null) : null;
      const where = progress ? ` (${progress.phase}: ${progress.eventsDone}/${progress.logEnd} events, ${progress.percent}%)` : ' (starting)';
      throw new AdminError(409, `sink ${name} is already being reprocessed${generation ? ` into generation ${generation}` : ''}${where}: watch it with cdc status`);
    }
    // Synchronously claimed before the first await, so two concurrent requests cannot both pass the check above.
    const starting = this.startReprocess();
    this.starting = starting;
    try {
      return await starting;
    } finally {
      this.starting = null;
    }
  }

  private async startReprocess(): Promise<{ sink: string; generation: number; consumer: string }> {
    const { name } = this.options;
    const probe = this.options.createSink();
    if (!isGenerational(probe)) throw new AdminError(409, `sink ${name} cannot be reprocessed: its type keeps no generations`);
    let live: number;
    try {
      live = await probe.liveGeneration();
    } catch (error) {
      throw new AdminError(503, `sink ${name}: cannot read its live generation (${(error as Error).message}); is its target reachable?`);
    }
    const generation = Math.max(live, this.live?.runner.sink && isGenerational(this.live.runner.sink) ? this.live.runner.sink.generation : 0) + 1;
    const pending: PendingReprocess = { generation, consumer: `${sinkConsumerName(name)}-g${generation}`, phase: 'building', startedAt: new Date().toISOString() };
    await this.options.registerConsumer?.(pending.consumer);
    await this.saveState({ ...this.state, reprocess: pending });
    this.rebuild(pending);
    return { sink: name, generation, consumer: pending.consumer };
  }

  async status(): Promise<Record<string, unknown>> {
    const current = this.live ?? this.next;
    const sink = current?.runner.sink;
    const report: Record<string, unknown> = {
      name: this.options.name,
      ready: this.ready,
      health: current?.runner.health.status() ?? null,
      consumer: this.state.consumer,
      generation: sink && isGenerational(sink) ? sink.generation || null : null,
    };
    if (current) {
      const progress = await current.runner.progress().catch(() => null);
      if (progress) Object.assign(report, { committedOffsets: progress.committed, lagEvents: progress.lagEvents });
    }
    if (this.next) report.reprocess = { ...(await this.next.tracker.status(this.next.pending.phase)), ...(this.liveLags() ? { yieldingToLive: true } : {}) };
    if (this.options.deadLetters) report.deadLetters = await this.options.deadLetters.counts().catch((error: Error) => ({ error: error.message }));
    return report;
  }

  /**
   * Writes the sink's dead letters (of `table`, or all) through the live sink again
   * (POST /api/dead-letters/replay), with its usual version guards: an event older than
   * the row the sink holds changes nothing. Concurrency: the replay writes to the very
   * sink instance the runner writes to, in turns of at most a few thousand events run
   * between the runner's batches (BatchGate: a turn starts once no batch is between
   * write() and flush(), and batches wait while it runs). So the sink never sees two
   * writers (the warehouse's buffer and transaction chain, a Redis pipeline), the dead
   * letters the sink records during a turn are the replayed ones refused again, and no
   * turn holds the runner long enough for its stall alarm. A reprocess is refused meanwhile
   * (its second runner would record letters of its own), and a replay during a reprocess.
   */
  async replayDeadLetters(table: string | null): Promise<ReplayOutcome> {
    const { name, deadLetters } = this.options;
    if (!deadLetters) throw new AdminError(404, `sink ${name} keeps no dead letters`);
    if (!this.signal || this.signal.aborted) throw new AdminError(503, `sink ${name} is not running in this process`);
    if (this.replaying) throw new AdminError(409, `sink ${name} is already replaying its dead letters: wait for that replay's answer`);
    if (this.state.reprocess || this.next || this.starting) {
      throw new AdminError(409, `sink ${name} is being reprocessed: a reprocess rewrites every event of the log anyway; replay its dead letters once cdc status shows it done`);
    }
    const live = this.live;
    if (!live || !live.runner.ready) throw new AdminError(503, `sink ${name} is not connected (${this.describeHealth()}): replay once cdc status shows it running`);
    this.replaying = true;
    try {
      return await deadLetters.replay(table, {
        exclusive: (work) => live.gate.exclusive(work, this.options.replayWaitMs ?? 30_000, name),
        write: async (records) => {
          if (this.live !== live || this.signal?.aborted) throw new Error(`sink ${name} stopped or restarted during the replay`);
          await live.sink.write(records);
          await live.sink.flush();
        },
      });
    } catch (error) {
      if (error instanceof AdminError) throw error;
      throw new AdminError(503, (error as Error).message);
    } finally {
      this.replaying = false;
    }
  }

  private start(consumer: string, generation?: number): Running {
    const { options } = this;
    const sink = options.createSink();
    if (generation !== undefined && isGenerational(sink)) sink.useGeneration(generation);
    const gate = new BatchGate();
    const runner = new SinkRunner({
      sink: gate.wrap(sink), log: options.log, metrics: options.metrics, logger: options.logger, consumer, reportLag: generation === undefined,
      ...(generation === undefined ? {} : { beforeBatch: (signal: AbortSignal) => this.yieldToLive(signal) }),
    });
    const controller = childController(this.signal!);
    const what = `sink ${options.name}${generation === undefined ? '' : ` (generation ${generation} being rebuilt)`}`;
    const done = supervise(what, () => runner.run(controller.signal), controller.signal, options.logger);
    return { runner, sink, gate, controller, done };
  }

  private rebuild(pending: PendingReprocess): void {
    const running = this.start(pending.consumer, pending.generation);
    this.next = { ...running, pending, tracker: new ReprocessTracker(running.runner, pending.generation, Date.parse(pending.startedAt)) };
    // Restarted while promoting: no live runner; the new generation is what readers get next.
    if (pending.phase === 'promoting') running.runner.reportLag = true;
    this.options.logger.info('reprocessing sink from log offset zero into a new generation', { sink: this.options.name, generation: pending.generation, consumer: pending.consumer });
    this.coordinating = this.switchOnceCaughtUp().catch((error: Error) => {
      if (!this.signal?.aborted) this.options.logger.error(`sink ${this.options.name}: reprocess stopped: ${error.message}`);
    });
  }

  /** Waits until the new generation has read as far as the live one, then hands readers over. */
  private async switchOnceCaughtUp(): Promise<void> {
    const next = this.next!;
    const { name, logger } = this.options;
    if (this.live) {
      const live = this.live;
      await this.waitFor(async () => {
        const [ahead, behind] = await Promise.all([live.runner.progress(), next.runner.progress()]);
        return ahead.committed.every((offset, p) => (behind.committed[p] ?? 0) >= offset);
      });
      if (this.signal!.aborted) return;
      // Nothing the old generation wrote may be missing from the new one at the switch (a Redis promote sweeps what it did not write).
      live.controller.abort();
      await live.done;
      this.live = null;
      await this.saveState({ ...this.state, reprocess: { ...next.pending, phase: 'promoting' } });
      next.pending.phase = 'promoting';
      // The old generation is frozen from here: its last lag figure would stand still while the log grows.
      // The new runner's lag (to the log end) is what readers will see once it is promoted.
      next.runner.reportLag = true;
    }
    const ends = await this.retry('read the log end offsets', () => this.options.log.endOffsets());
    await this.waitFor(async () => (await next.runner.progress()).committed.every((offset, p) => offset >= (ends[p] ?? 0)));
    await this.waitFor(async () => next.runner.ready && isGenerational(next.runner.sink) && next.runner.sink.generation === next.pending.generation);
    if (this.signal!.aborted) return;
    const sink = next.runner.sink;
    if (!isGenerational(sink)) return;
    await this.retry('promote the new generation', () => sink.promote());
    if (this.signal!.aborted) return;
    const oldConsumer = this.state.consumer;
    await this.saveState({ consumer: next.pending.consumer });
    next.runner.reportLag = true;
    this.live = { runner: next.runner, sink: next.sink, gate: next.gate, controller: next.controller, done: next.done };
    this.next = null;
    logger.info('reprocess done: readers switched to the new generation', { sink: name, generation: next.pending.generation, seconds: Math.round((Date.now() - Date.parse(next.pending.startedAt)) / 1000) });
    if (oldConsumer !== next.pending.consumer) {
      await this.options.forgetConsumer?.(oldConsumer).catch((error: Error) =>
        logger.warn(`sink ${name}: could not drop the committed offsets of the old consumer ${oldConsumer}: ${error.message}; delete them by hand`),
      );
    }
  }

  /**
   * A rebuild's batch waits while the live generation lags: both apply the same
   * log on the same CPU (and, for a DuckDB warehouse, the same database), and
   * readers see the live one. Bounded, so a rebuild always moves on.
   */
  private async yieldToLive(signal: AbortSignal): Promise<void> {
    await yieldWhileLagging(() => this.liveLags(), signal, REBUILD_YIELD_MAX_MS);
  }

  private liveLags(): boolean {
    return (this.live?.runner.lagSeconds ?? 0) > LIVE_LAG_YIELD_SECONDS;
  }

  private async waitFor(condition: () => Promise<boolean>): Promise<void> {
    const signal = this.signal!;
    while (!signal.aborted) {
      if (await condition().catch(() => false)) return;
      await sleep(this.options.pollMs ?? 250, signal);
    }
  }

  private async retry<T>(what: string, action: () => Promise<T>): Promise<T> {
    const backoff = new Backoff();
    for (;;) {
      try {
        return await action();
      } catch (error) {
        if (this.signal!.aborted) throw error;
        const delayMs = backoff.nextDelayMs();
        this.options.logger.error(`sink ${this.options.name}: reprocess: ${what} failed: ${(error as Error).message}; retrying`, { inMs: delayMs });
        await sleep(delayMs, this.signal!);
      }
    }
  }

  private async saveState(state: SinkGenerationState): Promise<void> {
    await this.options.state.write(state);
    this.state = state;
  }
}

export type { ReprocessStatus };

/**
 * Lets work run between a runner's batches. The runner writes each batch as write() then
 * flush() on the sink it was given (several at once on a Kafka log, one per partition): the
 * wrapped sink counts batches from write() until their flush() settles (or write() fails),
 * and holds new ones while exclusive work runs. Everything else passes straight through.
 */
export class BatchGate {
  private active = 0;
  private held: Promise<void> | null = null;
  private idle: Array<() => void> = [];

  wrap(sink: Sink): Sink {
    return new Proxy(sink, {
      get: (target, property) => {
        if (property === 'write') return (batch: Parameters<Sink['write']>[0]) => this.enter().then(() => target.write(batch).catch((error: unknown) => {
          this.leave();
          throw error;
        }));
        if (property === 'flush') return () => target.flush().finally(() => this.leave());
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  /** Runs `work` once no batch is in flight, holding new batches until it settles; gives up after waitMs. */
  async exclusive<T>(work: () => Promise<T>, waitMs: number, sinkName: string): Promise<T> {
    while (this.held) await this.held;
    let release!: () => void;
    this.held = new Promise<void>((resolve) => (release = resolve));
    try {
      if (this.active > 0) {
        let timer: NodeJS.Timeout | undefined;
        const idle = new Promise<boolean>((resolve) => this.idle.push(() => resolve(true)));
        const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)));
        const ready = await Promise.race([idle, late]);
        clearTimeout(timer);
        if (!ready) throw new AdminError(503, `sink ${sinkName} has been writing a batch for over ${Math.round(waitMs / 1000)} s: try again once cdc status shows it running`);
      }
      return await work();
    } finally {
      this.held = null;
      release();
    }
  }

  private async enter(): Promise<void> {
    while (this.held) await this.held;
    this.active++;
  }

  private leave(): void {
    this.active = Math.max(0, this.active - 1);
    if (this.active === 0) for (const wake of this.idle.splice(0)) wake();
  }
}
