import { ScannedFrame } from './frame-scanner';
import { tableKeyOf } from './log-keys';
import { NewestByKey } from './newest-by-key';
import { ATTR_DELETE, ATTR_TRUNCATE, frameKey, frameVersion } from './record-codec';

/** Default bound of one pass's row map (typed arrays and key bytes, outside the JS heap). */
export const PLAN_MAX_BYTES = 16 * 1024 * 1024;

/**
 * What one compaction pass of a partition keeps, decided from the frames'
 * headers alone (version, compaction key, attributes, append time):
 * - of each row, only its newest record (highest version, then offset);
 * - of each table's truncates, the newest; rows older than it go (the sink
 *   would delete or refuse them anyway);
 * - the newest record of a deleted row or a truncate (a tombstone) stays for
 *   `tombstoneRetentionMs` after it was appended and until every consumer
 *   has read past it, so a sink that lags still sees the delete.
 * The key map covers the "dirty" range [from, mapEnd) and is bounded by
 * maxKeys and maxBytes (whatever the log's size: a pass over a large dirty
 * range used to hold a string Map of up to a million keys, ~250 MB); every
 * record below mapEnd is judged against it, so each pass makes progress and
 * a record only goes when something newer of its row remains.
 */
export class CompactionPlan {
  /** Compaction key → newest (version, offset) in the map range. */
  private readonly newest: NewestByKey;
  /** Table key → newest truncate's "version\0offset" (few: strings are fine). */
  private readonly truncates = new Map<string, string>();
  /** Records from this offset on are beyond the map and kept as they are. */
  mapEnd = Infinity;
  /** Earliest time a kept tombstone may go (for scheduling the next pass). */
  nextTombstoneExpiryMs = Infinity;

  constructor(
    private readonly options: { maxKeys: number; maxBytes?: number; tombstoneRetentionMs: number; nowMs: number; intervalMs: number },
    /** Consumers have read everything below this offset of the partition. */
    private readonly consumedBelow: number,
  ) {
    this.newest = new NewestByKey(options.maxBytes ?? PLAN_MAX_BYTES, options.maxKeys);
  }

  /** Keys in the map. */
  get keys(): number {
    return this.newest.size;
  }

  /** Adds a frame of the dirty range; returns false (and fixes mapEnd) once the map is full. */
  add(f: ScannedFrame): boolean {
    if (f.attributes & ATTR_TRUNCATE) {
      const key = frameKey(f.buf, f);
      const vo = versionAndOffset(f);
      const current = this.truncates.get(key);
      if (current === undefined || vo > current) this.truncates.set(key, vo);
      return true;
    }
    if (!this.newest.offer(f.buf, f.keyStart, f.payloadStart, f.versionStart, f.keyStart, f.offset)) {
      this.mapEnd = f.offset;
      return false;
    }
    return true;
  }

  /** Whether the record survives this pass. Must be called with the same frames in the same order on every walk. */
  keeps(f: ScannedFrame): boolean {
    if (f.offset >= this.mapEnd) return true;
    if (f.attributes & ATTR_TRUNCATE) {
      const newest = this.truncates.get(frameKey(f.buf, f));
      if (newest !== undefined && versionAndOffset(f) < newest) return false;
      return !this.tombstoneExpired(f);
    }
    if (this.newest.hasNewer(f.buf, f.keyStart, f.payloadStart, f.versionStart, f.keyStart, f.offset)) return false;
    if (this.truncates.size > 0) {
      const truncate = this.truncates.get(tableKeyOf(frameKey(f.buf, f)));
      if (truncate !== undefined && frameVersion(f.buf, f) < truncate.slice(0, truncate.indexOf('\u0000'))) return false;
    }
    if (f.attributes & ATTR_DELETE) return !this.tombstoneExpired(f);
    return true;
  }

  private tombstoneExpired(f: ScannedFrame): boolean {
    const { nowMs, tombstoneRetentionMs, intervalMs } = this.options;
    const expiresAt = f.appendTimeMs + tombstoneRetentionMs;
    if (expiresAt <= nowMs && f.offset < this.consumedBelow) return true;
    // A consumer behind it blocks removal: look again later, not on every tick.
    const next = expiresAt <= nowMs ? nowMs + 10 * intervalMs : expiresAt;
    this.nextTombstoneExpiryMs = Math.min(this.nextTombstoneExpiryMs, next);
    return false;
  }
}

/**
 * "version\0offset": compares like the pair (version, offset) because
 * "\0" sorts below every character and offsets are zero-padded.
 */
function versionAndOffset(f: ScannedFrame): string {
  return `${frameVersion(f.buf, f)}\u0000${String(f.offset).padStart(16, '0')}`;
}
