#!/usr/bin/env -S node --max-semi-space-size=8
import { Command, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/load';
import { redact, redactText } from '../config/redact';
import { createLogger, LogFormat, logFormats, LogLevel, logLevels } from '../core/runtime/logger';
import { callAdmin, callAdminWhenStreaming } from './admin-client';
import { formatStatus, StatusReport } from './format-status';
import { runVerify } from './verify';
import { registerPauseCommands } from './pause';
import { registerDeadLetterCommands } from './dead-letters';
import { formatPauses, watchStatus } from './watch';
import { registerCompletionCommand } from './completion';
import { EXIT_CODES_HELP, validateJson } from './json-output';
import { CdcService } from '../core/runtime/service';
import { tuneGarbageCollection, YOUNG_GENERATION_FLAG, youngGenerationBounded } from '../core/runtime/gc-tuning';
import { components } from '../app/registry';

const program = new Command()
  .name('cdc')
  .description('tidewater: change-data-capture from Postgres and MySQL/MariaDB into Redis, Elasticsearch and warehouse tables')
  .showHelpAfterError();

program
  .command('validate')
  .description('check a config file; exit 0 when valid, 1 with the problems otherwise')
  .requiredOption('-c, --config <file>', 'the YAML config file')
  .option('--json', 'print JSON: { file, valid, sources, sinks } or { file, valid: false, error }')
  .action((options: { config: string; json?: boolean }) => {
    if (options.json) return validateJson(options.config);
    const config = loadConfig(options.config);
    process.stdout.write(
      `${options.config}: valid (${config.sources.length} source(s): ${config.sources.map((s) => s.name).join(', ') || 'none'}; ` +
        `${config.sinks.length} sink(s): ${config.sinks.map((s) => s.name).join(', ') || 'none'})\n`,
    );
  });

program
  .command('run')
  .description('run the service until SIGTERM or SIGINT')
  .requiredOption('-c, --config <file>', 'the YAML config file')
  .addOption(
    new Option('--only <side>', 'run only one side of the pipeline (processes sharing a pipeline need log type kafka)').choices(['sources', 'sinks']),
  )
  .option('--sink <name>', 'run only this sink (implies --only sinks)')
  .addOption(new Option('--log-format <format>', 'json lines or pretty lines (default: pretty on a terminal, json otherwise)').choices(logFormats).env('CDC_LOG_FORMAT'))
  .addOption(new Option('--log-level <level>', 'drop records below this level (default: service.logLevel, else info)').choices(logLevels).env('CDC_LOG_LEVEL'))
  .action(async (options: { config: string; only?: 'sources' | 'sinks'; sink?: string; logFormat?: LogFormat; logLevel?: LogLevel }) => {
    if (options.only === 'sources' && options.sink) {
      throw new Error(`--only sources runs no sink, so --sink ${options.sink} contradicts it: drop one of the two`);
    }
    const config = loadConfig(options.config);
    const logger = createLogger('cdc', { format: options.logFormat, level: options.logLevel ?? config.service.logLevel }); // the logger redacts every line (config/redact.ts)
    const v8Flags = tuneGarbageCollection(); // keeps the heap near its live data (core/runtime/gc-tuning.ts)
    if (v8Flags) logger.info(`V8 flags: ${v8Flags} (CDC_V8_FLAGS overrides)`);
    if (!youngGenerationBounded()) {
      logger.info(`V8's young generation is at its default size (up to ~25 MB more resident memory): start node with ${YOUNG_GENERATION_FLAG}, as the cdc command, the Docker image and the systemd unit do`);
    }
    const service = new CdcService(config, components, logger, { only: options.only, sink: options.sink });
    let stopping = false;
    const shutdown = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info(`received ${signal}: stopping (a second signal does not speed this up; kill -9 is safe but replays)`);
      service.stop().then(
        () => process.exit(0),
        (error: Error) => {
          logger.error(`stop failed: ${error.message}`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
    await service.start();
  });

program
  .command('status')
  .description("show the running service's positions, lag, snapshot and resync progress")
  .requiredOption('-c, --config <file>', 'the YAML config file')
  .option('--json', 'print JSON')
  .option('--watch [seconds]', 'redraw in place every N seconds (default 2) with lag and progress bars; Ctrl-C stops')
  .action(async (options: { config: string; json?: boolean; watch?: string | boolean }) => {
    if (options.watch) return watchStatus(loadConfig(options.config), Number(options.watch === true ? 2 : options.watch) || 2, options.json);
    const status = redact((await callAdmin(loadConfig(options.config), 'GET', '/api/status')) as StatusReport);
    if (options.json) return void process.stdout.write(JSON.stringify(status, null, 2) + '\n');
    process.stdout.write(formatStatus(status) + formatPauses(status) + formatHistoryEvents(status) + formatResyncFailures(status));
  });

program
  .command('resync')
  .description('re-read tables from a source while streaming goes on, without locks')
  .requiredOption('-c, --config <file>', 'the YAML config file')
  .requiredOption('--source <name>', 'the source to re-read from')
  .option('--table <schema.table...>', 'tables to re-read')
  .option('--where <condition>', "only rows matching this condition over the table's columns (comparisons, IN, BETWEEN, IS NULL, LIKE, AND/OR/NOT)")
  .option('--cancel <requestId>', 'stop a queued or running resync (the id `cdc resync` printed) and drop it from the queue')
  .option('--json', 'print JSON: { requestId }')
  .action(async (options: { config: string; source: string; table?: string[]; where?: string; cancel?: string; json?: boolean }) => {
    const config = loadConfig(options.config);
    if (options.cancel !== undefined) {
      if (options.table || options.where) throw new Error('--cancel stops a resync already asked for: drop --table and --where');
      const cancelled = (await callAdmin(config, 'POST', '/api/resync/cancel', { source: options.source, requestId: options.cancel })) as { requestId: string; cancelled: string[] };
      if (options.json) return void process.stdout.write(JSON.stringify(cancelled, null, 2) + '\n');
      return void process.stdout.write(`resync ${cancelled.requestId} cancelled; tables it had left: ${cancelled.cancelled.join(', ')}\n`);
    }
    if (!options.table?.length) throw new Error('resync needs --table SCHEMA.TABLE (or --cancel ID)');
    const result = (await callAdminWhenStreaming(config, '/api/resync', { source: options.source, tables: options.table, where: options.where })) as { requestId: string; joined?: boolean };
    if (options.json) return void process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    if (result.joined) {
      return void process.stdout.write(`resync ${result.requestId} already waits to re-read ${options.table.join(', ')}${options.where ? ' with the same condition' : ''} and has not started: this request joined it; watch it with: cdc status -c ${options.config}\n`);
    }
    process.stdout.write(`resync ${result.requestId} queued for ${options.table.join(', ')}; watch it with: cdc status -c ${options.config}\n`);
  });

program
  .command('reprocess')
  .description('rebuild a sink from log offset zero into a new generation; readers switch once it has caught up')
  .requiredOption('-c, --config <file>', 'the YAML config file')
  .requiredOption('--sink <name>', 'the sink to rebuild')
  .option('--json', 'print JSON: { sink, generation, consumer }')
  .action(async (options: { config: string; sink: string; json?: boolean }) => {
    const result = (await callAdmin(loadConfig(options.config), 'POST', '/api/reprocess', { sink: options.sink })) as { generation: number; consumer: string };
    if (options.json) return void process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(`reprocess of sink ${options.sink} started: building generation ${result.generation} from log offset zero (consumer ${result.consumer}); ` +
      `the live generation serves until the switch; watch it with: cdc status -c ${options.config}\n`);
  });

program
  .command('verify')
  .description("compare source rows with a sink's rows; exit 0 when equal, 2 when differences were found")
  .requiredOption('-c, --config <file>', 'the YAML config file')
  .option('--sink <name>', 'only this sink')
  .option('--table <schema.table...>', 'only these tables')
  .option('--repair', 'ask the running service to resync the missing and different keys; delete extra keys from the sink')
  .option('--json', 'print JSON: { differences, repair, report: [lines] }')
  .action(async (options: { config: string; sink?: string; table?: string[]; repair?: boolean; json?: boolean }) => {
    const report: string[] = [];
    const differences = await runVerify(loadConfig(options.config), options, (line) => (options.json ? report.push(line) : process.stdout.write(line + '\n')));
    if (options.json) {
      process.stdout.write(JSON.stringify({ differences, repair: !!options.repair, report }, null, 2) + '\n');
      if (differences > 0) process.exitCode = 2;
      return;
    }
    process.stdout.write(differences === 0 ? 'verify: no differences\n' : `verify: ${differences} difference(s)${options.repair ? '; repairs queued, run verify again once they are done' : ''}\n`);
    if (differences > 0) process.exitCode = 2;
  });

registerPauseCommands(program);
registerDeadLetterCommands(program);
registerCompletionCommand(program);
program.addHelpText('after', EXIT_CODES_HELP);

/** What happened to a source's history (positions went backwards, failover, lost slot) and what it did. */
function formatHistoryEvents(status: StatusReport): string {
  const lines: string[] = [];
  for (const source of status.sources as Array<{ name: string; historyEvents?: Array<{ kind: string; epoch: number; detail: string; at: string }> }>) {
    for (const h of source.historyEvents ?? []) lines.push(`  source ${source.name}: ${h.kind} at ${h.at} (epoch ${h.epoch}): ${h.detail}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** Resync tasks dropped because their request could not succeed (e.g. a WHERE failing on the data). */
function formatResyncFailures(status: StatusReport): string {
  const lines: string[] = [];
  for (const source of status.sources as Array<{ name: string; resyncFailures?: Array<{ requestId: string; table: string; where?: string; error: string; at: string }> }>) {
    for (const f of source.resyncFailures ?? []) lines.push(`  source ${source.name}: resync ${f.requestId} of ${f.table}${f.where ? ` where ${f.where}` : ''} dropped at ${f.at}: ${f.error}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

program.parseAsync(process.argv).catch((error: Error) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`cdc: ${redactText(error.message)}\n`);
  }
  process.exit(1);
});
