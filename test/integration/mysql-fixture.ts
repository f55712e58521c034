// Helpers shared by the MySQL integration tests (mysql-*.test.ts): SQL against the
// throwaway MariaDB, rows as MariaDB itself renders them in JSON, the source run
// in-process, and the service run end to end into Redis.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import Redis from 'ioredis';
import { isInteger, isSafeNumber, parse as parseLossless } from 'lossless-json';
import { Connection, createConnection } from 'mysql2/promise';
import { ChangeEvent } from '../../core/event/change-event';
import { createLogger } from '../../core/runtime/logger';
import { mysqlSourceConfig } from '../../connectors/mysql/config';
import { MysqlSource, MysqlSourceInternals } from '../../connectors/mysql/mysql-source';
import { SourceBatch } from '../../core/contracts/source';
import { freePort } from '../support/free-port';
import { MariadbServer } from '../support/mariadb';
import { RedisServer } from '../support/redis';
import { ServiceProcess, writeConfig } from '../support/service-process';

/** Runs statements (`;`-separated allowed) as root; returns the rows of the last one. */
export async function sql(server: MariadbServer, text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const connection = await connect(server);
  try {
    const [result] = await connection.query(text, params);
    if (!Array.isArray(result)) return [];
    // Several statements give one result per statement: the rows of the last SELECT.
    const sets = (result as unknown[]).filter(Array.isArray);
    return (sets.length > 0 ? sets[sets.length - 1] : result) as Record<string, unknown>[];
  } finally {
    await connection.end();
  }
}

export function connect(server: MariadbServer): Promise<Connection> {
  return createConnection({ host: '127.0.0.1', port: server.port, user: 'root', multipleStatements: true, charset: 'utf8mb4', timezone: 'Z', jsonStrings: true, supportBigNumbers: true, bigNumberStrings: true });
}

/** JSON integers beyond double precision as exact strings: the rule the source documents. */
export const parseJson = (text: string) => parseLossless(text, null, (digits: string) => (isInteger(digits) && !isSafeNumber(digits) ? digits : Number(digits)));

/**
 * Rows as MariaDB renders them with JSON_OBJECT(...) (`docSql` per table, over
 * `db.table`): `table:key` → document. Computed by the server, not by our decoder.
 */
export async function expectedRows(server: MariadbServer, db: string, docSql: Record<string, { key: string; doc: string }>): Promise<Map<string, unknown>> {
  const rows = new Map<string, unknown>();
  for (const [table, { key, doc }] of Object.entries(docSql)) {
    for (const r of await sql(server, `SET time_zone = '+00:00'; SELECT CAST(${key} AS CHAR) AS k, ${doc} AS doc FROM \`${db}\`.\`${table}\``)) {
      rows.set(`${table}:${r.k}`, parseJson(String(r.doc)));
    }
  }
  return rows;
}

export function describeDifference(expected: Map<string, unknown>, actual: Map<string, unknown>): string {
  const problems: string[] = [];
  for (const [key, doc] of expected) {
    if (!actual.has(key)) problems.push(`missing ${key}`);
    else if (!isDeepStrictEqual(actual.get(key), doc)) problems.push(`different ${key}: got ${JSON.stringify(actual.get(key))}, MariaDB has ${JSON.stringify(doc)}`);
  }
  for (const key of actual.keys()) if (!expected.has(key)) problems.push(`extra ${key}`);
  return problems.length ? `${problems.length} difference(s): ${problems.slice(0, 5).join('; ')}` : '';
}

/** What a version-guarded sink holds after `events` (the sink contract, in memory): `table:key` → row. */
export function applyEvents(events: ChangeEvent[]): Map<string, unknown> {
  const rows = new Map<string, { version: string; row: unknown }>();
  const truncated = new Map<string, string>();
  for (const e of events) {
    const table = e.source.table;
    if (e.op === 't') {
      if ((truncated.get(table) ?? '') >= e.source.version) continue;
      truncated.set(table, e.source.version);
      for (const [k, v] of rows) if (k.startsWith(`${table}:`) && v.version < e.source.version) rows.delete(k);
      continue;
    }
    const key = `${table}:${Object.values(e.key).join(':')}`;
    const current = rows.get(key);
    if ((current && current.version >= e.source.version) || (truncated.get(table) ?? '') >= e.source.version) continue;
    rows.set(key, { version: e.source.version, row: e.op === 'd' ? undefined : e.after });
  }
  return new Map([...rows].filter(([, v]) => v.row !== undefined).map(([k, v]) => [k, v.row]));
}

