import { ChangeEvent, keyString, Row } from '../../core/event/change-event';
import { LogRecord } from '../../core/log/change-log';
import { holdsLargeString, jsonPieces } from '../../core/log/json-pieces';
import { Logger } from '../../core/runtime/logger';
import { newestPerRow } from '../shared/collapse';
import { inferColumns } from '../shared/column-types';
import { projectEvent } from '../shared/columns';
import { DeadLetterStore } from '../shared/dead-letters';
import { TableFilter, TableOptions } from '../shared/table-filter';
import { GenerationalSink } from '../../core/contracts/sink';
import { BulkAction, sendBulk } from './bulk';
import { ElasticsearchSinkConfig, EsTableOptions } from './config';
import { describeEsError, EsHttp } from './es-http';
import { externalVersion } from './external-version';
import { EsIndices, TableIndex } from './indices';
import { fieldMapping, VERSION_FIELD, VERSION_MAPPING } from './mapping';
import { noStoredRow, unfillableUnchanged } from '../shared/unchanged-columns';

export interface EsSinkStats {
  applied: number;
  stale: number;
  deadLetters: number;
}

/**
 * Index per table behind an alias (docs/architecture.md §4): `_id` = keyString() of the
 * primary key, `_source` = the row, written with `version_type: external_gte`
 * and the commit position (external-version.ts), so ES itself refuses stale
 * events.
 */
export class ElasticsearchSink implements GenerationalSink {
  readonly name: string;
  readonly stats: EsSinkStats = { applied: 0, stale: 0, deadLetters: 0 };
  private readonly filter: TableFilter;
  private readonly tableOptions: TableOptions<EsTableOptions>;
  private readonly http: EsHttp;
  private readonly indices: EsIndices;
  private requestedGeneration: number | null = null;
  private writing = 0;
  private live = false;

  constructor(private readonly config: ElasticsearchSinkConfig, private readonly logger: Logger, private readonly deadLetters: DeadLetterStore) {
    this.name = config.name;
    this.filter = new TableFilter(config.tables, config.exclude);
    this.tableOptions = new TableOptions(config.tableOptions);
    this.http = new EsHttp(config);
    const overrides = Object.values(config.tableOptions).flatMap((o) => (o.index ? [o.index.toLowerCase()] : []));
    this.indices = new EsIndices(this.http, config.indexPrefix, this.tableOptions, overrides, logger);
  }

  get generation(): number {
    return this.writing;
  }

  async open(): Promise<void> {
    const live = await this.indices.liveGeneration();
    this.writing = this.requestedGeneration ?? live;
    this.live = this.writing === live;
  }

  useGeneration(generation: number): void {
    this.requestedGeneration = generation;
  }

  liveGeneration(): Promise<number> {
    return this.indices.liveGeneration();
  }

  async promote(): Promise<void> {
    await this.indices.promote(this.writing);
    this.live = true;
  }

