// Dead letters you can work with (issue 13.7): rotation by size, `cdc dead-letters
// list|replay`, counts in `cdc status`. Real servers: the in-repo Elasticsearch
// semantics server, Postgres as source and as warehouse, the service as a process.
import { strict as assert } from 'node:assert';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Client } from 'pg';
import { makeVersion } from '../../core/event/version';
import { Metrics } from '../../core/http/metrics';
import { DeadLetterStore, ReplayDriver } from '../../core/runtime/dead-letters';
import { createLogger } from '../../core/runtime/logger';
import { elasticsearchSinkConfig } from '../../sinks/elasticsearch/config';
import { ElasticsearchSink } from '../../sinks/elasticsearch/es-sink';
import { Sink } from '../../core/contracts/sink';
import { EsServer, startEsServer } from '../support/es-server';
import { makeEvent } from '../support/events';
import { freePort, PgServer, startPostgres, stopAll } from '../support/servers';
import { runCliAsync, ServiceProcess, writeConfig } from '../support/service-process';
import { EmbeddedE2eLog, KafkaE2eLog } from '../support/e2e-log';
import { asRecords } from '../support/sink-history';
import { rowDifference, Rows } from '../support/sink-e2e';
import { waitFor } from '../support/wait';

const quietLogger = createLogger('test', () => undefined);

/** Replays straight into a sink (the service's ManagedSink runs the turns between its runner's batches). */
function directly(sink: Sink): ReplayDriver {
  return {
    exclusive: (work) => work(),
    write: async (records) => {
      await sink.write(records);
      await sink.flush();
    },
  };
}

