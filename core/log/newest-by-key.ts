import { createHash } from 'node:crypto';

/** Keys longer than this are held as their 16-byte MD5 digest. */
const MAX_RAW_KEY_BYTES = 64;
const DIGEST_FLAG = 0x8000;
/** Bytes of the slot arrays per slot: hash, key position and length, version position and length, offset. */
const SLOT_BYTES = 4 + 4 + 2 + 4 + 4 + 8;
const MAX_LOAD = 0.7;
const FIRST_SLOTS = 1024;
const MIN_ARENA_BYTES = 64 * 1024;
const MAX_FIRST_ARENA_BYTES = 64 * 1024 * 1024;

/**
 * A compaction pass's row map, compaction key → newest (version, offset),
 * held outside the JS heap: an open-addressing hash table in typed arrays
 * plus one byte arena for the keys and versions, compared as bytes straight
 * from the frames' buffers. About 90 bytes a key of a typical row (a Map of
 * strings took ~250, and made 3-4 strings of garbage per frame and walk), and
 * never more than `maxBytes`: the caller ends the pass's map when add says full.
 */
export class NewestByKey {
  private slots = FIRST_SLOTS;
  private hashes = new Uint32Array(FIRST_SLOTS);
  private keyPos = new Uint32Array(FIRST_SLOTS);
  private keyLen = new Uint16Array(FIRST_SLOTS);
  private verPos = new Uint32Array(FIRST_SLOTS);
  private verLen = new Uint32Array(FIRST_SLOTS);
  private offsets = new Float64Array(FIRST_SLOTS);
  /**
   * Sized for the whole budget at once and zero-filled (calloc: pages become
   * resident only as the arena fills), so it is never copied to grow.
   */
  private arena: Buffer;
  private arenaUsed = 0;
  /** Distinct keys held. */
  size = 0;

  constructor(private readonly maxBytes: number, private readonly maxKeys = Infinity) {
    this.arena = Buffer.alloc(Math.min(MAX_FIRST_ARENA_BYTES, Math.max(MIN_ARENA_BYTES, maxBytes)));
  }

  /** Bytes the table holds now (slot arrays and the arena's used part). */
  get bytes(): number {
    return this.slots * SLOT_BYTES + this.arenaUsed;
  }

  /**
   * Records (version, offset) for the key if newer than what the key has.
   * Returns false, changing nothing, when the key is new and holding it
   * would pass `maxKeys` or `maxBytes` (the latter never for the first key).
   */
  offer(buf: Buffer, keyStart: number, keyEnd: number, versionStart: number, versionEnd: number, offset: number): boolean {
    const key = this.keyBytes(buf, keyStart, keyEnd);
    const hash = hashBytes(key.buf, key.start, key.end);
    const found = this.find(key.buf, key.start, key.end, key.flag, hash);
    if (found >= 0) {
      if (this.compareWith(found, buf, versionStart, versionEnd, offset) < 0) this.setVersion(found, buf, versionStart, versionEnd, offset);
      return true;
    }
    if (this.size >= this.maxKeys) return false;
    const keyBytes = key.end - key.start;
    const versionBytes = versionEnd - versionStart;
    const growSlots = (this.size + 1) / this.slots > MAX_LOAD;
    const arenaNeeded = this.arenaUsed + keyBytes + versionBytes;
    if (this.size > 0 && (growSlots ? this.slots * 2 : this.slots) * SLOT_BYTES + arenaNeeded > this.maxBytes) return false;
    this.reserve(arenaNeeded);
    let slot = ~found;
    if (growSlots) {
      this.rehash(this.slots * 2);
      slot = ~this.find(key.buf, key.start, key.end, key.flag, hash);
    }
    this.hashes[slot] = hash;
    this.keyPos[slot] = this.arenaUsed;
    this.keyLen[slot] = keyBytes | key.flag;
    key.buf.copy(this.arena, this.arenaUsed, key.start, key.end);
    this.arenaUsed += keyBytes;
    this.verLen[slot] = 0;
    this.setVersion(slot, buf, versionStart, versionEnd, offset);
    this.size += 1;
    return true;
  }

