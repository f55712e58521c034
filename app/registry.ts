import { z } from 'zod';
import { Source } from '../core/contracts/source';
import { Sink } from '../core/contracts/sink';
import { postgresSourceConfig, PostgresSourceConfig } from '../connectors/postgres/config';
import { mysqlSourceConfig, MysqlSourceConfig } from '../connectors/mysql/config';
import { redisSinkConfig, RedisSinkConfig } from '../sinks/redis/config';
import { elasticsearchSinkConfig, ElasticsearchSinkConfig } from '../sinks/elasticsearch/config';
import { warehouseSinkConfig, WarehouseSinkConfig } from '../sinks/warehouse/config';
import { DeadLetterStore } from '../sinks/shared/dead-letters';
import { ComponentContext, ComponentFactory } from '../core/runtime/components';


/*
 * Implementations are loaded when a config uses them (require in create()), not
 * up front: DuckDB and the Elasticsearch client alone cost ~60 MB of memory in
 * a service that never uses them. Config schemas are small and load eagerly.
 */
const load = {
  postgres: () => require('../connectors/postgres/postgres-source') as typeof import('../connectors/postgres/postgres-source'),
  mysql: () => require('../connectors/mysql/mysql-source') as typeof import('../connectors/mysql/mysql-source'),
  redis: () => require('../sinks/redis/redis-sink') as typeof import('../sinks/redis/redis-sink'),
  elasticsearch: () => require('../sinks/elasticsearch/es-sink') as typeof import('../sinks/elasticsearch/es-sink'),
  warehouse: () => require('../sinks/warehouse/warehouse-sink') as typeof import('../sinks/warehouse/warehouse-sink'),
};

interface ComponentType<Config, Instance> {
  configSchema: z.ZodType<Config>;
  create(config: Config, context: ComponentContext): Instance;
}

/** Map from the `type` of a configured source to its implementation. */
export const sourceTypes = {
  postgres: {
    configSchema: postgresSourceConfig,
    create: (config: PostgresSourceConfig, context: ComponentContext) => new (load.postgres().PostgresSource)(config, context.logger),
  } satisfies ComponentType<PostgresSourceConfig, Source>,
  mysql: {
    configSchema: mysqlSourceConfig,
    create: (config: MysqlSourceConfig, context: ComponentContext) => new (load.mysql().MysqlSource)(config, context.logger),
  } satisfies ComponentType<MysqlSourceConfig, Source>,
};

/** Map from the `type` of a configured sink to its implementation. */
export const sinkTypes = {
  redis: {
    configSchema: redisSinkConfig,
    create: (config: RedisSinkConfig, context: ComponentContext) => new (load.redis().RedisSink)(config, context.logger, new DeadLetterStore(context.dataDir, config.name, context.metrics)),
  } satisfies ComponentType<RedisSinkConfig, Sink>,
  elasticsearch: {
    configSchema: elasticsearchSinkConfig,
    create: (config: ElasticsearchSinkConfig, context: ComponentContext) =>
      new (load.elasticsearch().ElasticsearchSink)(config, context.logger, new DeadLetterStore(context.dataDir, config.name, context.metrics)),
  } satisfies ComponentType<ElasticsearchSinkConfig, Sink>,
  warehouse: {
    configSchema: warehouseSinkConfig,
    create: (config: WarehouseSinkConfig, context: ComponentContext) =>
      new (load.warehouse().WarehouseSink)(config, context, new DeadLetterStore(context.dataDir, config.name, context.metrics)),
  } satisfies ComponentType<WarehouseSinkConfig, Sink>,
};

export type SourceConfig = PostgresSourceConfig | MysqlSourceConfig;
export type SinkConfig = RedisSinkConfig | ElasticsearchSinkConfig | WarehouseSinkConfig;

export function createSource(config: SourceConfig, context: ComponentContext): Source {
  const type = sourceTypes[config.type] as ComponentType<SourceConfig, Source>;
  return type.create(config, context);
}

export function createSink(config: SinkConfig, context: ComponentContext): Sink {
  const type = sinkTypes[config.type] as ComponentType<SinkConfig, Sink>;
  return type.create(config, context);
}

/** The factory the service is built with (cli/main.ts). */
export const components: ComponentFactory<SourceConfig, SinkConfig> = { createSource, createSink };
