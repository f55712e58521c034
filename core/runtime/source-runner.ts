import { ResyncRequest, Source, SourceBatch, SourceProgress } from '../contracts/source';
import { roughEventBytes } from '../event/rough-size';
import { ChangeEvent } from '../event/change-event';
import { AdminError } from '../http/admin';
import { Metrics } from '../http/metrics';
import { ChangeLog } from '../log/change-log';
import { Backoff, sleep } from './backoff';
import { ComponentHealth } from './component-health';
import { JsonStateFile } from './json-state';
import { Logger } from './logger';
import { yieldWhileLagging } from './yield-to-lag';

/**
 * Appends of one source the log may be working on at once (2: encoding the next while the previous syncs).
 * Kept at 1 for now: on the benchmarks the source path is CPU bound (idle under 6% of the profile), so the
 * overlap bought nothing measurable on a loaded 2-core machine, and one append at a time is the proven path.
 */
const MAX_APPENDS_IN_FLIGHT = 1;

interface SourceState {
  position: string;
  updatedAt: string;
}

export interface SourceRunnerOptions {
  name: string;
  createSource: () => Source;
  log: ChangeLog;
  state: JsonStateFile<SourceState>;
  metrics: Metrics;
  logger: Logger;
  /** Events queued between the source and the log before the source is paused. */
  maxQueuedEvents?: number;
  /** Bytes (roughly, of row data) queued between the source and the log before the source is paused. */
  maxQueuedBytes?: number;
  /** The highest lag, in seconds, of the sinks fed in this process (resyncs wait while it is high); absent: none here. */
  sinksLagSeconds?(): number;
}

/** While the sinks of this process lag more than this, a resync's next chunk waits (paceResync). */
const RESYNC_SINK_LAG_SECONDS = 2;
/** The longest a resync waits before one chunk: at least a chunk every 2 s, however far behind the sinks are. */
const RESYNC_YIELD_MAX_MS = 2000;

/**
 * Moves a source's batches into the log: append (durable), then save the
 * position, then acknowledge it to the database. Nothing is acknowledged
 * before it is durable, so a crash replays and never loses (docs/architecture.md §1).
 * Batches queued while an append is in flight are appended together: one
 * fsync for many small transactions. Saving a position runs beside the next
 * appends (the newest appended position is saved next), so an append never
 * waits for the position file's fsyncs. On failure it reconnects with backoff,
 * using a fresh Source from the last durable position.
 */
export class SourceRunner {
  readonly health: ComponentHealth;
  private lastCommitTimeMs = 0;
  private current: Source | null = null;
  /** The last resync tasks dropped because their request cannot succeed (cdc status shows them). */
  private resyncFailures: Array<{ requestId: string; table: string; where?: string; error: string; at: string }> = [];
  private historyEvents: Array<{ kind: string; epoch: number; detail: string; at: string }> = [];
  /** The last resync chunk waited for the sinks to catch up (cdc status says the resync is slowed). */
  private resyncYielded = false;

  constructor(private readonly options: SourceRunnerOptions) {
    this.health = new ComponentHealth('source', options.name, options.metrics);
  }

  /** Streaming: every change committed from now on reaches the log. */
  get ready(): boolean {
    return this.health.isUp;
  }

