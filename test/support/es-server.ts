// A small HTTP server speaking the subset of the Elasticsearch REST API the
// sink uses, with ES's documented semantics (docs/architecture.md §7): _bulk with external
// versions and per-item 409s, index creation with mappings, atomic _aliases,
// refresh, GET/_mget/_search (and scroll)/_count/_delete_by_query enough for tests, and
// switches that inject 429 rejections. Tests run against it unless ES_URL is set.
import * as http from 'node:http';
import { filterPath } from './es-filter-path';
import { AddressInfo } from 'node:net';
import { trackServer, untrackServer } from './proc';
import { EsAliases } from './es-aliases';
import { EsError, EsIndex, Mappings, Source, StoredDoc } from './es-index';
import { matches, Query } from './es-query';

export interface EsServer {
  url: string;
  /** The next `count` _bulk requests are rejected whole with 429 (es_rejected_execution_exception). */
  rejectBulkRequests(count: number): void;
  /** The next `count` bulk items (across requests) fail with 429 inside an otherwise successful response. */
  rejectBulkItems(count: number): void;
  /** While set, every HTTP request is answered with this status (503 unavailable, 429 rejected) until called with null. */
  answerEveryRequestWith(status: 503 | 429 | null): void;
  /** Every document behind an index or alias, realtime (as GET sees it, no refresh needed): _id → _source. For fault-test comparisons. */
  documents(name: string): Map<string, Source>;
  /** Deletes every index named `prefix…` (and its aliases); returns how many. */
  dropIndices(prefix: string): number;
  readonly stats: { bulkRequests: number; rejectedRequests: number; rejectedItems: number };
  stop(): Promise<void>;
}

export interface EsServerOptions {
  /** index.gc_deletes: how long a delete's version is remembered (ES default 60 s). */
  gcDeletesMs?: number;
}

type Reply = { status: number; body?: unknown };

class EsSemanticsServer implements EsServer {
  readonly stats = { bulkRequests: 0, rejectedRequests: 0, rejectedItems: 0 };
  private readonly indices = new Map<string, EsIndex>();
  private readonly aliases = new EsAliases(this.indices);
  private readonly scrolls = new Map<string, { hits: { index: string; id: string; doc: StoredDoc }[]; size: number }>();
  private scrollCount = 0;
  private rejectRequests = 0;
  private rejectItems = 0;
  outageStatus: 503 | 429 | null = null;

  constructor(private readonly server: http.Server, private readonly options: EsServerOptions) {}

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  rejectBulkRequests(count: number): void {
    this.rejectRequests += count;
  }

  rejectBulkItems(count: number): void {
    this.rejectItems += count;
  }

  answerEveryRequestWith(status: 503 | 429 | null): void {
    this.outageStatus = status;
  }

  documents(name: string): Map<string, Source> {
    const out = new Map<string, Source>();
    for (const indexName of this.aliases.resolve(name, false)) {
      for (const [id, doc] of this.indices.get(indexName)!.docs) out.set(id, doc.source);
    }
    return out;
  }

