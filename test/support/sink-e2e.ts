// The service run end to end from one source into Redis, the Elasticsearch
// semantics server and a Postgres warehouse, with what each sink holds read
// back the way a reader reads it. For the sink-exactness tests (issue 13).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import Redis from 'ioredis';
import { Client } from 'pg';
import { DeadLetter, DeadLetterStore } from '../../sinks/shared/dead-letters';
import { EsServer } from './es-server';
import { freePort } from './free-port';
import { ServiceProcess, writeConfig } from './service-process';

export interface SinkE2eOptions {
  name: string;
  /** The source's YAML flow mapping without its name, e.g. `type: postgres, url: "${PG_URL}", tables: [public.t]`. */
  source: string;
  env: NodeJS.ProcessEnv;
  redisUrl?: string;
  es?: EsServer;
  /** The Elasticsearch sink's `tables` (default every table). */
  esTables?: string[];
  /** A Postgres URL for the warehouse sink (engine postgres, schema `wh`). */
  warehouseUrl?: string;
  log?: string;
}

export type Rows = Map<string, Record<string, unknown>>;

export class SinkE2e {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'cdc-sinks-'));
  readonly prefix: string;
  service!: ServiceProcess;
  redis: Redis | null = null;

  constructor(readonly options: SinkE2eOptions) {
    this.prefix = `${options.name}:`;
  }

  async setUp(): Promise<void> {
    const { name, redisUrl, es, warehouseUrl } = this.options;
    const httpPort = await freePort();
    const sinks = [
      redisUrl ? `  - { name: cache, type: redis, url: "\${REDIS_URL}", keyPrefix: "${this.prefix}", tables: ["*"] }` : '',
      es ? `  - { name: search, type: elasticsearch, node: "\${ES_URL}", indexPrefix: "${name}-", tables: ${JSON.stringify(this.options.esTables ?? ['*'])} }` : '',
      warehouseUrl ? `  - { name: warehouse, type: warehouse, engine: postgres, url: "\${WH_URL}", schema: wh, tables: ["*"] }` : '',
    ].filter(Boolean);
    const config = writeConfig(join(this.dataDir, 'cdc.yaml'), `service: { name: ${name}, dataDir: ./var, http: { port: ${httpPort} } }
log: ${this.options.log ?? '{ type: embedded, partitions: 4 }'}
sources:
  - { name: ${name}-src, ${this.options.source} }
sinks:
${sinks.join('\n')}
`);
    this.service = new ServiceProcess(config, httpPort, { ...this.options.env, REDIS_URL: redisUrl ?? '', ES_URL: es?.url ?? '', WH_URL: warehouseUrl ?? '' });
    if (redisUrl) this.redis = new Redis(redisUrl);
  }

  /** Rows in Redis for `schema.table`: key suffix after `<prefix><schema>.<table>:` → document. */
  async redisRows(table: string): Promise<Rows> {
    const rows: Rows = new Map();
    const head = `${this.prefix}${table}:`;
    let cursor = '0';
    do {
      const [next, keys] = await this.redis!.scan(cursor, 'MATCH', `${head.replace(/([*?[\]\\])/g, '\\$1')}*`, 'COUNT', 1000);
      cursor = next;
      const values = keys.length ? await this.redis!.mget(keys) : [];
      keys.forEach((key, i) => values[i] !== null && rows.set(key.slice(head.length), JSON.parse(values[i]!)));
    } while (cursor !== '0');
    return rows;
  }

  /** Documents behind the table's alias: `_id` → `_source`. */
  esRows(table: string): Rows {
    return this.options.es!.documents(`${this.options.name}-${table}`.toLowerCase()) as Rows;
  }

  /** Current (not soft-deleted) warehouse rows of `schema.table`, bookkeeping columns left out, keyed by `key(row)`. */
  async warehouseRows(table: string, key: (row: Record<string, unknown>) => string): Promise<Rows> {
    const client = new Client({ connectionString: this.options.warehouseUrl });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT * FROM wh.${table.replace('.', '__')} WHERE NOT _cdc_deleted`);
      const out: Rows = new Map();
      for (const row of rows) {
        const data = Object.fromEntries(Object.entries(row).filter(([c]) => !c.startsWith('_cdc_')));
        out.set(key(data), data);
      }
      return out;
    } catch (error) {
      if (/does not exist/.test((error as Error).message)) return new Map();
      throw error;
    } finally {
      await client.end();
    }
  }

  deadLetters(sink: string): Promise<DeadLetter[]> {
    return new DeadLetterStore(join(this.dataDir, 'var'), sink).read();
  }

  async tearDown(): Promise<void> {
    await this.service?.stop().catch(() => undefined);
    this.redis?.disconnect();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A reader's account of how `actual` differs from `expected` ('' when equal); values compared as text. */
export function rowDifference(what: string, expected: Rows, actual: Rows): string {
  const problems: string[] = [];
  const same = (a: Record<string, unknown>, b: Record<string, unknown>) => isDeepStrictEqual(textValues(a), textValues(b));
  for (const [key, row] of expected) {
    const got = actual.get(key);
    if (!got) problems.push(`missing ${key}`);
    else if (!same(got, row)) problems.push(`different ${key}: ${JSON.stringify(got)} vs source ${JSON.stringify(row)}`);
  }
  for (const key of actual.keys()) if (!expected.has(key)) problems.push(`extra ${key}`);
  return problems.length ? `${what}: ${problems.length} difference(s) of ${expected.size} rows: ${problems.slice(0, 5).join('; ')}` : '';
}

function textValues(row: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v)]));
}
