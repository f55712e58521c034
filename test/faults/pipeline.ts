// One case's pipeline: a fresh source database with seed rows, TCP proxies
// between the service and every server it talks to, the config, and the
// service as a child process (kill -9 able), restarted like a supervisor
// would if it exits on its own (each such exit is recorded: it is a crash).
import { createWriteStream, mkdirSync, rmSync, WriteStream } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import { freePort, mariadbQuery } from '../support/servers';
import { ServiceProcess, writeConfig } from '../support/service-process';
import { startTcpProxy, TcpProxy } from '../support/tcp-proxy';
import { Lab } from './lab';
import { MARIADB_SCHEMA, PG_SCHEMA, seedSql, SourceKind, TABLES } from './schema';
import { SqlClient, sqlClient } from './sql-client';

export type PipelineName = 'pg-embedded' | 'pg-kafka' | 'maria-embedded' | 'maria-kafka';
export const PIPELINES: PipelineName[] = ['pg-embedded', 'pg-kafka', 'maria-embedded', 'maria-kafka'];
export const PARTITIONS = 4;

export const sourceKindOf = (p: PipelineName): SourceKind => (p.startsWith('pg') ? 'postgres' : 'mariadb');
export const logKindOf = (p: PipelineName): 'embedded' | 'kafka' => (p.endsWith('kafka') ? 'kafka' : 'embedded');

export interface PipelineOptions {
  /** Rows in customers before the service starts (orders half, order_items half). */
  seedRows: number;
  snapshotChunk: number;
  /** Add a warehouse sink on the warehouse Postgres (for its outage case). */
  postgresWarehouse?: boolean;
  /** The embedded log's directory (e.g. on a small tmpfs); default <dataDir>/var/log. */
  logDir?: string;
  /** Compaction every second on small segments, so a kill -9 can land during one. */
  busyCompaction?: boolean;
  serverId: number;
  /** The source's snapshot.mode (default: the service's default, initial). */
  snapshotMode?: 'initial' | 'when_needed' | 'always' | 'never';
}

export const SINKS = ['cache', 'search', 'warehouse'] as const;

export class Pipeline {
  readonly source: SourceKind;
  readonly dataDir: string;
  readonly proxies: Record<string, TcpProxy> = {};
  service!: ServiceProcess;
  /** Exits of the service nobody asked for, with its last lines. */
  readonly crashes: string[] = [];
  private expectRunning = false;
  private supervisor: NodeJS.Timeout | null = null;
  private readonly lineListeners = new Set<(line: string) => void>();
  private logStream: WriteStream;

  constructor(readonly lab: Lab, readonly pipeline: PipelineName, readonly name: string, readonly options: PipelineOptions, outputDir: string) {
    this.source = sourceKindOf(pipeline);
    this.dataDir = join(outputDir, 'cases', name);
    rmSync(this.dataDir, { recursive: true, force: true });
    mkdirSync(this.dataDir, { recursive: true });
    this.logStream = createWriteStream(join(this.dataDir, 'service.log'));
  }

  get sinks(): string[] {
    return this.options.postgresWarehouse ? [...SINKS, 'pgwarehouse'] : [...SINKS];
  }

  get prefix(): string { return `${this.name}:`; }
  get indexPrefix(): string { return `${this.name}-`; }
  get sourceName(): string { return 'src'; }
  /** The schema part of table names: `public` on Postgres, the database on MariaDB. */
  get schema(): string { return this.source === 'postgres' ? 'public' : this.name; }
  /** Tables a case made the service capture besides the three (e.g. tables that joined later): compared too. */
  readonly extraTables: string[] = [];
  get tables(): string[] { return [...TABLES.map((t) => `${this.schema}.${t}`), ...this.extraTables]; }

  /** The source database, directly (not through the proxy): what the load and the comparison use. */
  get sourceUrl(): string {
    if (this.source === 'postgres') return this.lab.pg!.url.replace(/\/[^/]*$/, `/${this.name}`);
    return this.lab.mariadb!.url;
  }