export interface SourceRun {
  batches: SourceBatch[];
  events(): ChangeEvent[];
  /** The checkpoint of the last batch, as the runtime would have saved it. */
  checkpoint(): string | null;
  streaming: Promise<void>;
  /** Stops the source; resolves with its stream() outcome. */
  stop(): Promise<void>;
  /** stream()'s rejection, if it failed. */
  done: Promise<Error | null>;
}

/** Runs a MysqlSource in-process (as the runtime would) and collects what it emits. */
export function runSource(
  server: MariadbServer,
  source: {
    tables: string[]; serverId?: number; url?: string; snapshot?: object; from?: string | null; snapshotChunkDelayMs?: number;
    /** Awaited after each batch is collected: a slow log, so the source's backpressure pauses the binlog connection. */
    afterEmit?: (batch: SourceBatch) => Promise<void>;
  },
  internals: MysqlSourceInternals = {},
): SourceRun {
  const config = mysqlSourceConfig.parse({
    name: 'test-mysql', type: 'mysql', url: source.url ?? server.url, serverId: source.serverId ?? 4321, tables: source.tables,
    heartbeatIntervalMs: 500, ...(source.snapshot ? { snapshot: source.snapshot } : {}),
  });
  const mysql = new MysqlSource(config, createLogger('test', () => undefined), internals);
  const controller = new AbortController();
  const batches: SourceBatch[] = [];
  let onStreaming = () => undefined as void;
  const streaming = new Promise<void>((resolve) => (onStreaming = resolve));
  const done = mysql
    .stream({
      from: source.from ?? null,
      signal: controller.signal,
      onStreaming,
      progress: { snapshotRows: () => undefined, backlogBytes: () => undefined },
      emit: async (batch) => {
        batches.push(batch);
        // Slows the snapshot down (its batches carry the JSON progress checkpoint), so tests can interrupt it or write during it.
        if (source.snapshotChunkDelayMs && batch.checkpoint.includes('{')) await new Promise((r) => setTimeout(r, source.snapshotChunkDelayMs));
        await source.afterEmit?.(batch);
      },
    })
    .then(() => null, (error: Error) => error)
    .finally(() => mysql.close());
  return {
    batches,
    events: () => batches.flatMap((b) => b.events),
    checkpoint: () => batches[batches.length - 1]?.checkpoint ?? null,
    streaming,
    done,
    stop: async () => {
      controller.abort();
      const error = await done;
      if (error) throw error;
    },
  };
}

/** The service (node dist/cli/main.js run) between a MariaDB database and Redis, as an operator runs it. */
export class MysqlRedisFixture {
  readonly dataDir = mkdtempSync(join(tmpdir(), 'cdc-mysql-e2e-'));
  readonly prefix: string;
  service!: ServiceProcess;
  redis!: Redis;

  constructor(private readonly mariadb: MariadbServer, private readonly redisServer: RedisServer, readonly db: string, private readonly tables: string[]) {
    this.prefix = `${db}:`;
  }

  async setUp(schema: string, sourceExtra = ''): Promise<void> {
    await sql(this.mariadb, `CREATE DATABASE ${this.db}; USE ${this.db}; ${schema}`);
    this.redis = new Redis(this.redisServer.url);
    const httpPort = await freePort();
    const tables = this.tables.map((t) => `${this.db}.${t}`).join(', ');
    const config = writeConfig(
      join(this.dataDir, 'cdc.yaml'),
      `service: { name: ${this.db}, dataDir: ./var, http: { port: ${httpPort} } }
log: { type: embedded, partitions: 4 }
sources:
  - { name: ${this.db}-mysql, type: mysql, url: "\${MYSQL_URL}", serverId: 5401, tables: [${tables}], heartbeatIntervalMs: 500${sourceExtra} }
sinks:
  - { name: cache, type: redis, url: "\${REDIS_URL}", keyPrefix: "${this.prefix}", tables: ["*"] }
`,
    );
    this.service = new ServiceProcess(config, httpPort, { MYSQL_URL: this.mariadb.url, REDIS_URL: this.redisServer.url });
  }

  sql(text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
    return sql(this.mariadb, `USE ${this.db}; ${text}`, params);
  }

  /** Row documents in Redis under this test's prefix: `table:key` → document. */
  async actual(): Promise<Map<string, unknown>> {
    const rows = new Map<string, unknown>();
    const keys = (await this.redis.keys(`${this.prefix}${this.db}.*`)).sort();
    const values = keys.length ? await this.redis.mget(keys) : [];
    keys.forEach((key, i) => rows.set(key.slice(`${this.prefix}${this.db}.`.length), JSON.parse(values[i]!)));
    return rows;
  }

  async tearDown(): Promise<void> {
    await this.service?.stop().catch(() => undefined);
    this.redis?.disconnect();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
