/**
 * Stamps for sinks that rewrite rows in place during a reprocess (Redis):
 * `<24 hex digits of source version>.<8 hex digits of generation>`.
 * The SOURCE VERSION COMES FIRST (docs/architecture.md §3, round 2): a record older than the
 * stored row never wins, even from a newer generation, so readers never see a
 * row go back in time or a deleted row come back; at an equal source version
 * (the same change replayed) the newer generation wins, which marks the row as
 * written by it, so that the switch can sweep the rows it did not write.
 * Plain string comparison orders stamps.
 *
 * Older stamps read as: a bare 24-digit version → generation 0; 32 digits
 * (generation first, the old layout) → the same version and generation.
 */
const GENERATION_DIGITS = 8;
const VERSION_DIGITS = 24;

export function rowStamp(version: string, generation: number): string {
  if (!Number.isInteger(generation) || generation < 0 || generation > 0xffffffff) {
    throw new RangeError(`generation ${generation} is outside 0..4294967295`);
  }
  return `${version}.${generation.toString(16).padStart(GENERATION_DIGITS, '0')}`;
}

/** A stamp in the current layout, whatever layout it was stored in. */
export function normalizeStamp(stamp: string): string {
  if (stamp.length === VERSION_DIGITS) return `${stamp}.${'0'.repeat(GENERATION_DIGITS)}`;
  if (stamp.length === VERSION_DIGITS + GENERATION_DIGITS && !stamp.includes('.')) {
    return `${stamp.slice(GENERATION_DIGITS)}.${stamp.slice(0, GENERATION_DIGITS)}`;
  }
  return stamp;
}

/** The generation that wrote a stamp. */
export function stampGeneration(stamp: string): number {
  const normal = normalizeStamp(stamp);
  return parseInt(normal.slice(normal.indexOf('.') + 1), 16);
}

/** The source version of a stamp. */
export function stampVersion(stamp: string): string {
  const normal = normalizeStamp(stamp);
  return normal.slice(0, normal.indexOf('.'));
}

/** True when `candidate` orders after `current` (null: nothing stored yet). */
export function isNewer(candidate: string, current: string | null | undefined): boolean {
  return current === null || current === undefined || normalizeStamp(candidate) > normalizeStamp(current);
}
