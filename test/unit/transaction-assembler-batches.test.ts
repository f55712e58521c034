import { strict as assert } from 'node:assert';
import { parseLsn } from '../../connectors/postgres/lsn';
import { PgType } from '../../connectors/postgres/types';
import { relation, micros, T0, begin, commit, insert, update, del, truncate, Step, assembler, feed, events, versionAt, customers, alice } from '../support/pgoutput-messages';

describe('TransactionAssembler (connectors/postgres/transaction-assembler.ts): batches, TOAST, truncate, errors', () => {
  describe('batches', () => {
    it('the checkpoint is the commit end LSN in canonical form and commitTimeMs is the commit time', () => {
      const commitTime = micros(T0, 999); // sub-millisecond part is dropped
      const batches = feed(assembler(), [
        ['0/100', begin('1/200', 1, commitTime)],
        ['0/150', insert(customers, alice)],
        ['1/200', commit('1/200', '1/22A', commitTime)],
      ]);
      assert.equal(batches.length, 1);
      assert.equal(batches[0].checkpoint, '1/22A');
      assert.equal(batches[0].commitTimeMs, T0.getTime());
      assert.equal(batches[0].events[0].source.ts_ms, T0.getTime());
    });

    it('source.ts_ms is each transaction\'s own commit time in ms', () => {
      const t1 = new Date(Date.UTC(2023, 11, 31, 23, 59, 59, 1));
      const t2 = new Date(Date.UTC(2024, 5, 15, 12, 0, 0, 250));
      const all = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 1, micros(t1, 500))],
          ['0/150', insert(customers, alice)],
          ['0/200', commit('0/200', '0/228', micros(t1, 500))],
          ['0/300', begin('0/400', 2, micros(t2))],
          ['0/350', insert(customers, { ...alice, id: '2' })],
          ['0/400', commit('0/400', '0/428', micros(t2))],
        ]),
      );
      assert.deepEqual(
        all.map((e) => e.source.ts_ms),
        [t1.getTime(), t2.getTime()],
      );
    });

    it('nothing is handed out before the commit of a small transaction', () => {
      const target = assembler();
      assert.equal(target.onMessage('0/100', begin('0/200', 1)), null);
      assert.equal(target.inTransaction, true);
      assert.equal(target.onMessage('0/150', insert(customers, alice)), null);
      const batch = target.onMessage('0/200', commit('0/200', '0/228'));
      assert.ok(batch);
      assert.equal(batch.events.length, 1);
      assert.equal(target.inTransaction, false);
    });

    it('relation, type and origin messages produce no batch', () => {
      const target = assembler();
      assert.equal(target.onMessage('0/10', customers), null);
      assert.equal(target.onMessage('0/10', { tag: 'type', typeOid: 99999, typeSchema: 'public', typeName: 'mood' }), null);
      assert.equal(target.onMessage('0/10', { tag: 'origin', originLsn: null, originName: 'x' }), null);
    });

    it('a transaction with no row changes still hands out an empty batch that advances the checkpoint', () => {
      const batches = feed(assembler(), [
        ['0/100', begin('0/200', 1)],
        ['0/200', commit('0/200', '0/228')],
      ]);
      assert.deepEqual(
        batches.map((b) => ({ n: b.events.length, checkpoint: b.checkpoint })),
        [{ n: 0, checkpoint: '0/228' }],
      );
    });

    it('a transaction larger than maxBatchEvents comes in parts checkpointed at the PREVIOUS transaction\'s end; the last part comes with the commit', () => {
      const target = assembler({ maxBatchEvents: 2 }, parseLsn('0/50'));
      const batches = feed(target, [
        // Transaction 1 (small): ends at 0/128.
        ['0/100', begin('0/100', 1)],
        ['0/F0', insert(customers, { ...alice, id: '1' })],
        ['0/100', commit('0/100', '0/128')],
        // Transaction 2 (5 changes): parts of 2, 2, then 1 with the commit.
        ['0/200', begin('0/900', 2)],
        ...[10, 11, 12, 13, 14].map((id, i): Step => [`0/${(0x300 + i * 0x10).toString(16).toUpperCase()}`, insert(customers, { ...alice, id: String(id) })]),
        ['0/900', commit('0/900', '0/928')],
      ]);
      assert.deepEqual(
        batches.map((b) => ({ ids: b.events.map((e) => e.key.id), checkpoint: b.checkpoint })),
        [
          { ids: ['1'], checkpoint: '0/128' },
          { ids: ['10', '11'], checkpoint: '0/128' },
          { ids: ['12', '13'], checkpoint: '0/128' },
          { ids: ['14'], checkpoint: '0/928' },
        ],
      );
      // Versions run on across the parts.
      assert.deepEqual(
        events(batches.slice(1)).map((e) => e.source.version),
        [1, 2, 3, 4, 5].map((i) => versionAt('0/900', i)),
      );
      // Parts carry the transaction's commit time.
      assert.ok(batches.every((b) => b.commitTimeMs === T0.getTime()));
    });

    it('a transaction of big rows comes in parts of about maxBatchBytes of pgoutput messages, a lone bigger row alone', () => {
      const target = assembler({ maxBatchEvents: 1000, maxBatchBytes: 1000 }, parseLsn('0/50'));
      const sizes = [400, 400, 400, 5000, 100, 100];
      const parts: number[][] = [];
      assert.equal(target.onMessage('0/100', begin('0/200', 1), 20), null);
      sizes.forEach((bytes, i) => {
        const batch = target.onMessage(`0/${(0x110 + i).toString(16)}`, insert(customers, { ...alice, id: String(i + 1) }), bytes);
        if (batch) parts.push(batch.events.map((e) => Number(e.key.id)));
      });
      const last = target.onMessage('0/200', commit('0/200', '0/228'), 26)!;
      parts.push(last.events.map((e) => Number(e.key.id)));
      // 400+400+400 reaches 1000 at the third row; the 5,000-byte row goes alone; the rest with the commit.
      assert.deepEqual(parts, [[1, 2, 3], [4], [5, 6]]);
      assert.equal(last.checkpoint, '0/228');
    });

    it('parts of the first transaction after a restart are checkpointed at the resume position', () => {
      const batches = feed(assembler({ maxBatchEvents: 1 }, parseLsn('0/50')), [
        ['0/100', begin('0/200', 1)],
        ['0/150', insert(customers, { ...alice, id: '1' })],
        ['0/160', insert(customers, { ...alice, id: '2' })],
        ['0/200', commit('0/200', '0/228')],
      ]);
      assert.deepEqual(
        batches.map((b) => [b.events.length, b.checkpoint]),
        [
          [1, '0/50'],
          [1, '0/50'],
          [0, '0/228'],
        ],
      );
    });

    it('a crash after a partial batch replays the transaction with the same versions', () => {
      const steps: Step[] = [
        ['0/100', begin('0/200', 1)],
        ['0/150', insert(customers, { ...alice, id: '1' })],
        ['0/160', insert(customers, { ...alice, id: '2' })],
        ['0/170', insert(customers, { ...alice, id: '3' })],
        ['0/200', commit('0/200', '0/228')],
      ];
      const first = feed(assembler({ maxBatchEvents: 2 }, parseLsn('0/50')), steps.slice(0, 3)); // crash after part 1
      assert.equal(first.length, 1);
      const resumeAt = parseLsn(first[0].checkpoint);
      const replay = feed(assembler({ maxBatchEvents: 2 }, resumeAt), steps);
      const replayed = events(replay);
      assert.deepEqual(
        first[0].events.map((e) => e.source.version),
        replayed.slice(0, 2).map((e) => e.source.version),
      );
      assert.equal(replay[replay.length - 1].checkpoint, '0/228');
    });
  });

  describe('unchanged TOAST columns', () => {
    const documents = relation('public.documents', [
      { name: 'id', typeOid: PgType.int4, key: true },
      { name: 'title', typeOid: 25 },
      { name: 'body', typeOid: 25 },
      { name: 'meta', typeOid: PgType.jsonb },
    ]);

    it('a column present as undefined in the new tuple is absent from after and listed in unchanged', () => {
      const [event] = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 1)],
          ['0/150', update(documents, { id: '1', title: 'New title', body: undefined, meta: undefined })],
          ['0/200', commit('0/200', '0/228')],
        ]),
      );
      assert.equal(event.op, 'u');
      assert.deepEqual(event.after, { id: 1, title: 'New title' });
      assert.ok(!('body' in event.after!), 'body must not be present (not even as undefined)');
      assert.ok(!('meta' in event.after!));
      assert.deepEqual(event.unchanged, ['body', 'meta']);
    });

    it('a column set to NULL is not "unchanged"', () => {
      const [event] = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 1)],
          ['0/150', update(documents, { id: '1', title: 'T', body: null, meta: '{"a": 1}' })],
          ['0/200', commit('0/200', '0/228')],
        ]),
      );
      assert.deepEqual(event.after, { id: 1, title: 'T', body: null, meta: { a: 1 } });
      assert.equal(event.unchanged, undefined);
    });
  });

  describe('truncate', () => {
    it('gives one "t" event per relation with an empty key', () => {
      const orders = relation('public.orders', [{ name: 'id', typeOid: PgType.int8, key: true }]);
      const all = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 4)],
          ['0/150', truncate(customers, orders)],
          ['0/200', commit('0/200', '0/228')],
        ]),
      );
      assert.deepEqual(
        all.map((e) => ({ op: e.op, table: `${e.source.schema}.${e.source.table}`, key: e.key, before: e.before, after: e.after, version: e.source.version })),
        [
          { op: 't', table: 'public.customers', key: {}, before: null, after: null, version: versionAt('0/200', 1) },
          { op: 't', table: 'public.orders', key: {}, before: null, after: null, version: versionAt('0/200', 2) },
        ],
      );
    });
  });

  describe('errors', () => {
    const auditLog = relation('public.audit_log', [
      { name: 'at', typeOid: PgType.timestamptz },
      { name: 'entry', typeOid: 25 },
    ]);

    for (const [what, message] of [
      ['an insert', insert(auditLog, { at: '2024-01-02 03:04:05+00', entry: 'x' })],
      ['an update', update(auditLog, { at: '2024-01-02 03:04:05+00', entry: 'y' })],
      ['a delete', del(auditLog, { old: { at: '2024-01-02 03:04:05+00', entry: 'x' } })],
    ] as const) {
      it(`${what} on a table without primary key or replica identity throws an error naming the table`, () => {
        const target = assembler();
        target.onMessage('0/100', begin('0/200', 1));
        assert.throws(
          () => target.onMessage('0/150', message),
          (err: unknown) => err instanceof Error && err.message.includes('public.audit_log'),
        );
      });
    }

    it('a row change outside a transaction is a protocol error', () => {
      assert.throws(() => assembler().onMessage('0/150', insert(customers, alice)), /outside a transaction/);
      assert.throws(() => assembler().onMessage('0/150', commit('0/200', '0/228')), /outside a transaction/);
    });
  });
});
