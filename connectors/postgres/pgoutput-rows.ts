import { Pgoutput } from 'pg-logical-replication';

type Relation = Pgoutput.MessageRelation;
type Tuple = Record<string, unknown>;

/**
 * pgoutput's row messages (insert, update, delete: nearly every message of a
 * busy stream), parsed into the very shapes pg-logical-replication's parser
 * gives (its msgInsert / msgUpdate / msgDelete, protocol version 1), only
 * cheaper: its tuples are prototype-less objects (dictionary mode in V8, slow
 * to fill and to read) and each value goes through a Buffer view and a
 * TextDecoder. This reads the values straight out of the message. Other
 * messages, and a relation with a column named `__proto__`, are left to the
 * library (null).
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */
export function parseRowMessage(buf: Buffer, relations: ReadonlyMap<number, Relation>): Pgoutput.Message | null {
  const tag = buf[0];
  if (tag !== 0x49 /* I */ && tag !== 0x55 /* U */ && tag !== 0x44 /* D */) return null;
  if (buf.length < 6) return null; // let the library report it
  const relation = relations.get(buf.readInt32BE(1));
  if (!relation || !plainObjectsFit(relation)) return null;
  const reader = new TupleReader(buf, 5, relation);
  if (tag === 0x49) {
    reader.skipNewTupleMarker();
    return { tag: 'insert', relation, new: reader.tuple(null) } as Pgoutput.Message;
  }
  const kind = reader.byte();
  let key: Tuple | null = null;
  let old: Tuple | null = null;
  if (kind === 0x4b /* K */) key = reader.keyTuple();
  else if (kind === 0x4f /* O */) old = reader.tuple(null);
  else if (tag === 0x44 || kind !== 0x4e /* N */) throw new Error(`unknown submessage key ${String.fromCharCode(kind)}`);
  if (tag === 0x44) return { tag: 'delete', relation, key, old } as Pgoutput.Message;
  if (kind !== 0x4e) reader.skipNewTupleMarker();
  return { tag: 'update', relation, key, old, new: reader.tuple(old) } as Pgoutput.Message;
}

const fits = new WeakMap<Relation, boolean>();

/** A column named `__proto__` would set a plain object's prototype: such a relation keeps the library's parser. */
function plainObjectsFit(relation: Relation): boolean {
  let ok = fits.get(relation);
  if (ok === undefined) {
    ok = !relation.columns.some((c) => c.name === '__proto__') && !relation.keyColumns.includes('__proto__');
    fits.set(relation, ok);
  }
  return ok;
}

class TupleReader {
  constructor(private readonly buf: Buffer, private at: number, private readonly relation: Relation) {}

  byte(): number {
    if (this.at >= this.buf.length) throw new Error('unexpected end of message');
    return this.buf[this.at++];
  }

  /** Steps over the 'N' that introduces the new tuple (the library does not check it either). */
  skipNewTupleMarker(): void {
    this.byte();
  }

  /** TupleData: every column of the relation, values as the column's parser makes them (unchanged TOAST: `fallback`'s, if any). */
  tuple(fallback: Tuple | null): Tuple {
    const { buf } = this;
    if (this.at + 2 > buf.length) throw new Error('unexpected end of message');
    const count = buf.readInt16BE(this.at);
    this.at += 2;
    const columns = this.relation.columns;
    const tuple: Tuple = {};
    for (let i = 0; i < count; i++) {
      const column = columns[i];
      const kind = this.byte();
      if (kind === 0x74 /* t */ || kind === 0x62 /* b */) {
        if (this.at + 4 > buf.length) throw new Error('unexpected end of message');
        const size = buf.readInt32BE(this.at);
        const start = this.at + 4;
        const end = start + size;
        if (end > buf.length) throw new Error('unexpected end of message');
        this.at = end;
        tuple[column.name] = kind === 0x74 ? column.parser(buf.toString('utf8', start, end)) : buf.subarray(start, end);
      } else if (kind === 0x6e /* n */) tuple[column.name] = null;
      else if (kind === 0x75 /* u */) tuple[column.name] = fallback?.[column.name];
      else throw new Error(`unknown attribute kind ${String.fromCharCode(kind)}`);
    }
    return tuple;
  }

  /** A key tuple: the replica identity's columns, a null placeholder (a non-key column) as undefined. */
  keyTuple(): Tuple {
    const tuple = this.tuple(null);
    const key: Tuple = {};
    for (const name of this.relation.keyColumns) key[name] = tuple[name] === null ? undefined : tuple[name];
    return key;
  }
}