  async write(batch: readonly LogRecord[]): Promise<void> {
    const truncates: ChangeEvent[] = [];
    const changes: ChangeEvent[] = [];
    for (const { event } of batch) {
      const { schema, table } = event.source;
      if (!this.filter.includes(schema, table)) continue;
      if (event.op === 't') truncates.push(event);
      else changes.push(projectEvent(event, this.tableOptions.for(schema, table)));
    }
    // Truncates first: they act by version, so events of the batch older than one are refused either way.
    for (const truncate of truncates) await this.truncate(truncate);
    if (changes.length === 0) return;

    const rejected: { event: ChangeEvent; reason: string }[] = [];
    const actions: BulkAction[] = [];
    const byTable = groupByTable(newestPerRow(changes));
    for (const events of byTable.values()) {
      const target = await this.tableIndex(events);
      const writable: ChangeEvent[] = [];
      for (const event of events) {
        const problem = unfillableUnchanged(event);
        if (problem) rejected.push({ event, reason: problem });
        else writable.push(event);
      }
      const { events: completed, missing } = await this.keepUnchangedColumns(target, writable);
      rejected.push(...missing.map((event) => ({ event, reason: noStoredRow(event) })));
      for (const event of completed) {
        let version: bigint;
        try {
          version = externalVersion(event.source.version);
        } catch (error) {
          rejected.push({ event, reason: (error as Error).message });
          continue;
        }
        // Below the last truncate: refused. At its commit position but later in its transaction: kept.
        if (target.truncated !== null && event.source.version < target.truncated) continue;
        const id = keyString(event.key);
        const deleted = event.op === 'd' || event.after === null;
        const document = deleted ? undefined : documentJson(event.after!, event.source.version);
        actions.push({ event, index: target.index, id, version, document });
      }
    }
    const outcome = await sendBulk(this.http, actions, { maxActions: this.config.bulkActions, maxAttempts: this.config.maxAttempts, retryBaseMs: this.config.retryBaseMs, logger: this.logger, sink: this.name });
    rejected.push(...outcome.rejected);
    this.stats.applied += outcome.applied;
    this.stats.stale += outcome.stale;
    if (rejected.length > 0) {
      await this.deadLetters.add(rejected, batch);
      this.stats.deadLetters += rejected.length;
      this.logger.warn('documents refused by Elasticsearch went to the dead-letter file; the rest were applied', {
        sink: this.name, count: rejected.length, file: this.deadLetters.file, first: rejected[0].reason,
      });
    }
  }