  async stop(): Promise<void> {
    untrackServer(this);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  handle(method: string, path: string, query: URLSearchParams, text: string): Reply {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const body = () => (text ? JSON.parse(text) : {});
    const [first, second, third] = parts;
    if (parts.length === 0) return { status: 200, body: { name: 'tidewater-es', cluster_name: 'test', version: { number: '9.0.0' }, tagline: 'You Know, for Search' } };
    if (first === '_bulk') return this.bulk(undefined, text, query);
    if (first === '_aliases' && method === 'POST') return this.aliases.update(body().actions ?? []);
    if (first === '_alias') return this.aliases.list(second);
    if (first === '_refresh') return this.refresh([...this.indices.keys()]);
    if (first === '_search' && second === 'scroll') return this.scroll(method, body());
    if (parts.length === 1) {
      if (method === 'PUT') return this.createIndex(first, body());
      if (method === 'DELETE') return this.deleteIndex(first);
      if (method === 'HEAD' || method === 'GET') return { status: this.aliases.resolve(first, false).length ? 200 : 404 };
    }
    switch (second) {
      case '_bulk': return this.bulk(first, text, query);
      case '_refresh': return this.refresh(this.aliases.resolve(first));
      case '_mapping': return method === 'PUT' ? this.putMapping(first, body()) : this.getMapping(first);
      case '_alias': return this.aliases.list(undefined, first);
      case '_doc': return this.getDoc(first, third);
      case '_mget': return { status: 200, body: { docs: (body().ids as string[]).map((id) => this.getDoc(first, id).body) } };
      case '_search': return query.has('scroll') ? this.startScroll(first, text ? body() : {}) : this.search(first, text ? body() : {});
      case '_count': return { status: 200, body: { count: this.matching(first, text ? body().query : undefined).length } };
      case '_delete_by_query': return this.deleteByQuery(first, body().query, query);
    }
    throw new EsError(400, 'illegal_argument_exception', `no handler found for uri [${path}] and method [${method}]`);
  }

  private createIndex(name: string, body: { mappings?: Mappings; aliases?: Record<string, object> }): Reply {
    if (name !== name.toLowerCase() || /[\\/*?"<>| ,#:]/.test(name) || /^[-_+]/.test(name) || name === '.' || name === '..') {
      throw new EsError(400, 'invalid_index_name_exception', `Invalid index name [${name}], must be lowercase and must not contain \\, /, *, ?, ", <, >, |, space, comma, #, :`, { index: name });
    }
    if (this.indices.has(name)) throw new EsError(400, 'resource_already_exists_exception', `index [${name}/x] already exists`, { index: name });
    if (this.aliases.isAlias(name)) throw new EsError(400, 'invalid_index_name_exception', `Invalid index name [${name}], already exists as alias`, { index: name });
    this.indices.set(name, new EsIndex(name, structuredClone(body.mappings ?? {}), this.options.gcDeletesMs ?? 60_000));
    const actions = Object.keys(body.aliases ?? {}).map((alias) => ({ add: { index: name, alias } }));
    if (actions.length) this.aliases.update(actions);
    return { status: 200, body: { acknowledged: true, shards_acknowledged: true, index: name } };
  }

  /** A long run of tests frees what a finished one stored. */
  dropIndices(prefix: string): number {
    const names = [...this.indices.keys()].filter((name) => name.startsWith(prefix));
    for (const name of names) this.deleteIndex(name);
    return names.length;
  }

  private deleteIndex(name: string): Reply {
    if (!this.indices.has(name)) throw new EsError(404, 'index_not_found_exception', `no such index [${name}]`, { index: name });
    this.indices.delete(name);
    this.aliases.forgetIndex(name);
    return { status: 200, body: { acknowledged: true } };
  }

  private getMapping(name: string): Reply {
    const out: Record<string, unknown> = {};
    for (const index of this.aliases.resolve(name)) out[index] = { mappings: this.indices.get(index)!.mappings };
    return { status: 200, body: out };
  }

  private putMapping(name: string, body: Mappings): Reply {
    for (const indexName of this.aliases.resolve(name)) {
      const mappings = this.indices.get(indexName)!.mappings;
      for (const [field, mapping] of Object.entries(body.properties ?? {})) {
        const existing = mappings.properties![field];
        if (existing && existing.type !== mapping.type) {
          throw new EsError(400, 'illegal_argument_exception', `mapper [${field}] cannot be changed from type [${existing.type}] to [${mapping.type}]`);
        }
        mappings.properties![field] = mapping;
      }
      if (body._meta) mappings._meta = body._meta;
    }
    return { status: 200, body: { acknowledged: true } };
  }

  private refresh(names: string[]): Reply {
    for (const name of names) this.indices.get(name)?.refresh();
    return { status: 200, body: { _shards: { total: names.length, successful: names.length, failed: 0 } } };
  }

  private getDoc(name: string, id: string): Reply {
    const [indexName] = this.aliases.resolve(name);
    const doc = this.indices.get(indexName)!.get(id);
    if (!doc) return { status: 404, body: { _index: indexName, _id: id, found: false } };
    return { status: 200, body: { _index: indexName, _id: id, _version: Number(doc.version), _seq_no: doc.seqNo, _primary_term: 1, found: true, _source: doc.source } };
  }

  private matching(name: string, query: Query | undefined): { index: string; id: string; doc: StoredDoc }[] {
    const hits: { index: string; id: string; doc: StoredDoc }[] = [];
    for (const index of this.aliases.resolve(name)) {
      for (const [id, doc] of this.indices.get(index)!.searchView()) if (matches(query, id, doc.fields)) hits.push({ index, id, doc });
    }
    return hits;
  }

  private search(name: string, body: { query?: Query; size?: number; from?: number; version?: boolean }): Reply {
    const all = this.matching(name, body.query);
    const from = body.from ?? 0;
    const size = body.size ?? 10;
    if (from + size > 10_000) throw new EsError(400, 'illegal_argument_exception', 'Result window is too large, from + size must be less than or equal to: [10000]');
    const hits = all.slice(from, from + size).map(({ index, id, doc }) => ({
      _index: index, _id: id, _score: 1, _source: doc.source, ...(body.version ? { _version: Number(doc.version) } : {}),
    }));
    return { status: 200, body: { took: 0, timed_out: false, hits: { total: { value: all.length, relation: 'eq' }, max_score: 1, hits } } };
  }

  /** A scroll: the matching ids fixed at its start, handed out a page at a time (ES: a point-in-time view of the refreshed index). */
  private startScroll(name: string, body: { query?: Query; size?: number }): Reply {
    const id = `scroll-${++this.scrollCount}`;
    this.scrolls.set(id, { hits: this.matching(name, body.query), size: body.size ?? 10 });
    return this.scroll('POST', { scroll_id: id });
  }

  private scroll(method: string, body: { scroll_id?: string }): Reply {
    const id = String(body.scroll_id);
    const scroll = this.scrolls.get(id);
    if (method === 'DELETE') return { status: 200, body: { succeeded: this.scrolls.delete(id), num_freed: scroll ? 1 : 0 } };
    if (!scroll) throw new EsError(404, 'search_context_missing_exception', `No search context found for id [${id}]`);
    const page = scroll.hits.splice(0, scroll.size).map(({ index, id: docId, doc }) => ({ _index: index, _id: docId, _score: null, _source: doc.source }));
    return { status: 200, body: { _scroll_id: id, took: 0, timed_out: false, hits: { total: { value: page.length, relation: 'eq' }, hits: page } } };
  }

  private deleteByQuery(name: string, query: Query, params: URLSearchParams): Reply {
    let deleted = 0, conflicts = 0, total = 0;
    for (const indexName of this.aliases.resolve(name)) {
      const index = this.indices.get(indexName)!;
      const result = index.deleteByQuery((doc) => matches(query, '', doc.fields));
      deleted += result.deleted;
      conflicts += result.conflicts;
      total += result.total;
      if (params.get('refresh') === 'true') index.refresh();
    }
    if (conflicts > 0 && params.get('conflicts') !== 'proceed') {
      throw new EsError(409, 'version_conflict_engine_exception', `${conflicts} documents changed while deleting by query`);
    }
    return { status: 200, body: { took: 0, timed_out: false, total, deleted, version_conflicts: conflicts, failures: [] } };
  }

  private bulk(defaultIndex: string | undefined, text: string, params: URLSearchParams): Reply {
    this.stats.bulkRequests++;
    if (this.rejectRequests > 0) {
      this.rejectRequests--;
      this.stats.rejectedRequests++;
      throw new EsError(429, 'es_rejected_execution_exception', 'rejected execution of coordinating operation [shard_detail=[], coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=0, max_coordinating_and_primary_bytes=0]');
    }
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const items: Record<string, unknown>[] = [];
    const touched = new Set<string>();
    for (let i = 0; i < lines.length; i++) {
      const action = JSON.parse(lines[i]) as Record<string, { _index?: string; _id?: string; version_type?: string }>;
      const [op] = Object.keys(action);
      const meta = action[op];
      // Versions go up to 2^63: read them as BigInt from the raw line, not through a JS number.
      const versionText = /"version"\s*:\s*"?(\d+)/.exec(lines[i])?.[1];
      const source = op === 'delete' ? null : (JSON.parse(lines[++i]) as Source);
      items.push({ [op]: this.bulkItem(op, meta._index ?? defaultIndex, meta._id, meta.version_type, versionText ? BigInt(versionText) : null, source, touched) });
    }
    if (params.get('refresh') === 'true' || params.get('refresh') === 'wait_for') this.refresh([...touched]);
    return { status: 200, body: { took: 1, errors: items.some((item) => (Object.values(item)[0] as { error?: unknown }).error), items } };
  }

  private bulkItem(op: string, target: string | undefined, id: string | undefined, versionType: string | undefined, version: bigint | null, source: Source | null, touched: Set<string>): Record<string, unknown> {
    const base = { _index: target, _id: id };
    try {
      if (!target) throw new EsError(400, 'action_request_validation_exception', 'Validation Failed: 1: index is missing;');
      if (this.rejectItems > 0) {
        this.rejectItems--;
        this.stats.rejectedItems++;
        throw new EsError(429, 'es_rejected_execution_exception', 'rejected execution of primary operation');
      }
      const indexName = this.aliases.writeIndex(target);
      if (!this.indices.has(indexName)) this.createIndex(indexName, {}); // action.auto_create_index
      const index = this.indices.get(indexName)!;
      touched.add(indexName);
      const docId = id ?? `auto-${Math.random().toString(36).slice(2)}`;
      const result = op === 'delete'
        ? index.delete(docId, versionType, version)
        : index.index(docId, source!, versionType, version, op === 'create' ? 'create' : 'index');
      const status = result.result === 'created' ? 201 : result.result === 'not_found' ? 404 : 200;
      return { _index: indexName, _id: docId, _version: Number(result.version), result: result.result, _seq_no: result.seqNo, _primary_term: 1, status };
    } catch (error) {
      if (!(error instanceof EsError)) throw error;
      return { ...base, status: error.status, error: { type: error.type, reason: error.message, ...error.extra } };
    }
  }
}

export async function startEsServer(options: EsServerOptions = {}): Promise<EsServer> {
  let instance: EsSemanticsServer | null = null;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      let reply: Reply;
      try {
        const outage = instance!.outageStatus;
        if (outage === 503) throw new EsError(503, 'cluster_block_exception', 'blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];');
        if (outage === 429) throw new EsError(429, 'es_rejected_execution_exception', 'rejected execution of coordinating operation');
        reply = instance!.handle(req.method ?? 'GET', url.pathname, url.searchParams, Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        const esError = error instanceof EsError ? error : new EsError(400, 'parse_exception', (error as Error).message);
        reply = { status: esError.status, body: esError.body() };
      }
      const payload = reply.body === undefined || req.method === 'HEAD' ? '' : JSON.stringify(filterPath(reply.body, url.searchParams.get('filter_path')));
      res.writeHead(reply.status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch', 'content-length': Buffer.byteLength(payload) });
      res.end(payload);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  instance = new EsSemanticsServer(server, options);
  trackServer(instance);
  return instance;
}
