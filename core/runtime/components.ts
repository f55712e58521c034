import { Source } from '../contracts/source';
import { Sink } from '../contracts/sink';
import { Metrics } from '../http/metrics';
import { SourceRowReader, VerifyTarget } from '../verify/sink-reader';
import { Logger } from './logger';

/** What the service hands each source and sink it creates. */
export interface ComponentContext {
  logger: Logger;
  /** The service's data directory, for state a component may need. */
  dataDir: string;
  /** The service's metrics, for components that count things of their own (e.g. dead letters). */
  metrics?: Metrics;
  /** The config file's folder: relative paths in a component's config resolve against it. */
  baseDir?: string;
}

/**
 * How the service turns a configured source or sink into a running one. The
 * composition root (app/registry.ts) implements it: core/ knows the contracts,
 * never the connectors and sinks behind them.
 */
export interface ComponentFactory<SourceConfig, SinkConfig> {
  createSource(config: SourceConfig, context: ComponentContext): Source;
  createSink(config: SinkConfig, context: ComponentContext): Sink;
  /** Verification (continuous verify): a source's rows read back; absent when the factory offers no verification. */
  createSourceRowReader?(config: SourceConfig): SourceRowReader;
  /** Verification: a sink's rows read back, its table filter and column projection. */
  createVerifyTarget?(config: SinkConfig, context: ComponentContext): VerifyTarget;
}
