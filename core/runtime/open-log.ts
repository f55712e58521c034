import type { LoadedConfig } from '../../config/load';
import { Metrics } from '../http/metrics';
import { ChangeLog } from '../log/change-log';
import { createLog, describeLog } from '../log/create-log';
import type { Logger } from './logger';
import type { RunOptions } from './service';

/**
 * Opens the configured log for this process. The embedded log belongs to
 * one process (its directory is locked), so splitting sources and sinks over
 * processes (`--only`, `--sink`) needs the Kafka log; the lock error says so.
 */
export async function openLog(config: LoadedConfig, options: RunOptions, logger: Logger): Promise<ChangeLog> {
  const tables = config.sources.flatMap((s) => ((s as { tables?: unknown }).tables as string[] | undefined) ?? []);
  const context = { serviceName: config.service.name, dataDir: config.service.dataDir, tables, logger };
  const log = createLog(config.log, context);
  try {
    await log.open();
  } catch (error) {
    await log.close().catch(() => undefined);
    const message = (error as Error).message;
    if (config.log.type === 'embedded' && (options.only || options.sink) && /is in use by /.test(message)) {
      throw new Error(
        `${message}. Running sources and sinks in separate processes (--only, --sink) needs a log they can share: ` +
          `the embedded log belongs to the one process that opened it. Run a single \`cdc run\` without --only, ` +
          `or configure log: { type: kafka, brokers: [...] } in ${config.configFile}`,
      );
    }
    throw new Error(`cannot open the ${describeLog(config.log, context)}: ${message}`);
  }
  return log;
}

/** Keeps cdc_log_end_offset{partition} and (embedded log) cdc_log_disk_free_bytes current in every process, sinks or not. */
export function watchLogEnds(log: ChangeLog, metrics: Metrics, intervalMs = 5000): NodeJS.Timeout {
  const tick = () => {
    log.endOffsets().then(
      (ends) => ends.forEach((end, partition) => metrics.logEndOffset.set({ partition: String(partition) }, end)),
      () => undefined, // a closed or unreachable log: the next tick tries again
    );
    log.diskFreeBytes?.().then(
      (free) => free !== undefined && metrics.logDiskFreeBytes.set(free),
      () => undefined,
    );
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return timer;
}
