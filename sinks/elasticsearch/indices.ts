import { Logger } from '../../core/runtime/logger';
import { TableOptions } from '../shared/table-filter';
import { EsTableOptions } from './config';
import { describeEsError, EsHttp } from './es-http';
import { indexBody } from './mapping';

/** A table's index in one generation, with what the sink knows of it. */
export interface TableIndex {
  alias: string;
  index: string;
  /** Top-level fields already mapped. */
  fields: Set<string>;
  /** Source version of the table's last truncate (events below it are refused). */
  truncated: string | null;
}

type AliasListing = Record<string, { aliases?: Record<string, unknown> }>;
const GENERATION_SUFFIX = /^(.*)-g(\d+)$/;

/**
 * Index per table and generation, `<alias>-g<generation>`, behind the alias
 * readers use (docs/architecture.md §4). Only the live generation's indices carry the alias;
 * promote() moves every alias to the new generation in one _aliases call.
 */
export class EsIndices {
  private readonly ensured = new Map<string, Promise<TableIndex>>();

  constructor(
    private readonly http: EsHttp,
    private readonly indexPrefix: string,
    private readonly tableOptions: TableOptions<EsTableOptions>,
    private readonly overrideNames: string[],
    private readonly logger: Logger,
  ) {}

  aliasName(schema: string, table: string): string {
    return (this.tableOptions.for(schema, table).index ?? `${this.indexPrefix}${schema}.${table}`).toLowerCase();
  }

  static indexName(alias: string, generation: number): string {
    return `${alias}-g${generation}`;
  }

  /** The generation the sink's aliases point at: the highest one found, 1 on a fresh cluster. */
  async liveGeneration(): Promise<number> {
    let live = 0;
    for (const { generation, aliases } of await this.ourIndices()) if (aliases.length > 0) live = Math.max(live, generation);
    return live || 1;
  }

  /** Creates the table's index for `generation` once (with the alias when that generation is live). */
  ensure(schema: string, table: string, generation: number, live: boolean, properties: () => Record<string, unknown>): Promise<TableIndex> {
    const alias = this.aliasName(schema, table);
    const index = EsIndices.indexName(alias, generation);
    let ensured = this.ensured.get(index);
    if (!ensured) {
      ensured = this.create(alias, index, live, properties());
      ensured.catch(() => this.ensured.delete(index));
      this.ensured.set(index, ensured);
    }
    return ensured;
  }

  private async create(alias: string, index: string, live: boolean, properties: Record<string, unknown>): Promise<TableIndex> {
    const aliasExists = live && (await this.http.request('HEAD', `/${encodeURIComponent(alias)}`)).status === 200;
    const created = await this.http.request('PUT', `/${encodeURIComponent(index)}`, indexBody(properties, live && !aliasExists ? alias : null));
    if (created.status === 200) {
      this.logger.info('created elasticsearch index', { index, alias: live ? alias : '(not live yet)' });
      return { alias, index, fields: new Set(Object.keys(properties)), truncated: null };
    }
    if (!JSON.stringify(created.body).includes('resource_already_exists_exception')) {
      throw new Error(`creating index ${index} for alias ${alias} failed: ${describeEsError(created.body)}`);
    }
    const mapping = await this.http.request<Record<string, { mappings: { properties?: object; _meta?: { cdc?: { truncatedVersion?: string } } } }>>('GET', `/${encodeURIComponent(index)}/_mapping`);
    const mappings = mapping.body[index]?.mappings ?? {};
    const truncated = mappings._meta?.cdc?.truncatedVersion ?? null;
    return { alias, index, fields: new Set(Object.keys(mappings.properties ?? {})), truncated };
  }

  async addFields(target: TableIndex, properties: Record<string, unknown>): Promise<void> {
    const reply = await this.http.request('PUT', `/${encodeURIComponent(target.index)}/_mapping`, { properties });
    if (reply.status !== 200) throw new Error(`adding fields ${Object.keys(properties).join(', ')} to index ${target.index} failed: ${describeEsError(reply.body)}`);
    for (const field of Object.keys(properties)) target.fields.add(field);
  }

  /** Records the truncate's version in the index's _meta, so a restarted sink still refuses older events. */
  async recordTruncate(target: TableIndex, version: string): Promise<void> {
    if (target.truncated !== null && target.truncated >= version) return;
    const reply = await this.http.request('PUT', `/${encodeURIComponent(target.index)}/_mapping`, { _meta: { cdc: { truncatedVersion: version } } });
    if (reply.status !== 200) throw new Error(`recording a truncate on index ${target.index} failed: ${describeEsError(reply.body)}`);
    target.truncated = version;
  }

  /** Points every alias of the sink at `generation`'s index and drops the older indices, atomically. */
  async promote(generation: number): Promise<void> {
    const indices = await this.ourIndices();
    const actions: Record<string, unknown>[] = [];
    const newIndices = new Set(indices.filter((i) => i.generation === generation).map((i) => i.index));
    const aliasesDone = new Set<string>();
    for (const { index, alias, generation: g, aliases } of indices) {
      if (g === generation) continue;
      const target = EsIndices.indexName(alias, generation);
      if (!newIndices.has(target)) {
        // The new generation saw no rows of this table: readers get an empty index, not a missing one.
        await this.http.request('PUT', `/${encodeURIComponent(target)}`, indexBody({}, null));
        newIndices.add(target);
      }
      for (const name of aliases) actions.push({ remove: { index, alias: name } });
      actions.push({ remove_index: { index } });
    }
    for (const index of newIndices) {
      const alias = GENERATION_SUFFIX.exec(index)![1];
      const current = indices.find((i) => i.index === index);
      if (!current?.aliases.includes(alias) && !aliasesDone.has(alias)) actions.push({ add: { index, alias } });
      aliasesDone.add(alias);
    }
    if (actions.length === 0) return;
    const reply = await this.http.request('POST', '/_aliases', { actions });
    if (reply.status !== 200) throw new Error(`switching aliases to generation ${generation} failed (nothing changed): ${describeEsError(reply.body)}`);
    this.ensured.clear();
    this.logger.info('elasticsearch generation promoted', { generation, indices: newIndices.size, dropped: indices.length - newIndices.size });
  }

  /** Indices named `<alias>-g<n>` whose alias belongs to this sink (by prefix or a per-table index name). */
  private async ourIndices(): Promise<{ index: string; alias: string; generation: number; aliases: string[] }[]> {
    const reply = await this.http.request<AliasListing>('GET', '/_alias');
    if (reply.status !== 200) throw new Error(`listing aliases failed: ${describeEsError(reply.body)}`);
    const out = [];
    for (const [index, { aliases = {} }] of Object.entries(reply.body)) {
      const match = GENERATION_SUFFIX.exec(index);
      if (!match) continue;
      const alias = match[1];
      if (!alias.startsWith(this.indexPrefix.toLowerCase()) && !this.overrideNames.includes(alias)) continue;
      out.push({ index, alias, generation: Number(match[2]), aliases: Object.keys(aliases).filter((a) => a === alias) });
    }
    return out;
  }
}
