import { dirname } from 'node:path';
import { LoadedConfig } from '../config/load';
import { createSourceRowReader, createVerifyTarget, SinkConfig } from '../app/registry';
import { createLogger } from '../core/runtime/logger';
import { isHeldByAnotherProcess } from '../core/verify/sink-reader';
import { verifySink } from '../core/verify/run-verify';
import { callAdmin, callAdminWhenStreaming } from './admin-client';

export interface VerifyOptions {
  sink?: string;
  table?: string[];
  repair?: boolean;
}

/**
 * `cdc verify`: source rows vs each chosen sink's rows; returns the number of
 * differences found. A sink only the running service can open (a DuckDB file
 * it holds) is verified by the service (POST /api/verify), same output.
 */
export async function runVerify(config: LoadedConfig, options: VerifyOptions, print: (line: string) => void): Promise<number> {
  const sinks = config.sinks.filter((s) => !options.sink || s.name === options.sink);
  if (options.sink && sinks.length === 0) throw new Error(`no sink named "${options.sink}" in ${config.configFile}`);
  const context = { logger: createLogger('verify', { level: 'warn' }), dataDir: config.service.dataDir, baseDir: dirname(config.configFile) };
  const resync = async (source: string, table: string, where: string) =>
    ((await callAdminWhenStreaming(config, '/api/resync', { source, tables: [table], where })) as { requestId: string }).requestId;
  let differences = 0;
  for (const sinkConfig of sinks) {
    try {
      differences += await verifySink({
        sink: { name: sinkConfig.name, createTarget: () => createVerifyTarget(sinkConfig, context) },
        sources: config.sources.map((s) => ({ name: s.name, createReader: () => createSourceRowReader(s) })),
        tables: options.table,
        resync: options.repair ? resync : undefined,
        print,
      });
    } catch (error) {
      if (!isHeldByAnotherProcess(error)) throw error;
      differences += await verifyInService(config, sinkConfig, options, print);
    }
  }
  return differences;
}

async function verifyInService(config: LoadedConfig, sink: SinkConfig, options: VerifyOptions, print: (line: string) => void): Promise<number> {
  print(`sink ${sink.name}: its files are held by the running service; verifying there`);
  const result = (await callAdmin(config, 'POST', '/api/verify', { sink: sink.name, tables: options.table, repair: !!options.repair })) as { differences: number; report: string[] };
  result.report.forEach((line) => print(line));
  return result.differences;
}
