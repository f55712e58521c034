// One transaction of 1.1M changes into Elasticsearch (issue 13.1): its index
// within the transaction passes 2^20, which the old packing dead-lettered.
// 1.1M inserts into a table the Elasticsearch sink does not take (the test
// server keeps documents in memory), then the indexed table's rows changed
// three times each, so every row's last change must win among several at one
// commit position, all at indexes above 2^20.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { Client } from 'pg';
import { startEsServer, EsServer } from '../support/es-server';
import { resetWalAbove } from '../support/pg-reset-wal';
import { PgServer, startPostgres, stopAll } from '../support/servers';
import { rowDifference, SinkE2e } from '../support/sink-e2e';
import { waitFor } from '../support/wait';

const ROWS = 1000;
const BULK = 1_100_000; // past 2^20 = 1,048,576 with room to spare

describe('Elasticsearch and a 1.1M-change transaction', function () {
  this.timeout(900_000);
  let es: EsServer;
  let pg: PgServer;
  after(async () => {
    await es?.stop();
    await stopAll();
  });

  it('ends with every row at its last change, nothing dead-lettered, service memory bounded', async () => {
    [es, pg] = await Promise.all([startEsServer(), startPostgres()]);
    await resetWalAbove(pg);
    const client = new Client({ connectionString: pg.url });
    await client.connect();
    await client.query(`CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL); INSERT INTO items SELECT g, 0 FROM generate_series(1, ${ROWS}) g;
      CREATE TABLE bulk (id int PRIMARY KEY, v int NOT NULL)`);
    const e2e = new SinkE2e({ name: 'esbig', source: 'type: postgres, url: "${PG_URL}", tables: [public.items, public.bulk]', env: { PG_URL: pg.url }, es, esTables: ['public.items'] });
    await e2e.setUp();
    try {
      await e2e.service.start();
      await waitFor(() => e2e.esRows('public.items').size === ROWS, { timeoutMs: 60_000, what: 'the snapshot in Elasticsearch' });
      const started = Date.now();
      await client.query(`BEGIN; INSERT INTO bulk SELECT g, g FROM generate_series(1, ${BULK}) g;
        UPDATE items SET v = 1; DELETE FROM items WHERE id % 10 = 0; UPDATE items SET v = v + id; INSERT INTO items VALUES (100000, 7); COMMIT`);
      const committedMs = Date.now() - started;
      const expected = new Map((await client.query('SELECT id, v FROM items')).rows.map((r) => [String(r.id), r]));
      const equal = () => rowDifference('elasticsearch', expected, e2e.esRows('public.items'));
      let peakKb = 0;
      await waitFor(() => {
        const pid = e2e.service.pid;
        if (pid) peakKb = Math.max(peakKb, Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0));
        return equal() === '';
      }, { timeoutMs: 780_000, intervalMs: 1000, what: 'the transaction in Elasticsearch', describe: equal });
      const seconds = (Date.now() - started) / 1000;
      console.log(`      ${BULK + 2 * ROWS} changes in one transaction: committed in ${(committedMs / 1000).toFixed(1)} s, in Elasticsearch after ${seconds.toFixed(1)} s; service peak RSS ${Math.round(peakKb / 1024)} MiB`);
      assert.deepEqual(await e2e.deadLetters('search'), [], 'nothing dead-lettered');
      assert.ok(peakKb < 1024 * 1024, `service peak RSS ${Math.round(peakKb / 1024)} MiB stays below 1 GiB`);
    } finally {
      await client.end();
      await e2e.tearDown();
    }
  });
});
