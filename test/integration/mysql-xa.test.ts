import { strict as assert } from 'node:assert';
import { ChangeEvent } from '../../core/event/change-event';
import { MariadbServer, startMariadb, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';
import { applyEvents, describeDifference, expectedRows, runSource, sql } from './mysql-fixture';

/** MariaDB's error for an XID it does not know (or that another session still holds). */
const ER_XAER_NOTA = 1397;
const ITEMS_DOC = { items: { key: 'id', doc: `JSON_OBJECT('id', id, 'note', note)` } };

describe('MySQL source: XA transactions (MariaDB 10.11: XA_PREPARE_LOG_EVENT, then Query XA COMMIT / XA ROLLBACK)', function () {
  this.timeout(90_000);
  let server: MariadbServer;
  const db = 'xa';

  before(async () => {
    server = await startMariadb();
    await sql(server, `CREATE DATABASE ${db}; CREATE TABLE ${db}.items (id INT PRIMARY KEY, note VARCHAR(50))`);
  });
  after(async () => stopAll());

  const changesOf = (events: ChangeEvent[], id: number) => events.filter((e) => e.source.table === 'items' && (e.key as { id: number }).id === id);
  const prepare = (xid: string, id: number) => sql(server, `XA START '${xid}'; INSERT INTO ${db}.items VALUES (${id}, 'xa ${xid}'); XA END '${xid}'; XA PREPARE '${xid}'`);
  /**
   * `XA COMMIT` or `XA ROLLBACK` of a transaction prepared on a connection since closed. The XID stays
   * attached to that session until the server has finished closing it (the client does not wait for
   * that), and meanwhile another connection gets XAER_NOTA "Unknown XID": try again until it is detached.
   */
  const finishPrepared = (statement: string) =>
    waitFor(
      async () => {
        try {
          await sql(server, statement);
          return true;
        } catch (error) {
          if ((error as { errno?: number }).errno === ER_XAER_NOTA) return false;
          throw error;
        }
      },
      { timeoutMs: 10_000, what: `${statement} to find the XID detached from the session that prepared it` },
    );
  /** A plain commit after the XA work: once it arrives, everything before it in the binlog was read. */
  async function marker(run: ReturnType<typeof runSource>, id: number): Promise<void> {
    await sql(server, `INSERT INTO ${db}.items VALUES (${id}, 'marker')`);
    await waitFor(() => changesOf(run.events(), id).length > 0, { timeoutMs: 20_000, what: `the marker row ${id} to arrive` });
  }

  it('emits a prepared XA transaction once, at XA COMMIT, and never one rolled back', async () => {
    const run = runSource(server, { tables: [`${db}.items`] });
    await run.streaming;
    try {
      await prepare('a', 1);
      await marker(run, 100);
      assert.deepEqual(changesOf(run.events(), 1), [], 'a prepared transaction is not committed yet: nothing is emitted');

      await finishPrepared(`XA COMMIT 'a'`);
      await marker(run, 101);
      const committed = changesOf(run.events(), 1);
      assert.equal(committed.length, 1, `the committed XA transaction arrives once: ${JSON.stringify(committed)}`);
      assert.deepEqual(committed[0].after, { id: 1, note: 'xa a' });
      const markerBefore = changesOf(run.events(), 100)[0];
      assert.ok(committed[0].source.version > markerBefore.source.version, 'its version is that of the XA COMMIT, after the changes committed while it was prepared');

      await prepare('b', 2);
      await finishPrepared(`XA ROLLBACK 'b'`);
      await sql(server, `XA START 'c'; INSERT INTO ${db}.items VALUES (3, 'one phase'); XA END 'c'; XA COMMIT 'c' ONE PHASE`);
      await marker(run, 102);
      assert.deepEqual(changesOf(run.events(), 2), [], 'the rolled-back XA transaction never arrives');
      assert.equal(changesOf(run.events(), 3).length, 1, 'a one-phase XA commit arrives once');

      const difference = describeDifference(await expectedRows(server, db, ITEMS_DOC), applyEvents(run.events()));
      assert.equal(difference, '');
    } finally {
      await run.stop();
    }
  });

  it('a restart between XA PREPARE and XA COMMIT still emits the transaction (the checkpoint waits before its XA START)', async () => {
    const first = runSource(server, { tables: [`${db}.items`] });
    await first.streaming;
    await prepare('d', 4);
    await marker(first, 103);
    await first.stop();
    const checkpoint = first.checkpoint();
    assert.ok(checkpoint, 'the first run handed over a checkpoint');

    await finishPrepared(`XA COMMIT 'd'`);
    const second = runSource(server, { tables: [`${db}.items`], from: checkpoint });
    try {
      await second.streaming;
      await marker(second, 104);
      assert.equal(changesOf(second.events(), 4).length, 1, 'the XA transaction committed after the restart arrives once');
      const all = [...first.events(), ...second.events()];
      assert.equal(describeDifference(await expectedRows(server, db, ITEMS_DOC), applyEvents(all)), '');
    } finally {
      await second.stop();
    }
  });
});
