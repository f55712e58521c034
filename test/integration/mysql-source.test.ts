import { strict as assert } from 'node:assert';
import { snapshotVersion } from '../../core/event/version';
import { packBinlogPosition } from '../../connectors/mysql/binlog-position';
import { parseCheckpoint } from '../../connectors/mysql/checkpoint';
import { MariadbServer, startMariadb, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';
import { applyEvents, describeDifference, expectedRows, runSource, sql } from './mysql-fixture';

const ITEMS_DOC = { items: { key: 'id', doc: `JSON_OBJECT('id', id, 'n', n, 'note', note)` } };

describe('MySQL source against a real MariaDB (in-process)', function () {
  this.timeout(60_000);
  let server: MariadbServer;
  let dbNumber = 0;
  let db: string;

  before(async () => {
    server = await startMariadb();
  });
  after(async () => stopAll());
  beforeEach(async () => {
    db = `src${++dbNumber}`;
    await sql(server, `CREATE DATABASE ${db}; CREATE TABLE ${db}.items (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0, note VARCHAR(50))`);
  });

  const converge = async (run: ReturnType<typeof runSource>, docs: Parameters<typeof expectedRows>[2] = ITEMS_DOC) => {
    const difference = async () => describeDifference(await expectedRows(server, db, docs), applyEvents(run.events()));
    await waitFor(async () => (await difference()) === '', { timeoutMs: 20_000, what: 'the emitted events to equal MariaDB', describe: difference });
  };

  it('reports each misconfiguration with the setting or grant that fixes it', async () => {
    await sql(server, `CREATE TABLE ${db}.nokey (a INT); CREATE USER IF NOT EXISTS 'cdc'@'%'`);
    const failure = async (source: Parameters<typeof runSource>[1]) => {
      const error = await runSource(server, source).done;
      assert.ok(error, 'the source should have refused to start');
      return error.message;
    };
    const withGlobal = async (setting: string, value: string, message: RegExp) => {
      const [{ old }] = await sql(server, `SELECT @@GLOBAL.${setting} AS old`);
      await sql(server, `SET GLOBAL ${setting} = '${value}'`);
      try {
        assert.match(await failure({ tables: [`${db}.items`] }), message);
      } finally {
        await sql(server, `SET GLOBAL ${setting} = '${old}'`);
      }
    };
    const prefix = 'source test-mysql \\(mysql, server-id 4321\\): ';
    await withGlobal('binlog_format', 'MIXED', new RegExp(`^${prefix}binlog_format is MIXED, but the source reads row changes and needs ROW: set binlog_format=ROW in the server's config file, or SET GLOBAL binlog_format='ROW'`));
    await withGlobal('binlog_row_image', 'MINIMAL', /binlog_row_image is MINIMAL, but the source needs whole rows before and after each change \(FULL\): set binlog_row_image=FULL/);
    await withGlobal('binlog_row_metadata', 'MINIMAL', /binlog_row_metadata is MINIMAL, but the source decodes rows with the column names and types the binlog carries \(FULL\).*: set binlog_row_metadata=FULL/);
    assert.match(await failure({ tables: [`${db}.items`], serverId: 1 }), /server-id 1\): serverId 1 in the config is the server's own server_id: choose another number/);
    assert.match(await failure({ tables: [`${db}.missing`] }), /table src\d+\.missing does not exist \(check "tables" in the config/);
    assert.match(await failure({ tables: [`${db}.nokey`] }), /table src\d+\.nokey has no primary key, so its updates and deletes cannot be told apart: add one \(ALTER TABLE src\d+\.nokey ADD PRIMARY KEY/);

    const asCdc = server.url.replace('root@', 'cdc@');
    await sql(server, `GRANT SELECT ON ${db}.* TO 'cdc'@'%'; GRANT BINLOG MONITOR ON *.* TO 'cdc'@'%'`);
    assert.match(await failure({ url: asCdc, tables: [`${db}.items`] }), /the user 'cdc'@'%' may not read the binlog: GRANT REPLICATION SLAVE ON \*\.\* TO 'cdc'@'%'/);
    await sql(server, `REVOKE BINLOG MONITOR ON *.* FROM 'cdc'@'%'; GRANT REPLICATION SLAVE ON *.* TO 'cdc'@'%'`);
    assert.match(await failure({ url: asCdc, tables: [`${db}.items`] }), /the user 'cdc'@'%' may not list the binlog files \(SHOW BINARY LOGS\): GRANT BINLOG MONITOR ON \*\.\* TO 'cdc'@'%'/);
    await sql(server, `GRANT BINLOG MONITOR ON *.* TO 'cdc'@'%'; REVOKE SELECT ON ${db}.* FROM 'cdc'@'%'`);
    assert.match(await failure({ url: asCdc, tables: [`${db}.items`] }), /the user 'cdc'@'%' may not read table src\d+\.items: GRANT SELECT ON `src\d+`\.`items` TO 'cdc'@'%'/);
    await sql(server, `GRANT SELECT ON ${db}.* TO 'cdc'@'%'`);
    const granted = runSource(server, { url: asCdc, tables: [`${db}.items`] });
    await granted.streaming;
    await sql(server, `INSERT INTO ${db}.items VALUES (1, 1, 'with the grants it needs')`);
    await converge(granted);
    await granted.stop();
  });

  it('decodes old events with their own shape when replaying across ALTER TABLE ADD/DROP COLUMN', async () => {
    const live = runSource(server, { tables: [`${db}.items`] });
    await live.streaming;
    await waitFor(() => live.checkpoint() !== null && !live.checkpoint()!.startsWith('{'), { timeoutMs: 10_000, what: 'the snapshot to complete' });
    const replayFrom = live.checkpoint()!;
    // After each statement, MariaDB's own rendering of the row it changed.
    const docs: unknown[] = [];
    const step = async (statement: string, id: number, doc: string) => {
      await sql(server, `USE ${db}; ${statement}`);
      const [row] = await sql(server, `SELECT ${doc} AS doc FROM ${db}.items WHERE id = ${id}`);
      docs.push(JSON.parse(String(row.doc)));
    };
    await step(`INSERT INTO items VALUES (1, 10, 'one')`, 1, `JSON_OBJECT('id', id, 'n', n, 'note', note)`);
    await sql(server, `ALTER TABLE ${db}.items ADD COLUMN doc JSON`);
    await step(`INSERT INTO items VALUES (2, 20, 'two', '{"z": [1, 2]}')`, 2, `JSON_OBJECT('id', id, 'n', n, 'note', note, 'doc', JSON_EXTRACT(doc, '$'))`);
    await step(`UPDATE items SET doc = '"now JSON"' WHERE id = 1`, 1, `JSON_OBJECT('id', id, 'n', n, 'note', note, 'doc', JSON_EXTRACT(doc, '$'))`);
    await sql(server, `ALTER TABLE ${db}.items DROP COLUMN note`);
    await step(`INSERT INTO items VALUES (3, 30, NULL)`, 3, `JSON_OBJECT('id', id, 'n', n, 'doc', JSON_EXTRACT(doc, '$'))`);
    await step(`UPDATE items SET n = 21 WHERE id = 2`, 2, `JSON_OBJECT('id', id, 'n', n, 'doc', JSON_EXTRACT(doc, '$'))`);
    // Rows keep the columns they had in their last change (the sink is not rewritten by ALTER TABLE).
    await waitFor(() => live.events().filter((e) => !e.source.snapshot).length >= docs.length, { timeoutMs: 10_000, what: 'the source to stream every change' });
    await live.stop();
    const streamed = live.events().filter((e) => !e.source.snapshot);
    assert.deepEqual(streamed.map((e) => e.after), docs, 'each change as MariaDB showed the row right after it');

    const replay = runSource(server, { tables: [`${db}.items`], from: replayFrom });
    await waitFor(() => replay.events().length >= docs.length, { timeoutMs: 10_000, what: 'the replay to reach the last change' });
    await replay.stop();
    assert.deepEqual(replay.events().map((e) => [e.op, e.before, e.after, e.source.version]), streamed.map((e) => [e.op, e.before, e.after, e.source.version]));
  });

  it('resumes an interrupted snapshot at the next chunk, keeping the snapshot version, and ends equal to MariaDB', async () => {
    const values = Array.from({ length: 60 }, (_, i) => `(${i + 1}, ${i}, 'row ${i + 1}')`).join(', ');
    await sql(server, `INSERT INTO ${db}.items VALUES ${values}`);
    const first = runSource(server, { tables: [`${db}.items`], snapshot: { chunkSize: 10 }, snapshotChunkDelayMs: 100 });
    await waitFor(() => first.batches.length >= 3, { timeoutMs: 10_000, what: 'three snapshot chunks' });
    await first.stop(); // a crash after some chunks: only what was emitted counts
    const saved = parseCheckpoint(first.checkpoint()!);
    assert.ok(saved.snapshot && !saved.snapshot.tables[`${db}.items`].done, 'the saved checkpoint is mid-snapshot');
    const readBefore = saved.snapshot.tables[`${db}.items`].rows;

    // Changes while the source is down, on rows already read and rows not read yet.
    await sql(server, `USE ${db}; UPDATE items SET n = n + 100 WHERE id = 5; DELETE FROM items WHERE id = 55; INSERT INTO items VALUES (61, 0, 'new'); UPDATE items SET note = 'later' WHERE id = 50`);
    const resumed = runSource(server, { tables: [`${db}.items`], from: first.checkpoint() });
    const all = () => [...first.events(), ...resumed.events()];
    const difference = async () => describeDifference(await expectedRows(server, db, ITEMS_DOC), applyEvents(all()));
    await waitFor(async () => (await difference()) === '', { timeoutMs: 20_000, what: 'source + resumed source to equal MariaDB', describe: difference });
    await resumed.stop();

    const snapshotRows = all().filter((e) => e.op === 'r');
    const version = snapshotVersion(packBinlogPosition(saved.snapshot.position));
    assert.ok(snapshotRows.every((e) => e.source.version === version), 'resumed rows keep the original snapshot version');
    assert.equal(new Set(snapshotRows.map((e) => e.key.id)).size, snapshotRows.length, 'no row is read twice');
    assert.equal(resumed.events().filter((e) => e.op === 'r').length, 60 - 1 + 1 - readBefore, 'the resumed part reads only what was left');
  });

  it('takes a consistent snapshot under FLUSH TABLES WITH READ LOCK (the MySQL path) while writers run', async () => {
    await sql(server, `INSERT INTO ${db}.items VALUES ${Array.from({ length: 200 }, (_, i) => `(${i + 1}, 0, NULL)`).join(', ')}`);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const id = 1 + ((i * 37) % 250);
        await sql(server, `USE ${db}; BEGIN; INSERT INTO items (id, n) VALUES (${id}, 1) ON DUPLICATE KEY UPDATE n = n + 1; ` +
          `DELETE FROM items WHERE id = ${1 + ((i * 53) % 250)} AND n > 3; COMMIT`);
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    const run = runSource(server, { tables: [`${db}.items`], snapshot: { chunkSize: 20 }, snapshotChunkDelayMs: 30 }, { snapshotStart: 'ftwrl' });
    await run.streaming;
    await new Promise((r) => setTimeout(r, 800));
    writing = false;
    await writer;
    await converge(run);
    await run.stop();
    assert.ok(run.events().some((e) => e.op === 'r') && run.events().some((e) => e.op !== 'r' && e.op !== 't'), 'both snapshot rows and streamed changes');
  });

  it('says so when the saved position was purged, and re-snapshots with snapshot.mode when_needed', async () => {
    await sql(server, `INSERT INTO ${db}.items VALUES (1, 1, 'kept'), (2, 2, 'deleted while down')`);
    const first = runSource(server, { tables: [`${db}.items`] });
    await converge(first);
    await waitFor(() => !first.checkpoint()!.startsWith('{'), { timeoutMs: 10_000, what: 'a streaming checkpoint' });
    await first.stop();
    const saved = first.checkpoint()!;
    await sql(server, `DELETE FROM ${db}.items WHERE id = 2; INSERT INTO ${db}.items VALUES (3, 3, 'added while down')`);
    const [{ File: current }] = await sql(server, 'FLUSH BINARY LOGS; SHOW MASTER STATUS');
    // MariaDB keeps a binlog while a dump thread reads it or crash recovery may need it: both pass within moments.
    await waitFor(async () => (await sql(server, `PURGE BINARY LOGS TO '${current}'; SHOW BINARY LOGS`))[0].Log_name === current, {
      timeoutMs: 10_000,
      intervalMs: 200,
      what: `PURGE BINARY LOGS TO '${current}' to take effect`,
    });

    const refused = await runSource(server, { tables: [`${db}.items`], from: saved }).done;
    assert.match(
      refused?.message ?? '',
      /cannot resume at the saved position binlog\.\d+:\d+@[\d-]+: binlog binlog\.\d+ was purged from the server \(the oldest binlog there is binlog\.\d+\), so the changes after it can no longer be streamed\. Re-snapshot: set snapshot\.mode: when_needed/,
    );
    const again = runSource(server, { tables: [`${db}.items`], from: saved, snapshot: { mode: 'when_needed' } });
    const difference = async () => describeDifference(await expectedRows(server, db, ITEMS_DOC), applyEvents([...first.events(), ...again.events()]));
    await waitFor(async () => (await difference()) === '', { timeoutMs: 20_000, what: 'the re-snapshot to remove the row deleted while down', describe: difference });
    await again.stop();
  });
});
