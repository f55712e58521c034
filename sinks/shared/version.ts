/**
 * Version stamps that put a sink generation (DESIGN §3) before the event
 * version: `<8 hex digits of generation><24 hex digits of version>`. A higher
 * generation wins even at an equal or older source version, and plain string
 * comparison still orders stamps.
 */
const GENERATION_DIGITS = 8;
const VERSION_DIGITS = 24;

export function generationStamp(generation: number, version: string): string {
  if (!Number.isInteger(generation) || generation < 0 || generation > 0xffffffff) {
    throw new RangeError(`generation ${generation} is outside 0..4294967295`);
  }
  return generation.toString(16).padStart(GENERATION_DIGITS, '0') + version;
}

/** The generation part of a stamp; a bare 24-digit version (written before generations existed) is generation 0. */
export function stampGeneration(stamp: string): number {
  if (stamp.length === VERSION_DIGITS) return 0;
  return parseInt(stamp.slice(0, GENERATION_DIGITS), 16);
}

/** A stamp in full form: bare 24-digit versions become generation 0. */
export function normalizeStamp(stamp: string): string {
  return stamp.length === VERSION_DIGITS ? generationStamp(0, stamp) : stamp;
}

/** The lowest stamp of a generation: every stamp of an older generation sorts below it. */
export function generationFloor(generation: number): string {
  return generationStamp(generation, '0'.repeat(VERSION_DIGITS));
}

/** True when `candidate` orders after `current` (null: nothing stored yet). */
export function isNewer(candidate: string, current: string | null | undefined): boolean {
  return current === null || current === undefined || candidate > current;
}