  sourceClient(): SqlClient {
    return sqlClient(this.source, this.sourceUrl, this.name);
  }

  async setUp(): Promise<void> {
    const lab = this.lab;
    const sourcePort = this.source === 'postgres' ? lab.pg!.port : lab.mariadb!.port;
    const redisPort = lab.redis.port;
    const esPort = Number(new URL(lab.es.url).port);
    const [source, redis, es, warehouse] = await Promise.all([
      startTcpProxy({ port: sourcePort }), startTcpProxy({ port: redisPort }), startTcpProxy({ port: esPort }),
      this.options.postgresWarehouse ? startTcpProxy({ port: lab.warehousePg!.port }) : undefined,
    ]);
    Object.assign(this.proxies, { source, redis, es }, warehouse ? { warehouse } : {});
    await this.createDatabase();
    const httpPort = await freePort();
    const config = writeConfig(join(this.dataDir, 'cdc.yaml'), this.configYaml(httpPort));
    const sourceUrl = this.source === 'postgres'
      ? `postgres://postgres@127.0.0.1:${source.port}/${this.name}`
      : `mysql://root@127.0.0.1:${source.port}/`;
    this.service = new ServiceProcess(config, httpPort, {
      SOURCE_URL: sourceUrl, REDIS_URL: `redis://127.0.0.1:${redis.port}`, ES_URL: `http://127.0.0.1:${es.port}`,
      WAREHOUSE_URL: warehouse ? `postgres://postgres@127.0.0.1:${warehouse.port}/postgres` : '',
    }, (line) => {
      this.logStream.write(`${new Date().toISOString()} ${line}\n`);
      for (const listener of this.lineListeners) listener(line);
    });
  }

