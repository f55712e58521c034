import { strict as assert } from 'node:assert';
import { MariadbServer, startMariadb, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';
import { runSource, sql } from './mysql-fixture';

// The Postgres twin of this test found a source that never got through a transaction taking
// longer than wal_sender_timeout to pass to the log (the walsender wants status updates). A
// MariaDB binlog dump thread wants none: it gives up only when a write to our socket makes no
// progress for net_write_timeout (60 s by default), and a slow log still reads. This keeps it so.
describe('MySQL source: a transaction that takes longer than net_write_timeout to pass to the log', function () {
  this.timeout(180_000);
  let server: MariadbServer;
  const db = 'longtx';
  const rows = 300_000;

  before(async () => {
    server = await startMariadb();
    await sql(server, `CREATE DATABASE ${db}; CREATE TABLE ${db}.items (id INT PRIMARY KEY, note VARCHAR(50))`);
    await sql(server, 'SET GLOBAL net_write_timeout = 2');
  });
  after(async () => stopAll());

  it('gets through it, with each change once', async () => {
    let slowUntil = 0;
    const run = runSource(server, {
      tables: [`${db}.items`],
      // The log is slow for the first 8 s of the big transaction: four times the server's timeout.
      afterEmit: async (batch) => {
        if (!batch.events.some((e) => e.source.table === 'items' && e.op === 'c')) return;
        slowUntil ||= Date.now() + 8_000;
        if (Date.now() < slowUntil) await new Promise((r) => setTimeout(r, 200));
      },
    });
    await run.streaming;
    try {
      await sql(server, `USE ${db}; INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_${rows}`);
      await sql(server, `INSERT INTO ${db}.items VALUES (0, 'marker')`);
      const ids = () => run.events().filter((e) => e.source.table === 'items' && e.op !== 't').map((e) => (e.key as { id: number }).id);
      await waitFor(() => ids().includes(0), { timeoutMs: 120_000, intervalMs: 200, what: 'the marker row after the big transaction' });
      const seen = ids();
      const extra = [...new Set(seen)].filter((id) => !(Number.isInteger(id) && id >= 0 && id <= rows));
      assert.equal(new Set(seen).size, rows + 1, `every row arrived, no other (others: ${JSON.stringify(extra.slice(0, 5))})`);
      assert.equal(seen.length, rows + 1, `each change once (${seen.length - new Set(seen).size} arrived twice: the transaction was read again)`);
    } finally {
      await run.stop().catch(() => undefined);
      await sql(server, 'SET GLOBAL net_write_timeout = 60');
    }
  });
});
