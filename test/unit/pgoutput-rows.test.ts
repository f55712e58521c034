import assert from 'node:assert/strict';
import { PgoutputPlugin, Pgoutput } from 'pg-logical-replication';
import { parseRowMessage } from '../../connectors/postgres/pgoutput-rows';

// Binary pgoutput messages (protocol version 1), built by hand, parsed by the
// library's parser and by ours: the results must be the same, value for value.

const cstr = (s: string) => Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
const i32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const byte = (c: string) => Buffer.from(c, 'latin1');

type Value = string | null | 'UNCHANGED' | Buffer;

function tupleData(values: Value[]): Buffer {
  return Buffer.concat([i16(values.length), ...values.map((v) => {
    if (v === null) return byte('n');
    if (v === 'UNCHANGED') return byte('u');
    if (Buffer.isBuffer(v)) return Buffer.concat([byte('b'), i32(v.length), v]);
    const text = Buffer.from(v, 'utf8');
    return Buffer.concat([byte('t'), i32(text.length), text]);
  })]);
}

const RELID = 16384;
const relationMessage = (columns: { name: string; key: boolean }[]) => Buffer.concat([
  byte('R'), i32(RELID), cstr('public'), cstr('orders'), byte('d'), i16(columns.length),
  ...columns.map((c) => Buffer.concat([Buffer.from([c.key ? 1 : 0]), cstr(c.name), i32(25), i32(-1)])),
]);

const COLUMNS = [{ name: 'id', key: true }, { name: 'note', key: false }, { name: 'payload', key: false }, { name: 'constructor', key: false }];

const MESSAGES: [string, Buffer][] = [
  ['insert', Buffer.concat([byte('I'), i32(RELID), byte('N'), tupleData(['1', 'héllo ✓', null, 'x'])])],
  ['insert with an empty and a binary value', Buffer.concat([byte('I'), i32(RELID), byte('N'), tupleData(['2', '', Buffer.from([0, 1, 2]), null])])],
  ['update, new row only', Buffer.concat([byte('U'), i32(RELID), byte('N'), tupleData(['1', 'a', 'UNCHANGED', 'y'])])],
  ['update with the old key', Buffer.concat([byte('U'), i32(RELID), byte('K'), tupleData(['1', null, null, null]), byte('N'), tupleData(['9', 'b', 'UNCHANGED', null])])],
  ['update with the old row (unchanged TOAST from it)', Buffer.concat([byte('U'), i32(RELID), byte('O'), tupleData(['1', 'old', 'kept', 'z']), byte('N'), tupleData(['1', 'new', 'UNCHANGED', 'UNCHANGED'])])],
  ['delete by key', Buffer.concat([byte('D'), i32(RELID), byte('K'), tupleData(['7', null, null, null])])],
  ['delete with the old row', Buffer.concat([byte('D'), i32(RELID), byte('O'), tupleData(['7', 'gone', null, 'w'])])],
];

function plain(message: Pgoutput.Message): unknown {
  // The library's tuples have no prototype; ours are plain objects: compare own properties.
  const copy = (t: unknown) => (t && typeof t === 'object' && !Buffer.isBuffer(t) ? { ...(t as object) } : t);
  const m = message as unknown as Record<string, unknown>;
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, k === 'relation' ? (v as Pgoutput.MessageRelation).relationOid : copy(v)]));
}

describe('pgoutput row messages parsed without the library (pgoutput-rows.ts)', () => {
  const library = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  const relation = library.parse(relationMessage(COLUMNS)) as Pgoutput.MessageRelation;
  for (const column of relation.columns) column.parser = (raw: unknown) => raw; // as the source's plugin sets them
  const relations = new Map([[RELID, relation]]);

  for (const [what, buf] of MESSAGES) {
    it(`gives what the library gives: ${what}`, () => {
      const ours = parseRowMessage(buf, relations);
      assert.ok(ours, 'parsed here');
      assert.deepEqual(plain(ours), plain(library.parse(buf)));
      assert.equal((ours as { relation: unknown }).relation, relation);
    });
  }

  it('keeps unchanged TOAST columns as present-but-undefined (the assembler tells them from absent ones by `in`)', () => {
    const ours = parseRowMessage(MESSAGES[2][1], relations) as Pgoutput.MessageUpdate;
    assert.ok('payload' in ours.new);
    assert.equal(ours.new.payload, undefined);
  });

  it('leaves other messages, unknown relations and a column named __proto__ to the library', () => {
    assert.equal(parseRowMessage(relationMessage(COLUMNS), relations), null);
    assert.equal(parseRowMessage(Buffer.concat([byte('I'), i32(RELID + 1), byte('N'), tupleData(['1'])]), relations), null);
    const odd = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    const oddRelation = odd.parse(relationMessage([{ name: 'id', key: true }, { name: '__proto__', key: false }])) as Pgoutput.MessageRelation;
    assert.equal(parseRowMessage(Buffer.concat([byte('I'), i32(RELID), byte('N'), tupleData(['1', 'x'])]), new Map([[RELID, oddRelation]])), null);
  });

  it('refuses a torn message as the library does', () => {
    const torn = MESSAGES[0][1].subarray(0, MESSAGES[0][1].length - 3);
    assert.throws(() => library.parse(torn), /unexpected end of message/);
    assert.throws(() => parseRowMessage(torn, relations), /unexpected end of message/);
  });
});
