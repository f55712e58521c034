// How the warehouse sink cuts what it buffered into transactions: how many
// records it reads at a time, and how many records and bytes one transaction takes.
import { roughEventBytes } from '../../core/event/rough-size';
import { DEFAULT_MAX_BATCH, LogRecord } from '../../core/log/change-log';
import { TransactionSize } from './engine';

/**
 * Records per log read the warehouse asks its runner for (Sink.batchRecords):
 * each transaction pays a fixed cost (staging, the stored-rows join, a commit,
 * and round trips that wait for the event loop), so it takes two reads' worth.
 * A 2,000,000-row transaction in the fault suite (three sinks sharing the JS
 * thread) drained in 310 / 316 s with reads of 1,000, 215 s with 2,000 and 216 s
 * with 4,000 (same seed, one run each). An earlier session saw 16,000 per
 * transaction run DuckDB's then-default 64MB memory_limit out; the limit is
 * now raised for a transaction that needs it, and checkpoints no longer vacuum.
 */
export const WAREHOUSE_BATCH_RECORDS = 2 * DEFAULT_MAX_BATCH;

/**
 * Records per transaction at most: the flush of partitions released together
 * (or of a Kafka fetch's partitions) is split beyond this, which bounds the
 * staging copy (JS and DuckDB) whatever the partition count. The same
 * 2,000,000-row fault case with reads of 2,000: 193 s / 314 MB peak at 8,000
 * per transaction, 247 s / 313 MB at 4,000 (one run each).
 */
export const MAX_TRANSACTION_RECORDS = 4 * WAREHOUSE_BATCH_RECORDS;

/**
 * And at most about this many bytes of row images (roughEventBytes), a lone
 * record excepted: rows with multi-MB values go through a transaction or two
 * at a time instead of all together. DuckDB holds several copies of a value
 * while it applies one (staging, JSON extraction, table, history): three 5 MB
 * values in one transaction ran its then-default 64MB memory_limit out, and the
 * retries that raise the limit cost more memory still.
 */
export const MAX_TRANSACTION_BYTES = 8 * 1024 * 1024;

/** How many of `records`, from `start`, the next transaction takes (at least one). */
export function transactionLength(records: readonly LogRecord[], start: number): number {
  return nextTransaction(records, start).length;
}

/** The next transaction from `start`: how many records it takes, and their size (each record sized once). */
export function nextTransaction(records: readonly LogRecord[], start: number): { length: number; size: TransactionSize } {
  let bytes = 0;
  let largestEventBytes = 0;
  let end = start;
  while (end < records.length && end - start < MAX_TRANSACTION_RECORDS) {
    const size = roughEventBytes(records[end].event);
    if (end > start && bytes + size > MAX_TRANSACTION_BYTES) break;
    bytes += size;
    if (size > largestEventBytes) largestEventBytes = size;
    end++;
  }
  return { length: end - start, size: { bytes, largestEventBytes } };
}

/** Log order within a partition, partitions (and topics) one after the other. */
export function placeOrder(a: LogRecord, b: LogRecord): number {
  const ta = a.topic ?? '';
  const tb = b.topic ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.partition - b.partition || a.offset - b.offset;
}
