import { strict as assert } from 'node:assert';
import { Client } from 'pg';
import { ChangeEvent } from '../../core/event/change-event';
import { SourceBatch } from '../../core/contracts/source';
import { sourceDetails } from '../../core/event/source-details';
import { createLogger } from '../../core/runtime/logger';
import { runSnapshot, SnapshotOptions } from '../../connectors/postgres/snapshot';
import { TypeCatalog } from '../../connectors/postgres/type-catalog';
import { parseCheckpoint, SnapshotProgress } from '../../connectors/postgres/checkpoint';
import { CapturedTable, tableName } from '../../connectors/postgres/slot';
import { runSnapshot as runLegacySnapshot } from '../support/legacy-pg-snapshot';
import { PgServer, startPostgres, stopAll } from '../support/servers';

/**
 * The snapshot reads chunks with COPY ... TO STDOUT and parses its text
 * format itself. Its events must be exactly those of the old reader (plain
 * SELECT over the ordinary protocol, kept as test/support/legacy-pg-snapshot.ts):
 * same keys, values, versions, marks, column types, JSON text and checkpoints.
 */
const NASTY = [
  'tab\there', 'new\nline', 'cr\r\nlf', 'back\\slash', '\\N', '\\\\N', 'ends with backslash\\', '', ' ', '\\x41 not hex', '\\101 not octal',
  'quote \' and "double"', 'unicode ✓ ünï 日本語 🦀 e\u0301', '\u0001\u0007\u0008\u000b\u000c\u001f control', 'comma, {brace} "q" \\ in array',
];

const SCHEMA = `
  CREATE TYPE mood AS ENUM ('happy', 'sad\tface', 'o''k');
  CREATE DOMAIN short_text AS text CHECK (length(VALUE) < 1000);
  CREATE TABLE nasty (
    id int PRIMARY KEY, t text, v varchar(40), c char(3), b bytea, ta text[], ia int[], j json, jb jsonb,
    n numeric, n2 numeric(12,4), big int8, f float8, r real, ts timestamp, tstz timestamptz(3), d date, tm time,
    iv interval, bo bool, u uuid, m mood, dom short_text, ma mood[], x xml, bits bit(3), inet_col inet
  );
  -- A composite text key full of characters that need escaping in the keyset literal.
  CREATE TABLE keyed (k1 text, k2 int, payload text, PRIMARY KEY (k1, k2));
  -- No primary key: read in ctid order, the whole row is the key.
  CREATE TABLE loose (a text, b int);
`;

async function fill(db: Client): Promise<void> {
  for (let i = 0; i < NASTY.length; i++) {
    const s = NASTY[i];
    await db.query(
      `INSERT INTO nasty VALUES ($1, $2, left($2, 40), left($2, 3), convert_to($2, 'UTF8'), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                                $18, $19, $20, $21, $22, $23, $24)`,
      [
        i + 1, s, [s, null, 'NULL', '', s + 'x'], [i, null, -i], JSON.stringify({ s, n: 12345678901234567890, arr: [s, null] }), JSON.stringify({ s, nested: { t: '\t\n\\' } }),
        ['0', '-1.5', 'NaN', '123456789012345678901234567890.000000000000000001', 'Infinity'][i % 5], (i * 1.2345).toFixed(4), (BigInt(i) * 922337203685477n).toString(),
        ['0.1', '-0', 'NaN', 'Infinity', '1e-300'][i % 5], ['3.4e38', '-Infinity', '0.5', '1', '-1.25'][i % 5],
        ['2024-02-29 23:59:59.999999', 'infinity', '1999-01-01 00:00:00', '0044-03-15 12:00:00 BC', '2024-01-01 00:00:00.5'][i % 5],
        ['2024-02-29 23:59:59.999+05:30', '-infinity', '1970-01-01 00:00:00Z', '2038-01-19 03:14:07.123Z', '2000-06-01 12:00:00-08'][i % 5],
        ['2024-02-29', 'infinity', '0001-01-01', '1999-12-31', '2000-01-01'][i % 5], ['00:00:00', '23:59:59.999999', '12:34:56.5', '01:02:03', '24:00:00'][i % 5],
        ['1 year 2 mons 3 days 04:05:06.789', '-1 day', '0', 'P1Y', '1 microsecond'][i % 5], i % 3 === 0 ? null : i % 2 === 0,
        `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`, ['happy', 'sad\tface', "o'k"][i % 3], s, ['{happy,"sad\tface"}', '{}', null][i % 3],
        `<a b="${i}">&lt;${i}</a>`, ['101', '000', '111'][i % 3], ['127.0.0.1', '::1', '10.0.0.0/8'][i % 3],
      ],
    );
  }
  // Empty string and NULL, every other column NULL too.
  await db.query(`INSERT INTO nasty (id, t, v) VALUES (100, '', NULL), (101, NULL, '')`);
  // A value of ~1 MB: COPY's stream arrives in pieces that cut it (and its multi-byte characters) anywhere.
  const big = NASTY.join('\t|').repeat(2500);
  await db.query(`INSERT INTO nasty (id, t, ta, jb) VALUES (102, $1, $2, $3)`, [big, [big.slice(0, 50_000), null], JSON.stringify({ big })]);
  for (let i = 0; i < NASTY.length; i++) {
    for (const k2 of [1, 2]) await db.query('INSERT INTO keyed VALUES ($1, $2, $3)', [NASTY[i] + '|' + i, k2, NASTY[(i + k2) % NASTY.length]]);
    await db.query('INSERT INTO loose VALUES ($1, $2)', [NASTY[i], i]);
  }
  await db.query(`INSERT INTO loose VALUES (NULL, NULL), ('', NULL), ('\\N', 0)`);
}

