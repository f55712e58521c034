import { strict as assert } from 'node:assert';
import { sourceDetails } from '../../core/event/source-details';
import { snapshotVersion } from '../../core/event/version';
import { parseLsn } from '../../connectors/postgres/lsn';
import { PgType } from '../../connectors/postgres/types';
import { relation, T0, begin, commit, insert, update, del, assembler, feed, events, versionAt, customers, alice, aliceDecoded } from '../support/pgoutput-messages';

describe('TransactionAssembler (connectors/postgres/transaction-assembler.ts): rows, versions, key changes', () => {
  describe('row changes', () => {
    it('an insert becomes op "c" with the decoded row as after, the key from primaryKeys and full source metadata', () => {
      const batches = feed(assembler(), [
        ['0/100', begin('0/200', 731)],
        ['0/150', insert(customers, alice)],
        ['0/228', commit('0/200', '0/228')],
      ]);
      assert.equal(batches.length, 1);
      const [event] = batches[0].events;
      assert.equal(event.op, 'c');
      assert.deepEqual(event.key, { id: '9223372036854775807' });
      assert.equal(event.before, null);
      assert.deepEqual(event.after, aliceDecoded);
      assert.equal(event.unchanged, undefined);
      assert.deepEqual(
        { ...event.source },
        {
          connector: 'postgresql',
          name: 'shop-pg',
          db: 'shop',
          schema: 'public',
          table: 'customers',
          position: '0/150',
          version: versionAt('0/200', 1),
          txId: '731',
          ts_ms: T0.getTime(),
        },
      );
      assert.equal(typeof event.ts_ms, 'number');
    });

    it('an update without an old image becomes op "u" with before null', () => {
      const [event] = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 1)],
          ['0/150', update(customers, { ...alice, name: 'Alicia' })],
          ['0/228', commit('0/200', '0/228')],
        ]),
      );
      assert.equal(event.op, 'u');
      assert.deepEqual(event.key, { id: '9223372036854775807' });
      assert.equal(event.before, null);
      assert.deepEqual(event.after, { ...aliceDecoded, name: 'Alicia' });
    });

    it('an update with an old image (REPLICA IDENTITY FULL) becomes op "u" with decoded before and after', () => {
      const full = relation(
        'public.customers',
        customers.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, key: true })),
        'full',
      );
      const [event] = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 1)],
          ['0/150', update(full, { ...alice, balance: '99.99' }, { old: alice })],
          ['0/228', commit('0/200', '0/228')],
        ]),
      );
      assert.equal(event.op, 'u', 'a non-key change under REPLICA IDENTITY FULL is an update, not a delete + create');
      assert.deepEqual(event.key, { id: '9223372036854775807' }, 'key comes from primaryKeys, not from every replica-identity column');
      assert.deepEqual(event.before, aliceDecoded);
      assert.deepEqual(event.after, { ...aliceDecoded, balance: '99.99' });
    });

    it('a delete with the key tuple becomes op "d" with the key as before and after null', () => {
      const [event] = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 1)],
          ['0/150', del(customers, { key: { id: '42' } })],
          ['0/228', commit('0/200', '0/228')],
        ]),
      );
      assert.equal(event.op, 'd');
      assert.deepEqual(event.key, { id: '42' });
      assert.deepEqual(event.before, { id: '42' });
      assert.equal(event.after, null);
    });

    it('a delete with the old image (REPLICA IDENTITY FULL) becomes op "d" with the decoded old row as before', () => {
      const [event] = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 1)],
          ['0/150', del(customers, { old: alice })],
          ['0/228', commit('0/200', '0/228')],
        ]),
      );
      assert.equal(event.op, 'd');
      assert.deepEqual(event.key, { id: '9223372036854775807' });
      assert.deepEqual(event.before, aliceDecoded);
      assert.equal(event.after, null);
    });

    it('takes the key from the relation\'s key columns when primaryKeys has no entry for the table', () => {
      const orders = relation('public.orders', [
        { name: 'tenant', typeOid: PgType.int4, key: true },
        { name: 'order_no', typeOid: PgType.int8, key: true },
        { name: 'total', typeOid: PgType.numeric },
      ]);
      const [event] = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 1)],
          ['0/150', insert(orders, { tenant: '7', order_no: '123', total: '1.10' })],
          ['0/228', commit('0/200', '0/228')],
        ]),
      );
      assert.deepEqual(event.key, { tenant: 7, order_no: '123' });
      assert.deepEqual(event.after, { tenant: 7, order_no: '123', total: '1.10' });
    });

    it('NULL column values stay null in the row', () => {
      const [event] = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 1)],
          ['0/150', insert(customers, { ...alice, name: null, updated_at: null })],
          ['0/228', commit('0/200', '0/228')],
        ]),
      );
      assert.deepEqual(event.after, { ...aliceDecoded, name: null, updated_at: null });
    });
  });

  describe('versions follow commit order', () => {
    it('events of one transaction get makeVersion(commit LSN from BEGIN, 1..n) in order', () => {
      const batches = feed(assembler(), [
        ['0/100', begin('0/2A0', 5)],
        ['0/110', insert(customers, { ...alice, id: '1' })],
        ['0/120', update(customers, { ...alice, id: '1', name: 'B' })],
        ['0/130', insert(customers, { ...alice, id: '2' })],
        ['0/140', del(customers, { key: { id: '1' } })],
        ['0/2A0', commit('0/2A0', '0/2C8')],
      ]);
      const all = events(batches);
      assert.deepEqual(
        all.map((e) => [e.op, e.source.version]),
        [
          ['c', versionAt('0/2A0', 1)],
          ['u', versionAt('0/2A0', 2)],
          ['c', versionAt('0/2A0', 3)],
          ['d', versionAt('0/2A0', 4)],
        ],
      );
      assert.deepEqual(all.map((e) => e.source.position), ['0/110', '0/120', '0/130', '0/140']);
    });

    it('a change written BEFORE the snapshot point but committed AFTER it gets a version above the snapshot\'s', () => {
      // docs/architecture.md §2: the transaction writes the row at LSN 90 and commits at LSN 110;
      // a snapshot taken at LSN 100 cannot see the write.
      const snapshotPoint = parseLsn('0/100');
      const [event] = events(
        feed(assembler(), [
          ['0/80', begin('0/110', 9)],
          ['0/90', insert(customers, alice)],
          ['0/110', commit('0/110', '0/138')],
        ]),
      );
      assert.equal(event.source.position, '0/90', 'the position is where the record sits in the WAL');
      assert.ok(parseLsn(event.source.position) < snapshotPoint);
      assert.ok(
        event.source.version > snapshotVersion(snapshotPoint),
        `version ${event.source.version} must beat snapshot version ${snapshotVersion(snapshotPoint)}`,
      );
    });

    it('a change committed before the snapshot point gets a version below the snapshot\'s', () => {
      const snapshotPoint = parseLsn('0/100');
      const [event] = events(
        feed(assembler(), [
          ['0/80', begin('0/F0', 9)],
          ['0/90', insert(customers, alice)],
          ['0/F0', commit('0/F0', '0/118')],
        ]),
      );
      assert.ok(event.source.version < snapshotVersion(snapshotPoint));
    });

    it('interleaved writes of two transactions are versioned by their commits, indexes restarting at 1', () => {
      // Tx A writes first (WAL 0/100) but commits second (0/400); tx B writes later and commits first (0/300).
      // pgoutput hands transactions over whole, in commit order: B first, then A.
      const batches = feed(assembler(), [
        ['0/200', begin('0/300', 11)],
        ['0/210', update(customers, { ...alice, id: '1', name: 'from B' })],
        ['0/300', commit('0/300', '0/328')],
        ['0/100', begin('0/400', 10)],
        ['0/110', update(customers, { ...alice, id: '1', name: 'from A' })],
        ['0/120', update(customers, { ...alice, id: '1', name: 'from A again' })],
        ['0/400', commit('0/400', '0/428')],
      ]);
      const all = events(batches);
      assert.deepEqual(
        all.map((e) => [e.after?.name, e.source.version, e.source.txId]),
        [
          ['from B', versionAt('0/300', 1), '11'],
          ['from A', versionAt('0/400', 1), '10'],
          ['from A again', versionAt('0/400', 2), '10'],
        ],
      );
      const versions = all.map((e) => e.source.version);
      assert.deepEqual([...versions].sort(), versions, 'versions ascend in commit order although WAL positions do not');
    });
  });

  describe('primary-key changes', () => {
    it('an update that changes the primary key becomes a "d" for the old key followed by a "c" for the new key', () => {
      const batches = feed(assembler(), [
        ['0/100', begin('0/200', 3)],
        ['0/150', update(customers, { ...alice, id: '2' }, { key: { id: '1' } })],
        ['0/200', commit('0/200', '0/228')],
      ]);
      const all = events(batches);
      assert.deepEqual(
        all.map((e) => ({ op: e.op, key: e.key, before: e.before, after: e.after, version: e.source.version })),
        [
          { op: 'd', key: { id: '1' }, before: { id: '1' }, after: null, version: versionAt('0/200', 1) },
          { op: 'c', key: { id: '2' }, before: null, after: { ...aliceDecoded, id: '2' }, version: versionAt('0/200', 2) },
        ],
      );
    });

    it('a change of one column of a composite key is also a delete + create', () => {
      const lines = relation('public.order_lines', [
        { name: 'order_id', typeOid: PgType.int8, key: true },
        { name: 'line', typeOid: PgType.int4, key: true },
        { name: 'qty', typeOid: PgType.int4 },
      ]);
      const all = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 3)],
          ['0/150', update(lines, { order_id: '5', line: '2', qty: '9' }, { key: { order_id: '5', line: '1' } })],
          ['0/200', commit('0/200', '0/228')],
        ]),
      );
      assert.deepEqual(
        all.map((e) => [e.op, e.key]),
        [
          ['d', { order_id: '5', line: 1 }],
          ['c', { order_id: '5', line: 2 }],
        ],
      );
    });

    it('with REPLICA IDENTITY FULL a key change is detected from the old image', () => {
      const full = relation(
        'public.customers',
        customers.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, key: true })),
        'full',
      );
      const all = events(
        feed(assembler(), [
          ['0/100', begin('0/200', 3)],
          ['0/150', update(full, { ...alice, id: '8' }, { old: { ...alice, id: '7' } })],
          ['0/200', commit('0/200', '0/228')],
        ]),
      );
      assert.deepEqual(
        all.map((e) => [e.op, e.key, e.before, e.after]),
        [
          ['d', { id: '7' }, { ...aliceDecoded, id: '7' }, null],
          ['c', { id: '8' }, null, { ...aliceDecoded, id: '8' }],
        ],
      );
    });
  });

  it('without source details (a log publishing no Debezium topics) the events are the same, only the details are left out', () => {
    const full = relation('public.customers', customers.columns.map((c) => ({ name: c.name, typeOid: c.typeOid, key: true })), 'full');
    const messages: Parameters<typeof feed>[1] = [
      ['0/100', begin('0/200', 3)],
      ['0/140', insert(customers, alice)],
      ['0/150', update(full, { ...alice, id: '8' }, { old: { ...alice, id: '7' } })],
      ['0/160', del(customers, { key: { ...alice, id: '8' } })],
      ['0/200', commit('0/200', '0/228')],
    ];
    const withDetails = events(feed(assembler(), messages));
    const without = events(feed(assembler({ sourceDetails: false }), messages));
    const native = (e: (typeof withDetails)[number]) => JSON.stringify({ ...e, ts_ms: 0 });
    assert.deepEqual(without.map(native), withDetails.map(native));
    assert.ok(withDetails.every((e) => sourceDetails(e)?.columnTypes));
    assert.ok(without.every((e) => sourceDetails(e) === undefined));
  });
});
