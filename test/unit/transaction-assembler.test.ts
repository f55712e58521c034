import { strict as assert } from 'node:assert';
import { Pgoutput } from 'pg-logical-replication';
import { ChangeEvent } from '../../core/event/change-event';
import { makeVersion, snapshotVersion } from '../../core/event/version';
import { Lsn, parseLsn, ZERO_LSN } from '../../connectors/postgres/lsn';
import { AssemblerOptions, TransactionAssembler } from '../../connectors/postgres/transaction-assembler';
import { PgType } from '../../connectors/postgres/types';
import { SourceBatch } from '../../connectors/source';

// ---------------------------------------------------------------------------
// Builders for pgoutput messages, shaped like pg-logical-replication's decoder
// output. Tuples hold RAW TEXT: our plugin replaces column parsers with identity.
// LSNs inside messages are zero-padded like the decoder prints them; the lsn
// passed to onMessage is unpadded like the replication stream's XLogData LSN.
// ---------------------------------------------------------------------------

type Tuple = Record<string, string | null | undefined>;

interface ColumnSpec {
  name: string;
  typeOid: number;
  /** Part of the replica identity (flag bit 1). */
  key?: boolean;
}

function relation(
  table: string,
  columns: ColumnSpec[],
  replicaIdentity: Pgoutput.MessageRelation['replicaIdentity'] = 'default',
): Pgoutput.MessageRelation {
  const [schema, name] = table.split('.');
  return {
    tag: 'relation',
    relationOid: 16384 + table.length,
    schema,
    name,
    replicaIdentity,
    columns: columns.map((c) => ({
      name: c.name,
      flags: c.key ? 1 : 0,
      typeOid: c.typeOid,
      typeMod: -1,
      typeSchema: null,
      typeName: null,
      parser: (x: unknown) => x,
    })),
    keyColumns: columns.filter((c) => c.key).map((c) => c.name),
  };
}

/** `0/200` → `00000000/00000200`, as the pgoutput decoder prints LSNs. */
function padded(lsn: string): string {
  const [hi, lo] = lsn.split('/');
  return `${hi.padStart(8, '0')}/${lo.padStart(8, '0')}`.toUpperCase();
}

/** Commit time as the decoder gives it: microseconds since the Unix epoch. */
function micros(date: Date, extraMicros = 0): bigint {
  return BigInt(date.getTime()) * 1000n + BigInt(extraMicros);
}

const T0 = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));

function begin(commitLsn: string, xid: number, commitTime: bigint = micros(T0)): Pgoutput.MessageBegin {
  return { tag: 'begin', commitLsn: padded(commitLsn), commitTime, xid };
}

function commit(commitLsn: string, commitEndLsn: string, commitTime: bigint = micros(T0)): Pgoutput.MessageCommit {
  return { tag: 'commit', flags: 0, commitLsn: padded(commitLsn), commitEndLsn: padded(commitEndLsn), commitTime };
}

function insert(rel: Pgoutput.MessageRelation, row: Tuple): Pgoutput.MessageInsert {
  return { tag: 'insert', relation: rel, new: row };
}

function update(rel: Pgoutput.MessageRelation, row: Tuple, prior: { key?: Tuple; old?: Tuple } = {}): Pgoutput.MessageUpdate {
  return { tag: 'update', relation: rel, key: prior.key ?? null, old: prior.old ?? null, new: row };
}

function del(rel: Pgoutput.MessageRelation, prior: { key?: Tuple; old?: Tuple }): Pgoutput.MessageDelete {
  return { tag: 'delete', relation: rel, key: prior.key ?? null, old: prior.old ?? null };
}

function truncate(...relations: Pgoutput.MessageRelation[]): Pgoutput.MessageTruncate {
  return { tag: 'truncate', cascade: false, restartIdentity: false, relations };
}

type Step = [lsn: string, message: Pgoutput.Message];

function assembler(options: Partial<AssemblerOptions> = {}, resumeFrom: Lsn = ZERO_LSN): TransactionAssembler {
  return new TransactionAssembler(
    {
      sourceName: 'shop-pg',
      db: 'shop',
      primaryKeys: new Map([['public.customers', ['id']]]),
      maxBatchEvents: 1000,
      ...options,
    },
    resumeFrom,
  );
}

/** Feeds every step; returns the batches handed out, in order. */
function feed(target: TransactionAssembler, steps: Step[]): SourceBatch[] {
  const batches: SourceBatch[] = [];
  for (const [lsn, message] of steps) {
    const batch = target.onMessage(lsn, message);
    if (batch) batches.push(batch);
  }
  return batches;
}

function events(batches: SourceBatch[]): ChangeEvent[] {
  return batches.flatMap((b) => b.events);
}

function versionAt(commitLsn: string, index: number): string {
  return makeVersion(parseLsn(commitLsn), index);
}

// A typical table: int8 key, a few lossless types.
const customers = relation('public.customers', [
  { name: 'id', typeOid: PgType.int8, key: true },
  { name: 'name', typeOid: 25 },
  { name: 'balance', typeOid: PgType.numeric },
  { name: 'updated_at', typeOid: PgType.timestamptz },
  { name: 'active', typeOid: PgType.bool },
]);

const alice: Tuple = { id: '9223372036854775807', name: 'Alice', balance: '12.50', updated_at: '2024-01-02 03:04:05.5+00', active: 't' };
const aliceDecoded = { id: '9223372036854775807', name: 'Alice', balance: '12.50', updated_at: '2024-01-02T03:04:05.500000Z', active: true };

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe('TransactionAssembler (connectors/postgres/transaction-assembler.ts)', () => {
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
      // DESIGN §2: the transaction writes the row at LSN 90 and commits at LSN 110;
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
