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

export function makeVersion(commitPosition: bigint, index: number): string {
  if (commitPosition < 0n || commitPosition > 0xffffffffffffffffn) {
    throw new RangeError(`commit position ${commitPosition} does not fit in 64 bits`);
  }
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) {
    throw new RangeError(`index within transaction ${index} is outside 0..${MAX_INDEX}`);
  }
  return commitPosition.toString(16).padStart(POSITION_DIGITS, '0') + index.toString(16).padStart(INDEX_DIGITS, '0');
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
