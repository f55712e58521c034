import Redis from 'ioredis';
import { SinkReader } from '../../core/verify/sink-reader';
import { TableOptions } from '../shared/table-filter';
import { RedisSinkConfig, RedisTableOptions } from './config';
import { keyRenderer } from './key-template';
import { TRUNCATED_FIELD } from './scripts';
import { redisTlsOptions } from './tls';

/** Reads rows back the way readers do (plain GET of `<keyPrefix><keyTemplate>`), for `cdc verify`. */
export class RedisSinkReader implements SinkReader {
  private readonly redis: Redis;
  private readonly tableOptions: TableOptions<RedisTableOptions>;

  constructor(private readonly config: RedisSinkConfig) {
    this.redis = new Redis(config.url, { lazyConnect: true, maxRetriesPerRequest: 3, ...redisTlsOptions(config) });
    this.tableOptions = new TableOptions(config.tableOptions);
  }

  async rows(schema: string, table: string, keys: readonly string[]): Promise<Array<Record<string, unknown> | null>> {
    if (keys.length === 0) return [];
    const render = this.renderer(schema, table);
    const values = await this.redis.mget(keys.map(render));
    return values.map((value) => (value === null ? null : (JSON.parse(value) as Record<string, unknown>)));
  }

  /** The table's version hash lists every key the sink wrote (deleted ones too): keep those whose row key exists. */
  async scanKeys(schema: string, table: string, visit: (keys: string[]) => Promise<void>): Promise<void> {
    const render = this.renderer(schema, table);
    const versionKey = `${this.config.keyPrefix}__cdc_versions:${schema}.${table}`;
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

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private renderer(schema: string, table: string): (key: string) => string {
    const template = this.tableOptions.for(schema, table).keyTemplate ?? this.config.keyTemplate;
    const render = keyRenderer(template, schema, table);
    return (key) => this.config.keyPrefix + render(key);
  }
}
