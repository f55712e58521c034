// DuckDB's own resources for a warehouse sink: its defaults (80% of RAM, a thread per core,
// vacuuming checkpoints) are sized for a database server, not a sink beside others.

/** The warehouse config's DuckDB settings. */
export interface DuckDbSettings {
  /** `SET memory_limit` (buffer pool, caches and operator memory; bigger work spills to <file>.tmp). */
  memoryLimit?: string;
  /** `SET threads`. */
  threads?: number;
}

/**
 * DuckDB checkpoints when its WAL reaches 16 MB, rewriting every row group the
 * MERGEs touched: at CDC rates that is most commits' cost, and a larger WAL
 * costs only recovery time after a crash. But what is not checkpointed yet
 * (updated rows, the WAL's tables) stays in memory: a threshold of half the
 * memoryLimit leaves the other half to the MERGE (256 MB under a 64 MB
 * default ran out of memory after 300k changes into a 100k-row table; half
 * held 1M, a quarter cost a third of the throughput in the sink benchmark).
 */
export function checkpointThreshold(memoryLimit: string | undefined): string {
  const most = 256e6;
  const limit = (memoryLimit ? parseSize(memoryLimit) : null) ?? Infinity;
  return `${Math.floor(Math.max(1e6, Math.min(most, limit / 2)) / 1000)}KB`;
}

/**
 * DuckDB's allocator (jemalloc) keeps what it frees for reuse and returns it to
 * the system only when a single release is bigger than this (default 512 MB):
 * after a batch of multi-MB values the process kept ~70 MB it no longer used.
 * Replaying 200k rows then three 5 MB values into one warehouse: peak RSS
 * 331–342 MB by default, 281–293 at 8 MB, 258–260 at 4 MB; the sink
 * benchmark's rate within its spread at 4 and 8 MB (1 MB cost a third of it).
 */
export const BULK_FREE_RETURNS_MEMORY_FROM = '4MB';

/**
 * DuckDB's checkpoint also merges row groups with deleted rows ("vacuum", up
 * to 100 tasks by default). Here one task alone made every other checkpoint
 * cost 1.2-1.8 s instead of 0.2 s: a million inserts into a table and its
 * history took 13.4 s with it, 7.3 s without; the sink benchmark's 2M-row
 * insert replay 27.7k -> 35.5k events/s, its update replay (3M changes over
 * 50k rows) 31.9k -> 37.4k. Without it a row group's space comes back once all
 * its rows are deleted (dropped at checkpoint), not before: under 5M updates
 * of 50k rows the table held 181k-393k physical rows (62k-274k with vacuum),
 * bounded, and the key lookups took as long.
 */
export const VACUUM_TASKS = 0;

/** A size such as `64MB` or `1.5GiB`: what the config accepts for memoryLimit is what parseSize() reads. */
export const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*(KB|MB|GB|KiB|MiB|GiB)$/i;

/** Bytes of a size such as `64MB` or `1.5GiB` (the warehouse config's memoryLimit), or null. */
export function parseSize(text: string): number | null {
  const match = SIZE_PATTERN.exec(text.trim());
  if (!match) return null;
  const unit = match[2].toUpperCase().replace('I', '');
  return Number(match[1]) * 1024 ** (unit === 'KB' ? 1 : unit === 'MB' ? 2 : 3);
}
