import { LoadedConfig } from '../config/load';
import { ChangeEvent } from '../core/event/change-event';
import { SinkConfig, SourceConfig } from '../app/registry';
import { MysqlSourceRowReader } from '../connectors/mysql/verify-reader';
import { PgSourceRowReader } from '../connectors/postgres/verify-reader';
import { SinkReader, SourceRowReader } from '../core/verify/sink-reader';
import { TableDifferences, verifyTable } from '../core/verify/verify-table';
import { RedisSinkReader } from '../sinks/redis/reader';
import { projectEvent } from '../sinks/shared/columns';
import { TableFilter, TableOptions } from '../sinks/shared/table-filter';
import { callAdmin } from './admin-client';

export interface VerifyOptions {
  sink?: string;
  table?: string[];
  repair?: boolean;
}

/** Keys per resync request: keeps the `where` well under the admin API's 64 KiB body limit. */
const KEYS_PER_REPAIR = 500;

/** `cdc verify`: source rows vs each chosen sink's rows; returns the number of differences found. */
export async function runVerify(config: LoadedConfig, options: VerifyOptions, print: (line: string) => void): Promise<number> {
  const sinks = config.sinks.filter((s) => !options.sink || s.name === options.sink);
  if (options.sink && sinks.length === 0) throw new Error(`no sink named "${options.sink}" in ${config.configFile}`);
  let differences = 0;
  for (const sinkConfig of sinks) {
    const sink = sinkReader(sinkConfig);
    if (!sink) {
      print(`sink ${sinkConfig.name}: verify does not support sinks of type ${sinkConfig.type} yet; skipped`);
      continue;
    }
    const filter = new TableFilter(sinkConfig.tables, sinkConfig.exclude);
    const tableOptions = new TableOptions(sinkConfig.tableOptions as Record<string, object>);
    const project = (schema: string, table: string, row: Record<string, unknown>) => {
      const event = { key: {}, before: null, after: row } as unknown as ChangeEvent;
      return JSON.parse(JSON.stringify(projectEvent(event, tableOptions.for(schema, table)).after)) as Record<string, unknown>;
    };
    try {
      for (const sourceConfig of config.sources) {
        const source = sourceReader(sourceConfig);
        if (!source) {
          print(`source ${sourceConfig.name}: verify does not support sources of type ${sourceConfig.type} yet; skipped`);
          continue;
        }
        try {
          for (const table of await source.tables()) {
            const [schema, name] = table.split('.');
            if (!filter.includes(schema, name) || (options.table && !options.table.includes(table))) continue;
            const found = await verifyTable({ source, sink, table, project });
            differences += report(sinkConfig.name, found, print);
            if (options.repair) await repair(config, sourceConfig.name, source, found, print);
          }
        } finally {
          await source.close();
        }
      }
    } finally {
      await sink.close();
    }
  }
  return differences;
}

function report(sink: string, found: TableDifferences, print: (line: string) => void): number {
  const count = found.missing.length + found.extra.length + found.different.length;
  print(`sink ${sink}, table ${found.table}: ${found.rowsCompared} source rows compared, ${count === 0 ? 'no differences' : `${found.missing.length} missing, ${found.extra.length} extra, ${found.different.length} different`}`);
  for (const [what, keys] of [['missing', found.missing], ['extra', found.extra], ['different', found.different]] as const) {
    for (const key of keys) print(`  ${what} ${found.table}:${key}`);
  }
  return count;
}

/** Asks the running service to resync exactly the missing and different keys. */
async function repair(config: LoadedConfig, source: string, reader: SourceRowReader, found: TableDifferences, print: (line: string) => void): Promise<void> {
  const keys = [...found.missing, ...found.different];
  for (let i = 0; i < keys.length; i += KEYS_PER_REPAIR) {
    const where = await reader.whereKeys(found.table, keys.slice(i, i + KEYS_PER_REPAIR));
    const result = (await callAdmin(config, 'POST', '/api/resync', { source, tables: [found.table], where })) as { requestId: string };
    print(`  repair: resync ${result.requestId} queued for ${Math.min(KEYS_PER_REPAIR, keys.length - i)} key(s) of ${found.table}`);
  }
  if (found.extra.length > 0) {
    print(`  ${found.extra.length} extra key(s) of ${found.table} are not in the source: a resync re-reads source rows only, so delete them from the sink by hand (or reprocess the sink)`);
  }
}

function sinkReader(config: SinkConfig): SinkReader | null {
  if (config.type === 'redis') return new RedisSinkReader(config);
  return null;
}

function sourceReader(config: SourceConfig): SourceRowReader | null {
  if (config.type === 'postgres') return new PgSourceRowReader(config.url, config.tables);
  if (config.type === 'mysql') return new MysqlSourceRowReader(config);
  return null;
}