  private async createDatabase(): Promise<void> {
    if (this.source === 'postgres') {
      const admin = new Client({ connectionString: this.lab.pg!.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${this.name}`);
      await admin.end();
    } else {
      await mariadbQuery(this.lab.mariadb!.port, `CREATE DATABASE ${this.name}`);
    }
    const client = this.sourceClient();
    try {
      await client.query(this.source === 'postgres' ? PG_SCHEMA : MARIADB_SCHEMA);
      for (const statement of seedSql(this.source, this.options.seedRows)) await client.query(statement);
    } finally {
      await client.close();
    }
    if (this.options.postgresWarehouse) {
      const admin = new Client({ connectionString: this.lab.warehousePg!.url });
      await admin.connect();
      await admin.query(`CREATE SCHEMA ${this.name}`);
      await admin.end();
    }
  }

  private configYaml(httpPort: number): string {
    const o = this.options;
    const log = logKindOf(this.pipeline) === 'kafka'
      ? `{ type: kafka, brokers: [${this.lab.kafka!.brokers.join(', ')}], partitions: ${PARTITIONS}, sessionTimeoutMs: 6000, idempotent: false }`
      : `{ type: embedded, partitions: ${PARTITIONS}${o.logDir ? `, dir: ${JSON.stringify(o.logDir)}` : ''}${o.busyCompaction
        ? ', segmentBytes: 65536, compaction: { intervalMs: 1000, minDirtyRatio: 0.05, tombstoneRetentionMs: 0 }' : ''} }`;
    const snapshot = `snapshot: { ${o.snapshotMode ? `mode: ${o.snapshotMode}, ` : ''}chunkSize: ${o.snapshotChunk} }`;
    const source = this.source === 'postgres'
      ? `{ name: src, type: postgres, url: "\${SOURCE_URL}", tables: [${this.tables.join(', ')}], heartbeatIntervalMs: 1000, ${snapshot} }`
      : `{ name: src, type: mysql, url: "\${SOURCE_URL}", serverId: ${o.serverId}, tables: [${this.tables.join(', ')}], heartbeatIntervalMs: 1000, ${snapshot} }`;
    return `service: { name: ${this.name}, dataDir: ./var, http: { host: 127.0.0.1, port: ${httpPort} } }
log: ${log}
sources:
  - ${source}
sinks:
  - { name: cache, type: redis, url: "\${REDIS_URL}", keyPrefix: "${this.prefix}", tables: ["*"] }
  - { name: search, type: elasticsearch, node: "\${ES_URL}", indexPrefix: "${this.indexPrefix}", tables: ["*"], retryBaseMs: 100 }
  - { name: warehouse, type: warehouse, engine: duckdb, path: ./var/warehouse.duckdb }
${o.postgresWarehouse ? `  - { name: pgwarehouse, type: warehouse, engine: postgres, url: "\${WAREHOUSE_URL}", schema: ${this.name} }\n` : ''}`;
  }

  get duckdbPath(): string {
    return join(this.dataDir, 'var', 'warehouse.duckdb');
  }

  onLine(listener: (line: string) => void): () => void {
    this.lineListeners.add(listener);
    return () => this.lineListeners.delete(listener);
  }

  /** Starts the service without waiting for readiness, and restarts it whenever it exits on its own. */
  async start(): Promise<void> {
    this.expectRunning = true;
    await this.service.start({ waitUntilReady: false });
    this.supervisor ??= setInterval(() => void this.superviseOnce(), 250);
  }

  private restarting = false;
  private async superviseOnce(): Promise<void> {
    if (!this.expectRunning || this.restarting || this.service.pid !== undefined) return;
    this.restarting = true;
    try {
      const last = this.service.output.slice(-40).filter((l) => /error|Error|ERR|fatal|in use/.test(l)).slice(-3).join(' | ') || this.service.recentOutput(3);
      const how = this.service.lastExit ?? 'unknown';
      this.crashes.push(`(${how}) ${last.slice(0, 600)}`);
      this.logStream.write(`${new Date().toISOString()} [harness] the service exited on its own (${how}); restarting it in 1 s\n`);
      await new Promise((r) => setTimeout(r, 1000));
      if (this.expectRunning && this.service.pid === undefined) await this.service.start({ waitUntilReady: false });
    } finally {
      this.restarting = false;
    }
  }

  /** kill -9, then start again at once (no wait for anything). */
  async kill9AndRestart(): Promise<void> {
    this.expectRunning = false;
    await this.service.kill9();
    this.logStream.write(`${new Date().toISOString()} [harness] kill -9; restarting at once\n`);
    this.expectRunning = true;
    await this.service.start({ waitUntilReady: false });
  }

  async stopService(): Promise<number> {
    this.expectRunning = false;
    if (this.supervisor) clearInterval(this.supervisor);
    this.supervisor = null;
    return this.service.stop(30_000);
  }

  harnessLog(line: string): void {
    this.logStream.write(`${new Date().toISOString()} [harness] ${line}\n`);
  }

  async tearDown(): Promise<void> {
    if (this.service) await this.stopService().catch(() => undefined);
    await Promise.all(Object.values(this.proxies).map((p) => p.close().catch(() => undefined)));
    await new Promise<void>((resolve) => this.logStream.end(() => resolve()));
    // The ES test server lives in this process for the whole suite: a case's documents (2M rows, 50 MB
    // values) are dropped once it is compared, or a whole run ran out of heap 51 cases in.
    this.lab.es.dropIndices(this.indexPrefix.toLowerCase());
    // Likewise Redis: a later outage case's `SHUTDOWN SAVE` and restart would save and load every earlier
    // case's keys (2M rows, 50 MB values) and outlast its wait. Cases run one at a time, so all of it goes.
    const redis = new Redis(this.lab.redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    redis.on('error', () => undefined);
    await redis.flushall('ASYNC').catch(() => undefined);
    redis.disconnect();
  }
}
