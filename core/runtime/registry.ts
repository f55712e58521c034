import { z } from 'zod';
import { Source } from '../../connectors/source';
import { Sink } from '../../sinks/sink';
import { postgresSourceConfig, PostgresSourceConfig } from '../../connectors/postgres/config';
import { PostgresSource } from '../../connectors/postgres/postgres-source';
import { redisSinkConfig, RedisSinkConfig } from '../../sinks/redis/config';
import { RedisSink } from '../../sinks/redis/redis-sink';
import { Logger } from './logger';

export interface ComponentContext {
  logger: Logger;
  /** The service's data directory, for state a component may need. */
  dataDir: string;
}

interface ComponentType<Config, Instance> {
  configSchema: z.ZodType<Config>;
  create(config: Config, context: ComponentContext): Instance;
}

/** Map from the `type` of a configured source to its implementation. */
export const sourceTypes = {
  postgres: {
    configSchema: postgresSourceConfig,
    create: (config: PostgresSourceConfig, context: ComponentContext) => new PostgresSource(config, context.logger),
  } satisfies ComponentType<PostgresSourceConfig, Source>,
};

/** Map from the `type` of a configured sink to its implementation. */
export const sinkTypes = {
  redis: {
    configSchema: redisSinkConfig,
    create: (config: RedisSinkConfig, context: ComponentContext) => new RedisSink(config, context.logger),
  } satisfies ComponentType<RedisSinkConfig, Sink>,
};

export type SourceConfig = PostgresSourceConfig;
export type SinkConfig = RedisSinkConfig;

export function createSource(config: SourceConfig, context: ComponentContext): Source {
  const type = sourceTypes[config.type] as ComponentType<SourceConfig, Source>;
  return type.create(config, context);
}

export function createSink(config: SinkConfig, context: ComponentContext): Sink {
  const type = sinkTypes[config.type] as ComponentType<SinkConfig, Sink>;
  return type.create(config, context);
}