  /**
   * Whether the key holds a (version, offset) newer than the given one: the
   * record is then superseded. Versions compare as latin1 strings do (bytes,
   * then length), offsets as numbers.
   */
  hasNewer(buf: Buffer, keyStart: number, keyEnd: number, versionStart: number, versionEnd: number, offset: number): boolean {
    const key = this.keyBytes(buf, keyStart, keyEnd);
    const found = this.find(key.buf, key.start, key.end, key.flag, hashBytes(key.buf, key.start, key.end));
    return found >= 0 && this.compareWith(found, buf, versionStart, versionEnd, offset) > 0;
  }

  private keyBytes(buf: Buffer, start: number, end: number): { buf: Buffer; start: number; end: number; flag: number } {
    if (end - start <= MAX_RAW_KEY_BYTES) return { buf, start, end, flag: 0 };
    const digest = createHash('md5').update(buf.subarray(start, end)).digest();
    return { buf: digest, start: 0, end: digest.length, flag: DIGEST_FLAG };
  }

  /** The key's slot, or ~(the free slot where it would go). */
  private find(buf: Buffer, start: number, end: number, flag: number, hash: number): number {
    const mask = this.slots - 1;
    const len = (end - start) | flag;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const h = this.hashes[i];
      if (h === 0) return ~i;
      if (h === hash && this.keyLen[i] === len && sameBytes(this.arena, this.keyPos[i], buf, start, end)) return i;
    }
  }

  /** Sign of (slot's version, offset) - (given version, offset). */
  private compareWith(slot: number, buf: Buffer, versionStart: number, versionEnd: number, offset: number): number {
    const at = this.verPos[slot];
    const len = this.verLen[slot];
    const n = Math.min(len, versionEnd - versionStart);
    for (let i = 0; i < n; i++) {
      const d = this.arena[at + i] - buf[versionStart + i];
      if (d !== 0) return d;
    }
    if (len !== versionEnd - versionStart) return len - (versionEnd - versionStart);
    return this.offsets[slot] - offset;
  }

  private setVersion(slot: number, buf: Buffer, versionStart: number, versionEnd: number, offset: number): void {
    const len = versionEnd - versionStart;
    if (len !== this.verLen[slot] || this.verLen[slot] === 0) {
      // A version of another length (rare: versions of one source have one form) takes new arena bytes.
      this.reserve(this.arenaUsed + len);
      this.verPos[slot] = this.arenaUsed;
      this.verLen[slot] = len;
      this.arenaUsed += len;
    }
    buf.copy(this.arena, this.verPos[slot], versionStart, versionEnd);
    this.offsets[slot] = offset;
  }

  /** Grows the arena (past its first size only with a budget over 64 MB or a version of another length). */
  private reserve(bytes: number): void {
    if (bytes <= this.arena.length) return;
    const arena = Buffer.alloc(Math.max(this.arena.length * 2, bytes));
    this.arena.copy(arena, 0, 0, this.arenaUsed);
    this.arena = arena;
  }

  private rehash(slots: number): void {
    const old = { hashes: this.hashes, keyPos: this.keyPos, keyLen: this.keyLen, verPos: this.verPos, verLen: this.verLen, offsets: this.offsets };
    const oldSlots = this.slots;
    this.slots = slots;
    this.hashes = new Uint32Array(slots);
    this.keyPos = new Uint32Array(slots);
    this.keyLen = new Uint16Array(slots);
    this.verPos = new Uint32Array(slots);
    this.verLen = new Uint32Array(slots);
    this.offsets = new Float64Array(slots);
    const mask = slots - 1;
    for (let j = 0; j < oldSlots; j++) {
      const h = old.hashes[j];
      if (h === 0) continue;
      let i = h & mask;
      while (this.hashes[i] !== 0) i = (i + 1) & mask;
      this.hashes[i] = h;
      this.keyPos[i] = old.keyPos[j];
      this.keyLen[i] = old.keyLen[j];
      this.verPos[i] = old.verPos[j];
      this.verLen[i] = old.verLen[j];
      this.offsets[i] = old.offsets[j];
    }
  }
}

/** FNV-1a over the bytes, never 0 (0 marks an empty slot). */
function hashBytes(buf: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  h ^= h >>> 15; // FNV's low bits mix poorly and the table indexes by them
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0 || 1;
}

function sameBytes(a: Buffer, aStart: number, b: Buffer, bStart: number, bEnd: number): boolean {
  for (let i = 0; i < bEnd - bStart; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}
