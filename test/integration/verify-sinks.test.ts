// `cdc verify` and `cdc verify --repair` for the Elasticsearch sink (the semantics
// server) and the warehouse (Postgres and DuckDB engines), from a Postgres and a
// MariaDB source (issue 13.5): rows deleted, changed and added behind the
// pipeline's back are found, the repair brings every sink back equal to the
// source (extras deleted too), and a second verify reports none.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { DuckDbEngine } from '../../sinks/warehouse/duckdb';
import { EsServer, startEsServer } from '../support/es-server';
import { freePort, MariadbServer, PgServer, startMariadb, startPostgres, stopAll } from '../support/servers';
import { rowDifference, Rows } from '../support/sink-e2e';
import { runCliAsync, ServiceProcess, writeConfig } from '../support/service-process';
import { waitFor } from '../support/wait';
import { sql as mariadbSql } from './mysql-fixture';

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

async function mariadbScenario(mariadb: MariadbServer, pg: PgServer, es: EsServer, name: string): Promise<VerifyScenario> {
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

/** The detail lines of a verify report (missing/extra/different), sorted. */
function findings(stdout: string): string[] {
  return stdout.split('\n').filter((l) => /^\s+(missing|extra|different) /.test(l)).map((l) => l.trim()).sort();
}

for (const kind of ['postgres', 'mariadb'] as const) {
  describe(`cdc verify: Elasticsearch and warehouse (Postgres, DuckDB) sinks, ${kind} source`, function () {
    this.timeout(240_000);
    let pg: PgServer;
    let mariadb: MariadbServer | null = null;
    let es: EsServer;
    let s: VerifyScenario;
    let tamper: SinkTamper;

    before(async () => {
      [pg, es] = await Promise.all([startPostgres(), startEsServer()]);
      if (kind === 'mariadb') mariadb = await startMariadb();
      s = kind === 'postgres' ? await pgScenario(pg, es, 'vspg') : await mariadbScenario(mariadb!, pg, es, 'vsmaria');
      tamper = new SinkTamper(s, es, pg);
      await s.service.start();
      await converge('the snapshot in Elasticsearch and the Postgres warehouse');
    });
    after(async () => {
      await s?.service.stop().catch(() => undefined);
      await es?.stop();
      await stopAll();
      if (s) rmSync(s.dataDir, { recursive: true, force: true });
    });

    const differences = async () => {
      const expected = await s.sourceRows();
      return [rowDifference('elasticsearch', expected, tamper.esRows()), rowDifference('postgres warehouse', expected, await tamper.pgwhRows())].filter(Boolean).join(' | ');
    };
    const converge = (what: string) => waitFor(async () => (await differences()) === '', { timeoutMs: 60_000, intervalMs: 300, what, describe: differences });
    const verify = (...args: string[]) => runCliAsync(['verify', '-c', s.service.configPath, ...args], s.service.env);

    it('reports no differences when every sink equals the source (DuckDB verified by the running service that holds its file)', async () => {
      const result = await verify();
      assert.equal(result.code, 0, result.stderr + result.stdout);
      for (const sink of ['search', 'pgwh', 'duck']) {
        assert.match(result.stdout, new RegExp(`sink ${sink}, table ${s.table.replace('.', '\\.')}: 1000 source rows compared, no differences`), result.stdout);
      }
      assert.match(result.stdout, /sink duck: its files are held by the running service; verifying there/);
    });

    it('finds rows deleted, changed and added behind the pipeline\'s back; --repair makes every sink equal again, extras deleted; verify then reports none', async () => {
      const t = s.table;
      const ghost = { id: 99999, name: 'ghost', qty: 1, price: '1.00' };
      await tamper.es_([{ id: '17' }, { id: '42', doc: { ...tamper.esRows().get('42'), name: 'stale' } }, { id: '99999', doc: ghost }]);
      await tamper.pgwh(`DELETE FROM $T WHERE id = 17; UPDATE $T SET name = 'stale' WHERE id = 42;
        INSERT INTO $T (id, name, qty, price, _cdc_version, _cdc_deleted, _cdc_synced_at) VALUES (99999, 'ghost', 1, '1.00', '0', false, now())`);
      assert.equal(await s.service.stop(), 0);
      await tamper.duck(async (engine, table) => {
        await engine.query(`DELETE FROM ${table} WHERE id = 17`);
        await engine.query(`UPDATE ${table} SET qty = 12345 WHERE id = 42`);
        await engine.query(`INSERT INTO ${table} (id, name, qty, price, _cdc_version, _cdc_deleted, _cdc_synced_at) VALUES (99999, 'ghost', 1, '1.00', '0', false, current_timestamp)`);
      });
      const expectedFindings = [`different ${t}:42`, `extra ${t}:99999`, `missing ${t}:17`];

      // With the service stopped, the CLI opens the DuckDB file itself.
      const duckOffline = await verify('--sink', 'duck');
      assert.equal(duckOffline.code, 2, duckOffline.stderr + duckOffline.stdout);
      assert.doesNotMatch(duckOffline.stdout, /held by the running service/);
      assert.deepEqual(findings(duckOffline.stdout), expectedFindings);

      await s.service.start();
      for (const sink of ['search', 'pgwh', 'duck']) {
        const found = await verify('--sink', sink);
        assert.equal(found.code, 2, found.stderr + found.stdout);
        assert.match(found.stdout, new RegExp(`sink ${sink}, table ${t.replace('.', '\\.')}: 1000 source rows compared, 1 missing, 1 extra, 1 different`), found.stdout);
        assert.deepEqual(findings(found.stdout), expectedFindings, `sink ${sink}`);
      }

      const repaired = await verify('--repair');
      assert.equal(repaired.code, 2, repaired.stderr + repaired.stdout);
      // The first sink's resync re-reads the keys into every sink: later sinks may find only their extra left.
      assert.match(repaired.stdout, new RegExp(`^sink search, table ${t.replace('.', '\\.')}: 1000 source rows compared, 1 missing, 1 extra, 1 different\n  missing .*\n  extra .*\n  different .*\n  repair: resync [0-9a-f-]{36} queued for 2 key\\(s\\) of ${t.replace('.', '\\.')}$`, 'm'), repaired.stdout);
      assert.equal(repaired.stdout.match(/repair: deleted 1 extra key\(s\) of .* the source does not have$/gm)?.length, 3, repaired.stdout);
      await converge('Elasticsearch and the Postgres warehouse repaired');
      assert.equal(tamper.esRows().has('99999'), false, 'the extra document is gone');
      assert.deepEqual(await tamper.pgwh('SELECT _cdc_deleted FROM $T WHERE id = 99999'), [{ _cdc_deleted: true }], 'the extra warehouse row is deleted as the sink deletes (soft)');
      await waitFor(async () => (await verify()).code === 0, { timeoutMs: 60_000, intervalMs: 1000, what: 'verify to report no differences in any sink', describe: async () => (await verify()).stdout });

      // Changes keep flowing over the repaired rows (the repair left versions a newer change beats).
      await s.sourceSql(`UPDATE items SET name = 'after repair' WHERE id IN (17, 42); INSERT INTO items (id, name, qty) VALUES (99999, 'real now', 3)`);
      await converge('changes after the repair');
      await waitFor(async () => (await verify('--sink', 'duck')).code === 0, { timeoutMs: 30_000, intervalMs: 1000, what: 'the DuckDB warehouse to take the changes', describe: async () => (await verify('--sink', 'duck')).stdout });
      assert.equal(await s.service.stop(), 0);
      const expected = await s.sourceRows();
      const duck = await tamper.duckRows();
      assert.deepEqual([...duck.keys()].sort(), [...expected.keys()].sort(), 'DuckDB holds exactly the source\'s keys');
      assert.equal(duck.get('42')!.name, 'after repair');
      assert.equal(duck.get('99999')!.name, 'real now');
    });
  });
}
