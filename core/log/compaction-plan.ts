import { createHash } from 'node:crypto';
import { ScannedFrame } from './frame-scanner';
import { tableKeyOf } from './log-keys';
import { ATTR_DELETE, ATTR_TRUNCATE, frameKey, frameVersion } from './record-codec';

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
 * maxKeys; every record below mapEnd is judged against it, so each pass makes
 * progress and a record only goes when something newer of its row remains.
 */
export class CompactionPlan {
  /** Compaction key (or a digest of a long one) → newest "version\0offset" in the map range. */
  private readonly newest = new Map<string, string>();
  /** Table key → newest truncate's "version\0offset". */
  private readonly truncates = new Map<string, string>();
  /** Records from this offset on are beyond the map and kept as they are. */
  mapEnd = Infinity;
  /** Earliest time a kept tombstone may go (for scheduling the next pass). */
  nextTombstoneExpiryMs = Infinity;

  constructor(
    private readonly options: { maxKeys: number; tombstoneRetentionMs: number; nowMs: number; intervalMs: number },
    /** Consumers have read everything below this offset of the partition. */
    private readonly consumedBelow: number,
  ) {}

  /** Adds a frame of the dirty range; returns false (and fixes mapEnd) once the map is full. */
  add(f: ScannedFrame): boolean {
    const vo = versionAndOffset(f);
    const key = frameKey(f.buf, f);
    if (f.attributes & ATTR_TRUNCATE) {
      const current = this.truncates.get(key);
      if (current === undefined || vo > current) this.truncates.set(key, vo);
      return true;
    }
    const id = identity(key);
    const current = this.newest.get(id);
    if (current === undefined && this.newest.size >= this.options.maxKeys) {
      this.mapEnd = f.offset;
      return false;
    }
    if (current === undefined || vo > current) this.newest.set(id, vo);
    return true;
  }

  /** Whether the record survives this pass. Must be called with the same frames in the same order on every walk. */
  keeps(f: ScannedFrame): boolean {
    if (f.offset >= this.mapEnd) return true;
    const vo = versionAndOffset(f);
    const key = frameKey(f.buf, f);
    if (f.attributes & ATTR_TRUNCATE) {
      const newest = this.truncates.get(key);
      if (newest !== undefined && vo < newest) return false;
      return !this.tombstoneExpired(f);
    }
    const newest = this.newest.get(identity(key));
    if (newest !== undefined && vo < newest) return false;
    const truncate = this.truncates.get(tableKeyOf(key));
    if (truncate !== undefined && frameVersion(f.buf, f) < truncate.slice(0, truncate.indexOf('\u0000'))) return false;
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

/** Long keys are held as an MD5 digest (never starts with "[" like a raw key), so the map stays small. */
function identity(key: string): string {
  return key.length <= 48 ? key : createHash('md5').update(key).digest('base64');
}
