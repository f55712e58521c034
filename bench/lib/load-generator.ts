// Offers a steady rate of row changes to Postgres: every tick one transaction
// (one statement) upserts the rows that are due and inserts one probe row,
// whose commit time is handed to the caller. Readers measure when the probe
// becomes visible elsewhere (Redis, a decoding client).
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';

export const LOAD_SCHEMA = `
  CREATE TABLE load (id int PRIMARY KEY, n bigint NOT NULL, note text, updated_at timestamptz(6) NOT NULL);
  CREATE TABLE probe (id bigint PRIMARY KEY, committed_at timestamptz(6) NOT NULL DEFAULT now());
`;

const UPSERT = `
  WITH p AS (INSERT INTO probe (id) VALUES ($1))
  INSERT INTO load (id, n, note, updated_at) SELECT k, $1, 'load row', now() FROM unnest($2::int[]) AS k
  ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n, updated_at = EXCLUDED.updated_at`;

export interface LoadResult {
  /** Changes (rows written, probes included) per second that Postgres accepted. */
  achieved: number;
  changes: number;
  transactions: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class LoadGenerator {
  private probe = 0;
  private nextKey = 0;

  constructor(private readonly client: Client, private readonly keys = 50_000, private readonly tickMs = 10) {}

  /** One probe and no load: commits it and returns its id (a barrier: once visible, everything before it is). */
  async probeOnce(): Promise<{ probe: number; atMs: number }> {
    const probe = ++this.probe;
    await this.client.query(UPSERT, [probe, []]);
    return { probe, atMs: performance.now() };
  }

  /**
   * Offers `rate` changes/s for `durationMs`. Ticks are scheduled by the clock,
   * so a slow commit is caught up by the next, larger transaction.
   */
  async run(rate: number, durationMs: number, onCommit: (probe: number, atMs: number) => void): Promise<LoadResult> {
    const started = performance.now();
    let changes = 0;
    let transactions = 0;
    for (let now = started; now - started < durationMs; now = performance.now()) {
      const due = Math.floor((rate * (now - started)) / 1000) - changes;
      if (due < 1) {
        await sleep(this.tickMs - ((now - started) % this.tickMs));
        continue;
      }
      const rows = Math.min(due, 5_000, this.keys);
      const keys = Array.from({ length: rows - 1 }, () => (this.nextKey = (this.nextKey + 1) % this.keys));
      const probe = ++this.probe;
      await this.client.query(UPSERT, [probe, keys]);
      onCommit(probe, performance.now());
      changes += rows;
      transactions += 1;
    }
    return { achieved: changes / ((performance.now() - started) / 1000), changes, transactions };
  }
}
