import { join } from 'node:path';
import { LoadedConfig } from '../../config/load';
import { Metrics } from '../http/metrics';
import { HealthReport, startHttpServer } from '../http/server';
import { ChangeLog } from '../log/change-log';
import { FileLog } from '../log/file-log';
import { JsonStateFile } from './json-state';
import { Logger } from './logger';
import { createSink, createSource } from './registry';
import { SinkRunner } from './sink-runner';
import { SourceRunner } from './source-runner';

export interface RunOptions {
  /** Run only the source side or only the sink side of the pipeline. */
  only?: 'sources' | 'sinks';
  /** Run only this sink (implies its side). */
  sink?: string;
}

/** Wires configured sources → log → sinks and serves metrics and health. */
export class CdcService {
  private readonly controller = new AbortController();
  private readonly metrics = new Metrics();
  private readonly sourceRunners = new Map<string, SourceRunner>();
  private readonly sinkRunners = new Map<string, SinkRunner>();
  private running: Promise<unknown> | null = null;
  private http: { port: number; close(): Promise<void> } | null = null;
  private log: ChangeLog | null = null;

  constructor(private readonly config: LoadedConfig, private readonly logger: Logger, private readonly options: RunOptions = {}) {}

  get httpPort(): number | null {
    return this.http?.port ?? null;
  }

  async start(): Promise<void> {
    const { config, logger } = this;
    const dataDir = config.service.dataDir;
    const log = new FileLog({ dir: config.log.dir ?? join(dataDir, 'log'), partitions: config.log.partitions });
    await log.open();
    this.log = log;
    const signal = this.controller.signal;
    const context = { logger, dataDir };

    const runSources = this.options.only !== 'sinks' && !this.options.sink;
    const sinks = config.sinks.filter((s) => this.options.only !== 'sources' && (!this.options.sink || s.name === this.options.sink));
    if (this.options.sink && sinks.length === 0) {
      throw new Error(`no sink named "${this.options.sink}" in ${config.configFile} (configured: ${config.sinks.map((s) => s.name).join(', ') || 'none'})`);
    }
    const runs: Promise<void>[] = [];
    if (runSources) {
      for (const sourceConfig of config.sources) {
        const runner = new SourceRunner({
          name: sourceConfig.name,
          createSource: () => createSource(sourceConfig, { ...context, logger: logger.child(sourceConfig.name) }),
          log,
          state: new JsonStateFile(join(dataDir, 'sources', `${sourceConfig.name}.json`)),
          metrics: this.metrics,
          logger: logger.child(sourceConfig.name),
        });
        this.sourceRunners.set(sourceConfig.name, runner);
        runs.push(runner.run(signal));
      }
    }
    for (const sinkConfig of sinks) {
      const sinkLogger = logger.child(sinkConfig.name);
      const runner = new SinkRunner({ sink: createSink(sinkConfig, { ...context, logger: sinkLogger }), log, metrics: this.metrics, logger: sinkLogger });
      this.sinkRunners.set(sinkConfig.name, runner);
      runs.push(runner.run(signal));
    }
    this.running = Promise.allSettled(runs).then((results) => {
      for (const r of results) if (r.status === 'rejected') logger.error(`stopped with an error: ${(r.reason as Error).message}`);
    });
    this.http = await startHttpServer({ ...config.service.http, metrics: this.metrics, health: () => this.health() });
    logger.info('service started', { name: config.service.name, http: `${config.service.http.host}:${this.http.port}` });
  }

  health(): HealthReport {
    const waiting: string[] = [];
    for (const [name, runner] of this.sourceRunners) if (!runner.ready) waiting.push(`source ${name}: not streaming yet`);
    for (const [name, runner] of this.sinkRunners) if (!runner.ready) waiting.push(`sink ${name}: not connected yet`);
    return { ready: waiting.length === 0, waiting };
  }

  /** Graceful stop: sources hand over what they read, sinks finish their batch, the log closes. */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
    await this.http?.close();
    await this.log?.close();
    this.logger.info('service stopped');
  }
}
