// The document semantics of one Elasticsearch index, as documented by Elastic:
// external versioning with 409 conflicts and delete tombstones kept for
// index.gc_deletes, mappings that reject values (mapper_parsing_exception) and
// grow dynamically, _source excludes, near-real-time search (documents become
// searchable on refresh; GET is real time). Used by es-server.ts.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Source = Record<string, Json>;
export interface FieldMapping { type?: string; properties?: Record<string, FieldMapping>; fields?: Record<string, FieldMapping>; [k: string]: unknown }
export interface Mappings {
  properties?: Record<string, FieldMapping>;
  dynamic?: boolean | 'strict' | 'true' | 'false';
  date_detection?: boolean;
  _source?: { excludes?: string[] };
  _meta?: Record<string, Json>;
  [k: string]: unknown;
}

/** `source` is what GET and search return; `fields` what was indexed (before _source excludes), what queries see. */
export interface StoredDoc { source: Source; fields: Source; version: bigint; seqNo: number }

/** An error ES reports as { error: { type, reason }, status }. */
export class EsError extends Error {
  constructor(readonly status: number, readonly type: string, reason: string, readonly extra: Record<string, unknown> = {}) {
    super(reason);
  }
  body(): Record<string, unknown> {
    const cause = { type: this.type, reason: this.message, ...this.extra };
    return { error: { root_cause: [cause], ...cause }, status: this.status };
  }
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
const INTEGER_RANGES: Record<string, [bigint, bigint]> = {
  long: [-(2n ** 63n), 2n ** 63n - 1n], integer: [-(2n ** 31n), 2n ** 31n - 1n], short: [-32768n, 32767n], byte: [-128n, 127n],
};

export class EsIndex {
  readonly docs = new Map<string, StoredDoc>();
  private readonly tombstones = new Map<string, { version: bigint; at: number }>();
  /** What search sees: the documents as of the last refresh. */
  private searchable = new Map<string, StoredDoc>();
  private seqNo = 0;

  constructor(readonly name: string, readonly mappings: Mappings, private readonly gcDeletesMs: number) {
    mappings.properties ??= {};
  }

  refresh(): void {
    this.searchable = new Map(this.docs);
  }

  get(id: string): StoredDoc | undefined {
    return this.docs.get(id);
  }

  searchView(): Map<string, StoredDoc> {
    return this.searchable;
  }

  /** The version a write must beat: the live document's, else a tombstone younger than gc_deletes. */
  private currentVersion(id: string): bigint | null {
    const doc = this.docs.get(id);
    if (doc) return doc.version;
    const tomb = this.tombstones.get(id);
    if (tomb && Date.now() - tomb.at < this.gcDeletesMs) return tomb.version;
    return null;
  }

  private checkVersion(id: string, versionType: string | undefined, version: bigint | null): bigint {
    const current = this.currentVersion(id);
    if (versionType === 'external' || versionType === 'external_gte') {
      if (version === null) throw new EsError(400, 'action_request_validation_exception', 'Validation Failed: 1: an external version is required;');
      // ES: external versions are longs, 0 ..= 2^63 - 1.
      if (version < 0n || version > (1n << 63n) - 1n) {
        throw new EsError(400, 'action_request_validation_exception', `Validation Failed: 1: illegal version value [${version}] for version type [${versionType.toUpperCase()}];`);
      }
      // external: written only when strictly higher; external_gte: when higher or equal.
      const conflict = versionType === 'external' ? current !== null && current >= version : current !== null && current > version;
      if (conflict) {
        throw new EsError(409, 'version_conflict_engine_exception', versionType === 'external'
          ? `[${id}]: version conflict, current version [${current}] is higher or equal to the one provided [${version}]`
          : `[${id}]: version conflict, current version [${current}] is higher than the one provided [${version}]`, { index: this.name });
      }
      return version;
    }
    return (current ?? 0n) + 1n;
  }

  index(id: string, source: Source, versionType?: string, version: bigint | null = null, opType: 'index' | 'create' = 'index'): { result: string; version: bigint; seqNo: number } {
    if (opType === 'create' && this.docs.has(id)) {
      throw new EsError(409, 'version_conflict_engine_exception', `[${id}]: version conflict, document already exists (current version [${this.docs.get(id)!.version}])`, { index: this.name });
    }
    const newVersion = this.checkVersion(id, versionType, version);
    this.validate(source, this.mappings.properties!, '', id);
    const existed = this.docs.has(id);
    const stored: Source = { ...source };
    for (const excluded of this.mappings._source?.excludes ?? []) delete stored[excluded];
    this.docs.set(id, { source: stored, fields: source, version: newVersion, seqNo: ++this.seqNo });
    this.tombstones.delete(id);
    return { result: existed ? 'updated' : 'created', version: newVersion, seqNo: this.seqNo };
  }