  /**
   * One attempt per Source instance: an attempt ends when its stream settles
   * (a lost, failed or silent connection rejects it), and the next one starts
   * after a backoff from the last durable position.
   */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff();
    const { logger } = this.options;
    while (!signal.aborted) {
      const source = this.options.createSource();
      this.current = source;
      try {
        await this.streamOnce(source, signal, () => backoff.reset());
        if (!signal.aborted) throw new Error(`source ${this.options.name}: the stream ended without an error while the service runs`);
      } catch (error) {
        if (signal.aborted) break;
        const reason = this.health.failed(error);
        const delayMs = backoff.nextDelayMs();
        logger.error(`${(error as Error).message}; retrying from the last durable position`, { inMs: delayMs, reason, attempt: this.health.status().attempt });
        await source.close().catch(() => undefined);
        await sleep(delayMs, signal);
      } finally {
        await source.close().catch(() => undefined);
      }
    }
    this.health.stopped();
  }

  private readonly progress: SourceProgress = {
    snapshotRows: (table, rowsRead, rowsRemaining) => {
      this.options.metrics.snapshotRows.inc({ source: this.options.name, table }, rowsRead);
      this.options.metrics.snapshotRemainingRows.set({ source: this.options.name, table }, rowsRemaining);
    },
    backlogBytes: (bytes) => this.options.metrics.sourceBacklogBytes.set({ source: this.options.name }, bytes),
    resyncDropped: (failure) => {
      this.resyncFailures = [...this.resyncFailures.slice(-9), { ...failure, at: new Date().toISOString() }];
    },
    history: ({ epoch, kind, detail }) => {
      this.options.metrics.sourceEpoch.set({ source: this.options.name }, epoch);
      if (!kind) return;
      this.options.metrics.sourceHistoryEvents.inc({ source: this.options.name, kind });
      this.historyEvents = [...this.historyEvents.slice(-9), { kind, epoch, detail: detail ?? '', at: new Date().toISOString() }];
    },
  };

  /** Asks the running source to re-read tables while it streams (DBLog watermarks). */
  async requestResync(request: ResyncRequest): Promise<{ requestId: string; joined?: boolean }> {
    const source = this.current;
    if (!source?.resync) throw new AdminError(409, `source ${this.options.name} cannot resync${source ? ' (its type has no resync)' : ' right now: it is not running'}`);
    if (!this.ready) throw new AdminError(409, `source ${this.options.name} is not streaming yet (snapshot or reconnect in progress): try again shortly`);
    try {
      return await source.resync(request);
    } catch (error) {
      throw new AdminError(400, (error as Error).message);
    }
  }

  /** Stops a resync request of the running source and removes it from its durable queue. */
  async cancelResync(requestId: string): Promise<{ requestId: string; cancelled: string[] }> {
    const source = this.current;
    if (!source?.cancelResync) throw new AdminError(409, `source ${this.options.name} cannot cancel a resync${source ? ' (its type has no resync)' : ' right now: it is not running'}`);
    try {
      return await source.cancelResync(requestId);
    } catch (error) {
      throw new AdminError(404, (error as Error).message);
    }
  }

  async status(): Promise<Record<string, unknown>> {
    const saved = await this.options.state.read().catch(() => null);
    return { name: this.options.name, ready: this.ready, health: this.health.status(), lagSeconds: Math.round(this.lagSeconds() * 1000) / 1000, checkpoint: saved?.position ?? null, savedAt: saved?.updatedAt ?? null, resyncFailures: this.resyncFailures, historyEvents: this.historyEvents, ...(this.resyncYielded ? { resyncSlowed: true } : {}) };
  }

  /**
   * A resync re-reads rows the sinks already hold, to repair them: live
   * changes matter more. Its chunks wait while the sinks lag, at most
   * RESYNC_YIELD_MAX_MS each, so it always moves on.
   */
  private async paceResync(signal: AbortSignal): Promise<void> {
    const sinksLag = this.options.sinksLagSeconds;
    if (sinksLag) this.resyncYielded = await yieldWhileLagging(() => sinksLag() > RESYNC_SINK_LAG_SECONDS, signal, RESYNC_YIELD_MAX_MS);
  }

  lagSeconds(): number {
    return this.lastCommitTimeMs === 0 ? 0 : Math.max(0, (Date.now() - this.lastCommitTimeMs) / 1000);
  }

  /** cdc_source_events_total, one increment per table and op of an append (not one per event). */
  private countEvents(events: readonly ChangeEvent[]): void {
    const counts = new Map<string, { table: string; op: string; n: number }>();
    let last: { table: string; op: string; n: number } | undefined;
    let lastSource: ChangeEvent['source'] | undefined;
    let lastOp = '';
    for (const { source, op } of events) {
      // Runs of events of one table and op (the common case) are counted without building their id.
      if (last && op === lastOp && (source === lastSource || (source.table === lastSource!.table && source.schema === lastSource!.schema))) {
        last.n += 1;
        continue;
      }
      const id = `${source.schema}.${source.table}\u0000${op}`;
      let entry = counts.get(id);
      if (entry) entry.n += 1;
      else counts.set(id, (entry = { table: `${source.schema}.${source.table}`, op, n: 1 }));
      last = entry;
      lastSource = source;
      lastOp = op;
    }
    for (const { table, op, n } of counts.values()) this.options.metrics.sourceEvents.inc({ source: this.options.name, table, op }, n);
  }

  private async streamOnce(source: Source, outer: AbortSignal, onProgress: () => void): Promise<void> {
    const { state, log, metrics, name } = this.options;
    const maxQueued = this.options.maxQueuedEvents ?? 5_000;
    const maxQueuedBytes = this.options.maxQueuedBytes ?? 16 * 1024 * 1024;
    const saved = await state.read();
    const stop = new AbortController();
    const abort = () => stop.abort();
    outer.addEventListener('abort', abort, { once: true });

    let queue: SourceBatch[] = [];
    let queuedEvents = 0;
    let queuedBytes = 0;
    // roughEventBytes() of each batch, measured once in emit() and handed on to the log with the append.
    const batchSizes = new WeakMap<SourceBatch, { bytes: number; largest: number }>();
    let wakeWriter: (() => void) | null = null;
    let wakeEmitters: Array<() => void> = [];
    let writerError: Error | null = null;
    let streamDone = false;
    const notifyWriter = () => {
      const wake = wakeWriter;
      wakeWriter = null;
      wake?.();
    };

    const failed = (error: Error) => {
      writerError ??= error;
      stop.abort();
      notifyWriter();
      wakeEmitters.forEach((wake) => wake());
    };
    // A position is saved (an fsync'd file write) and acknowledged while the next appends run, so appends do not
    // wait for it: one save at a time, in order, each after its append is durable; the newest waiting position
    // replaces older ones.
    let unsaved: string | null = null;
    let saving: Promise<void> | null = null;
    const save = (position: string) => {
      unsaved = position;
      saving ??= (async () => {
        try {
          for (let next: string | null = unsaved; next !== null; next = unsaved) {
            unsaved = null;
            await state.write({ position: next, updatedAt: new Date().toISOString() });
            await source.acknowledge(next);
          }
        } finally {
          saving = null;
        }
      })().catch(failed);
    };
    // With a log that keeps concurrent appends in order (orderedConcurrentAppends), up to MAX_APPENDS_IN_FLIGHT
    // appends run at once: the next batch is encoded while the log syncs the previous one. A failed append fails
    // every later pending one, and a position is saved only once its append and all earlier ones are durable, so
    // nothing is acknowledged before it is durable.
    interface InFlight {
      durable: Promise<void>;
      settled: boolean;
      appended: readonly ChangeEvent[];
      events: number;
      bytes: number;
      last: SourceBatch;
      startedAt: number;
    }
    const inFlight: InFlight[] = [];
    const maxInFlight = log.orderedConcurrentAppends ? MAX_APPENDS_IN_FLIGHT : 1;
    const finish = (append: InFlight) => {
      save(append.last.checkpoint);
      if (append.events > 0) metrics.sourceBatchSeconds.observe({ source: name }, (performance.now() - append.startedAt) / 1000);
      this.countEvents(append.appended);
      this.lastCommitTimeMs = append.last.commitTimeMs;
      metrics.sourceLagSeconds.set({ source: name }, this.lagSeconds());
      queuedEvents -= append.events;
      queuedBytes -= append.bytes;
      onProgress();
      const waiting = wakeEmitters;
      wakeEmitters = [];
      waiting.forEach((wake) => wake());
    };
    const writer = (async () => {
      while (true) {
        if (writerError) throw writerError;
        // Appends settle in call order (one log writer); each is finished (position saved) in that order.
        while (inFlight.length > 0 && inFlight[0].settled) {
          const append = inFlight.shift()!;
          await append.durable; // rethrows its failure
          finish(append);
        }
        if (queue.length === 0 || inFlight.length >= maxInFlight) {
          if (queue.length === 0 && inFlight.length === 0 && streamDone) {
            while (saving) await saving;
            return;
          }
          // Woken by the oldest append settling, or (with room for another append) by a new batch.
          const woken = new Promise<void>((resolve) => (wakeWriter = resolve));
          if (inFlight.length > 0) await Promise.race([inFlight[0].durable.catch(() => undefined), queue.length === 0 ? woken : new Promise(() => undefined)]);
          else await woken;
          wakeWriter = null;
          continue;
        }
        const batches = queue;
        queue = [];
        let bytes = 0;
        let largest = 0;
        const events: ChangeEvent[] = [];
        for (const batch of batches) {
          const size = batchSizes.get(batch);
          bytes += size?.bytes ?? 0;
          largest = Math.max(largest, size?.largest ?? 0);
          for (const event of batch.events) events.push(event);
        }
        const startedAt = performance.now();
        const append: InFlight = { durable: Promise.resolve(), settled: false, appended: events, events: events.length, bytes, last: batches[batches.length - 1], startedAt };
        append.durable = events.length > 0 ? log.append(events, { largestEventBytes: largest }) : Promise.resolve();
        append.durable.then(
          () => ((append.settled = true), notifyWriter()),
          () => ((append.settled = true), notifyWriter()),
        );
        inFlight.push(append);
      }
    })().catch(failed);

    const emit = async (batch: SourceBatch): Promise<void> => {
      if (writerError) throw writerError;
      let bytes = 0;
      let largest = 0;
      for (const event of batch.events) {
        const size = roughEventBytes(event);
        bytes += size;
        if (size > largest) largest = size;
      }
      batchSizes.set(batch, { bytes, largest });
      queue.push(batch);
      queuedEvents += batch.events.length;
      queuedBytes += bytes;
      notifyWriter();
      while ((queuedEvents > maxQueued || queuedBytes > maxQueuedBytes) && !writerError) await new Promise<void>((resolve) => wakeEmitters.push(resolve));
    };

    try {
      const onStreaming = () => this.health.up();
      await source.stream({ from: saved?.position ?? null, emit, signal: stop.signal, onStreaming, progress: this.progress, sourceDetails: this.options.log.readsSourceDetails ?? false,
        paceResync: (signal) => this.paceResync(signal) });
    } finally {
      // Whatever the source handed over is still appended and acknowledged: a clean stop loses nothing.
      streamDone = true;
      notifyWriter();
      await writer;
      outer.removeEventListener('abort', abort);
    }
    if (writerError) throw writerError;
  }
}