describe('dead letters: rotation, list, replay, counts in status', function () {
  this.timeout(240_000);
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'cdc-dead-letters-'));
    dirs.push(dir);
    return dir;
  };
  after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  it('rolls over by size, keeps at most maxFiles, and warns about and counts every file it drops', async () => {
    const dataDir = tempDir();
    const warnings: string[] = [];
    const logger = createLogger('test', (line) => warnings.push(line));
    const metrics = new Metrics();
    const store = new DeadLetterStore(dataDir, 'cache', metrics, { maxFileBytes: 4096, maxFiles: 3, logger });
    const letters = 60;
    for (let id = 1; id <= letters; id++) {
      const event = makeEvent({ table: id % 3 === 0 ? 'orders' : 'items', key: { id }, after: { id, note: 'x'.repeat(200) }, version: makeVersion(BigInt(id), 1) });
      await store.add([{ event, reason: `refused row ${id}` }], asRecords([event], 1, 1000 + id));
    }
    const files = readdirSync(join(dataDir, 'dead-letters')).sort();
    assert.equal(files.length, 3, `at most maxFiles files: ${files.join(', ')}`);
    assert.ok(files.includes('cache.jsonl'), 'the current file keeps its name');
    const kept = await store.read();
    assert.equal(kept[kept.length - 1].key, String(letters), 'the newest letter is kept, last');
    assert.deepEqual(kept[kept.length - 1].log, { partition: 1, offset: 1000 + letters }, 'each letter keeps its log coordinates');
    const dropped = letters - kept.length;
    assert.ok(dropped > 0, 'some letters went with dropped files');
    const warned = warnings.filter((line) => /dead-letter file .*cache\.\d+\.jsonl deleted with its \d+ dead letter\(s\)/.test(line));
    assert.ok(warned.length > 0, `a warning names each dropped file: ${warnings.slice(0, 3).join(' | ')}`);
    for (const line of warned) assert.ok(!existsSync(/file=(\S+)/.exec(line)?.[1] ?? join(dataDir, 'dead-letters', 'cache.1.jsonl')), `the named file is gone: ${line}`);
    const text = await metrics.registry.metrics();
    assert.match(text, new RegExp(`cdc_sink_dead_letter_files_dropped_total\\{sink="cache"\\} ${warned.length}\\b`));
    assert.match(text, new RegExp(`cdc_sink_dead_letters_dropped_total\\{sink="cache"\\} ${dropped}\\b`), 'every lost letter is counted');
    const counts = await store.counts();
    assert.equal(counts.total, kept.length);
    assert.deepEqual(counts.tables, {
      'public.items': kept.filter((l) => l.table === 'public.items').length,
      'public.orders': kept.filter((l) => l.table === 'public.orders').length,
    });
    const more = makeEvent({ key: { id: 999 }, version: makeVersion(999n, 1) });
    await store.add([{ event: more, reason: 'one more' }]);
    assert.equal((await store.counts()).total, Math.min(kept.length + 1, (await store.read()).length), 'counts follow appends');
  });

  it('counts and reads files larger than one read, and counts a line being appended once it is complete', async () => {
    const store = new DeadLetterStore(tempDir(), 'search');
    for (let first = 1; first <= 3000; first += 500) {
      const events = Array.from({ length: 500 }, (_, i) => makeEvent({ key: { id: first + i }, after: { id: first + i, note: 'é'.repeat(250) }, version: makeVersion(BigInt(first + i), 1) }));
      await store.add(events.map((event) => ({ event, reason: 'refused' })));
    }
    assert.ok(statSync(store.file).size > 1024 * 1024, 'more than one 1 MiB read');
    assert.deepEqual(await store.counts(), { total: 3000, tables: { 'public.items': 3000 } });
    assert.equal((await store.read()).length, 3000);
    const line = JSON.stringify((await store.read())[0]);
    appendFileSync(store.file, line.slice(0, 100));
    assert.equal((await store.counts()).total, 3000, 'half a line is not counted');
    appendFileSync(store.file, line.slice(100) + '\n');
    assert.equal((await store.counts()).total, 3001, 'counted once complete');
    assert.equal((await store.read()).length, 3001);
  });

  describe('replayed through the Elasticsearch sink (in-repo ES semantics server)', () => {
    let es: EsServer;
    before(async () => {
      es = await startEsServer();
    });
    after(async () => {
      await es?.stop();
    });

    it('keeps those still refused with the new reason; after the fix writes them, and an older event leaves the newer document', async () => {
      const dataDir = tempDir();
      const store = new DeadLetterStore(dataDir, 'search');
      const sinks: ElasticsearchSink[] = [];
      const open = async (tableOptions: Record<string, unknown>) => {
        const config = elasticsearchSinkConfig.parse({ name: 'search', type: 'elasticsearch', node: es.url, indexPrefix: 'dl-', tableOptions: { 'public.items': tableOptions } });
        const sink = new ElasticsearchSink(config, quietLogger, store);
        await sink.open();
        sinks.push(sink);
        return sink;
      };
      try {
        const sink = await open({ mappings: { qty: { type: 'long' } } });
        const row = (id: number, qty: string, commit: bigint) => makeEvent({ key: { id }, op: 'c', after: { id, qty }, version: makeVersion(commit, id) });
        await sink.write(asRecords([row(1, '10', 10n), row(3, 'lots', 10n), row(5, 'many', 10n)], 2, 100));
        const letters = await store.read();
        assert.deepEqual(letters.map((l) => [l.table, l.key, l.log]), [['public.items', '3', { partition: 2, offset: 101 }], ['public.items', '5', { partition: 2, offset: 102 }]]);
        assert.deepEqual(letters[0].event.after, { id: 3, qty: 'lots' }, 'the whole event is kept');
        const docs = () => es.documents('dl-public.items');

        const unfixed = await store.replay(null, directly(sink));
        assert.deepEqual([unfixed.replayed, unfixed.succeeded, unfixed.failed, unfixed.remaining], [2, 0, 2, 2], JSON.stringify(unfixed));
        const again = await store.read();
        assert.deepEqual(again.map((l) => [l.key, l.attempts, l.firstTime]), [['3', 2, letters[0].time], ['5', 2, letters[1].time]]);
        assert.match(again[0].reason, /failed to parse field \[qty\] of type \[long\]/);

        await sink.write(asRecords([row(5, '55', 20n)], 2, 103)); // a newer change of row 5 lands: its letter is now older than the document
        const fixed = await open({ excludeColumns: ['qty'] }); // the fix: the sink no longer sends qty
        const outcome = await store.replay(null, directly(fixed));
        assert.deepEqual([outcome.replayed, outcome.succeeded, outcome.failed, outcome.remaining], [2, 2, 0, 0], JSON.stringify(outcome));
        assert.deepEqual(await store.read(), []);
        assert.deepEqual(docs().get('3'), { id: 3 }, 'the refused row is written (without the excluded column)');
        assert.deepEqual(docs().get('5'), { id: 5, qty: '55' }, 'the replayed older event left the newer document');
        assert.deepEqual(docs().get('1'), { id: 1, qty: '10' });
      } finally {
        for (const sink of sinks) await sink.close();
      }
    });
  });

  for (const log of [new EmbeddedE2eLog(), new KafkaE2eLog()]) describe(`the service, Postgres → warehouse (Postgres engine), through the CLI (${log.type} log)`, () => {
    let pg: PgServer;
    let dbUrl = '';
    let service: ServiceProcess;
    let dir = '';
    let configPath = '';
    let httpPort = 0;

    async function sql(text: string): Promise<Record<string, unknown>[]> {
      const client = new Client({ connectionString: dbUrl });
      await client.connect();
      try {
        return (await client.query(text)).rows;
      } finally {
        await client.end();
      }
    }

    function config(tableOptions: string): string {
      return writeConfig(configPath, `service: { name: deadletters, dataDir: ./var, http: { port: ${httpPort} } }
log: ${log.yaml()}
sources:
  - { name: src, type: postgres, url: "\${PG_URL}", tables: [public.items, public.prices], snapshot: { mode: when_needed } }
sinks:
  - { name: warehouse, type: warehouse, engine: postgres, url: "\${PG_URL}", schema: wh, tables: ["*"], tableOptions: ${tableOptions} }
`);
    }
    const cli = async (...args: string[]) => runCliAsync([...args.slice(0, 2), '-c', configPath, ...args.slice(2)], { PG_URL: dbUrl });
    const json = async (...args: string[]) => {
      const result = await cli(...args, '--json');
      try {
        return { code: result.code, body: JSON.parse(result.stdout) };
      } catch {
        throw new Error(`cdc ${args.join(' ')} --json printed no JSON (exit ${result.code}): ${result.stdout}${result.stderr}`);
      }
    };
    async function warehouseRows(table: string): Promise<Rows> {
      const rows = await sql(`SELECT * FROM wh.public__${table} WHERE NOT _cdc_deleted`).catch(() => []);
      return new Map(rows.map((row) => [String(row.id), Object.fromEntries(Object.entries(row).filter(([c]) => !c.startsWith('_cdc_')))]));
    }
    async function difference(table: string): Promise<string> {
      const source: Rows = new Map((await sql(`SELECT * FROM ${table}`)).map((row) => [String(row.id), row]));
      return rowDifference(table, source, await warehouseRows(table));
    }

    before(async () => {
      [pg] = await Promise.all([startPostgres(), log.setUp(['deadletters'])]);
      const admin = new Client({ connectionString: pg.url });
      await admin.connect();
      await admin.query('CREATE DATABASE deadletters');
      await admin.end();
      dbUrl = pg.url.replace(/\/[^/]*$/, '/deadletters');
      await sql(`CREATE TABLE items (id int PRIMARY KEY, qty text); CREATE TABLE prices (id int PRIMARY KEY, amount text)`);
      dir = tempDir();
      configPath = join(dir, 'cdc.yaml');
      httpPort = await freePort();
      config('{ public.items: { columnTypes: { qty: BIGINT } }, public.prices: { columnTypes: { amount: BIGINT } } }');
      service = new ServiceProcess(configPath, httpPort, { PG_URL: dbUrl });
      await service.start();
    });
    after(async () => {
      await service?.stop().catch(() => undefined);
      await log.tearDown();
      await stopAll();
    });

    it('lists and counts what the sink refused, keeps what still fails, and after a config fix and a restart replays it: the warehouse equals the source, a newer row stays', async () => {
      await sql(`INSERT INTO items VALUES (1, '10'), (2, '20'), (3, 'lots'), (4, '40'), (5, 'many'), (6, '60'); INSERT INTO prices VALUES (1, '5'), (2, 'cheap')`);
      const store = new DeadLetterStore(join(dir, 'var'), 'warehouse');
      await waitFor(async () => (await store.read()).length === 3 && (await warehouseRows('items')).size === 4, {
        timeoutMs: 60_000, what: 'three dead letters and the four good items', describe: async () => `${(await store.read()).length} letters; ${service.recentOutput()}`,
      });

      const listed = await json('dead-letters', 'list', '--sink', 'warehouse');
      assert.equal(listed.code, 0);
      assert.equal(listed.body.total, 3);
      assert.deepEqual(Object.fromEntries(Object.entries(listed.body.tables as Record<string, { count: number }>).map(([t, v]) => [t, v.count])), { 'public.items': 2, 'public.prices': 1 });
      const itemReasons = Object.entries(listed.body.tables['public.items'].reasons as Record<string, number>);
      assert.equal(itemReasons.length, 1, `alike reasons group: ${JSON.stringify(itemReasons)}`);
      assert.match(itemReasons[0][0], /does not cast to its declared column type in public__items \(qty BIGINT\)/);
      assert.equal(itemReasons[0][1], 2);
      assert.deepEqual(listed.body.letters.map((l: { key: string }) => l.key).sort(), ['2', '3', '5']);
      const text = await cli('dead-letters', 'list', '--sink', 'warehouse', '--table', 'public.items', '--limit', '1');
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^sink warehouse: 2 dead letter\(s\) of public\.items in 1 file\(s\)\n {2}public\.items: 2\n +2 {2}.*does not cast/);
      assert.match(text.stdout, /newest 1 \(newest last\):\n {2}\S+ {2}public\.items key [35] op [cr] version \S+, log (deadletters\.changes\/)?\d:\d+: /);
      for (const letter of await store.read()) {
        assert.equal(letter.log?.topic, log.type === 'kafka' ? 'deadletters.changes' : undefined, 'the Kafka topic is kept (the warehouse stores offsets per topic)');
        assert.ok(Number.isInteger(letter.log?.offset), 'the log offset is kept');
      }

      const status = await json('status');
      const sink = status.body.sinks.find((s: { name: string }) => s.name === 'warehouse');
      assert.deepEqual(sink.deadLetters, { total: 3, tables: { 'public.items': 2, 'public.prices': 1 } });
      assert.match((await cli('status')).stdout, /sink warehouse: .*3 dead letter\(s\) \(public\.items 2, public\.prices 1\)/);

      // Not fixed yet: both items are refused again, kept with the new reason; exit 2.
      const unfixed = await json('dead-letters', 'replay', '--sink', 'warehouse', '--table', 'public.items');
      assert.equal(unfixed.code, 2, JSON.stringify(unfixed.body));
      assert.deepEqual([unfixed.body.replayed, unfixed.body.succeeded, unfixed.body.failed, unfixed.body.remaining], [2, 0, 2, 3]);
      assert.match(unfixed.body.failures[0].reason, /does not cast/);

      // Row 5 changes in the source meanwhile: its dead letter is now older than the row.
      await sql(`UPDATE items SET qty = '55' WHERE id = 5`);
      await waitFor(async () => String((await warehouseRows('items')).get('5')?.qty) === '55', { timeoutMs: 60_000, what: 'the newer row 5 in the warehouse' });

      // The fix: no declared types (the column widens to text as values need); the service restarts with it.
      assert.equal(await service.stop(), 0);
      config('{}');
      await service.start();

      // The admin API's rules hold for the new route: a change needs a JSON body.
      const plain = await fetch(`http://127.0.0.1:${httpPort}/api/dead-letters/replay`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"sink":"warehouse"}' });
      assert.equal(plain.status, 415);
      assert.equal((await store.read()).length, 3, 'a refused request replays nothing');

      // Replayed while the source keeps changing: the runner's batches and the replay's turns take turns on the sink.
      let writing = true;
      const traffic = (async () => {
        for (let id = 100; writing || id < 130; id++) await sql(`INSERT INTO items VALUES (${id}, '${id}'); UPDATE items SET qty = '${id}0' WHERE id = ${id - 1}`);
      })();
      const replayed = await json('dead-letters', 'replay', '--sink', 'warehouse');
      writing = false;
      await traffic;
      assert.equal(replayed.code, 0, JSON.stringify(replayed.body));
      assert.deepEqual([replayed.body.replayed, replayed.body.succeeded, replayed.body.failed, replayed.body.remaining], [3, 3, 0, 0]);
      await waitFor(async () => (await difference('items')) === '', { timeoutMs: 60_000, what: 'the warehouse items equal to the source', describe: () => difference('items') });
      assert.equal(await difference('prices'), '');
      assert.equal(String((await warehouseRows('items')).get('5')?.qty), '55', 'the replayed older event left the newer row');
      assert.deepEqual((await json('status')).body.sinks.find((s: { name: string }) => s.name === 'warehouse').deadLetters, { total: 0, tables: {} });
      assert.match((await cli('dead-letters', 'list', '--sink', 'warehouse')).stdout, /^sink warehouse: no dead letters\n$/);
      assert.deepEqual(readdirSync(join(dir, 'var', 'dead-letters')).map((f) => basename(f)), [], 'no empty file left behind');
    });
  });
});