interface Captured {
  batches: SourceBatch[];
}

async function snapshotOf(
  url: string, tables: CapturedTable[], primaryKeys: Map<string, string[]>, reader: typeof runSnapshot, parallelism: number, chunkSize: number, from?: SnapshotProgress,
  extra: Partial<SnapshotOptions> = {},
): Promise<Captured> {
  const admin = new Client({ connectionString: url });
  await admin.connect();
  try {
    const progress: SnapshotProgress = from ? structuredClone(from) : ({ position: 0x16b3748n, tables: {} } as SnapshotProgress);
    const batches: SourceBatch[] = [];
    const options: SnapshotOptions = {
      url, sourceName: 'copytest', db: 'copytest', tables, primaryKeys,
      catalog: new TypeCatalog((sql, params) => admin.query(sql, params)),
      onImported: async () => undefined, progress, chunkSize, parallelism,
      emit: async (batch) => void batches.push(batch),
      report: { snapshotRows: () => undefined, backlogBytes: () => undefined },
      signal: new AbortController().signal,
      logger: createLogger('test', { write: () => undefined }),
      ...extra,
    };
    await reader(options);
    return { batches };
  } finally {
    await admin.end();
  }
}

/** What a consumer can see of an event: everything but the wall-clock times. */
function visible(event: ChangeEvent): unknown {
  const { ts_ms: _s, ...source } = event.source as unknown as Record<string, unknown>;
  return { op: event.op, key: event.key, before: event.before, after: event.after, source, details: sourceDetails(event) };
}

function tableOf(event: ChangeEvent): string {
  return `${event.source.schema}.${event.source.table}`;
}

