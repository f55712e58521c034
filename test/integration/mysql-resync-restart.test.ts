import { strict as assert } from 'node:assert';
import { createLogger } from '../../core/runtime/logger';
import { parseCheckpoint } from '../../connectors/mysql/checkpoint';
import { mysqlSourceConfig } from '../../connectors/mysql/config';
import { MysqlSource } from '../../connectors/mysql/mysql-source';
import { SourceBatch } from '../../core/contracts/source';
import { MariadbServer, startMariadb, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';
import { applyEvents, describeDifference, expectedRows, sql } from './mysql-fixture';

const DOCS = { items: { key: 'id', doc: `JSON_OBJECT('id', id, 'n', n)` } };
const ROWS = 300;

/** A MysqlSource run in-process as the runtime runs it, keeping what it emits and logs. */
function startSource(server: MariadbServer, options: { db: string; from?: string | null; url?: string; watermarkTable?: string; slowResync?: () => boolean }) {
  const config = mysqlSourceConfig.parse({
    name: 'inproc', type: 'mysql', url: options.url ?? server.url, serverId: 4401, tables: [`${options.db}.items`],
    heartbeatIntervalMs: 200, snapshot: { chunkSize: 20 }, ...(options.watermarkTable ? { watermarkTable: options.watermarkTable } : {}),
  });
  const logs: string[] = [];
  const source = new MysqlSource(config, createLogger('test', (line) => logs.push(line)));
  const batches: SourceBatch[] = [];
  const controller = new AbortController();
  const done = source
    .stream({
      from: options.from ?? null,
      signal: controller.signal,
      onStreaming: () => undefined,
      progress: { snapshotRows: () => undefined, backlogBytes: () => undefined },
      emit: async (batch) => {
        batches.push(batch);
        // A slow log: each batch of resync rows takes a while to become durable, so a stop lands mid-resync.
        if (options.slowResync?.() && batch.events.some((e) => e.op === 'r')) await new Promise((r) => setTimeout(r, 60));
      },
    })
    .then(() => null, (error: Error) => error)
    .finally(() => source.close());
  return {
    source,
    batches,
    logs,
    lastCheckpoint: () => parseCheckpoint(batches[batches.length - 1].checkpoint),
    /** Asks for a resync once the source streams (as the runtime does); returns the rejection message, if any. */
    resync: async (tables: string[]): Promise<string | null> => {
      let outcome: string | null | undefined;
      await waitFor(
        async () => {
          outcome = await source.resync({ tables }).then(() => null, (error: Error) => (/not streaming yet/.test(error.message) ? undefined : error.message));
          return outcome !== undefined;
        },
        { timeoutMs: 20_000, what: 'the source to accept or refuse the resync' },
      );
      return outcome!;
    },
    stop: async () => {
      controller.abort();
      const error = await done;
      if (error) throw error;
    },
  };
}

describe('MySQL resync in-process: restarts and grants', function () {
  this.timeout(60_000);
  let server: MariadbServer;

  before(async () => {
    server = await startMariadb();
  });
  after(async () => stopAll());

  async function createItems(db: string): Promise<void> {
    await sql(server, `CREATE DATABASE ${db}; USE ${db}; CREATE TABLE items (id INT PRIMARY KEY, n INT NOT NULL); INSERT INTO items SELECT seq, seq FROM seq_1_to_${ROWS}`);
  }

  it('resumes an interrupted resync at its next chunk after a restart, and the log still ends equal to MariaDB', async () => {
    await createItems('rs1');
    let slow = false;
    const first = startSource(server, { db: 'rs1', slowResync: () => slow });
    slow = true;
    assert.equal(await first.resync(['rs1.items']), null);
    await sql(server, 'UPDATE rs1.items SET n = n + 1000 WHERE id % 7 = 0');
    await waitFor(() => (first.lastCheckpoint().resync?.[0]?.rows ?? 0) >= 100, { timeoutMs: 20_000, what: 'a third of the resync to be handed over' });
    await first.stop();
    const saved = first.batches[first.batches.length - 1].checkpoint;
    const task = parseCheckpoint(saved).resync![0];
    assert.equal(task.table, 'rs1.items');
    assert.ok(task.rows < ROWS, `the stop landed mid-resync (rows done: ${task.rows})`);

    await sql(server, 'UPDATE rs1.items SET n = n + 1 WHERE id % 5 = 0; DELETE FROM rs1.items WHERE id % 11 = 0');
    const second = startSource(server, { db: 'rs1', from: saved });
    await waitFor(() => second.logs.some((l) => l.includes('resync of table done')), { timeoutMs: 20_000, what: 'the resumed resync to finish', describe: () => second.logs.slice(-3).join('\n') });
    await sql(server, 'UPDATE rs1.items SET n = -n WHERE id % 13 = 0');
    await waitFor(() => second.lastCheckpoint().resync === undefined && second.batches.at(-1)!.events.length === 0, { timeoutMs: 20_000, what: 'a checkpoint without resync tasks' });
    await second.stop();

    assert.ok(second.logs.some((l) => /resync of table resumed table=rs1\.items .*rowsDone=\d+/.test(l)));
    const resumedKeys = second.batches.flatMap((b) => b.events).filter((e) => e.op === 'r').map((e) => e.key.id as number);
    assert.ok(resumedKeys.length > 0 && Math.min(...resumedKeys) > Number(task.afterKey![0]), `resumed after key ${task.afterKey}, got keys from ${Math.min(...resumedKeys)}`);
    const all = [...first.batches, ...second.batches].flatMap((b) => b.events);
    assert.equal(describeDifference(await expectedRows(server, 'rs1', DOCS), applyEvents(all)), '');
  });

  it('names the GRANT a user lacks for the watermark table, and works once it is granted', async () => {
    await createItems('rs2');
    await sql(server, `CREATE USER 'cdcw'@'%'; GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'cdcw'@'%'; GRANT SELECT ON rs2.* TO 'cdcw'@'%'`);
    const source = startSource(server, { db: 'rs2', url: server.url.replace('root@', 'cdcw@') });
    try {
      assert.match(
        (await source.resync(['rs2.items'])) ?? 'accepted',
        /^source inproc: cannot resync: the user 'cdcw'@'%' may not write the resync watermark table rs2\.tidewater_watermarks \(.*CREATE command denied.*\): GRANT INSERT, UPDATE, CREATE ON `rs2`\.`tidewater_watermarks` TO 'cdcw'@'%'$/,
      );
      await sql(server, `GRANT INSERT, UPDATE, CREATE ON rs2.tidewater_watermarks TO 'cdcw'@'%'`);
      assert.equal(await source.resync(['rs2.items']), null);
      await waitFor(() => source.logs.some((l) => l.includes('resync of table done')), { timeoutMs: 20_000, what: 'the resync to finish' });
      const events = source.batches.flatMap((b) => b.events);
      const snapshotVersion = events.find((e) => e.op === 'r')!.source.version;
      const resynced = events.filter((e) => e.op === 'r' && e.source.version > snapshotVersion);
      assert.equal(new Set(resynced.map((e) => e.key.id)).size, ROWS);
    } finally {
      await source.stop();
    }
  });

  it('says which database is missing when the configured watermark table cannot be created', async () => {
    await createItems('rs3');
    const source = startSource(server, { db: 'rs3', watermarkTable: 'nowhere.marks' });
    try {
      assert.match(
        (await source.resync(['rs3.items'])) ?? 'accepted',
        /cannot resync: the resync watermark table nowhere\.marks cannot be created: database nowhere does not exist \(CREATE DATABASE `nowhere`, or set watermarkTable: DATABASE\.TABLE on source inproc\)/,
      );
    } finally {
      await source.stop();
    }
  });
});
