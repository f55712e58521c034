import { parseVersion } from '../../core/event/version';

/**
 * Elasticsearch external versions are longs (at most 2^63 - 1), while our
 * versions are 96 bits (DESIGN §2). Packed as commit position × 2^20 + index
 * within the transaction, which preserves order as long as the position is
 * below 2^43 (8 TiB of Postgres WAL) and the index below 2^20 (a million
 * changes in one transaction). A version outside that range cannot be ordered
 * by ES: it is refused with an error that says so rather than reordered.
 */
const INDEX_BITS = 20n;
const MAX_POSITION = 1n << (63n - INDEX_BITS);
const MAX_INDEX = 1 << Number(INDEX_BITS);

export function externalVersion(version: string): bigint {
  const { commitPosition, index } = parseVersion(version);
  if (commitPosition >= MAX_POSITION || index >= MAX_INDEX) {
    throw new RangeError(
      `version ${version} (commit position ${commitPosition}, index ${index}) does not fit Elasticsearch's 63-bit external version ` +
        `(position below 2^43 and index below 2^20 are required); this event cannot be ordered by Elasticsearch`,
    );
  }
  return (commitPosition << INDEX_BITS) | BigInt(index);
}
