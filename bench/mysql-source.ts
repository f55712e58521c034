// Scenario 2: MariaDB binlog → durable log, beside `mariadb-binlog
// --read-from-remote-server` fetching and decoding the same binlog range
// (rows decoded to pseudo-SQL, thrown away) in the same run.
import { createConnection } from 'mysql2/promise';
import { MariadbServer } from '../test/support/servers';
import { alternate, BenchRow } from './lib/report';
import { main } from './lib/runner';
import { BenchContext, Scenario, timeCommand } from './lib/scenario';
import { SourceToLogResult, sourceToLogInChild } from './lib/source-to-log';

export async function mariadbSql(server: MariadbServer, statements: string[]): Promise<Record<string, unknown>[]> {
  const connection = await createConnection({ host: '127.0.0.1', port: server.port, user: 'root', multipleStatements: true });
  try {
    let rows: unknown = [];
    for (const statement of statements) [rows] = await connection.query(statement);
    return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
  } finally {
    await connection.end();
  }
}

/** The binlog file and offset after the last committed transaction. */
async function binlogEnd(server: MariadbServer): Promise<{ file: string; offset: number }> {
  const [status] = await mariadbSql(server, ['SHOW MASTER STATUS']);
  return { file: String(status.File), offset: Number(status.Position) };
}

interface Prepared {
  file: string;
  start: number;
  stop: number;
  changes: number;
}

/** Half the changes in 5-row transactions, half in one large UPDATE, like scenario 1. */
async function prepare(server: MariadbServer, changes: number): Promise<Prepared> {
  const small = Math.floor(changes / 2 / 5);
  const large = changes - small * 5;
  await mariadbSql(server, [
    // A throwaway server: commit without waiting for the disk, so preparing is quick (reading the binlog is what we time).
    'SET GLOBAL innodb_flush_log_at_trx_commit = 2',
    'DROP DATABASE IF EXISTS bench_mysql',
    'CREATE DATABASE bench_mysql',
    'USE bench_mysql', // the seq_1_to_N tables of the Sequence engine need a current database
    'CREATE TABLE bench_mysql.items (id int PRIMARY KEY, name varchar(64), qty int, updated_at datetime(6))',
    `CREATE PROCEDURE bench_mysql.small_transactions(total int)
     BEGIN
       DECLARE t int DEFAULT 0;
       WHILE t < total DO
         START TRANSACTION;
         INSERT INTO bench_mysql.items SELECT t * 5 + seq, CONCAT('item ', t * 5 + seq), seq, NOW(6) FROM seq_1_to_5;
         COMMIT;
         SET t = t + 1;
       END WHILE;
     END`,
  ]);
  const start = await binlogEnd(server);
  await mariadbSql(server, [`CALL bench_mysql.small_transactions(${small})`]);
  // The large transaction updates existing rows and inserts the rest.
  await mariadbSql(server, [
    'USE bench_mysql',
    `INSERT INTO bench_mysql.items SELECT id, name, qty + 1, NOW(6) FROM (
       SELECT seq AS id, CONCAT('item ', seq) AS name, seq % 5 AS qty FROM seq_1_to_${large}) AS s
     ON DUPLICATE KEY UPDATE qty = VALUES(qty)`,
  ]);
  const stop = await binlogEnd(server);
  await mariadbSql(server, ['SET GLOBAL innodb_flush_log_at_trx_commit = 1']);
  if (stop.file !== start.file) throw new Error(`the workload spans binlogs ${start.file}..${stop.file}; lower --mysql-changes`);
  const [{ n }] = await mariadbSql(server, ['SELECT COUNT(*) AS n FROM bench_mysql.items']);
  if (Number(n) !== Math.max(small * 5, large)) throw new Error(`expected ${Math.max(small * 5, large)} rows in bench_mysql.items, found ${n}`);
  return { file: start.file, start: start.offset, stop: stop.offset, changes: small * 5 + large };
}

export const mysqlSourceScenario: Scenario = {
  name: 'mysql-source',
  summary: 'MariaDB binlog → durable log, rows/s, vs mariadb-binlog --read-from-remote-server decoding rows',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const server = await ctx.mariadb();
    const p = await prepare(server, ctx.option('mysql-changes', ctx.quick ? 20_000 : 200_000));
    ctx.say(`  ${p.changes} row changes in ${p.file} ${p.start}..${p.stop} (${((p.stop - p.start) / 1e6).toFixed(1)} MB); reading them ${ctx.runs} time(s) each way`);
    const results: SourceToLogResult[] = [];
    const [ours, limit] = await alternate(
      ctx.runs,
      async () => {
        const result = await sourceToLogInChild({
          source: { name: 'bench', type: 'mysql', url: `mysql://root@127.0.0.1:${server.port}/`, serverId: 9001, tables: ['bench_mysql.items'], snapshot: { mode: 'never' }, heartbeatIntervalMs: 0 },
          from: `${p.file}:${p.start}`,
          events: p.changes,
        });
        results.push(result);
        return result.rate;
      },
      async () => {
        const elapsed = await timeCommand('mariadb-binlog', ['--no-defaults', '--read-from-remote-server', '--host=127.0.0.1', `--port=${server.port}`, '--user=root',
          `--start-position=${p.start}`, `--stop-position=${p.stop}`, '--base64-output=decode-rows', '--verbose', p.file]);
        return p.changes / elapsed;
      },
    );
    return [{
      scenario: `2. MariaDB source → durable log (${p.changes.toLocaleString('en-US')} row changes)`,
      unit: 'rows/s',
      ours,
      baseline: limit,
      baselineName: 'mariadb-binlog -v (decode rows) → /dev/null',
      peakRssMb: Math.max(...results.map((r) => r.peakRssMb)),
      notes: `binlog rows decoded natively (connectors/mysql/native-rows), other events by @vlasky/zongji; includes ${Math.min(...results.map((r) => r.firstEventSeconds)).toFixed(1)} s from start to first event`,
    }];
  },
};

if (require.main === module) main([mysqlSourceScenario]);
