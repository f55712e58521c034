import { AdminError } from '../http/admin';
import { ChangeLog, ConsumeOptions, LogBatch } from '../log/change-log';
import { JsonStateFile } from './json-state';
import { Logger } from './logger';
import { childController } from './supervise';

/** One pause: `table` is not applied to `sink` (null: to every sink) until resumed. */
export interface TablePause {
  table: string;
  sink: string | null;
  since: string;
}

/** Per log consumer: where held records start, and where a resumed consumer re-reads from. */
interface ConsumerPauseState {
  /** Per partition, the offset of the first record this consumer skipped because its table was paused. */
  heldFrom: Record<string, number>;
  /** Per partition, the offset the consumer re-reads from after a resume, until it has committed past it. */
  replayFrom: Record<string, number>;
}

/** `<dataDir>/table-pauses.json`. */
export interface TablePausesState {
  paused: TablePause[];
  consumers: Record<string, ConsumerPauseState>;
}

export interface TablePausesOptions {
  state: JsonStateFile<TablePausesState>;
  /** The configured sinks (a pause names one of them, or all). */
  sinks: string[];
  /** The captured tables (`schema.table`); empty: any name is accepted. */
  tables: string[];
  logger: Logger;
  /** Why this log cannot hold tables back (it cannot re-read a partition from an offset); pause() refuses with it. */
  unsupported?: string;
  /** Drops a consumer's committed offsets (embedded log), for the pin below. */
  forgetConsumer?(consumer: string): Promise<void>;
}

/**
 * Per-table pause and resume without stopping the pipeline (`cdc pause|resume`).
 *
 * Why it is correct. The log commits a partition's offset after each handled
 * batch, so a runner cannot skip one table's records and still commit past
 * them without forgetting them. Instead the log itself is the buffer:
 *  - while a table is paused for a sink, the runner applies every other
 *    record of a batch and skips the paused table's, after recording durably
 *    (before the batch's commit) the offset of the first skipped record of
 *    each partition (`heldFrom`);
 *  - on resume (and on every restart of the runner), the held offsets become
 *    `replayFrom`: the runner stops, rewinds each such partition to that offset
 *    (log.commit, and through startOffsets for sinks that keep offsets with
 *    their data) and reads again. The records of the other tables are applied
 *    a second time, which the sinks' version guard makes harmless (the same
 *    path as a crash between flush and commit); the resumed table's records
 *    are applied in log order, so per row in commit order; tables still
 *    paused are skipped and held again.
 *  - `replayFrom` is dropped once the partition has committed past the first
 *    batch read after the rewind (the second batch is only read after that
 *    commit), so a crash during the replay replays again instead of losing.
 *  - the embedded log's compaction drops a delete's tombstone once every
 *    consumer has read past it; a consumer `<consumer>.held` pinned at the
 *    held offsets keeps them until the replay, then it is removed.
 * Memory stays bounded whatever the pause's length: nothing is buffered.
 * The cost: a resume or restart re-reads the log from the first held offset.
 */
export class TablePauses {
  private state: TablePausesState = { paused: [], consumers: {} };
  private saving: Promise<void> = Promise.resolve();
  private readonly restarts = new Set<{ sink: string; restart(): void }>();
  /** Records skipped since this process started, per `sink\u0000table`. */
  private readonly heldCounts = new Map<string, number>();
  /** Per `consumer\u0000partition`: nextOffset of the first batch handled after a rewind. */
  private readonly replayMarks = new Map<string, number>();

  constructor(private readonly options: TablePausesOptions) {}

  async load(): Promise<this> {
    const saved = await this.options.state.read();
    if (saved) this.state = { paused: saved.paused ?? [], consumers: saved.consumers ?? {} };
    return this;
  }

  list(): TablePause[] {
    return this.state.paused.map((p) => ({ ...p }));
  }

  /** Tables paused for `sink` (by name or for all sinks). */
  pausedFor(sink: string): Set<string> {
    return new Set(this.state.paused.filter((p) => p.sink === null || p.sink === sink).map((p) => p.table));
  }

  async pause(table: unknown, sink: unknown): Promise<{ table: string; sink: string | null; paused: TablePause[] }> {
    const { name, sinkName } = this.check(table, sink);
    if (this.options.unsupported) throw new AdminError(409, `cannot pause ${name}: ${this.options.unsupported}`);
    const covered = this.state.paused.some((p) => p.table === name && (p.sink === null || p.sink === sinkName));
    if (!covered) {
      // A pause for every sink replaces the per-sink ones of the same table.
      const others = sinkName === null ? this.state.paused.filter((p) => p.table !== name) : this.state.paused;
      this.state.paused = [...others, { table: name, sink: sinkName, since: new Date().toISOString() }];
      await this.save();
      this.options.logger.info('table paused: its changes stay in the log until resumed', { table: name, sink: sinkName ?? 'all sinks' });
    }
    return { table: name, sink: sinkName, paused: this.list() };
  }

