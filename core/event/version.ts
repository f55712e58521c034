/**
 * Versions order the changes of one row by COMMIT, not by where a change sits
 * in the WAL (docs/architecture.md §2): a row written at LSN 90 by a transaction committing
 * at LSN 110 must beat a snapshot taken at LSN 100.
 *
 * A version is (commit position, index within the transaction), packed as a
 * fixed-width hex string so plain string comparison orders it:
 *   16 hex digits of the commit position + 8 hex digits of the index.
 * Snapshot rows carry the snapshot's position with index 0; streamed changes
 * start at index 1, so a change committed exactly at the snapshot point still
 * wins over the snapshot row.
 */
const POSITION_DIGITS = 16;
const INDEX_DIGITS = 8;
const MAX_INDEX = 0xffffffff;

/** The last commit position made into a version, and its digits: every change of a transaction shares them. */
let lastPosition = -1n;
let lastPositionDigits = '';

export function makeVersion(commitPosition: bigint, index: number): string {
  if (commitPosition !== lastPosition) {
    if (commitPosition < 0n || commitPosition > 0xffffffffffffffffn) {
      throw new RangeError(`commit position ${commitPosition} does not fit in 64 bits`);
    }
    lastPositionDigits = commitPosition.toString(16).padStart(POSITION_DIGITS, '0');
    lastPosition = commitPosition;
  }
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) {
    throw new RangeError(`index within transaction ${index} is outside 0..${MAX_INDEX}`);
  }
  return lastPositionDigits + index.toString(16).padStart(INDEX_DIGITS, '0');
}

export function parseVersion(version: string): { commitPosition: bigint; index: number } {
  if (!/^[0-9a-f]{24}$/.test(version)) throw new Error(`malformed version "${version}": expected 24 lowercase hex digits`);
  return {
    commitPosition: BigInt('0x' + version.slice(0, POSITION_DIGITS)),
    index: parseInt(version.slice(POSITION_DIGITS), 16),
  };
}

export function compareVersions(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The version of a row read by a snapshot taken at `snapshotPosition`. */
export function snapshotVersion(snapshotPosition: bigint): string {
  return makeVersion(snapshotPosition, 0);
}

/**
 * Source epochs: a source's positions can go backwards (MySQL RESET MASTER, a
 * failover to a server with lower binlog numbers), and versions made from them
 * would then lose to every version stored before. The source keeps an epoch
 * with its checkpoint, raises it whenever it sees its positions go backwards,
 * and puts it FIRST: in the top EPOCH_BITS of the 64-bit commit-position part
 * of the version, above a position of at most POSITION_BITS bits.
 *
 *   bit 63: 0 (Elasticsearch external versions are signed 64-bit longs)
 *   bits 59..62: epoch 0..15
 *   bits 0..58: the source's own packed position (Postgres LSN below 512 PiB
 *     of WAL; MySQL file sequence below 2^19 with 40 offset bits)
 *
 * Epoch 0 leaves a version exactly as it was before epochs existed, so stored
 * versions keep their meaning. Everything that orders versions (string
 * comparison, Elasticsearch's external version = the whole commit-position
 * part, the warehouse's commit sequence) orders by epoch first.
 */
export const EPOCH_BITS = 4;
export const POSITION_BITS = 59;
export const MAX_EPOCH = (1 << EPOCH_BITS) - 1;
const MAX_EPOCH_POSITION = (1n << BigInt(POSITION_BITS)) - 1n;

/** The commit-position part of a version for `position` under `epoch`. */
export function epochPosition(epoch: number, position: bigint): bigint {
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    throw new RangeError(`source epoch ${epoch} is outside 0..${MAX_EPOCH}: the source's history went backwards more often than versions can record; rebuild the sinks from a new snapshot under a new source name`);
  }
  if (epoch === 0) return position;
  if (position < 0n || position > MAX_EPOCH_POSITION) {
    throw new RangeError(`position ${position} does not fit in the ${POSITION_BITS} bits left below source epoch ${epoch}`);
  }
  return (BigInt(epoch) << BigInt(POSITION_BITS)) | position;
}

/** `version` (made from a position of epoch 0) moved into `epoch`. */
export function withEpoch(version: string, epoch: number): string {
  if (epoch === 0) return version;
  const { commitPosition, index } = parseVersion(version);
  return makeVersion(epochPosition(epoch, commitPosition), index);
}

/** The source epoch a version was made in. */
export function versionEpoch(version: string): number {
  return Number(parseVersion(version).commitPosition >> BigInt(POSITION_BITS));
}
