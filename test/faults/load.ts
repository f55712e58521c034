// The write load every fault case runs under: inserts, updates and deletes over
// the three tables (one with a composite key), from a few connections, at a
// target rate, bounded in changes and in time, every choice from a seeded PRNG.
import { seededRandom } from '../support/seeded-random';
import { SourceKind } from './schema';
import { SqlClient } from './sql-client';

export interface LoadOptions {
  kind: SourceKind;
  seed: number;
  /** Target changes per second over all workers. */
  changesPerSecond: number;
  maxChanges: number;
  maxMs: number;
  workers: number;
  /** Customer ids are drawn from 1..idSpace (the seeded rows and some new ones). */
  idSpace: number;
  client: () => SqlClient;
}

export interface LoadStats {
  transactions: number;
  /** Row changes the committed transactions made (as issued; an update of a missing row counts too). */
  changes: number;
  /** Transactions that failed (connection lost, deadlock): their outcome is whatever the database kept. */
  failed: number;
  lastError: string;
}

export class WriteLoad {
  readonly stats: LoadStats = { transactions: 0, changes: 0, failed: 0, lastError: '' };
  private stopped = false;
  private running: Promise<void>[] = [];
  private readonly clients: SqlClient[] = [];

  constructor(private readonly options: LoadOptions) {}

  start(): void {
    const deadline = Date.now() + this.options.maxMs;
    for (let w = 0; w < this.options.workers; w++) {
      const client = this.options.client();
      this.clients.push(client);
      this.running.push(this.work(w, client, deadline));
    }
  }

  /** Stops the workers (each finishes its current transaction) and closes their connections. */
  async stop(): Promise<LoadStats> {
    this.stopped = true;
    await Promise.all(this.running);
    await Promise.all(this.clients.map((c) => c.close()));
    return this.stats;
  }

  get done(): Promise<void> {
    return Promise.all(this.running).then(() => undefined);
  }

  private async work(worker: number, client: SqlClient, deadline: number): Promise<void> {
    const random = seededRandom(this.options.seed * 1009 + worker);
    const perWorker = this.options.changesPerSecond / this.options.workers;
    const started = Date.now();
    let issued = 0;
    while (!this.stopped && Date.now() < deadline && this.stats.changes < this.options.maxChanges) {
      const { statements, changes } = this.transaction(random, worker);
      try {
        await client.transaction(statements);
        this.stats.transactions++;
        this.stats.changes += changes;
      } catch (error) {
        this.stats.failed++;
        this.stats.lastError = (error as Error).message;
        await sleep(200); // a restarting server: do not spin
      }
      issued += changes;
      const ahead = issued / perWorker * 1000 - (Date.now() - started);
      if (ahead > 0) await sleep(Math.min(ahead, 1000));
    }
  }

  /** One random transaction and the number of row changes it makes. */
  private transaction(random: () => number, worker: number): { statements: string[]; changes: number } {
    const pg = this.options.kind === 'postgres';
    const pick = (n: number) => 1 + Math.floor(random() * n);
    const id = pick(this.options.idSpace);
    const order = pick(this.options.idSpace); // orders share the id space, so updates and deletes hit rows
    const tag = `w${worker}-${Math.floor(random() * 1e9)}`;
    const now = pg ? 'now()' : 'CURRENT_TIMESTAMP(6)';
    const r = random();
    if (r < 0.3) return { statements: [`UPDATE customers SET n = n + 1, name = '${tag}', balance = ${(random() * 1e6).toFixed(2)}, updated_at = ${now} WHERE id = ${id}`], changes: 1 };
    if (r < 0.45) {
      const upsert = pg
        ? `INSERT INTO customers (id, name, balance) VALUES (${id}, '${tag}', 1.5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, n = customers.n + 1`
        : `INSERT INTO customers (id, name, balance) VALUES (${id}, '${tag}', 1.5) ON DUPLICATE KEY UPDATE name = VALUES(name), n = n + 1`;
      return { statements: [upsert], changes: 1 };
    }
    if (r < 0.55) return { statements: [`DELETE FROM customers WHERE id = ${id}`], changes: 1 };
    if (r < 0.75) {
      const lines = 1 + Math.floor(random() * 3);
      const upsertOrder = pg
        ? `INSERT INTO orders (id, customer_id, note) VALUES (${order}, ${id}, '${tag}') ON CONFLICT (id) DO UPDATE SET note = excluded.note`
        : `INSERT INTO orders (id, customer_id, note) VALUES (${order}, ${id}, '${tag}') ON DUPLICATE KEY UPDATE note = VALUES(note)`;
      const items = Array.from({ length: lines }, (_, i) => pg
        ? `INSERT INTO order_items VALUES (${order}, ${i + 1}, ${pick(9)}) ON CONFLICT (order_id, line_no) DO UPDATE SET qty = excluded.qty`
        : `INSERT INTO order_items VALUES (${order}, ${i + 1}, ${pick(9)}) ON DUPLICATE KEY UPDATE qty = VALUES(qty)`);
      return { statements: [upsertOrder, ...items], changes: 1 + lines };
    }
    if (r < 0.9) return { statements: [`UPDATE order_items SET qty = qty + 1 WHERE order_id = ${order}`], changes: 2 };
    return { statements: [`DELETE FROM order_items WHERE order_id = ${order}`, `DELETE FROM orders WHERE id = ${order}`], changes: 3 };
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
