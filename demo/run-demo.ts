/**
 * The demo: private throwaway Postgres and Redis, the service between them
 * (embedded log; Redis and a DuckDB warehouse as sinks), and a small shop write load, with a line a second showing
 * Postgres and Redis side by side. Ctrl-C (or DEMO_SECONDS) stops everything.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import Redis from 'ioredis';
import { Client } from 'pg';
import { freePort, startPostgres, startRedis, stopAll } from '../test/support/servers';
import { packageRoot } from '../test/support/kafka';
import { ServiceProcess } from '../test/support/service-process';

const SCHEMA = `
  CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, balance numeric(12,2) NOT NULL DEFAULT 0,
                          updated_at timestamptz(6) NOT NULL DEFAULT now());
  CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, total numeric(12,2) NOT NULL,
                       status text NOT NULL DEFAULT 'new', created_at timestamptz(6) NOT NULL DEFAULT now());
`;

async function main(): Promise<void> {
  const seconds = Number(process.env.DEMO_SECONDS ?? 0);
  // DEMO_DIR lets a test run the demo beside a live one.
  const workDir = resolve(process.env.DEMO_DIR ?? join(packageRoot(), 'var', 'demo'));
  rmSync(join(workDir, 'data'), { recursive: true, force: true }); // fresh servers, fresh log
  mkdirSync(workDir, { recursive: true });
  say('starting throwaway Postgres and Redis on free 127.0.0.1 ports ...');
  const [pg, redisServer] = await Promise.all([startPostgres(), startRedis()]);
  const db = new Client({ connectionString: pg.url });
  await db.connect();
  await db.query(SCHEMA);

  const httpPort = await freePort();
  const configPath = join(workDir, 'cdc.yaml');
  writeFileSync(
    configPath,
    `# written by the demo; PG_URL and REDIS_URL point at its throwaway servers
service: { name: demo, dataDir: ./data, http: { host: 127.0.0.1, port: ${httpPort} } }
log: { type: embedded, partitions: 4 }
sources:
  - { name: shop-pg, type: postgres, url: "\${PG_URL}", tables: [public.customers, public.orders] }
sinks:
  - { name: cache, type: redis, url: "\${REDIS_URL}", keyPrefix: "demo:", tables: ["*"] }
  - { name: warehouse, type: warehouse, engine: duckdb, path: ./data/warehouse.duckdb }
`,
  );
  const service = new ServiceProcess(configPath, httpPort, { PG_URL: pg.url, REDIS_URL: redisServer.url }, (line) =>
    process.stdout.write(`  service | ${line}\n`),
  );
  say(`starting: node dist/cli/main.js run -c ${configPath}`);
  await service.start();
  const redis = new Redis(redisServer.url);
  say('running. Look inside while it goes:');
  say(`  redis-cli -p ${redisServer.port} --scan --pattern 'demo:*' | head`);
  say(`  redis-cli -p ${redisServer.port} get demo:public.customers:1`);
  say(`  psql '${pg.url}' -c 'select * from orders order by id desc limit 5'`);
  say(`  curl -s 127.0.0.1:${httpPort}/metrics | grep ^cdc_`);
  say(seconds > 0 ? `stopping in ${seconds} s` : 'Ctrl-C stops the demo and its servers.');

  let stopping = false;
  let tick = 0;
  const load = setInterval(() => void writeSome(db, ++tick).catch((e: Error) => !stopping && say(`write failed: ${e.message}`)), 100);
  const report = setInterval(() => void showProgress(db, redis).catch(() => undefined), 1000);
  const stop = async (exitCode: number) => {
    if (stopping) return;
    stopping = true;
    clearInterval(load);
    clearInterval(report);
    say('stopping the write load; waiting for Redis and the warehouse to catch up ...');
    for (let i = 0; i < 50 && !(await showProgress(db, redis, false)); i++) await new Promise((r) => setTimeout(r, 100));
    await showProgress(db, redis, true);
    // The warehouse replays the same log on its own schedule: stopping as soon as Redis matched could leave its last batch unread.
    await new Promise((r) => setTimeout(r, 1200)); // the lag gauges are refreshed once a second
    for (let i = 0; i < 100 && !(await sinksCaughtUp(httpPort)); i++) await new Promise((r) => setTimeout(r, 100));
    await service.stop();
    await showWarehouse(join(workDir, 'data', 'warehouse.duckdb')).catch((e: Error) => say(`warehouse: cannot read it: ${e.message}`));
    redis.disconnect();
    await db.end().catch(() => undefined);
    await stopAll();
    process.exit(exitCode);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  if (seconds > 0) setTimeout(() => void stop(0), seconds * 1000);
}

/** One small transaction: a new customer now and then, an order, a status change, a rare delete. */
async function writeSome(db: Client, tick: number): Promise<void> {
  const customer = 1 + (tick % 20);
  await db.query(
    `INSERT INTO customers (id, name, email) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET balance = customers.balance + 1, updated_at = now()`,
    [customer, `Customer ${customer}`, `c${customer}@example.com`],
  );
  await db.query(`INSERT INTO orders (customer_id, total) VALUES ($1, round((random() * 100)::numeric, 2))`, [customer]);
  if (tick % 3 === 0) await db.query(`UPDATE orders SET status = 'shipped' WHERE id = (SELECT max(id) - 2 FROM orders)`);
  if (tick % 10 === 0) await db.query(`DELETE FROM orders WHERE id = (SELECT min(id) FROM orders)`);
}

