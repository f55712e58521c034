// Shared by the connection-fault tests (connection-faults*.test.ts): a small write
// load that survives server restarts, /readyz and metrics probes, and the check that
// the service neither crashed nor printed an unhandled error.
import { strict as assert } from 'node:assert';
import { Client } from 'pg';
import { ServiceProcess } from '../support/service-process';

export interface WriteLoad {
  /** Stops the load; resolves with the transactions committed and failed. */
  stop(): Promise<{ committed: number; failed: number }>;
}

/**
 * Runs `step` in a loop (about `perSecond` times a second) until stopped.
 * Failures (a restarting server) are counted and retried after a pause.
 */
export function runLoad(step: () => Promise<void>, perSecond = 40, onFailure: () => Promise<void> = async () => undefined): WriteLoad {
  let stopped = false;
  const counts = { committed: 0, failed: 0 };
  const loop = (async () => {
    while (!stopped) {
      try {
        await step();
        counts.committed++;
        await sleep(1000 / perSecond);
      } catch {
        counts.failed++;
        await onFailure().catch(() => undefined);
        await sleep(200);
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return counts;
    },
  };
}

/** Inserts, updates and deletes on the shop schema (test/support/pg-redis-fixture.ts), drawn from `random`. */
export function pgShopLoad(url: string, random: () => number, customers: number): WriteLoad {
  let client: Client | null = null;
  let nextOrder = 1_000_000;
  const connect = async () => {
    if (client) return client;
    const fresh = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    fresh.on('error', () => undefined); // a restart ends it; the next query fails and reconnects
    await fresh.connect();
    client = fresh;
    return fresh;
  };
  return runLoad(
    async () => {
      const c = await connect();
      const pick = random();
      const id = 1 + Math.floor(random() * customers);
      if (pick < 0.5) await c.query(`UPDATE customers SET n = n + 1, balance = balance + 1.25, updated_at = now() WHERE id = $1`, [id]);
      else if (pick < 0.75) {
        const order = nextOrder++;
        await c.query('BEGIN');
        await c.query(`INSERT INTO orders VALUES ($1, $2, $3)`, [order, id, `order ${order}`]);
        await c.query(`INSERT INTO order_items VALUES ($1, 1, $2), ($1, 2, $3)`, [order, 1 + Math.floor(random() * 9), 2]);
        await c.query('COMMIT');
      } else if (pick < 0.9) await c.query(`DELETE FROM orders WHERE id = (SELECT max(id) FROM orders WHERE id >= 1000000)`);
      else await c.query(`UPDATE order_items SET qty = qty + 1 WHERE order_id = (SELECT min(order_id) FROM order_items)`);
    },
    40,
    async () => {
      const dead = client;
      client = null;
      await dead?.end().catch(() => undefined);
    },
  );
}

export async function readyz(service: ServiceProcess): Promise<{ status: number; body: string }> {
  try {
    const response = await fetch(`http://127.0.0.1:${service.httpPort}/readyz`);
    return { status: response.status, body: await response.text() };
  } catch (error) {
    return { status: 0, body: (error as Error).message };
  }
}

/** The value of one metric sample (0 when absent), e.g. metricValue(text, 'cdc_source_up{source="x"}'). */
export function metricValue(metrics: string, sample: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

/** Sum of cdc_component_restarts_total for a component (all reasons), and the reasons seen. */
export function restarts(metrics: string, component: string): { total: number; reasons: string[] } {
  const reasons: string[] = [];
  let total = 0;
  for (const line of metrics.split('\n')) {
    const match = /^cdc_component_restarts_total\{component="([^"]*)",reason="([^"]*)"\} (\S+)$/.exec(line);
    if (match && match[1] === component) {
      total += Number(match[3]);
      reasons.push(match[2]);
    }
  }
  return { total, reasons };
}

/** The service still runs and never printed an unhandled error or rejection. */
export function assertNoCrash(service: ServiceProcess): void {
  const crash = service.output.find((line) => /Unhandled|uncaught|triggerUncaughtException|FATAL ERROR|Emitted 'error' event/i.test(line));
  assert.equal(crash, undefined, `the service printed an unhandled error:\n${service.recentOutput(60)}`);
  assert.ok(service.pid !== undefined, `the service exited:\n${service.recentOutput(60)}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