  async resume(table: unknown, sink: unknown): Promise<{ table: string; sink: string | null; paused: TablePause[] }> {
    const { name, sinkName } = this.check(table, sink);
    const before = this.state.paused;
    let after = before.filter((p) => !(p.table === name && (sinkName === null || p.sink === sinkName)));
    const forAll = before.find((p) => p.table === name && p.sink === null);
    if (sinkName !== null && forAll) {
      // Paused for every sink, resumed for one: the others stay paused.
      after = [...after.filter((p) => p !== forAll), ...this.options.sinks.filter((s) => s !== sinkName).map((s) => ({ table: name, sink: s, since: forAll.since }))];
    }
    if (after.length === before.length && after.every((p, i) => p === before[i])) {
      throw new AdminError(409, `table ${name} is not paused${sinkName ? ` for sink ${sinkName}` : ''} (paused: ${describe(before)})`);
    }
    this.state.paused = after;
    await this.save();
    this.options.logger.info('table resumed: its held changes are applied from the log, in order', { table: name, sink: sinkName ?? 'all sinks' });
    for (const entry of this.restarts) if (sinkName === null || entry.sink === sinkName) entry.restart();
    return { table: name, sink: sinkName, paused: this.list() };
  }

  /** For status: each pause with the changes held since this process started. */
  status(): Array<TablePause & { heldEvents: number; sinks: string[] }> {
    return this.state.paused.map((p) => {
      const sinks = p.sink === null ? this.options.sinks : [p.sink];
      const heldEvents = sinks.reduce((n, s) => n + (this.heldCounts.get(`${s}\u0000${p.table}`) ?? 0), 0);
      return { ...p, sinks, heldEvents };
    });
  }

  /**
   * log.consume() for a sink runner, with paused tables held back; restarts
   * the consumption (re-reading from the held offsets) whenever a table of
   * this sink is resumed.
   */
  async consume(log: ChangeLog, sink: string, options: ConsumeOptions): Promise<void> {
    const { consumer, signal } = options;
    while (!signal.aborted) {
      const run = childController(signal);
      const entry = { sink, restart: () => run.abort() };
      this.restarts.add(entry);
      try {
        const replay = await this.prepareStart(log, consumer);
        await log.consume({
          ...options,
          signal: run.signal,
          startOffsets: async (partitions) => {
            const base = (await options.startOffsets?.(partitions)) ?? null;
            const merged = new Map(base ?? []);
            for (const p of partitions) {
              const from = replay[String(p)];
              if (from !== undefined) merged.set(p, Math.min(merged.get(p) ?? Infinity, from));
            }
            return base || merged.size ? merged : null;
          },
          handle: (batch) => this.handle(log, sink, consumer, batch, options.handle),
        });
      } finally {
        this.restarts.delete(entry);
      }
      if (!run.signal.aborted) return;
    }
  }

  /** Held offsets become replay offsets, durably, and the log's committed offsets are rewound to them. */
  private async prepareStart(log: ChangeLog, consumer: string): Promise<Record<string, number>> {
    const state = this.state.consumers[consumer];
    if (!state) return {};
    for (const key of [...this.replayMarks.keys()]) if (key.startsWith(`${consumer}\u0000`)) this.replayMarks.delete(key);
    const held = Object.entries(state.heldFrom);
    if (held.length > 0) {
      for (const [p, from] of held) state.replayFrom[p] = Math.min(state.replayFrom[p] ?? Infinity, from);
      state.heldFrom = {};
      await this.save();
    }
    // Kafka allows this only while no member of the group runs; startOffsets covers that case. All at once: on the
    // mock cluster each separate call joins the group with a member of its own (seconds), concurrent ones share it.
    await Promise.all(Object.entries(state.replayFrom).map(([p, from]) => log.commit(consumer, Number(p), from).catch(() => undefined)));
    if (Object.keys(state.replayFrom).length > 0) {
      this.options.logger.info('re-reading the log from the first change held by a pause', { consumer, from: Object.entries(state.replayFrom).map(([p, o]) => `${p}:${o}`).join(',') });
    }
    return { ...state.replayFrom };
  }

