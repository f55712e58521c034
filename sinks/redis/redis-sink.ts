import Redis from 'ioredis';
import { ChangeEvent, keyString } from '../../core/event/change-event';
import { LogRecord } from '../../core/log/change-log';
import { Logger } from '../../core/runtime/logger';
import { TableFilter } from '../shared/table-filter';
import { Sink } from '../sink';
import { RedisSinkConfig } from './config';
import { APPLY_CHANGE, DELETE_IF_OLDER, RECORD_TRUNCATE, TRUNCATED_FIELD } from './scripts';

interface ScriptCommands {
  cdcApply(rowKey: string, versionKey: string, field: string, version: string, action: string, json: string): Promise<number>;
  cdcRecordTruncate(versionKey: string, version: string): Promise<number>;
  cdcDeleteIfOlder(rowKey: string, versionKey: string, field: string, version: string): Promise<number>;
}

/**
 * Keeps each row as a JSON document under `<keyPrefix><schema>.<table>:<pk>`
 * (DESIGN §4); a deleted row's key is absent. Every write is guarded by the
 * event's version, kept per table in the hash `<keyPrefix>__cdc_versions:<schema>.<table>`.
 */
export class RedisSink implements Sink {
  readonly name: string;
  private readonly filter: TableFilter;
  private redis: (Redis & ScriptCommands) | null = null;

  constructor(private readonly config: RedisSinkConfig, private readonly logger: Logger) {
    this.name = config.name;
    this.filter = new TableFilter(config.tables);
  }

  async open(): Promise<void> {
    const redis = new Redis(this.config.url, { lazyConnect: true, maxRetriesPerRequest: null }) as Redis & ScriptCommands;
    redis.defineCommand('cdcApply', { numberOfKeys: 2, lua: APPLY_CHANGE });
    redis.defineCommand('cdcRecordTruncate', { numberOfKeys: 1, lua: RECORD_TRUNCATE });
    redis.defineCommand('cdcDeleteIfOlder', { numberOfKeys: 2, lua: DELETE_IF_OLDER });
    redis.on('error', (error: Error) => this.logger.warn('redis connection problem; retrying', { sink: this.name, error: error.message }));
    await redis.connect();
    this.redis = redis;
  }

  rowKey(event: ChangeEvent): string {
    return `${this.config.keyPrefix}${event.source.schema}.${event.source.table}:${keyString(event.key)}`;
  }

  versionKey(schema: string, table: string): string {
    return `${this.config.keyPrefix}__cdc_versions:${schema}.${table}`;
  }

  async write(batch: readonly LogRecord[]): Promise<void> {
    const redis = this.requireOpen();
    // Row changes go out in one pipeline; a truncate is a barrier within the batch.
    let pipeline = redis.pipeline() as ReturnType<Redis['pipeline']> & ScriptCommands;
    let queued = 0;
    for (const { event } of batch) {
      if (!this.filter.includes(event.source.schema, event.source.table)) continue;
      if (event.op === 't') {
        if (queued > 0) await execOrThrow(pipeline);
        pipeline = redis.pipeline() as typeof pipeline;
        queued = 0;
        await this.truncate(event);
        continue;
      }
      const deleted = event.op === 'd' || event.after === null;
      pipeline.cdcApply(
        this.rowKey(event),
        this.versionKey(event.source.schema, event.source.table),
        keyString(event.key),
        event.source.version,
        deleted ? 'del' : 'set',
        deleted ? '' : JSON.stringify(event.after),
      );
      queued++;
    }
    if (queued > 0) await execOrThrow(pipeline);
  }

  async flush(): Promise<void> {
    // Each write() awaited Redis's replies: nothing is buffered here.
  }

  async close(): Promise<void> {
    await this.redis?.quit().catch(() => this.redis?.disconnect());
    this.redis = null;
  }

  /** Records the truncate, then removes the table's older rows in small steps (no blocking KEYS/SCAN of the whole DB). */
  private async truncate(event: ChangeEvent): Promise<void> {
    const redis = this.requireOpen();
    const { schema, table, version } = event.source;
    const versionKey = this.versionKey(schema, table);
    if ((await redis.cdcRecordTruncate(versionKey, version)) === 0) return;
    let cursor = '0';
    let removed = 0;
    do {
      const [next, entries] = await redis.hscan(versionKey, cursor, 'COUNT', 500);
      cursor = next;
      const pipeline = redis.pipeline() as ReturnType<Redis['pipeline']> & ScriptCommands;
      for (let i = 0; i < entries.length; i += 2) {
        const [field, rowVersion] = [entries[i], entries[i + 1]];
        if (field === TRUNCATED_FIELD || rowVersion >= version) continue;
        pipeline.cdcDeleteIfOlder(`${this.config.keyPrefix}${schema}.${table}:${field}`, versionKey, field, version);
        removed++;
      }
      await execOrThrow(pipeline);
    } while (cursor !== '0');
    this.logger.info('truncated table in redis', { sink: this.name, table: `${schema}.${table}`, removed });
  }

  private requireOpen(): Redis & ScriptCommands {
    if (!this.redis) throw new Error(`sink ${this.name}: used before open() or after close()`);
    return this.redis;
  }
}

async function execOrThrow(pipeline: ReturnType<Redis['pipeline']>): Promise<void> {
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([error]) => error);
  if (failed) throw failed[0];
}
