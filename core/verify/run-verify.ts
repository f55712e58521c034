import { SourceRowReader, VerifyTarget } from './sink-reader';
import { splitTable, TableDifferences, verifyTable } from './verify-table';

/** Keys per resync request: keeps the `where` well under the admin API's 64 KiB body limit. */
const KEYS_PER_REPAIR = 500;

export interface VerifyRun {
  sink: { name: string; createTarget(): VerifyTarget };
  sources: ReadonlyArray<{ name: string; createReader(): SourceRowReader }>;
  /** Only these tables (schema.table); all the sink takes when absent. */
  tables?: readonly string[];
  /** With --repair: queues a resync of the rows `where` selects; returns its request id. */
  resync?: (source: string, table: string, where: string) => Promise<string>;
  print(line: string): void;
}

/**
 * `cdc verify` for one sink (run by the CLI, or by the service for a sink
 * only it can open): every table the sink takes, from every source, compared
 * by verifyTable(); with `resync`, repaired. Returns the number of differences.
 */
export async function verifySink(run: VerifyRun): Promise<number> {
  const target = run.sink.createTarget();
  let differences = 0;
  try {
    for (const sourceConfig of run.sources) {
      const source = sourceConfig.createReader();
      try {
        for (const table of await source.tables()) {
          const [schema, name] = splitTable(table);
          if (!target.includes(schema, name) || (run.tables && !run.tables.includes(table))) continue;
          const found = await verifyTable({ source, sink: target.reader, table, project: target.project });
          differences += report(run.sink.name, found, run.print);
          if (run.resync) await repair(sourceConfig.name, source, target, found, run.resync, run.print);
        }
      } finally {
        await source.close();
      }
    }
  } finally {
    await target.reader.close();
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
async function repair(
  source: string, reader: SourceRowReader, target: VerifyTarget, found: TableDifferences,
  resync: (source: string, table: string, where: string) => Promise<string>, print: (line: string) => void,
): Promise<void> {
  const keys = [...found.missing, ...found.different];
  for (let i = 0; i < keys.length; i += KEYS_PER_REPAIR) {
    const requestId = await resync(source, found.table, await reader.whereKeys(found.table, keys.slice(i, i + KEYS_PER_REPAIR)));
    print(`  repair: resync ${requestId} queued for ${Math.min(KEYS_PER_REPAIR, keys.length - i)} key(s) of ${found.table}`);
  }
  if (found.extra.length > 0) {
    const [schema, name] = splitTable(found.table);
    const rows = found.extra.map((key) => ({ key, version: found.extraStamps.get(key)! }));
    const removed = await target.reader.deleteKeys(schema, name, found.keyColumns, rows);
    const kept = found.extra.length - removed;
    print(`  repair: deleted ${removed} extra key(s) of ${found.table} the source does not have${kept > 0 ? `; ${kept} left alone: the sink holds a newer write of them now, or could not guard the delete (see the warning; verify again)` : ''}`);
  }
}
