import { dirname } from 'node:path';
import { LoadedConfig } from '../config/load';
import { createSourceRowReader, createVerifyTarget } from '../app/registry';
import { createLogger } from '../core/runtime/logger';
import { SourceRowReader, VerifyTarget } from '../core/verify/sink-reader';
import { splitTable, TableDifferences, verifyTable } from '../core/verify/verify-table';
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
  const context = { logger: createLogger('verify', { level: 'warn' }), dataDir: config.service.dataDir, baseDir: dirname(config.configFile) };
  let differences = 0;
  for (const sinkConfig of sinks) {
    const target = createVerifyTarget(sinkConfig, context);
    try {
      for (const sourceConfig of config.sources) {
        const source = createSourceRowReader(sourceConfig);
        try {
          for (const table of await source.tables()) {
            const [schema, name] = splitTable(table);
            if (!target.includes(schema, name) || (options.table && !options.table.includes(table))) continue;
            const found = await verifyTable({ source, sink: target.reader, table, project: target.project });
            differences += report(sinkConfig.name, found, print);
            if (options.repair) await repair(config, sourceConfig.name, source, target, found, print);
          }
        } finally {
          await source.close();
        }
      }
    } finally {
      await target.reader.close();
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

/**
 * Missing and different keys: the running service resyncs exactly those keys
 * (through the source, so versions stay right). Extra keys: a resync reads
 * source rows only, so it cannot remove them; the sink deletes them itself,
 * each only while it still holds the row at the stamp read before the source
 * was found without it (SinkReader.deleteKeys: a newer write always wins).
 */
async function repair(config: LoadedConfig, source: string, reader: SourceRowReader, target: VerifyTarget, found: TableDifferences, print: (line: string) => void): Promise<void> {
  const keys = [...found.missing, ...found.different];
  for (let i = 0; i < keys.length; i += KEYS_PER_REPAIR) {
    const where = await reader.whereKeys(found.table, keys.slice(i, i + KEYS_PER_REPAIR));
    const result = (await callAdmin(config, 'POST', '/api/resync', { source, tables: [found.table], where })) as { requestId: string };
    print(`  repair: resync ${result.requestId} queued for ${Math.min(KEYS_PER_REPAIR, keys.length - i)} key(s) of ${found.table}`);
  }
  if (found.extra.length > 0) {
    const [schema, name] = splitTable(found.table);
    const rows = found.extra.map((key) => ({ key, version: found.extraStamps.get(key)! }));
    const removed = await target.reader.deleteKeys(schema, name, found.keyColumns, rows);
    const kept = found.extra.length - removed;
    print(`  repair: deleted ${removed} extra key(s) of ${found.table} the source does not have${kept > 0 ? `; ${kept} left alone: the sink holds a newer write of them now (verify again)` : ''}`);
  }
}
