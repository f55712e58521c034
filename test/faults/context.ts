// What a case's fault script works with: the pipeline, a seeded PRNG, the
// service's log lines as they come, the admin API, and the moments of a run
// (during the snapshot, at the hand-off to streaming, mid-stream, mid-resync,
// mid-reprocess) a fault can be aimed at.
import { Monitor } from './monitor';
import { Pipeline } from './pipeline';
import { sleep } from './faults';
import { WriteLoad } from './load';

export type Moment = 'snapshot' | 'handoff' | 'stream' | 'resync' | 'reprocess';
export const MOMENTS: Moment[] = ['snapshot', 'handoff', 'stream', 'resync', 'reprocess'];

const SNAPSHOT_STARTED = /snapshotting table|snapshot started|resuming (table )?snapshot/;
const SNAPSHOT_DONE = /snapshot complete/;
const RESYNC_DONE = /resync of table done/;
const REPROCESS_DONE = /reprocess done/;

export class CaseContext {
  private readonly lines: { at: number; line: string }[] = [];
  readonly notes: string[] = [];
  private readonly detach: () => void;

  /** Past this moment the fault script gives up (a pipeline that never gets there has failed anyway). */
  deadlineMs = Number.POSITIVE_INFINITY;

  constructor(readonly p: Pipeline, readonly monitor: Monitor, readonly random: () => number, readonly load: WriteLoad, readonly quick: boolean) {
    this.detach = p.onLine((line) => this.lines.push({ at: Date.now(), line }));
  }

  close(): void {
    this.detach();
  }

  note(text: string): void {
    this.notes.push(text);
    this.p.harnessLog(text);
  }

  /** A random integer in [min, max]. */
  between(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)];
  }

  seen(pattern: RegExp, sinceMs = 0): boolean {
    return this.lines.some((l) => l.at >= sinceMs && pattern.test(l.line));
  }

  /** Waits for a service log line matching `pattern` (one already printed since `sinceMs` counts). */
  async waitLine(pattern: RegExp, timeoutMs: number, sinceMs = 0): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.seen(pattern, sinceMs)) return true;
      this.checkDeadline(`a service log line matching ${pattern}`);
      await sleep(25);
    }
    return false;
  }

  checkDeadline(waitingFor: string): void {
    if (Date.now() > this.deadlineMs) throw new Error(`the fault script ran out of time waiting for ${waitingFor}`);
  }

  async admin(path: string, body: unknown): Promise<string> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.p.service.httpPort}${path}`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000),
      });
      return `${response.status} ${(await response.text()).replace(/\s+/g, ' ').slice(0, 200)}`;
    } catch (error) {
      return `failed: ${(error as Error).message}`;
    }
  }

  /** Waits until the service answers its admin API (it may be restarting). */
  async waitUp(timeoutMs = 30_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.monitor.ready()) !== null) return true;
      await sleep(100);
    }
    return false;
  }

  /**
   * Waits for `moment` and returns just when a fault should fire then, with a
   * note of whether the moment was really hit (a snapshot may finish first).
   */
  async reach(moment: Moment): Promise<void> {
    this.checkDeadline(`the ${moment} moment`);
    const t0 = Date.now();
    switch (moment) {
      case 'snapshot': {
        await this.waitLine(SNAPSHOT_STARTED, 60_000);
        await sleep(this.between(0, 1200));
        this.note(`fault aimed at the snapshot: ${this.seen(SNAPSHOT_DONE) ? 'the snapshot had already completed (moment missed)' : 'snapshot still running'}`);
        return;
      }
      case 'handoff':
        await this.waitLine(SNAPSHOT_DONE, 120_000);
        await sleep(this.between(0, 150));
        this.note(`fault aimed at the snapshot→stream hand-off: ${Date.now() - t0} ms after waiting began`);
        return;
      case 'stream':
        await this.waitLine(SNAPSHOT_DONE, 120_000);
        await sleep(this.between(1500, 6000));
        return;
      case 'resync': {
        await this.waitLine(SNAPSHOT_DONE, 120_000);
        await this.waitUp();
        await sleep(this.between(500, 1500));
        // Right after a restart the source is still reconnecting: ask again, as an operator would.
        let asked = Date.now();
        let answer = await this.admin('/api/resync', { source: this.p.sourceName, tables: this.p.tables });
        for (const until = asked + 30_000; /^409 .*not streaming yet/.test(answer) && Date.now() < until;) {
          await sleep(500);
          asked = Date.now();
          answer = await this.admin('/api/resync', { source: this.p.sourceName, tables: this.p.tables });
        }
        this.note(`resync of every table: ${answer}`);
        await sleep(this.between(100, 1500));
        this.note(`fault aimed mid-resync: ${!answer.startsWith('202') ? 'no resync was started (see the answer above)' : this.seen(RESYNC_DONE, asked) ? 'a table resync had already finished' : 'resync running'}`);
        return;
      }
      case 'reprocess': {
        await this.waitLine(SNAPSHOT_DONE, 120_000);
        await this.waitUp();
        await sleep(this.between(500, 1500));
        const sink = this.pick(this.p.sinks);
        const asked = Date.now();
        const answer = await this.admin('/api/reprocess', { sink });
        this.note(`reprocess of sink ${sink}: ${answer}`);
        await sleep(this.between(100, 2000));
        // 409: a reprocess this case started before (and a kill interrupted) is still running.
        const running = /^(202|409)/.test(answer);
        const switched = this.seen(new RegExp(`${REPROCESS_DONE.source}.* sink=${sink} `), asked);
        this.note(`fault aimed mid-reprocess: ${!running ? 'no reprocess was started (see the answer above)' : switched ? 'the reprocess had already switched over' : 'reprocess running'}`);
        return;
      }
    }
  }
}