  async flush(): Promise<void> {
    // write() returns once ES acknowledged every item (durable in its translog).
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** The index of the events' table, created on first use, with fields for columns it has not mapped yet. */
  private async tableIndex(events: ChangeEvent[]): Promise<TableIndex> {
    const { schema, table } = events[0].source;
    const options = this.tableOptions.for(schema, table);
    const keyColumns = new Set(Object.keys(events[0].key));
    const properties = (existing: ReadonlySet<string>) => {
      const out: Record<string, unknown> = {};
      // Only rows with a column not mapped yet can add a field: a batch of known columns infers nothing.
      for (const [column, type] of inferColumns(rowsWithColumnsOutside(events, existing))) {
        if (!existing.has(column)) out[column] = options.mappings?.[column] ?? fieldMapping(type, keyColumns.has(column));
      }
      for (const [column, mapping] of Object.entries(options.mappings ?? {})) if (!existing.has(column)) out[column] = mapping;
      return out;
    };
    const target = await this.indices.ensure(schema, table, this.writing, this.live, () => properties(new Set()));
    const missing = properties(target.fields);
    if (!target.fields.has(VERSION_FIELD)) missing[VERSION_FIELD] = VERSION_MAPPING; // an index made before this field existed
    if (Object.keys(missing).length > 0) await this.indices.addFields(target, missing);
    return target;
  }

  /**
   * Unchanged TOAST columns: copied from the stored document (a real-time
   * _mget), since ES's update API cannot take external versions. Returns the
   * events with those columns filled in (copies; the batch is not modified),
   * and apart those with no stored document to take them from.
   */
  private async keepUnchangedColumns(target: TableIndex, events: ChangeEvent[]): Promise<{ events: ChangeEvent[]; missing: ChangeEvent[] }> {
    const needing = events.filter((e) => e.op !== 'd' && e.after && e.unchanged?.length);
    if (needing.length === 0) return { events, missing: [] };
    const needingSet = new Set(needing);
    const reply = await this.http.request<{ docs?: { _id: string; found?: boolean; _source?: Row }[] }>(
      'POST', `/${encodeURIComponent(target.index)}/_mget`, { ids: needing.map((e) => keyString(e.key)) });
    if (reply.status !== 200) throw new Error(`reading stored documents of ${target.index} failed: ${describeEsError(reply.body)}`);
    const stored = new Map((reply.body.docs ?? []).filter((d) => d.found).map((d) => [d._id, d._source ?? {}]));
    let lost = 0;
    const missing: ChangeEvent[] = [];
    const completed: ChangeEvent[] = [];
    for (const event of events) {
      if (!needingSet.has(event)) {
        completed.push(event);
        continue;
      }
      const previous = stored.get(keyString(event.key));
      if (!previous) {
        missing.push(event);
        continue;
      }
      const after: Row = { ...event.after };
      for (const column of event.unchanged!) {
        if (column in previous) after[column] = previous[column];
        else lost++;
      }
      completed.push({ ...event, after });
    }
    if (lost > 0) this.logger.warn('documents updated without some unchanged (TOAST) columns: the stored document had none; a resync of the table restores them', { sink: this.name, index: target.index, columns: lost });
    return { events: completed, missing };
  }

  /**
   * Deletes the table's documents older than the truncate, by full source
   * version (commit position, then index within the transaction), so a row
   * written later in the truncate's own transaction stays.
   */
  private async truncate(event: ChangeEvent): Promise<void> {
    const target = await this.indices.ensure(event.source.schema, event.source.table, this.writing, this.live, () => ({}));
    if (!target.fields.has(VERSION_FIELD)) await this.indices.addFields(target, { [VERSION_FIELD]: VERSION_MAPPING });
    const { version } = event.source;
    await this.indices.recordTruncate(target, version);
    // Every copy of the truncate (one per log partition) deletes again: rows of
    // other partitions written before that partition reached its copy go too.
    const path = `/${encodeURIComponent(target.index)}`;
    await this.http.request('POST', `${path}/_refresh`);
    const reply = await this.http.request<{ deleted?: number }>('POST', `${path}/_delete_by_query`,
      { query: { range: { [VERSION_FIELD]: { lt: version } } } }, { conflicts: 'proceed', refresh: 'true' });
    if (reply.status !== 200) throw new Error(`truncating ${target.index} (delete by query below version ${version}) failed: ${describeEsError(reply.body)}`);
    this.logger.info('truncated table in elasticsearch', { sink: this.name, index: target.index, removed: reply.body.deleted ?? 0 });
  }
}

function groupByTable(events: ChangeEvent[]): Map<string, ChangeEvent[]> {
  const out = new Map<string, ChangeEvent[]>();
  for (const event of events) {
    const name = `${event.source.schema}.${event.source.table}`;
    const list = out.get(name);
    if (list) list.push(event);
    else out.set(name, [event]);
  }
  return out;
}

/** The row images holding a column not in `fields`. */
function rowsWithColumnsOutside(events: ChangeEvent[], fields: ReadonlySet<string>): Row[] {
  const rows: Row[] = [];
  for (const { after } of events) {
    if (!after) continue;
    for (const column in after) {
      if (!fields.has(column)) {
        rows.push(after);
        break;
      }
    }
  }
  return rows;
}

const VERSION_MEMBER = `${JSON.stringify(VERSION_FIELD)}:`;

/**
 * The document's JSON: the row with its source version appended (as `{ ...row, [VERSION_FIELD]: version }`,
 * without copying the row). A row holding a value of LARGE_STRING_CHARS or more comes as pieces, the value
 * one of them (jsonPieces()): JSON.stringify would copy it, and the appended text copy the whole JSON again.
 */
function documentJson(row: Row, version: string): string | string[] {
  if (holdsLargeString(row)) return jsonPieces({ ...row, [VERSION_FIELD]: version }).pieces;
  if (Object.prototype.hasOwnProperty.call(row, VERSION_FIELD)) return JSON.stringify({ ...row, [VERSION_FIELD]: version });
  const json = JSON.stringify(row);
  const member = VERSION_MEMBER + JSON.stringify(version);
  return json.length === 2 ? `{${member}}` : `${json.slice(0, -1)},${member}}`;
}
