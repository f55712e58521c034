import { SinkRunner } from './sink-runner';

/** Progress of a reprocess as `cdc status` shows it. */
export interface ReprocessStatus {
  generation: number;
  /** `building`: replaying the log beside the live generation; `promoting`: caught up, switching readers. */
  phase: 'building' | 'promoting';
  startedAt: string;
  /** Log records the new generation has read, over all partitions. */
  eventsDone: number;
  /** The log's end, over all partitions (it keeps growing while sources write). */
  logEnd: number;
  percent: number;
  eventsPerSecond: number | null;
  /** Seconds until it reaches the log end at the recent rate; null until a rate is known. */
  etaSeconds: number | null;
  /** Its batches are waiting while the live generation lags (managed-sink.ts, yieldToLive). */
  yieldingToLive?: boolean;
}

const WINDOW_MS = 30_000;

/** Turns a rebuilding runner's offsets into progress and an ETA from the recent replay rate. */
export class ReprocessTracker {
  private readonly samples: Array<{ atMs: number; done: number }> = [];

  constructor(private readonly runner: SinkRunner, private readonly generation: number, private readonly startedAtMs: number) {}

  async status(phase: ReprocessStatus['phase']): Promise<ReprocessStatus> {
    const { committed, ends } = await this.runner.progress();
    const done = committed.reduce((sum, offset, p) => sum + Math.min(offset, ends[p] ?? offset), 0);
    const end = ends.reduce((sum, offset) => sum + offset, 0);
    const now = Date.now();
    this.samples.push({ atMs: now, done });
    while (this.samples.length > 2 && now - this.samples[0].atMs > WINDOW_MS) this.samples.shift();
    const first = this.samples.length > 1 ? this.samples[0] : { atMs: this.startedAtMs, done: 0 };
    const seconds = (now - first.atMs) / 1000;
    const rate = seconds > 0 && done > first.done ? (done - first.done) / seconds : null;
    return {
      generation: this.generation,
      phase,
      startedAt: new Date(this.startedAtMs).toISOString(),
      eventsDone: done,
      logEnd: end,
      percent: end === 0 ? 100 : Math.floor((done / end) * 1000) / 10,
      eventsPerSecond: rate === null ? null : Math.round(rate),
      etaSeconds: rate === null ? null : Math.ceil((end - done) / rate),
    };
  }
}
