import { parseVersion } from '../../core/event/version';

/**
 * The number Elasticsearch orders a document's writes by, sent with
 * `version_type: external_gte`: the COMMIT POSITION of the change alone
 * (Postgres: the commit LSN; MySQL: file sequence << 40 | offset, which the
 * source keeps below 2^63 by refusing sequences from 2^23). ES longs reach
 * 2^63 - 1, so this holds for every real position and any transaction size.
 *
 * Why the index within the transaction can be left out:
 * - changes of one row from different transactions have different commit
 *   positions, so ES refuses the older one (strictly lower) whatever the order
 *   they arrive in: replays, rebuilds, snapshot rows against later changes;
 * - changes of one row inside one transaction share the commit position; ES
 *   accepts each (greater or EQUAL), so the last one applied wins. They sit in
 *   one log partition in transaction order (the log partitions by row) and the
 *   sink applies a partition in order, collapsing a batch to each row's newest
 *   change by full version, so the last applied is the transaction's last
 *   change of the row, also when a crash replays the transaction;
 * - a snapshot row carries the snapshot's position; a change committed
 *   exactly there (possible in Postgres) is streamed only after the snapshot
 *   is complete, so it follows the row in the log and is applied after it;
 *   resync chunks carry the position of their own watermark write, which no
 *   user change shares.
 * The truncate, which must tell changes of its own transaction apart, uses the
 * full version (see es-sink.ts).
 */
const MAX_EXTERNAL = (1n << 63n) - 1n;

export function externalVersion(version: string): bigint {
  const { commitPosition } = parseVersion(version);
  if (commitPosition > MAX_EXTERNAL) {
    throw new RangeError(`version ${version}: commit position ${commitPosition} is above 2^63 - 1, the largest Elasticsearch external version`);
  }
  return commitPosition;
}
