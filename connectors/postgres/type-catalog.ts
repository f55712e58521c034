import { parse as parseArray } from 'postgres-array';
import { builtinDecoder, Decoder } from './types';

/** Runs one catalog query; the source gives it a plain (non-replication) connection. */
export type CatalogQuery = (sql: string, params: unknown[]) => Promise<{ rows: Record<string, unknown>[] }>;

interface PgTypeRow {
  oid: number;
  typtype: string; // b base, d domain, e enum, c composite, r range, m multirange, p pseudo
  typelem: number;
  typbasetype: number;
  typcategory: string; // A array
  typdelim: string;
}

/**
 * Decoders for every column type a table can have: built-ins directly, and
 * arrays (element by element), domains (as their base type), enums and
 * anything else (as text) from pg_type, looked up once per type.
 */
export class TypeCatalog {
  private readonly decoders = new Map<number, Decoder>();

  constructor(private readonly query: CatalogQuery) {}

  /** Makes decoderOf() answer for these type OIDs. */
  async load(oids: Iterable<number>): Promise<void> {
    const unknown = [...new Set(oids)].filter((oid) => !this.decoders.has(oid) && !builtinDecoder(oid));
    if (unknown.length === 0) return;
    const { rows } = await this.query(
      `SELECT oid::int, typtype::text, typelem::int, typbasetype::int, typcategory::text, typdelim::text
         FROM pg_type WHERE oid = ANY($1::oid[])`,
      [unknown],
    );
    const types = rows.map((r) => ({ ...r, oid: Number(r.oid), typelem: Number(r.typelem), typbasetype: Number(r.typbasetype) })) as PgTypeRow[];
    // Element and base types first, so arrays of domains of arrays resolve too.
    await this.load(types.flatMap((t) => [t.typelem, t.typbasetype]).filter((oid) => oid !== 0));
    for (const type of types) this.decoders.set(type.oid, this.decoderFor(type));
    for (const oid of unknown) if (!this.decoders.has(oid)) this.decoders.set(oid, (text) => text);
  }

  decoderOf(oid: number): Decoder {
    const decoder = builtinDecoder(oid) ?? this.decoders.get(oid);
    if (!decoder) throw new Error(`internal: type OID ${oid} was not loaded into the type catalog before decoding`);
    return decoder;
  }

  decode(oid: number, text: string): unknown {
    return this.decoderOf(oid)(text);
  }

  private decoderFor(type: PgTypeRow): Decoder {
    if (type.typcategory === 'A' && type.typelem !== 0 && type.typdelim === ',') {
      const element = this.decoderOf(type.typelem);
      return (text) => parseArray(text, element);
    }
    if (type.typtype === 'd' && type.typbasetype !== 0) return this.decoderOf(type.typbasetype);
    return (text) => text; // enums, composites, ranges: their text form
  }
}
