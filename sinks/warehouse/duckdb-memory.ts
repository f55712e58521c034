// How the DuckDB warehouse sizes DuckDB's memory: its settings' defaults, the
// room a transaction of big values gets, and the errors that say memory ran out.

/**
 * DuckDB checkpoints when its WAL reaches 16 MB, rewriting every row group the
 * MERGEs touched: at CDC rates that is most commits' cost, and a larger WAL
 * costs only recovery time after a crash. But what is not checkpointed yet
 * (updated rows, the WAL's tables) stays in memory: a threshold of half the
 * memoryLimit leaves the other half to the MERGE (256 MB under the 64 MB
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
 * Bytes of DuckDB memory per byte of changes in a transaction (roughEventBytes),
 * on top of the configured limit, once they would not fit in it. One 50 MB
 * value, applied alone: the staging row, the MERGE's JSON extraction and the
 * history row took the process from 125 to 620 MB, and the transaction failed
 * under a 256MB memory_limit, passed under 512MB; two 3 MB values failed under
 * 53MB and passed under 64MB.
 */
export const BIG_CHANGE_MEMORY_FACTOR = 12;
/** A change this big or bigger makes its transaction one of big changes (beforeTransaction). */
export const BIG_CHANGE_BYTES = 1024 * 1024;
/** Between transactions the limit keeps this many times the biggest change's bytes above the configured one (see afterCommit). */
export const CHECKPOINT_ROOM_FACTOR = 2;
export const MIB = 1024 * 1024;

/**
 * DuckDB's "Out of Memory Error", or a checkpoint that could not allocate or
 * pin a block under the limit: after a COMMIT that is durable it invalidates
 * the database (FATAL); a COMMIT sent with the transaction's last statements
 * fails as a whole instead ("Failed to commit: failed to pin block").
 */
export function isOutOfMemory(error: unknown): boolean {
  return /Out of Memory Error|could not allocate block|failed to pin block/i.test(String((error as Error)?.message ?? error));
}

/** Bytes of a size such as `64MB` or `1.5GiB` (the warehouse config's memoryLimit), or null. */
export function parseSize(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)\s*(KB|MB|GB|KiB|MiB|GiB)$/i.exec(text.trim());
  if (!match) return null;
  const unit = match[2].toUpperCase().replace('I', '');
  return Number(match[1]) * 1024 ** (unit === 'KB' ? 1 : unit === 'MB' ? 2 : 3);
}
