import { Logger } from '../../core/runtime/logger';
import { SinkReader } from '../../core/verify/sink-reader';
import { TableOptions } from '../shared/table-filter';
import { ElasticsearchSinkConfig } from './config';
import { describeEsError, EsHttp } from './es-http';
import { EsIndices } from './indices';
import { VERSION_FIELD } from './mapping';

type Doc = { _id: string; found?: boolean; _version?: number | string; _source?: Record<string, unknown> };

/** Bookkeeping fields a document may carry (excluded from _source by the mapping; stripped in case an older index kept them). */
const BOOKKEEPING = [VERSION_FIELD, '_cdc_version'];
const SCROLL = '2m';

/**
 * Reads a table's documents through its alias (the live generation), the way
 * readers do, for `cdc verify`: real-time _mget by `_id` (= keyString of the
 * key), a scroll over the ids, and version-guarded deletes for --repair.
 */
export class EsSinkReader implements SinkReader {
  private readonly http: EsHttp;
  private readonly indices: EsIndices;

  constructor(config: ElasticsearchSinkConfig, private readonly logger: Logger) {
    this.http = new EsHttp(config);
    const overrides = Object.values(config.tableOptions).flatMap((o) => (o.index ? [o.index.toLowerCase()] : []));
    this.indices = new EsIndices(this.http, config.indexPrefix, new TableOptions(config.tableOptions), overrides, logger);
  }

  async rows(schema: string, table: string, _keyColumns: readonly string[], keys: readonly string[]): Promise<Array<Record<string, unknown> | null>> {
    const docs = await this.mget(schema, table, keys);
    return docs.map((doc) => {
      if (!doc?.found) return null;
      const source = { ...(doc._source ?? {}) };
      for (const field of BOOKKEEPING) delete source[field];
      return source;
    });
  }

  /** The document's external version (the commit position it was written with). */
  async versions(schema: string, table: string, _keyColumns: readonly string[], keys: readonly string[]): Promise<Array<string | null>> {
    return (await this.mget(schema, table, keys)).map((doc) => (doc?.found && doc._version !== undefined ? String(doc._version) : null));
  }

  async scanKeys(schema: string, table: string, _keyColumns: readonly string[], visit: (keys: string[]) => Promise<void>): Promise<void> {
    const alias = this.indices.aliasName(schema, table);
    const path = `/${encodeURIComponent(alias)}`;
    if ((await this.http.request('POST', `${path}/_refresh`)).status === 404) return; // no index: the sink holds nothing
    let reply = await this.http.request<ScrollPage>('POST', `${path}/_search`, { size: 1000, _source: false, sort: ['_doc'] }, { scroll: SCROLL });
    let scrollId: string | undefined;
    try {
      for (;;) {
        if (reply.status !== 200) throw new Error(`listing the documents of ${alias} failed: ${describeEsError(reply.body)}`);
        scrollId = reply.body._scroll_id;
        const hits = reply.body.hits?.hits ?? [];
        if (hits.length === 0) break;
        await visit(hits.map((h) => h._id));
        reply = await this.http.request<ScrollPage>('POST', '/_search/scroll', { scroll: SCROLL, scroll_id: scrollId });
      }
    } finally {
      if (scrollId) await this.http.request('DELETE', '/_search/scroll', { scroll_id: scrollId }).catch(() => undefined);
    }
  }

  /**
   * Deletes with `version_type: external_gte` at the version read before the
   * source was checked: ES refuses it (409) when a newer change of the row was
   * applied meanwhile, and a newer change arriving later beats the delete's
   * tombstone, as any newer version does.
   */
  async deleteKeys(schema: string, table: string, _keyColumns: readonly string[], rows: ReadonlyArray<{ key: string; version: string }>): Promise<number> {
    if (rows.length === 0) return 0;
    const alias = this.indices.aliasName(schema, table);
    // _version arrives as a JSON number: above 2^53 (MariaDB binlog files from 8192, Postgres WAL beyond 8 PiB) it is
    // not exact, and a delete guarded by a rounded version could remove a newer write. Those are left for a reprocess.
    const unsafe = rows.filter(({ version }) => !Number.isSafeInteger(Number(version)));
    if (unsafe.length > 0) {
      this.logger.warn('extra documents left in place: their version is beyond 2^53 and cannot guard the delete exactly; cdc reprocess the sink to drop them', { index: alias, keys: unsafe.slice(0, 5).map((r) => r.key).join(', ') });
      rows = rows.filter((row) => !unsafe.includes(row));
      if (rows.length === 0) return 0;
    }
    const body = rows.map(({ key, version }) => JSON.stringify({ delete: { _index: alias, _id: key, version: Number(version), version_type: 'external_gte' } })).join('\n') + '\n';
    const reply = await this.http.request<{ items?: Array<{ delete?: { status: number; result?: string; error?: unknown } }> }>('POST', '/_bulk', body, { refresh: 'true' });
    if (reply.status !== 200) throw new Error(`deleting ${rows.length} document(s) of ${alias} failed: ${describeEsError(reply.body)}`);
    let removed = 0;
    for (const [i, item] of (reply.body.items ?? []).entries()) {
      const outcome = item.delete;
      if (outcome?.result === 'deleted') removed++;
      else if (outcome && outcome.status !== 409 && outcome.status !== 404) throw new Error(`deleting document ${rows[i].key} of ${alias} failed: ${describeEsError(outcome)}`);
    }
    return removed;
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  private async mget(schema: string, table: string, keys: readonly string[]): Promise<Array<Doc | null>> {
    if (keys.length === 0) return [];
    const alias = this.indices.aliasName(schema, table);
    const reply = await this.http.request<{ docs?: Doc[] }>('POST', `/${encodeURIComponent(alias)}/_mget`, { ids: keys });
    if (reply.status === 404) return keys.map(() => null); // the table's index does not exist yet
    if (reply.status !== 200) throw new Error(`reading documents of ${alias} failed: ${describeEsError(reply.body)}`);
    const byId = new Map((reply.body.docs ?? []).map((d) => [d._id, d]));
    return keys.map((k) => byId.get(k) ?? null);
  }
}

interface ScrollPage {
  _scroll_id?: string;
  hits?: { hits?: Array<{ _id: string }> };
}
