import Redis from 'ioredis';
import { describeTlsFailure } from '../../core/net/tls';
import { redisTlsOptions, redisTlsPeer } from './tls';
import { ChangeEvent, keyString, Row } from '../../core/event/change-event';
import { roughEventBytes } from '../../core/event/rough-size';
import { holdsLargeString, jsonBytes } from '../../core/log/json-pieces';
import { LogRecord } from '../../core/log/change-log';
import { Backoff, sleep } from '../../core/runtime/backoff';
import { Logger } from '../../core/runtime/logger';
import { projectEvent } from '../shared/columns';
import { TableFilter, TableOptions } from '../shared/table-filter';
import { DeadLetterStore } from '../shared/dead-letters';
import { noStoredRow, unfillableUnchanged } from '../shared/unchanged-columns';
import { normalizeStamp, rowStamp } from '../shared/version';
import { GenerationalSink } from '../../core/contracts/sink';
import { RedisSinkConfig, RedisTableOptions } from './config';
import { keyRenderer } from './key-template';
import { Reply, SharedPipeline } from './shared-pipeline';
import { APPLY_CHANGES, DELETE_IF_OLDER, DELETE_IF_OLDER_GENERATION, RECORD_TRUNCATE, TRUNCATED_FIELD } from './scripts';

interface ScriptCommands {
  /** APPLY_CHANGES: the key count, then the keys, then the arguments. */
  cdcApplyChanges(keyCount: number, ...keysThenArgs: (string | Buffer)[]): Promise<number[]>;
  cdcRecordTruncate(versionKey: string, stamp: string): Promise<number>;
  cdcDeleteIfOlder(rowKey: string, versionKey: string, field: string, stamp: string): Promise<number>;
  cdcDeleteIfOlderGeneration(rowKey: string, versionKey: string, field: string, generation: string): Promise<number>;
}
type Client = Redis & ScriptCommands;
type Pipeline = ReturnType<Redis['pipeline']> & ScriptCommands;

/** Changes per APPLY_CHANGES call: few calls per batch, yet a short hold on Redis (which runs a script alone). */
const CHANGES_PER_CALL = 100;

/**
 * Argument characters of one pipeline at most, a lone bigger change excepted: ioredis encodes a
 * pipeline's commands whole before writing them, so a batch holding three 5 MB values is sent as
 * three pipelines instead of one of 15 MB.
 */
const PIPELINE_MAX_CHARS = 8 * 1024 * 1024;

/** Changes gathered for the next APPLY_CHANGES call. */
class ApplyCall {
  readonly keys: string[] = [];
  readonly args: (string | Buffer)[] = [];
  readonly events: ChangeEvent[] = [];
  /** Characters (bytes for a Buffer) of the arguments. */
  chars = 0;

  add(event: ChangeEvent, rowKey: string, versionKey: string, args: (string | Buffer)[]): void {
    this.keys.push(rowKey, versionKey);
    for (const arg of args) {
      this.args.push(arg);
      this.chars += arg.length;
    }
    this.events.push(event);
  }

  queueOn(pipeline: Pipeline): void {
    pipeline.cdcApplyChanges(this.keys.length, ...this.keys, ...this.args);
  }
}

interface TableRoute {
  options: RedisTableOptions;
  rowKey(key: string): string;
  versionKey: string;
  /** TTL argument of the apply script: milliseconds, '0' for none. */
  ttlMs: string;
}

/** Outcome counts since open(), for logs, tests and benchmarks. */
export interface RedisSinkStats {
  applied: number;
  skipped: number;
  /** Applied, but unchanged-TOAST columns could not be kept (no stored row to take them from). */
  unchangedLost: number;
  /** Sent to the dead-letter file (a new row whose TOAST columns the source did not send). */
  deadLetters: number;
}

/**
 * Keeps each row as a JSON document under `<keyPrefix><keyTemplate>` (default
 * `<schema>.<table>:<pk>`, docs/architecture.md §4); a deleted row's key is absent. Every
 * write is guarded by the event's version, stamped with the generation, kept
 * per table in the hash `<keyPrefix>__cdc_versions:<schema>.<table>`.
 * A reprocess writes the same keys in place: the source version is compared
 * first, the generation second (sinks/shared/version.ts), so a replayed older
 * record never overwrites a newer live row, a replayed truncate removes only
 * rows older than itself, and live updates keep landing; promote() then sweeps
 * the keys the new generation did not write (docs/architecture.md §3).
 */
