// How the warehouse sink cuts what it has buffered into transactions: log
// order, and a bound on records and bytes per transaction.
import { DEFAULT_MAX_BATCH, LogRecord } from '../../core/log/change-log';
import { roughEventBytes } from '../../core/log/large-record-gc';
import { TransactionSize } from './engine';

/**
 * Records per transaction at most: the flush of partitions released together
 * (or of a Kafka fetch's partitions) is split beyond this, which bounds the
 * staging copy (JS and DuckDB) whatever the partition count. The warehouse
 * takes the runner's batches as they come (DEFAULT_MAX_BATCH): asking for
 * 4,000 per partition (16,000 per transaction over four) ran DuckDB's default
 * 64MB memory_limit out in the fault suite's catch-up after a resync and
 * showed no gain in the sink benchmark.
 */
export const MAX_TRANSACTION_RECORDS = 4 * DEFAULT_MAX_BATCH;

/**
 * And at most about this many bytes of row images (roughEventBytes), a lone
 * record excepted: rows with multi-MB values go through a transaction or two
 * at a time instead of all together. DuckDB holds several copies of a value
 * while it applies one (staging, JSON extraction, table, history): three 5 MB
 * values in one transaction ran its default 64MB memory_limit out, and the
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