describe('Postgres snapshot via COPY TO STDOUT', function () {
  this.timeout(180_000);
  let pg: PgServer;
  let url: string;
  let tables: CapturedTable[];
  let primaryKeys: Map<string, string[]>;

  before(async () => {
    pg = await startPostgres();
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query('CREATE DATABASE copytest');
    await admin.end();
    url = pg.url.replace(/\/[^/]*$/, '/copytest');
    const db = new Client({ connectionString: url });
    await db.connect();
    await db.query(SCHEMA);
    await fill(db);
    await db.end();
    tables = ['nasty', 'keyed', 'loose'].map((table) => ({ schema: 'public', table }));
    primaryKeys = new Map([['public.nasty', ['id']], ['public.keyed', ['k1', 'k2']]]);
  });
  after(async () => stopAll());

  it('emits exactly the old reader\'s events and checkpoints for tabs, newlines, backslashes, unicode, NULL vs empty, bytea, arrays, json, numeric, timestamps', async () => {
    // One reader: the order of batches across tables (and so the snapshot marks and checkpoints) is fixed.
    const before = await snapshotOf(url, tables, primaryKeys, runLegacySnapshot as typeof runSnapshot, 1, 4);
    const after = await snapshotOf(url, tables, primaryKeys, runSnapshot, 1, 4);
    assert.ok(before.batches.length > 10, `the old reader emitted ${before.batches.length} batches`);
    assert.equal(after.batches.length, before.batches.length, 'same number of batches (chunks)');
    for (let i = 0; i < before.batches.length; i++) {
      assert.deepStrictEqual(after.batches[i].events.map(visible), before.batches[i].events.map(visible), `batch ${i} events`);
      // The log stores the events as JSON: the members' order counts too.
      assert.equal(JSON.stringify(after.batches[i].events.map(visible)), JSON.stringify(before.batches[i].events.map(visible)), `batch ${i} events as JSON`);
      assert.equal(after.batches[i].checkpoint, before.batches[i].checkpoint, `batch ${i} checkpoint`);
    }
    // The comparison saw the hard values, not just empty tables.
    const rows = after.batches.flatMap((b) => b.events).filter((e) => e.op === 'r');
    assert.equal(rows.length, NASTY.length + 3 + NASTY.length * 2 + NASTY.length + 3);
    const tabRow = rows.find((e) => tableOf(e) === 'public.nasty' && e.key.id === 1);
    assert.equal(tabRow?.after?.t, 'tab\there');
    const emptyVsNull = rows.filter((e) => tableOf(e) === 'public.nasty' && (e.key.id === 100 || e.key.id === 101)).map((e) => [e.after?.t, e.after?.v]);
    assert.deepStrictEqual(emptyVsNull, [['', null], [null, '']]);
    assert.equal(rows.find((e) => tableOf(e) === 'public.nasty' && e.key.id === 102)?.after?.t, NASTY.join('\t|').repeat(2500));
  });

  it('leaves the source details out when the log does not read them (no Debezium topics): the same events and checkpoints otherwise', async () => {
    const withDetails = await snapshotOf(url, tables, primaryKeys, runSnapshot, 1, 4);
    const without = await snapshotOf(url, tables, primaryKeys, runSnapshot, 1, 4, undefined, { sourceDetails: false });
    const events = (c: Captured) => c.batches.flatMap((b) => b.events);
    assert.ok(events(withDetails).some((e) => sourceDetails(e)?.columnTypes), 'by default the events carry their column types');
    assert.deepEqual(events(without).map(sourceDetails).filter(Boolean), [], 'none carries details when asked not to');
    const plain = (e: ChangeEvent) => ({ ...visible(e) as object, details: undefined });
    assert.deepStrictEqual(events(without).map(plain), events(withDetails).map(plain));
    assert.equal(JSON.stringify(events(without).map(plain)), JSON.stringify(events(withDetails).map(plain)), 'the same JSON in the log');
    assert.deepEqual(without.batches.map((b) => b.checkpoint), withDetails.batches.map((b) => b.checkpoint));
  });

  it('reads each table in parallel and still emits the old reader\'s rows in key order', async () => {
    const before = await snapshotOf(url, tables, primaryKeys, runLegacySnapshot as typeof runSnapshot, 1, 3);
    const after = await snapshotOf(url, tables, primaryKeys, runSnapshot, 4, 3);
    for (const table of tables.map(tableName)) {
      // Snapshot marks depend on which table's chunk lands first: compare them apart from the rows.
      const rowsOf = (c: Captured) => c.batches.flatMap((b) => b.events).filter((e) => tableOf(e) === table).map((e) => {
        const v = visible(e) as { details?: { snapshotMark?: string } };
        return { ...v, details: { ...v.details, snapshotMark: undefined } };
      });
      assert.deepStrictEqual(rowsOf(after), rowsOf(before), `${table}: rows in the same order with the same values`);
    }
    const last = JSON.parse(after.batches[after.batches.length - 1].checkpoint as string) as unknown;
    const lastBefore = JSON.parse(before.batches[before.batches.length - 1].checkpoint as string) as unknown;
    assert.deepStrictEqual(last, lastBefore, 'the final checkpoint (every table done, same rows and last keys)');
  });

  it('reads one table on three connections (chunks ahead end at their limit-th key) with the old reader\'s batches and checkpoints', async () => {
    const keyed = [{ schema: 'public', table: 'keyed' }];
    const before = await snapshotOf(url, keyed, primaryKeys, runLegacySnapshot as typeof runSnapshot, 1, 2);
    const after = await snapshotOf(url, keyed, primaryKeys, runSnapshot, 3, 2);
    assert.ok(before.batches.length >= 15, `${before.batches.length} batches`);
    assert.deepStrictEqual(after.batches.map((b) => b.events.map(visible)), before.batches.map((b) => b.events.map(visible)));
    assert.deepStrictEqual(after.batches.map((b) => b.checkpoint), before.batches.map((b) => b.checkpoint));
  });

  it('resumes from a checkpoint taken mid-table (keys with quotes, tabs, backslashes) like the old reader', async () => {
    const before = await snapshotOf(url, tables, primaryKeys, runLegacySnapshot as typeof runSnapshot, 1, 3);
    for (const at of [2, Math.floor(before.batches.length / 2), before.batches.length - 3]) {
      const progress = parseCheckpoint(before.batches[at].checkpoint).snapshot as SnapshotProgress;
      const legacy = await snapshotOf(url, tables, primaryKeys, runLegacySnapshot as typeof runSnapshot, 1, 3, progress);
      const resumed = await snapshotOf(url, tables, primaryKeys, runSnapshot, 2, 3, progress);
      // Two readers interleave the tables: compare each table's rows in order.
      const rows = (c: Captured) => tables.map(tableName).map((t) => c.batches.flatMap((b) => b.events).filter((e) => e.op === 'r' && tableOf(e) === t).map((e) => [e.key, e.after]));
      assert.ok(rows(legacy).flat().length > 0, `rows left after batch ${at}`);
      assert.deepStrictEqual(rows(resumed), rows(legacy), `resumed after batch ${at}: ${before.batches[at].checkpoint}`);
      const final = (c: Captured) => JSON.parse(c.batches[c.batches.length - 1].checkpoint) as unknown;
      assert.deepStrictEqual(final(resumed), final(legacy), 'the final checkpoint');
    }
  });

  it('finishes a table while an ALTER TABLE waits for it: a reader that cannot get the lock at once is not borrowed', async () => {
    const db = new Client({ connectionString: url });
    await db.connect();
    const ddl = new Client({ connectionString: url });
    await ddl.connect();
    try {
      await db.query(`CREATE TABLE altered (id int PRIMARY KEY, t text); INSERT INTO altered SELECT g, 'row ' || g FROM generate_series(1, 200) g`);
      const altered = [{ schema: 'public', table: 'altered' }];
      const keys = new Map([['public.altered', ['id']]]);
      let alter: Promise<unknown> | undefined;
      let alteredAt = 0;
      let alteredDuringSnapshot = false;
      const progress = { position: 0x16b3748n, tables: {} } as SnapshotProgress;
      const batches: SourceBatch[] = [];
      const admin = new Client({ connectionString: url });
      await admin.connect();
      const started = Date.now();
      await runSnapshot({
        url, sourceName: 'copytest', db: 'copytest', tables: altered, primaryKeys: keys,
        catalog: new TypeCatalog((sql, params) => admin.query(sql, params)),
        onImported: async () => undefined, progress, chunkSize: 20, parallelism: 3,
        emit: async (batch) => {
          batches.push(batch);
          if (alteredAt) alteredDuringSnapshot = true;
          if (!alter) {
            // After the first chunk (read alone), before any reader is borrowed: DDL queues behind the table's reader.
            alter = ddl.query('ALTER TABLE altered ADD COLUMN added int').then(() => (alteredAt = Date.now()));
            await new Promise((r) => setTimeout(r, 300));
          }
        },
        report: { snapshotRows: () => undefined, backlogBytes: () => undefined },
        signal: new AbortController().signal,
        logger: createLogger('test', { write: () => undefined }),
      });
      const finished = Date.now();
      await admin.end();
      await alter;
      const ids = batches.flatMap((b) => b.events).filter((e) => e.op === 'r').map((e) => e.key.id);
      assert.deepStrictEqual(ids, Array.from({ length: 200 }, (_, i) => i + 1), 'every row once, in key order');
      assert.ok(finished - started < 30_000, `the snapshot took ${finished - started} ms`);
      assert.ok(alteredAt > 0 && !alteredDuringSnapshot, 'the ALTER ran, only after the snapshot released the table');
    } finally {
      await ddl.end();
      await db.end();
    }
  });
});
