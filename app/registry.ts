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
import { SinkReader, SourceRowReader, VerifyTarget } from '../core/verify/sink-reader';
import { ChangeEvent } from '../core/event/change-event';
import { projectEvent } from '../sinks/shared/columns';
import { TableFilter, TableOptions } from '../sinks/shared/table-filter';


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
  postgresRows: () => require('../connectors/postgres/verify-reader') as typeof import('../connectors/postgres/verify-reader'),
  mysqlRows: () => require('../connectors/mysql/verify-reader') as typeof import('../connectors/mysql/verify-reader'),
  redisReader: () => require('../sinks/redis/reader') as typeof import('../sinks/redis/reader'),
  elasticsearchReader: () => require('../sinks/elasticsearch/reader') as typeof import('../sinks/elasticsearch/reader'),
  warehouseReader: () => require('../sinks/warehouse/reader') as typeof import('../sinks/warehouse/reader'),
};

interface ComponentType<Config, Instance> {
  configSchema: z.ZodType<Config>;
  create(config: Config, context: ComponentContext): Instance;
}

/** A source type reads its rows back for verification (`cdc verify`, continuous verification). */
interface SourceType<Config> extends ComponentType<Config, Source> {
  rowReader(config: Config): SourceRowReader;
}

/** A sink type reads its rows back for verification; `ignoredColumns` are left out of the comparison. */
interface SinkType<Config> extends ComponentType<Config, Sink> {
  verifyReader(config: Config, context: ComponentContext): SinkReader;
  ignoredColumns?(config: Config, schema: string, table: string): string[];
}

/** Map from the `type` of a configured source to its implementation. */
export const sourceTypes = {
  postgres: {
    configSchema: postgresSourceConfig,
    create: (config: PostgresSourceConfig, context: ComponentContext) => new (load.postgres().PostgresSource)(config, context.logger),
    rowReader: (config: PostgresSourceConfig) => new (load.postgresRows().PgSourceRowReader)(config.url, config.tables),
  } satisfies SourceType<PostgresSourceConfig>,
  mysql: {
    configSchema: mysqlSourceConfig,
    create: (config: MysqlSourceConfig, context: ComponentContext) => new (load.mysql().MysqlSource)(config, context.logger),
    rowReader: (config: MysqlSourceConfig) => new (load.mysqlRows().MysqlSourceRowReader)(config),
  } satisfies SourceType<MysqlSourceConfig>,
};

/** The sink's dead-letter files, rotated as its `deadLetters` config says. */
function deadLetterStore(config: { name: string; deadLetters?: { maxFileBytes: number; maxFiles: number } }, context: ComponentContext): DeadLetterStore {
  return new DeadLetterStore(context.dataDir, config.name, context.metrics, { ...config.deadLetters, logger: context.logger });
}

/** Map from the `type` of a configured sink to its implementation. */
export const sinkTypes = {
  redis: {
    configSchema: redisSinkConfig,
    create: (config: RedisSinkConfig, context: ComponentContext) => new (load.redis().RedisSink)(config, context.logger, deadLetterStore(config, context)),
    verifyReader: (config: RedisSinkConfig) => new (load.redisReader().RedisSinkReader)(config),
  } satisfies SinkType<RedisSinkConfig>,
  elasticsearch: {
    configSchema: elasticsearchSinkConfig,
    create: (config: ElasticsearchSinkConfig, context: ComponentContext) =>
      new (load.elasticsearch().ElasticsearchSink)(config, context.logger, deadLetterStore(config, context)),
    verifyReader: (config: ElasticsearchSinkConfig, context: ComponentContext) => new (load.elasticsearchReader().EsSinkReader)(config, context.logger),
  } satisfies SinkType<ElasticsearchSinkConfig>,
  warehouse: {
    configSchema: warehouseSinkConfig,
    create: (config: WarehouseSinkConfig, context: ComponentContext) =>
      new (load.warehouse().WarehouseSink)(config, context, deadLetterStore(config, context)),
    verifyReader: (config: WarehouseSinkConfig, context: ComponentContext) => new (load.warehouseReader().WarehouseSinkReader)(config, context),
    ignoredColumns: (config: WarehouseSinkConfig, schema: string, table: string) => load.warehouseReader().declaredColumns(config, schema, table),
  } satisfies SinkType<WarehouseSinkConfig>,
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

/** A source's row reader for verification. */
export function createSourceRowReader(config: SourceConfig): SourceRowReader {
  const type = sourceTypes[config.type] as SourceType<SourceConfig>;
  return type.rowReader(config);
}

/**
 * A sink as verification sees it: its reader, its table filter, and what it
 * keeps of a source row (its column projection, minus columns its type
 * leaves out of the comparison).
 */
export function createVerifyTarget(config: SinkConfig, context: ComponentContext): VerifyTarget {
  const type = sinkTypes[config.type] as SinkType<SinkConfig>;
  const filter = new TableFilter(config.tables, config.exclude);
  const tableOptions = new TableOptions(config.tableOptions as Record<string, object>);
  return {
    reader: type.verifyReader(config, context),
    includes: (schema, table) => filter.includes(schema, table),
    project: (schema, table, row) => {
      const event = { key: {}, before: null, after: row } as unknown as ChangeEvent;
      const kept = JSON.parse(JSON.stringify(projectEvent(event, tableOptions.for(schema, table)).after)) as Record<string, unknown>;
      for (const column of type.ignoredColumns?.(config, schema, table) ?? []) delete kept[column];
      return kept;
    },
  };
}

/** The factory the service is built with (cli/main.ts). */
export const components: ComponentFactory<SourceConfig, SinkConfig> = { createSource, createSink, createSourceRowReader, createVerifyTarget };