export class RedisSink implements GenerationalSink {
  readonly name: string;
  readonly stats: RedisSinkStats = { applied: 0, skipped: 0, unchangedLost: 0, deadLetters: 0 };
  private readonly filter: TableFilter;
  private readonly tableOptions: TableOptions<RedisTableOptions>;
  private readonly knownTables = new Set<string>();
  private readonly routes = new Map<string, TableRoute>();
  private redis: Client | null = null;
  private pipelines: SharedPipeline<Pipeline> | null = null;
  private requestedGeneration: number | null = null;
  private writing = 0;

  constructor(private readonly config: RedisSinkConfig, private readonly logger: Logger, private readonly deadLetters?: DeadLetterStore) {
    this.name = config.name;
    this.filter = new TableFilter(config.tables, config.exclude);
    this.tableOptions = new TableOptions(config.tableOptions);
  }

  get generation(): number {
    return this.writing;
  }

  async open(): Promise<void> {
    const redis = this.connect();
    await redis.connect().catch((error: unknown) => {
      throw describeTlsFailure(error, redisTlsPeer(this.config)) ?? error;
    });
    this.redis = redis;
    this.pipelines = new SharedPipeline(() => redis.pipeline() as Pipeline);
    await redis.setnx(this.generationKey(), '1');
    this.writing = this.requestedGeneration ?? (await this.liveGeneration());
  }

  useGeneration(generation: number): void {
    this.requestedGeneration = generation;
  }

  async liveGeneration(): Promise<number> {
    const redis = this.redis ?? this.connect();
    try {
      return Number((await redis.get(this.generationKey())) ?? '1');
    } finally {
      if (redis !== this.redis) redis.disconnect();
    }
  }

  rowKey(schema: string, table: string, key: string): string {
    return this.route(schema, table).rowKey(key);
  }

  versionKey(schema: string, table: string): string {
    return `${this.config.keyPrefix}__cdc_versions:${schema}.${table}`;
  }

