import type { DuckDBInstance } from '@duckdb/node-api';
import { collectGarbageNow } from '../../core/runtime/collect-garbage';

/**
 * A database file can be open once per process: sinks on the same file (the
 * live generation and a rebuild, `cdc reprocess`) share the instance; the
 * last one to close releases the file (and its lock).
 *
 * Writers on a shared file take turns, one transaction (or one statement
 * outside a transaction) at a time. The DuckDB sink replaces a row by
 * appending its new image and deleting the old one by the row id it read
 * earlier in the same transaction; a checkpoint committed meanwhile by
 * another connection may vacuum deleted rows and move row ids under it
 * (DuckDB 1.5: the live table of a fault-suite run lost 1,992 rows and kept
 * 2,000 old images twice while a rebuild committed beside it; reproduced in
 * warehouse-duckdb-generations.test.ts). With turns, no other connection
 * commits, and so no checkpoint runs, while a transaction is open.
 */
export interface SharedDatabase {
  instance: DuckDBInstance;
  /** Waits for the file's write turn; the returned function gives it back (once; later calls do nothing). */
  takeTurn(): Promise<() => void>;
}

interface Entry {
  database: Promise<SharedDatabase>;
  users: number;
}

const databases = new Map<string, Entry>();

/** @duckdb/node-api is an optional dependency (70 MB): loaded only when a DuckDB warehouse opens. */
async function loadDuckDb(): Promise<typeof import('@duckdb/node-api')> {
  try {
    return await import('@duckdb/node-api');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
    throw new Error('the DuckDB warehouse needs the optional package @duckdb/node-api: run npm install @duckdb/node-api', { cause: error });
  }
}

/** A first-come, first-served lock held across awaits. */
function turns(): () => Promise<() => void> {
  let last: Promise<void> = Promise.resolve();
  return () => {
    let giveBack!: () => void;
    const done = new Promise<void>((resolve) => (giveBack = resolve));
    const mine = last.then(() => {
      let given = false;
      return () => {
        if (given) return;
        given = true;
        giveBack();
      };
    });
    last = last.then(() => done);
    return mine;
  };
}

export async function acquireDatabase(path: string): Promise<SharedDatabase> {
  let entry = databases.get(path);
  if (!entry) {
    const database = loadDuckDb().then(async (duckdb) => ({ instance: await duckdb.DuckDBInstance.create(path), takeTurn: turns() }));
    entry = { database, users: 0 };
    databases.set(path, entry);
    database.catch(() => databases.delete(path));
  }
  entry.users++;
  return entry.database;
}

export async function releaseDatabase(path: string): Promise<void> {
  const entry = databases.get(path);
  if (!entry || --entry.users > 0) return;
  databases.delete(path);
  const { instance } = await entry.database;
  // Closing checkpoints the write-ahead log (up to half the memory limit), which takes memory of its own:
  // the JS garbage goes first, so the two do not add up at the service's stop.
  collectGarbageNow();
  instance.closeSync();
}
