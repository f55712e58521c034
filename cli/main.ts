#!/usr/bin/env node
import { Command, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/load';
import { createLogger } from '../core/runtime/logger';
import { callAdmin } from './admin-client';
import { formatStatus, StatusReport } from './format-status';
import { CdcService } from '../core/runtime/service';

const program = new Command()
  .name('cdc')
  .description('tidewater: change-data-capture from Postgres into Redis and more')
  .showHelpAfterError();

program
  .command('validate')
  .description('check a config file; exit 0 when valid, 1 with the problems otherwise')
  .requiredOption('-c, --config <file>', 'the YAML config file')
  .action((options: { config: string }) => {
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
  .action(async (options: { config: string; only?: 'sources' | 'sinks'; sink?: string }) => {
    if (options.only === 'sources' && options.sink) {
      throw new Error(`--only sources runs no sink, so --sink ${options.sink} contradicts it: drop one of the two`);
    }
    const config = loadConfig(options.config);
    const logger = createLogger('cdc');
    const service = new CdcService(config, logger, { only: options.only, sink: options.sink });
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
  .action(async (options: { config: string; json?: boolean }) => {
    const status = (await callAdmin(loadConfig(options.config), 'GET', '/api/status')) as StatusReport;
    if (options.json) return void process.stdout.write(JSON.stringify(status, null, 2) + '\n');
    process.stdout.write(formatStatus(status));
  });

program
  .command('resync')
  .description('re-read tables from a source while streaming goes on, without locks')
  .requiredOption('-c, --config <file>', 'the YAML config file')
  .requiredOption('--source <name>', 'the source to re-read from')
  .requiredOption('--table <schema.table...>', 'tables to re-read')
  .option('--where <condition>', 'only rows matching this SQL condition')
  .action(async (options: { config: string; source: string; table: string[]; where?: string }) => {
    const config = loadConfig(options.config);
    const result = (await callAdmin(config, 'POST', '/api/resync', { source: options.source, tables: options.table, where: options.where })) as { requestId: string };
    process.stdout.write(`resync ${result.requestId} queued for ${options.table.join(', ')}; watch it with: cdc status -c ${options.config}\n`);
  });

program.parseAsync(process.argv).catch((error: Error) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`cdc: ${error.message}\n`);
  }
  process.exit(1);
});
