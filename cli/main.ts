#!/usr/bin/env node
import { Command, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/load';
import { createLogger } from '../core/runtime/logger';
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
  .addOption(new Option('--only <side>', 'run only one side of the pipeline').choices(['sources', 'sinks']))
  .option('--sink <name>', 'run only this sink')
  .action(async (options: { config: string; only?: 'sources' | 'sinks'; sink?: string }) => {
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

program.parseAsync(process.argv).catch((error: Error) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`cdc: ${error.message}\n`);
  }
  process.exit(1);
});
