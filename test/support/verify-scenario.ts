// A source with one table `items` streamed by the service into Elasticsearch (the
// semantics server), a Postgres and a DuckDB warehouse, and each sink's copy read
// and written behind the pipeline's back: for the verify tests (issue 13.5, 13.6).
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DuckDbEngine } from '../../sinks/warehouse/duckdb';
import { sql as mariadbSql } from '../integration/mysql-fixture';
import { EsServer } from './es-server';
import { freePort, MariadbServer, PgServer } from './servers';
import { rowDifference, Rows } from './sink-e2e';
import { ServiceProcess, writeConfig } from './service-process';
import { waitFor } from './wait';

/** A source database with one table `items`, and the service streaming it into the three sinks. */
export interface VerifyScenario {
  name: string;
  /** schema.table of `items` as the source names it. */
  table: string;
  service: ServiceProcess;
  dataDir: string;
  sourceRows(): Promise<Rows>;
  sourceSql(text: string): Promise<unknown>;
}

/** Stops the service and removes its folder. */
export async function tearDownScenario(s: VerifyScenario | undefined): Promise<void> {
  if (!s) return;
  await s.service.stop().catch(() => undefined);
  rmSync(s.dataDir, { recursive: true, force: true });
}

export async function pgScenario(pg: PgServer, es: EsServer, name: string, verify = ''): Promise<VerifyScenario> {
  const admin = new Client({ connectionString: pg.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = pg.url.replace(/\/[^/]*$/, `/${name}`);
  const run = async (text: string) => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query(text)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  };
  await run(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int, price numeric(10,2), attrs jsonb);
    INSERT INTO items SELECT g, 'item ''' || g || ':', g % 7, g * 1.25, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g % 3)) FROM generate_series(1, 1000) g`);
  return scenario(name, 'public.items', `type: postgres, url: "\${PG_URL}", tables: [public.items], heartbeatIntervalMs: 500`, { PG_URL: url }, pg, es, verify,
    async () => new Map((await run('SELECT * FROM items')).map((r) => [String(r.id), r])), run);
}

export async function mariadbScenario(mariadb: MariadbServer, pg: PgServer, es: EsServer, name: string): Promise<VerifyScenario> {
  await mariadbSql(mariadb, `CREATE DATABASE ${name}; CREATE TABLE ${name}.items (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT, price DECIMAL(10,2));
    INSERT INTO ${name}.items SELECT seq, CONCAT('item ''', seq, ':'), seq % 7, seq * 1.25 FROM ${name}.seq_1_to_1000`);
  const run = (text: string) => mariadbSql(mariadb, `USE ${name}; ${text}`);
  return scenario(name, `${name}.items`, `type: mysql, url: "\${MYSQL_URL}", serverId: 5471, tables: [${name}.items], heartbeatIntervalMs: 500`, { MYSQL_URL: mariadb.url }, pg, es, '',
    async () => new Map((await run('SELECT id, name, qty, CAST(price AS CHAR) AS price FROM items')).map((r) => [String(r.id), r])), run);
}

async function scenario(
  name: string, table: string, source: string, env: NodeJS.ProcessEnv, pg: PgServer, es: EsServer, verify: string,
  sourceRows: () => Promise<Rows>, sourceSql: (text: string) => Promise<unknown>,
): Promise<VerifyScenario> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cdc-verify-sinks-'));
  const httpPort = await freePort();
  const extra = verify ? `, verify: ${verify}` : '';
  const config = writeConfig(join(dataDir, 'cdc.yaml'), `service: { name: ${name}, dataDir: ./var, http: { port: ${httpPort} } }
log: { type: embedded, partitions: 4 }
sources:
  - { name: src, ${source} }
sinks:
  - { name: search, type: elasticsearch, node: "\${ES_URL}", indexPrefix: "${name}-", tables: ["*"]${extra} }
  - { name: pgwh, type: warehouse, engine: postgres, url: "\${WH_URL}", schema: wh_${name}, tables: ["*"]${extra} }
  - { name: duck, type: warehouse, engine: duckdb, path: ./duck.duckdb, tables: ["*"]${extra} }
`);
  const service = new ServiceProcess(config, httpPort, { ...env, ES_URL: es.url, WH_URL: pg.url });
  return { name, table, service, dataDir, sourceRows, sourceSql };
}

/** Reads and writes each sink's copy of `items` directly, behind the pipeline's back. */
export class SinkTamper {
  constructor(private readonly s: VerifyScenario, private readonly es: EsServer, private readonly pg: PgServer) {}

  get alias(): string {
    return `${this.s.name}-${this.s.table}`.toLowerCase();
  }

  get whTable(): string {
    return `wh_${this.s.name}.${this.s.table.replace('.', '__')}`;
  }

  /** How Elasticsearch and the Postgres warehouse differ from the source ('' when equal), read as readers read them. */
  async difference(): Promise<string> {
    const expected = await this.s.sourceRows();
    return [rowDifference('elasticsearch', expected, this.esRows()), rowDifference('postgres warehouse', expected, await this.pgwhRows())].filter(Boolean).join(' | ');
  }

  converge(what: string): Promise<void> {
    return waitFor(async () => (await this.difference()) === '', { timeoutMs: 60_000, intervalMs: 300, what, describe: () => this.difference() });
  }

  esRows(): Rows {
    return this.es.documents(this.alias) as Rows;
  }

  /** Index (internal versioning, as a stray writer would) or delete documents behind the alias. */
  async es_(actions: Array<{ id: string; doc?: Record<string, unknown> }>): Promise<void> {
    const lines = actions.flatMap(({ id, doc }) => (doc ? [{ index: { _index: this.alias, _id: id } }, doc] : [{ delete: { _index: this.alias, _id: id } }]));
    const reply = await fetch(`${this.es.url}/_bulk?refresh=true`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.map((l) => JSON.stringify(l)).join('\n') + '\n' });
    const body = (await reply.json()) as { errors: boolean };
    assert.equal(body.errors, false, JSON.stringify(body));
  }

  async pgwh(text: string): Promise<Record<string, unknown>[]> {
    const client = new Client({ connectionString: this.pg.url });
    await client.connect();
    try {
      return (await client.query(text.replaceAll('$T', this.whTable))).rows;
    } finally {
      await client.end();
    }
  }

  async pgwhRows(): Promise<Rows> {
    try {
      return rowsOf(await this.pgwh('SELECT * FROM $T WHERE NOT _cdc_deleted'));
    } catch (error) {
      if (/does not exist/.test((error as Error).message)) return new Map(); // not created by the sink yet
      throw error;
    }
  }

  /** Only while the service is stopped: DuckDB allows one process per file. */
  async duck<T>(work: (engine: DuckDbEngine, table: string) => Promise<T>): Promise<T> {
    const engine = new DuckDbEngine(join(this.s.dataDir, 'duck.duckdb'));
    await engine.open();
    try {
      return await work(engine, `"${this.s.table.replace('.', '__')}"`);
    } finally {
      await engine.close();
    }
  }

  async duckRows(): Promise<Rows> {
    return this.duck(async (engine, table) => rowsOf(await engine.query(`SELECT * FROM ${table} WHERE NOT _cdc_deleted`)));
  }
}

function rowsOf(rows: Record<string, unknown>[]): Rows {
  return new Map(rows.map((row) => {
    const data = Object.fromEntries(Object.entries(row).filter(([c]) => !c.startsWith('_cdc_')).map(([c, v]) => [c, typeof v === 'bigint' ? Number(v) : v]));
    return [String(row.id), data];
  }));
}

