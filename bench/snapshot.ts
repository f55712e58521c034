// Scenario 3: a table snapshotted into the durable log, beside the database's
// own client dumping the same table to /dev/null in the same run: psql
// `COPY ... TO STDOUT` (Postgres) and `mariadb --quick` (MariaDB).
import { Client } from 'pg';
import { MariadbServer, PgServer } from '../test/support/servers';
import { mariadbSql } from './mysql-source';
import { alternate, BenchRow } from './lib/report';
import { main } from './lib/runner';
import { BenchContext, Scenario, timeCommand } from './lib/scenario';
import { SourceToLogResult, sourceToLogInChild } from './lib/source-to-log';

/** Five columns of the usual kinds: int key, text, int, numeric, timestamp with microseconds. */
async function preparePostgres(pg: PgServer, rows: number): Promise<string> {
  const admin = new Client({ connectionString: pg.url });
  await admin.connect();
  await admin.query('DROP DATABASE IF EXISTS bench_snapshot WITH (FORCE)');
  await admin.query('CREATE DATABASE bench_snapshot');
  await admin.end();
  const url = pg.url.replace(/\/[^/]*$/, '/bench_snapshot');
  const db = new Client({ connectionString: url });
  await db.connect();
  await db.query(`CREATE TABLE snap (id int PRIMARY KEY, name text, qty int, price numeric(10,2), updated_at timestamptz(6))`);
  await db.query(`INSERT INTO snap SELECT g, 'item ' || g, g % 1000, (g % 100000) / 100.0, '2024-01-01'::timestamptz + g * interval '1.000001 second'
                  FROM generate_series(1, ${rows}) g`);
  await db.query('VACUUM ANALYZE snap');
  await db.end();
  return url;
}

async function dropSlots(url: string): Promise<void> {
  const db = new Client({ connectionString: url });
  await db.connect();
  await db.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = current_database() AND NOT active`);
  await db.end();
}

async function prepareMariadb(server: MariadbServer, rows: number): Promise<void> {
  await mariadbSql(server, [
    'DROP DATABASE IF EXISTS bench_snapshot',
    'CREATE DATABASE bench_snapshot',
    'USE bench_snapshot',
    'CREATE TABLE snap (id int PRIMARY KEY, name varchar(64), qty int, price decimal(10,2), updated_at datetime(6))',
    `INSERT INTO snap SELECT seq, CONCAT('item ', seq), seq % 1000, (seq % 100000) / 100, TIMESTAMPADD(MICROSECOND, seq * 1000001, '2024-01-01') FROM seq_1_to_${rows}`,
    'ANALYZE TABLE snap',
  ]);
}

function row(name: string, rows: number, ours: Awaited<ReturnType<typeof alternate>>, results: SourceToLogResult[], baselineName: string): BenchRow {
  return {
    scenario: `3. ${name} snapshot → durable log (${rows.toLocaleString('en-US')} rows)`,
    unit: 'rows/s',
    ours: ours[0],
    baseline: ours[1],
    baselineName,
    peakRssMb: Math.max(...results.map((r) => r.peakRssMb)),
    notes: `5 columns, PK chunks of 2,000 (the default); includes ${Math.min(...results.map((r) => r.firstEventSeconds)).toFixed(1)} s from start to first row`,
  };
}

export const snapshotScenario: Scenario = {
  name: 'snapshot',
  summary: 'initial snapshot of one table → durable log, rows/s, vs psql COPY TO STDOUT / mariadb --quick → /dev/null',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const rows = ctx.option('snapshot-rows', ctx.quick ? 50_000 : 1_000_000);
    const [pg, maria] = await Promise.all([ctx.postgres(), ctx.mariadb()]);
    const [url] = await Promise.all([preparePostgres(pg, rows), prepareMariadb(maria, rows)]);
    ctx.say(`  ${rows} rows in each database; reading them ${ctx.runs} time(s) each way`);

    const pgResults: SourceToLogResult[] = [];
    const pgMeasured = await alternate(
      ctx.runs,
      async (run) => {
        const result = await sourceToLogInChild({
          source: { name: 'bench', type: 'postgres', url, tables: ['public.snap'], slot: `snap_${run}`, publication: 'snap', snapshot: { mode: 'initial' }, heartbeatIntervalMs: 0 },
          events: rows,
        });
        pgResults.push(result);
        await dropSlots(url);
        return result.rate;
      },
      async () => rows / (await timeCommand('psql', ['-X', '-q', '-d', url, '-c', 'COPY (SELECT * FROM snap) TO STDOUT'])),
    );

    const mariaResults: SourceToLogResult[] = [];
    const mariaMeasured = await alternate(
      ctx.runs,
      async () => {
        const result = await sourceToLogInChild({
          source: { name: 'bench', type: 'mysql', url: `mysql://root@127.0.0.1:${maria.port}/`, serverId: 9002, tables: ['bench_snapshot.snap'], snapshot: { mode: 'initial' }, heartbeatIntervalMs: 0 },
          events: rows,
        });
        mariaResults.push(result);
        return result.rate;
      },
      async () => rows / (await timeCommand('mariadb', ['--no-defaults', '--protocol=TCP', '-h127.0.0.1', `-P${maria.port}`, '-uroot', '--quick', '--batch', '-e', 'SELECT * FROM bench_snapshot.snap'])),
    );
    return [
      row('Postgres', rows, pgMeasured, pgResults, 'psql COPY TO STDOUT → /dev/null'),
      row('MariaDB', rows, mariaMeasured, mariaResults, 'mariadb --quick → /dev/null'),
    ];
  },
};

if (require.main === module) main([snapshotScenario]);
