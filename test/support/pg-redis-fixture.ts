import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import Redis from 'ioredis';
import { Client } from 'pg';
import { ChangeEvent } from '../../core/event/change-event';
import { FileLog } from '../../core/log/file-log';
import { freePort } from './free-port';
import { PgServer } from './postgres';
import { RedisServer } from './redis';
import { ServiceProcess, writeConfig } from './service-process';

/** The shop schema the end-to-end tests write to: one composite key, one bigint key. */
export const SHOP_SCHEMA = `
  CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, balance numeric(12,2), n int NOT NULL DEFAULT 0,
                          updated_at timestamptz(6) NOT NULL DEFAULT now());
  CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, note text);
  CREATE TABLE order_items (order_id bigint, line_no int, qty int NOT NULL, PRIMARY KEY (order_id, line_no));
`;

/**
 * What a reader expects in Redis for each table, computed by Postgres itself:
 * key suffix → JSON document, with the type mapping of docs/architecture.md §2
 * (int as number, bigint and numeric as string, timestamptz as ISO UTC with microseconds).
 */
export const EXPECTED_ROWS: Record<string, string> = {
  customers: `SELECT id::text AS k, json_build_object('id', id, 'name', name, 'balance', balance::text, 'n', n,
                'updated_at', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text AS doc FROM customers`,
  orders: `SELECT id::text AS k, json_build_object('id', id::text, 'customer_id', customer_id, 'note', note)::text AS doc FROM orders`,
  order_items: `SELECT order_id || ':' || line_no AS k, json_build_object('order_id', order_id::text, 'line_no', line_no, 'qty', qty)::text AS doc FROM order_items`,
};

export interface FixtureOptions {
  /** DDL run in the fresh database before the service starts. */
  schema?: string;
  /** Per table: a query returning `k` (key suffix) and `doc` (expected JSON text). */
  expectedRows?: Record<string, string>;
  /** Extra YAML keys of the source's flow mapping, e.g. `snapshot: { chunkSize: 100 }`. */
  sourceOptions?: string;
  /** Omit the Redis sink (sources only). */
  noSinks?: boolean;
  /** The `log:` mapping as YAML (default: the embedded log with 4 partitions). */
  log?: string;
}

/** A fresh database, Redis prefix and data dir per test, so tests never see each other's rows. */
export class PgRedisFixture {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'cdc-e2e-'));
  readonly prefix: string;
  readonly tables: string[];
  private readonly expectedRows: Record<string, string>;
  pgUrl = '';
  service!: ServiceProcess;
  redis!: Redis;

  constructor(
    private readonly pg: PgServer,
    private readonly redisServer: RedisServer,
    readonly name: string,
    private readonly options: FixtureOptions = {},
  ) {
    this.prefix = `${name}:`;
    this.expectedRows = options.expectedRows ?? EXPECTED_ROWS;
    this.tables = Object.keys(this.expectedRows);
  }

  async setUp(): Promise<void> {
    const admin = new Client({ connectionString: this.pg.url });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${this.name}`);
    await admin.end();
    this.pgUrl = this.pg.url.replace(/\/[^/]*$/, `/${this.name}`);
    await this.sql(this.options.schema ?? SHOP_SCHEMA);
    this.redis = new Redis(this.redisServer.url);
    const httpPort = await freePort();
    const config = writeConfig(
      join(this.dataDir, 'cdc.yaml'),
      `service: { name: ${this.name}, dataDir: ./var, http: { port: ${httpPort} } }
log: ${this.options.log ?? '{ type: embedded, partitions: 4 }'}
sources:
  - { name: ${this.name}-pg, type: postgres, url: "\${PG_URL}", tables: [${this.tables.map((t) => `public.${t}`).join(', ')}]${this.options.sourceOptions ? `, ${this.options.sourceOptions}` : ''} }
${this.options.noSinks ? 'sinks: []' : `sinks:\n  - { name: cache, type: redis, url: "\${REDIS_URL}", keyPrefix: "${this.prefix}", tables: ["*"] }`}
`,
    );
    this.service = new ServiceProcess(config, httpPort, { PG_URL: this.pgUrl, REDIS_URL: this.redisServer.url });
  }

  async sql(text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
    const client = new Client({ connectionString: this.pgUrl });
    client.on('error', () => undefined); // a server restart ends the connection; the query rejects anyway
    await client.connect();
    try {
      return (await client.query(text, params)).rows;
    } finally {
      await client.end();
    }
  }

  /** Rows in Postgres, as Redis should hold them: `<schema>.<table>:<pk>` → document. */
  async expected(): Promise<Map<string, unknown>> {
    const rows = new Map<string, unknown>();
    for (const [table, query] of Object.entries(this.expectedRows)) {
      for (const r of await this.sql(query)) rows.set(`public.${table}:${r.k}`, JSON.parse(r.doc as string));
    }
    return rows;
  }

  /** Row documents in Redis under this test's prefix (version bookkeeping keys excluded). */
  async actual(): Promise<Map<string, unknown>> {
    const rows = new Map<string, unknown>();
    const keys = (await this.redis.keys(`${this.prefix}public.*`)).sort();
    const values = keys.length ? await this.redis.mget(keys) : [];
    keys.forEach((key, i) => rows.set(key.slice(this.prefix.length), JSON.parse(values[i]!)));
    return rows;
  }

  /** A readable account of how Redis differs from Postgres ('' when equal). */
  async difference(): Promise<string> {
    const [expected, actual] = await Promise.all([this.expected(), this.actual()]);
    const problems: string[] = [];
    for (const [key, doc] of expected) {
      if (!actual.has(key)) problems.push(`missing ${key}`);
      else if (!isDeepStrictEqual(actual.get(key), doc)) problems.push(`different ${key}: redis ${JSON.stringify(actual.get(key))} vs postgres ${JSON.stringify(doc)}`);
    }
    for (const key of actual.keys()) if (!expected.has(key)) problems.push(`extra ${key}`);
    return problems.length ? `${problems.length} difference(s): ${problems.slice(0, 5).join('; ')}` : '';
  }

  async tearDown(): Promise<void> {
    await this.service?.stop().catch(() => undefined);
    this.redis?.disconnect();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Every record of every partition of the service's log (after the service stopped). */
export async function readWholeLog(dataDir: string, partitions = 4): Promise<ChangeEvent[]> {
  const events: ChangeEvent[] = [];
  await forEachLogEvent(dataDir, (event) => events.push(event), partitions);
  return events;
}

/** Visits every event of the service's log without holding them all in memory. */
export async function forEachLogEvent(dataDir: string, visit: (event: ChangeEvent) => void, partitions = 4): Promise<void> {
  const log = new FileLog({ dir: join(dataDir, 'var', 'log'), partitions });
  await log.open();
  try {
    const ends = await log.endOffsets();
    for (let partition = 0; partition < ends.length; partition++) {
      for (let offset = 0; offset < ends[partition]; ) {
        // readBatch skips gaps a compaction may leave between offsets.
        const { records, nextOffset } = await log.readBatch(partition, offset, 5000);
        for (const r of records) visit(r.event);
        offset = nextOffset;
      }
    }
  } finally {
    await log.close();
  }
}