  delete(id: string, versionType?: string, version: bigint | null = null): { result: string; version: bigint; seqNo: number } {
    const newVersion = this.checkVersion(id, versionType, version);
    const existed = this.docs.delete(id);
    this.tombstones.set(id, { version: newVersion, at: Date.now() });
    return { result: existed ? 'deleted' : 'not_found', version: newVersion, seqNo: ++this.seqNo };
  }

  /** _delete_by_query: deletes what the last refresh made searchable, skipping documents changed since (a conflict). */
  deleteByQuery(matches: (doc: StoredDoc) => boolean): { deleted: number; conflicts: number; total: number } {
    let deleted = 0;
    let conflicts = 0;
    let total = 0;
    for (const [id, seen] of this.searchable) {
      if (!matches(seen)) continue;
      total++;
      const live = this.docs.get(id);
      if (!live || live.seqNo !== seen.seqNo) {
        conflicts++;
        continue;
      }
      // Delete-by-query writes with internal versioning: the tombstone is the document's version + 1.
      this.delete(id);
      deleted++;
    }
    return { deleted, conflicts, total };
  }

  /** Checks a document against the mapping, adding dynamic fields as ES does. */
  private validate(source: Record<string, Json>, properties: Record<string, FieldMapping>, prefix: string, id: string): void {
    for (const [name, value] of Object.entries(source)) {
      const path = prefix + name;
      let field = properties[name];
      if (!field) {
        if (value === null) continue;
        const dynamic = String(this.mappings.dynamic ?? 'true');
        if (dynamic === 'strict') {
          throw new EsError(400, 'strict_dynamic_mapping_exception', `[1:1] mapping set to strict, dynamic introduction of [${name}] within [_doc] is not allowed`);
        }
        if (dynamic === 'false') continue;
        field = properties[name] = this.dynamicField(value);
      }
      for (const item of Array.isArray(value) ? value : [value]) this.checkValue(item, field, path, id);
    }
  }

  private dynamicField(value: Json): FieldMapping {
    const sample = Array.isArray(value) ? value.find((v) => v !== null) ?? null : value;
    if (sample !== null && typeof sample === 'object') return { properties: {} };
    if (typeof sample === 'boolean') return { type: 'boolean' };
    if (typeof sample === 'number') return { type: Number.isInteger(sample) ? 'long' : 'float' };
    if (typeof sample === 'string' && this.mappings.date_detection !== false && ISO_DATE.test(sample) && !Number.isNaN(Date.parse(sample))) return { type: 'date' };
    return { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } };
  }

  private checkValue(value: Json, field: FieldMapping, path: string, id: string): void {
    if (value === null) return;
    const type = field.type ?? 'object';
    const fail = () => {
      const preview = typeof value === 'object' ? JSON.stringify(value) : String(value);
      throw new EsError(400, 'mapper_parsing_exception',
        `[1:1] failed to parse field [${path}] of type [${type}] in document with id '${id}'. Preview of field's value: '${preview}'`,
        { caused_by: { type: 'illegal_argument_exception', reason: `failed to parse field [${path}] of type [${type}]` } });
    };
    if (type === 'object' || type === 'nested') {
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw new EsError(400, 'mapper_parsing_exception', `[1:1] object mapping for [${path}] tried to parse field [${path}] as object, but found a concrete value`);
      }
      field.properties ??= {};
      this.validate(value, field.properties, `${path}.`, id);
      return;
    }
    if (typeof value === 'object') {
      if (type === 'flattened') return;
      fail();
    }
    if (type in INTEGER_RANGES) {
      const text = String(value).trim();
      if (!/^-?\d+(\.\d+)?$/.test(text)) fail();
      const whole = BigInt(text.split('.')[0]);
      const [min, max] = INTEGER_RANGES[type];
      if (whole < min || whole > max) fail();
    } else if (['double', 'float', 'half_float', 'scaled_float'].includes(type)) {
      if (typeof value === 'boolean' || Number.isNaN(Number(value)) || String(value).trim() === '' || !Number.isFinite(Number(value))) fail();
    } else if (type === 'boolean') {
      if (!(value === true || value === false || value === 'true' || value === 'false' || value === '')) fail();
    } else if (type === 'date' || type === 'date_nanos') {
      const ok = typeof value === 'number' ? Number.isInteger(value) : ISO_DATE.test(value as string) && !Number.isNaN(Date.parse(value as string));
      if (!ok) fail();
    }
    // keyword, text, wildcard, ...: any scalar is indexed as its string form.
  }
}