  /**
   * Applies a batch. Every command is idempotent (version-guarded), so when the
   * connection drops mid-pipeline (ioredis then aborts the pipeline's unanswered
   * commands) the whole batch is simply sent again once reconnected.
   */
  async write(batch: readonly LogRecord[]): Promise<void> {
    const backoff = new Backoff(50, 2000);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.writeOnce(batch);
      } catch (error) {
        if (!isConnectionError(error) || attempt >= 20) throw error;
        this.logger.warn('redis connection lost mid-batch; sending the batch again', { sink: this.name, attempt, error: (error as Error).message });
        await sleep(backoff.nextDelayMs());
      }
    }
  }

  private async writeOnce(batch: readonly LogRecord[]): Promise<void> {
    this.requireOpen();
    const pipelines = this.pipelines!; // set with the connection
    const letters: { event: ChangeEvent; reason: string }[] = [];
    // Row changes go out in one pipeline of APPLY_CHANGES calls (shared with other partitions' batches of the
    // same moment); a truncate is a barrier within the batch.
    let calls: ApplyCall[] = [];
    let call = new ApplyCall();
    const send = async () => {
      if (call.events.length > 0) calls.push(call);
      call = new ApplyCall();
      const sent = calls;
      calls = [];
      const results = this.checkReplies(await pipelines.send((pipeline) => sent.forEach((c) => c.queueOn(pipeline)), sent.length));
      // 3: an update whose TOAST columns the source did not send, with no stored row to keep them from.
      results.forEach((result, i) => (result as number[]).forEach((r, j) => r === 3 && letters.push({ event: sent[i].events[j], reason: noStoredRow(sent[i].events[j]) })));
    };
    for (const record of batch) {
      const { schema, table } = record.event.source;
      if (!this.filter.includes(schema, table)) continue;
      if (!this.knownTables.has(`${schema}.${table}`)) await this.noteTable(schema, table); // no await per record once known
      if (record.event.op === 't') {
        if (calls.length > 0 || call.events.length > 0) await send();
        await this.truncate(record.event);
        continue;
      }
      const route = this.route(schema, table);
      const event = projectEvent(record.event, route.options);
      const problem = unfillableUnchanged(event);
      if (problem) letters.push({ event, reason: problem });
      else {
        if ((calls.length > 0 || call.events.length > 0) && calls.reduce((sum, c) => sum + c.chars, call.chars) + roughEventBytes(event) > PIPELINE_MAX_CHARS) await send();
        this.queueChange(call, event, route);
        if (call.events.length >= CHANGES_PER_CALL) {
          calls.push(call);
          call = new ApplyCall();
        }
      }
    }
    if (calls.length > 0 || call.events.length > 0) await send();
    if (letters.length > 0) await this.deadLetter(letters, batch);
  }

  private async deadLetter(letters: { event: ChangeEvent; reason: string }[], batch: readonly LogRecord[]): Promise<void> {
    this.stats.deadLetters += letters.length;
    if (!this.deadLetters) {
      for (const { reason } of letters) this.logger.error('row not written to redis', { sink: this.name, reason });
      return;
    }
    await this.deadLetters.add(letters, batch);
    this.logger.warn('rows redis cannot write as they are went to the dead-letter file', { sink: this.name, count: letters.length, file: this.deadLetters.file, first: letters[0].reason });
  }

  async flush(): Promise<void> {
    // Each write() awaited Redis's replies: nothing is buffered here.
  }

  async close(): Promise<void> {
    await this.redis?.quit().catch(() => this.redis?.disconnect());
    this.redis = null;
    this.pipelines = null;
  }

  /**
   * Makes this instance's generation the live one and removes every row it did
   * not write (rows deleted from the source while the old generation ran, or
   * gone from the log). By now this generation has replayed every change the
   * old one applied, so each surviving row carries this generation's stamp.
   */
  async promote(): Promise<void> {
    const redis = this.requireOpen();
    await redis.set(this.generationKey(), String(this.writing));
    let swept = 0;
    for (const qualified of await redis.smembers(this.tablesKey())) {
      const dot = qualified.indexOf('.');
      swept += await this.sweepOlderGenerations(qualified.slice(0, dot), qualified.slice(dot + 1));
    }
    this.logger.info('redis generation promoted', { sink: this.name, generation: this.writing, swept });
  }

  private queueChange(call: ApplyCall, event: ChangeEvent, route: TableRoute): void {
    const key = keyString(event.key);
    const deleted = event.op === 'd' || event.after === null;
    const keep = !deleted && event.unchanged?.length ? event.unchanged.map((column) => JSON.stringify(column)) : [];
    const args = [key, rowStamp(event.source.version, this.writing), deleted ? 'del' : 'set', deleted ? '' : rowJson(event.after!), route.ttlMs, String(keep.length), ...keep];
    call.add(event, route.rowKey(key), route.versionKey, args);
  }

  /** What a table's writes need, worked out once per table. */
  private route(schema: string, table: string): TableRoute {
    const name = `${schema}.${table}`;
    let route = this.routes.get(name);
    if (!route) {
      const options = this.tableOptions.for(schema, table);
      const ttlSeconds = options.ttlSeconds ?? this.config.ttlSeconds;
      const render = keyRenderer(options.keyTemplate ?? this.config.keyTemplate, schema, table);
      const prefix = this.config.keyPrefix;
      route = { options, rowKey: (key) => prefix + render(key), versionKey: this.versionKey(schema, table), ttlMs: String(ttlSeconds ? ttlSeconds * 1000 : 0) };
      this.routes.set(name, route);
    }
    return route;
  }

  /** Records the truncate, then removes the table's older rows in small steps (HSCAN, never a blocking KEYS). */
  private async truncate(event: ChangeEvent): Promise<void> {
    const redis = this.requireOpen();
    const { schema, table, version } = event.source;
    const stamp = rowStamp(version, this.writing);
    if ((await redis.cdcRecordTruncate(this.versionKey(schema, table), stamp)) === 0) return;
    const removed = await this.deleteOlder(schema, table, stamp);
    this.logger.info('truncated table in redis', { sink: this.name, table: `${schema}.${table}`, removed });
  }

  /** Deletes the table's rows (and their bookkeeping) stamped below `stamp`, 500 at a time. */
  private async deleteOlder(schema: string, table: string, stamp: string): Promise<number> {
    const redis = this.requireOpen();
    const versionKey = this.versionKey(schema, table);
    let cursor = '0';
    let removed = 0;
    do {
      const [next, entries] = await redis.hscan(versionKey, cursor, 'COUNT', 500);
      cursor = next;
      const pipeline = redis.pipeline() as Pipeline;
      for (let i = 0; i < entries.length; i += 2) {
        const [field, rowStamp] = [entries[i], entries[i + 1]];
        if (normalizeStamp(rowStamp) >= stamp) continue;
        pipeline.cdcDeleteIfOlder(this.rowKey(schema, table, field), versionKey, field, stamp);
        if (field !== TRUNCATED_FIELD) removed++;
      }
      await this.exec(pipeline);
    } while (cursor !== '0');
    return removed;
  }

  /** Deletes the table's rows (and their bookkeeping) an older generation wrote, 500 at a time. */
  private async sweepOlderGenerations(schema: string, table: string): Promise<number> {
    const redis = this.requireOpen();
    const versionKey = this.versionKey(schema, table);
    const generation = this.writing.toString(16).padStart(8, '0');
    let cursor = '0';
    let removed = 0;
    do {
      const [next, entries] = await redis.hscan(versionKey, cursor, 'COUNT', 500);
      cursor = next;
      const pipeline = redis.pipeline() as Pipeline;
      for (let i = 0; i < entries.length; i += 2) {
        const [field, stamp] = [entries[i], entries[i + 1]];
        if (field === TRUNCATED_FIELD || normalizeStamp(stamp).slice(-8) >= generation) continue;
        pipeline.cdcDeleteIfOlderGeneration(this.rowKey(schema, table, field), versionKey, field, generation);
        removed++;
      }
      await this.exec(pipeline);
    } while (cursor !== '0');
    return removed;
  }

  /** Lists the table in `<keyPrefix>__cdc_tables` (once per process), so a generation sweep finds it. */
  private async noteTable(schema: string, table: string): Promise<void> {
    const qualified = `${schema}.${table}`;
    if (this.knownTables.has(qualified)) return;
    await this.requireOpen().sadd(this.tablesKey(), qualified);
    this.knownTables.add(qualified);
  }

  /** Runs a pipeline of other commands than APPLY_CHANGES; returns each command's result. */
  private async exec(pipeline: Pipeline): Promise<unknown[]> {
    return this.checkReplies((await pipeline.exec()) ?? [], false);
  }

  /** The replies' results; throws the first failed command's error. With count, they are APPLY_CHANGES calls' (per change 0 stale, 1 applied, 2 applied without kept columns, 3 refused), counted in stats. */
  private checkReplies(results: Reply[], count = true): unknown[] {
    const failed = results.find(([error]) => error);
    if (failed) throw failed[0];
    if (!count) return results.map(([, result]) => result);
    let lost = 0;
    for (const [, call] of results) {
      for (const result of call as number[]) {
        if (result === 0) this.stats.skipped++;
        else if (result === 1 || result === 2) this.stats.applied++;
        if (result === 2) lost++;
      }
    }
    if (lost > 0) {
      this.stats.unchangedLost += lost;
      this.logger.warn('rows updated without their unchanged (TOAST) columns: their stored row had expired or was unreadable; a resync of the table restores them', { sink: this.name, rows: lost });
    }
    return results.map(([, result]) => result);
  }

  private connect(): Client {
    const redis = new Redis(this.config.url, { lazyConnect: true, maxRetriesPerRequest: null, ...redisTlsOptions(this.config) }) as Client;
    redis.defineCommand('cdcApplyChanges', { lua: APPLY_CHANGES }); // no numberOfKeys: each call passes its key count
    redis.defineCommand('cdcRecordTruncate', { numberOfKeys: 1, lua: RECORD_TRUNCATE });
    redis.defineCommand('cdcDeleteIfOlder', { numberOfKeys: 2, lua: DELETE_IF_OLDER });
    redis.defineCommand('cdcDeleteIfOlderGeneration', { numberOfKeys: 2, lua: DELETE_IF_OLDER_GENERATION });
    redis.on('error', (error: Error) => this.logger.warn('redis connection problem; retrying', { sink: this.name, error: (describeTlsFailure(error, redisTlsPeer(this.config)) ?? error).message }));
    return redis;
  }

  private generationKey(): string {
    return `${this.config.keyPrefix}__cdc_generation`;
  }

  private tablesKey(): string {
    return `${this.config.keyPrefix}__cdc_tables`;
  }

  private requireOpen(): Client {
    if (!this.redis) throw new Error(`sink ${this.name}: used before open() or after close()`);
    return this.redis;
  }
}

function isConnectionError(error: unknown): boolean {
  const { name, message } = error as Error;
  return name === 'AbortError' || /Connection is closed|ECONNRESET|EPIPE|ECONNREFUSED|ETIMEDOUT/.test(message ?? '');
}

/**
 * The row's JSON for the apply script: a string, or for a row holding a value of LARGE_STRING_CHARS or
 * more, its UTF-8 bytes written piece by piece (jsonBytes()): ioredis sends a command with string
 * arguments as one string it builds whole, so a 50 MB value was copied into the row's JSON, the
 * command's text and its encoding (+195 MB over the process's baseline per 50 MB row).
 */
function rowJson(row: Row): string | Buffer {
  return holdsLargeString(row) ? jsonBytes(row) : JSON.stringify(row);
}