/** Prints Postgres and Redis counts side by side (when `print`); returns whether they match. */
async function showProgress(db: Client, redis: Redis, print = true): Promise<boolean> {
  const { rows } = await db.query<{ customers: string; orders: string }>(
    'SELECT (SELECT count(*) FROM customers) AS customers, (SELECT count(*) FROM orders) AS orders',
  );
  const [customers, orders] = await Promise.all([countKeys(redis, 'demo:public.customers:*'), countKeys(redis, 'demo:public.orders:*')]);
  if (print) say(`postgres: ${rows[0].customers} customers, ${rows[0].orders} orders | redis: ${customers} customers, ${orders} orders`);
  return Number(rows[0].customers) === customers && Number(rows[0].orders) === orders;
}

/** Whether every sink has applied everything in the log (cdc_sink_lag_events 0), by the service's /metrics. */
async function sinksCaughtUp(httpPort: number): Promise<boolean> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text().catch(() => '');
  const lags = [...text.matchAll(/^cdc_sink_lag_events\{[^}]*\} (\S+)$/gm)].map((m) => Number(m[1]));
  return lags.length > 0 && lags.every((lag) => lag === 0);
}

/** The DuckDB file can be read once the service (its only writer) has stopped. */
async function showWarehouse(path: string): Promise<void> {
  const instance = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' });
  const connection = await instance.connect();
  const count = async (sql: string) => Number((await (await connection.runAndReadAll(sql)).getRows())[0][0]);
  const customers = await count('SELECT count(*) FROM public__customers WHERE NOT _cdc_deleted');
  const orders = await count('SELECT count(*) FROM public__orders WHERE NOT _cdc_deleted');
  const changes = await count('SELECT count(*) FROM public__orders__changes');
  say(`warehouse (DuckDB, ${path}): ${customers} customers, ${orders} orders, ${changes} order changes in public__orders__changes`);
  connection.closeSync();
  instance.closeSync();
}

async function countKeys(redis: Redis, pattern: string): Promise<number> {
  let count = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    count += keys.length;
  } while (cursor !== '0');
  return count;
}

function say(line: string): void {
  process.stdout.write(`demo: ${line}\n`);
}

main().catch(async (error: Error) => {
  process.stderr.write(`demo: failed: ${error.message}\n`);
  await stopAll().catch(() => undefined);
  process.exit(1);
});
