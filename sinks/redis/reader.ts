import Redis from 'ioredis';
import { SinkReader } from '../../core/verify/sink-reader';
import { TableOptions } from '../shared/table-filter';
import { RedisSinkConfig, RedisTableOptions } from './config';
import { keyRenderer } from './key-template';
import { TRUNCATED_FIELD } from './scripts';
import { redisTlsOptions } from './tls';

/** KEYS[1] row key, KEYS[2] version hash; ARGV[1] hash field, ARGV[2] the stamp read before ('' for none). */
const DELETE_IF_STAMP = `
local stamp = redis.call('HGET', KEYS[2], ARGV[1]) or ''
if stamp ~= ARGV[2] then return 0 end
return redis.call('DEL', KEYS[1])`;

/** Reads rows back the way readers do (plain GET of `<keyPrefix><keyTemplate>`), for `cdc verify`. */
export class RedisSinkReader implements SinkReader {
  private readonly redis: Redis;
  private readonly tableOptions: TableOptions<RedisTableOptions>;

  constructor(private readonly config: RedisSinkConfig) {
    this.redis = new Redis(config.url, { lazyConnect: true, maxRetriesPerRequest: 3, ...redisTlsOptions(config) });
    this.tableOptions = new TableOptions(config.tableOptions);
  }

  async rows(schema: string, table: string, _keyColumns: readonly string[], keys: readonly string[]): Promise<Array<Record<string, unknown> | null>> {
    if (keys.length === 0) return [];
    const render = this.renderer(schema, table);
    const values = await this.redis.mget(keys.map(render));
    return values.map((value) => (value === null ? null : (JSON.parse(value) as Record<string, unknown>)));
  }

  /** The table's version hash lists every key the sink wrote (deleted ones too): keep those whose row key exists. */
  async scanKeys(schema: string, table: string, _keyColumns: readonly string[], visit: (keys: string[]) => Promise<void>): Promise<void> {
    const render = this.renderer(schema, table);
    const versionKey = this.versionKey(schema, table);
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(versionKey, cursor, 'COUNT', 1000);
      cursor = next;
      const fields = entries.filter((_, i) => i % 2 === 0 && entries[i] !== TRUNCATED_FIELD);
      if (fields.length === 0) continue;
      const pipeline = this.redis.pipeline();
      for (const field of fields) pipeline.exists(render(field));
      const exists = (await pipeline.exec()) ?? [];
      const present = fields.filter((_, i) => exists[i]?.[1] === 1);
      if (present.length > 0) await visit(present);
    } while (cursor !== '0');
  }

  /** The row's stamp in the table's version hash (kept for deleted rows too: only rows whose key exists count). */
  async versions(schema: string, table: string, _keyColumns: readonly string[], keys: readonly string[]): Promise<Array<string | null>> {
    if (keys.length === 0) return [];
    const render = this.renderer(schema, table);
    const stamps = await this.redis.hmget(this.versionKey(schema, table), ...keys);
    const exists = await Promise.all(keys.map((k) => this.redis.exists(render(k))));
    return stamps.map((stamp, i) => (exists[i] === 1 ? stamp ?? '' : null));
  }

  /** DEL of the row key only while its stamp is unchanged (atomic in Lua); the stamp stays, so older events remain refused and newer ones apply. */
  async deleteKeys(schema: string, table: string, _keyColumns: readonly string[], rows: ReadonlyArray<{ key: string; version: string }>): Promise<number> {
    const render = this.renderer(schema, table);
    let removed = 0;
    for (const { key, version } of rows) {
      removed += Number(await this.redis.eval(DELETE_IF_STAMP, 2, render(key), this.versionKey(schema, table), key, version));
    }
    return removed;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private versionKey(schema: string, table: string): string {
    return `${this.config.keyPrefix}__cdc_versions:${schema}.${table}`;
  }

  private renderer(schema: string, table: string): (key: string) => string {
    const template = this.tableOptions.for(schema, table).keyTemplate ?? this.config.keyTemplate;
    const render = keyRenderer(template, schema, table);
    return (key) => this.config.keyPrefix + render(key);
  }
}
