import { setMaxListeners } from 'node:events';
import { unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LoadedConfig } from '../../config/load';
import { redact } from '../../config/redact';
import { Metrics } from '../http/metrics';
import { AdminError, AdminHandlers } from '../http/admin';
import { HealthReport, startHttpServer } from '../http/server';
import { ServiceConsole } from '../http/console';
import { ChangeLog } from '../log/change-log';
import { openLog, watchLogEnds } from './open-log';
import { JsonStateFile } from './json-state';
import { Logger } from './logger';
import { ComponentFactory } from './components';
import { startContinuousVerify, verifyRoute } from './continuous-verify';
import { DeadLetterStore } from './dead-letters';
import { ManagedSink, SinkGenerationState } from './managed-sink';
import { SourceRunner } from './source-runner';
import { supervise } from './supervise';

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
  private readonly sinkRunners = new Map<string, ManagedSink>();
  private running: Promise<unknown> | null = null;
  private http: { port: number; close(): Promise<void> } | null = null;
  private log: ChangeLog | null = null;
  private logGauges: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: LoadedConfig,
    private readonly components: ComponentFactory<LoadedConfig['sources'][number], LoadedConfig['sinks'][number]>,
    private readonly logger: Logger,
    private readonly options: RunOptions = {},
  ) {
    // Every source, sink runner and sink being reprocessed listens for the stop: more than Node's default
    // of 10 with a few sinks reprocessed at once, and bounded by the config, so not the leak Node warns of.
    setMaxListeners(16 + 4 * (config.sources.length + 2 * config.sinks.length), this.controller.signal);
  }

  get httpPort(): number | null {
    return this.http?.port ?? null;
  }

  async start(): Promise<void> {
    const { config } = this;
    const operatorConsole = new ServiceConsole(config, this.metrics, this.logger);
    const logger = operatorConsole.logger; // the console shows each component's last error
    const dataDir = config.service.dataDir;
    const log = await openLog(config, this.options, logger.child('log'));
    this.log = log;
    await operatorConsole.attach(log); // per-table pauses, before any sink runner reads
    this.logGauges = watchLogEnds(log, this.metrics);
    const signal = this.controller.signal;
    const context = { logger, dataDir, metrics: this.metrics, baseDir: dirname(config.configFile) };

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
          createSource: () => this.components.createSource(sourceConfig, { ...context, logger: logger.child(sourceConfig.name) }),
          log,
          state: new JsonStateFile(join(dataDir, 'sources', `${sourceConfig.name}.json`)),
          metrics: this.metrics,
          logger: logger.child(sourceConfig.name),
          sinksLagSeconds: () => Math.max(0, ...[...this.sinkRunners.values()].map((sink) => sink.lagSeconds)),
        });
        this.sourceRunners.set(sourceConfig.name, runner);
        runs.push(supervise(`source ${sourceConfig.name}`, () => runner.run(signal), signal, logger));
      }
    }
    const embeddedLogDir = config.log.type === 'embedded' ? config.log.dir ?? join(dataDir, 'log') : null;
    for (const sinkConfig of sinks) {
      const sinkLogger = logger.child(sinkConfig.name);
      const managed = new ManagedSink({
        name: sinkConfig.name,
        createSink: () => this.components.createSink(sinkConfig, { ...context, logger: sinkLogger }),
        log,
        metrics: this.metrics,
        logger: sinkLogger,
        state: new JsonStateFile<SinkGenerationState>(join(dataDir, 'sinks', `${sinkConfig.name}.json`)),
        forgetConsumer: embeddedLogDir ? (consumer) => forgetEmbeddedConsumer(embeddedLogDir, consumer) : undefined,
        registerConsumer: embeddedLogDir ? (consumer) => registerAtLogStart(log, consumer) : undefined,
        deadLetters: new DeadLetterStore(dataDir, sinkConfig.name, this.metrics, { ...(sinkConfig as { deadLetters?: object }).deadLetters, logger: sinkLogger }),
      });
      this.sinkRunners.set(sinkConfig.name, managed);
      runs.push(supervise(`sink ${sinkConfig.name}`, () => managed.run(signal), signal, sinkLogger));
    }
    runs.push(...startContinuousVerify(sinks, config.sources, this.components, { ...context, metrics: this.metrics }, signal, () => this.health().ready));
    this.running = Promise.all(runs);
    const admin = operatorConsole.admin(this.adminHandlers());
    this.http = await startHttpServer({ ...config.service.http, metrics: this.metrics, health: () => this.health(), admin, console: operatorConsole.routes(admin) });
    logger.info('service started', { name: config.service.name, http: `${config.service.http.host}:${this.http.port}` });
  }

  private adminHandlers(): AdminHandlers {
    const handlers: AdminHandlers = {
      // Errors in status may quote a URL or a secret: never show them.
      status: async () => redact({
        service: this.config.service.name,
        sources: await Promise.all([...this.sourceRunners.values()].map((runner) => runner.status())),
        sinks: await Promise.all([...this.sinkRunners.values()].map((managed) => managed.status())),
      }),
      reprocess: async ({ sink }) => {
        const managed = this.sinkRunners.get(String(sink));
        if (!managed) throw new AdminError(404, `no sink named "${String(sink)}" runs here (running: ${[...this.sinkRunners.keys()].join(', ') || 'none'})`);
        return managed.reprocess();
      },
      replayDeadLetters: async ({ sink, table }) => {
        const managed = this.sinkRunners.get(String(sink));
        if (!managed) throw new AdminError(404, `no sink named "${String(sink)}" runs here (running: ${[...this.sinkRunners.keys()].join(', ') || 'none'})`);
        if (table !== undefined && (typeof table !== 'string' || !/^[^.\s]+\.[^.\s]+$/.test(table))) throw new AdminError(400, 'table must be a SCHEMA.TABLE name');
        return managed.replayDeadLetters((table as string | undefined) ?? null);
      },
      resync: async ({ source, tables, where }) => {
        const runner = this.sourceRunners.get(String(source));
        if (!runner) throw new AdminError(404, `no source named "${String(source)}" runs here (configured: ${[...this.sourceRunners.keys()].join(', ') || 'none'})`);
        if (!Array.isArray(tables) || tables.length === 0 || !tables.every((t) => typeof t === 'string' && /^[^.\s]+\.[^.\s]+$/.test(t))) {
          throw new AdminError(400, 'tables must be a non-empty list of SCHEMA.TABLE names');
        }
        if (where !== undefined && typeof where !== 'string') throw new AdminError(400, 'where must be a string (an SQL condition)');
        return runner.requestResync({ tables: tables as string[], where: where as string | undefined });
      },
      cancelResync: async ({ source, requestId }) => {
        const runner = this.sourceRunners.get(String(source));
        if (!runner) throw new AdminError(404, `no source named "${String(source)}" runs here (configured: ${[...this.sourceRunners.keys()].join(', ') || 'none'})`);
        if (typeof requestId !== 'string' || requestId === '') throw new AdminError(400, 'requestId must be the id cdc resync printed');
        return runner.cancelResync(requestId);
      },
      more: {
        'POST /api/verify': verifyRoute(this.config.sinks, this.config.sources, this.components, { logger: this.logger, dataDir: this.config.service.dataDir, baseDir: dirname(this.config.configFile) },
          async (source, table, where) => (await handlers.resync({ source, tables: [table], where }) as { requestId: string }).requestId),
      },
    };
    return handlers;
  }

  health(): HealthReport {
    const waiting: string[] = [];
    for (const [name, runner] of this.sourceRunners) if (!runner.ready) waiting.push(`source ${name}: not streaming (${runner.health.describe()})`);
    for (const [name, runner] of this.sinkRunners) if (!runner.ready) waiting.push(`sink ${name}: not connected (${runner.describeHealth()})`);
    return { ready: waiting.length === 0, waiting };
  }

  /** Graceful stop: sources hand over what they read, sinks finish their batch, the log closes. */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
    await this.http?.close();
    clearInterval(this.logGauges);
    await this.log?.close();
    this.logger.info('service stopped');
  }
}

/** Commits offset zero on every partition for a consumer that has never read (its tombstones are then kept for it). */
async function registerAtLogStart(log: ChangeLog, consumer: string): Promise<void> {
  const register = async () => {
    const committed = await log.committedOffsets(consumer);
    if (committed.some((offset) => offset > 0)) return;
    await Promise.all(committed.map((_, partition) => log.commit(consumer, partition, 0)));
  };
  await (log.withCompactionHeld ? log.withCompactionHeld(register) : register());
}

/** Removes an embedded-log consumer's committed offsets, so compaction stops keeping tombstones for it. */
async function forgetEmbeddedConsumer(logDir: string, consumer: string): Promise<void> {
  await unlink(join(logDir, 'consumers', `${consumer}.json`)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}