  private async handle(log: ChangeLog, sink: string, consumer: string, batch: LogBatch, apply: (batch: LogBatch) => Promise<void>): Promise<void> {
    const p = String(batch.partition);
    const state = this.state.consumers[consumer];
    let dirty = false;
    if (state?.replayFrom[p] !== undefined) {
      const markKey = `${consumer}\u0000${p}`;
      const mark = this.replayMarks.get(markKey);
      if (mark === undefined) this.replayMarks.set(markKey, batch.nextOffset);
      else if (batch.records[0].offset >= mark) {
        // The first batch after the rewind is committed: the replay has passed the held records.
        delete state.replayFrom[p];
        this.replayMarks.delete(markKey);
        dirty = true;
      }
    }
    const paused = this.pausedFor(sink);
    let kept = batch.records;
    let firstHeld: number | undefined;
    if (paused.size > 0) {
      kept = [];
      for (const record of batch.records) {
        const table = `${record.event.source.schema}.${record.event.source.table}`;
        if (!paused.has(table)) {
          kept.push(record);
          continue;
        }
        firstHeld ??= record.offset;
        const countKey = `${sink}\u0000${table}`;
        this.heldCounts.set(countKey, (this.heldCounts.get(countKey) ?? 0) + 1);
      }
    }
    let pinNow = false;
    if (firstHeld !== undefined) {
      const own = (this.state.consumers[consumer] ??= { heldFrom: {}, replayFrom: {} });
      if (own.heldFrom[p] === undefined) {
        pinNow = Object.keys(own.heldFrom).length === 0 && Object.keys(own.replayFrom).length === 0;
        own.heldFrom[p] = firstHeld;
        dirty = true;
      }
    }
    if (dirty) await this.save(); // before the batch's commit: a held record is never forgotten
    if (pinNow) await this.pin(log, consumer);
    else if (state && Object.keys(state.heldFrom).length === 0 && Object.keys(state.replayFrom).length === 0) await this.unpin(consumer);
    if (kept.length === batch.records.length) return apply(batch);
    if (kept.length > 0) await apply({ ...batch, records: kept });
  }

  /** Keeps the embedded log's compaction from dropping held deletes: a consumer at the held offsets. */
  private async pin(log: ChangeLog, consumer: string): Promise<void> {
    const held = this.state.consumers[consumer]!.heldFrom;
    const ends = await log.endOffsets().catch(() => [] as number[]);
    await Promise.all(ends.map((end, p) => log.commit(`${consumer}.held`, p, held[String(p)] ?? end).catch(() => undefined)));
  }

  private async unpin(consumer: string): Promise<void> {
    delete this.state.consumers[consumer];
    await this.save();
    await this.options.forgetConsumer?.(`${consumer}.held`).catch(() => undefined);
  }

  private check(table: unknown, sink: unknown): { name: string; sinkName: string | null } {
    if (typeof table !== 'string' || !/^[^.\s]+\.[^.\s]+$/.test(table)) throw new AdminError(400, 'table must be a SCHEMA.TABLE name');
    if (this.options.tables.length > 0 && !this.options.tables.includes(table)) {
      throw new AdminError(404, `table ${table} is not captured by any source (captured: ${this.options.tables.join(', ')})`);
    }
    if (sink === undefined || sink === null || sink === '') return { name: table, sinkName: null };
    if (typeof sink !== 'string' || !this.options.sinks.includes(sink)) {
      throw new AdminError(404, `no sink named ${JSON.stringify(sink)} (configured: ${this.options.sinks.join(', ') || 'none'})`);
    }
    return { name: table, sinkName: sink };
  }

  private save(): Promise<void> {
    const snapshot = JSON.parse(JSON.stringify(this.state)) as TablePausesState;
    this.saving = this.saving.catch(() => undefined).then(() => this.options.state.write(snapshot));
    return this.saving;
  }
}

function describe(paused: TablePause[]): string {
  return paused.map((p) => `${p.table}${p.sink ? ` (sink ${p.sink})` : ''}`).join(', ') || 'none';
}

const byLog = new WeakMap<ChangeLog, TablePauses>();

/** Makes `pauses` apply to every sink runner reading `log` in this process. */
export function attachTablePauses(log: ChangeLog, pauses: TablePauses): void {
  byLog.set(log, pauses);
}

/** log.consume(), holding back paused tables when pauses are attached to this log. */
export function consumeWithTablePauses(log: ChangeLog, sink: string, options: ConsumeOptions): Promise<void> {
  const pauses = byLog.get(log);
  return pauses ? pauses.consume(log, sink, options) : log.consume(options);
}
