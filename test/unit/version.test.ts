import { strict as assert } from 'node:assert';
import { compareVersions, epochPosition, makeVersion, MAX_EPOCH, parseVersion, snapshotVersion, versionEpoch, withEpoch } from '../../core/event/version';
import { externalVersion } from '../../sinks/elasticsearch/external-version';
import { seededRandom } from '../support/seeded-random';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const MAX_POSITION = 0xffffffffffffffffn; // 2^64 - 1
const MAX_INDEX = 0xffffffff; // 2^32 - 1

function randomUint32(random: () => number): number {
  return Math.floor(random() * 4294967296);
}

/**
 * A random position in 0..2^64-1 whose magnitude is spread out too (random bit
 * length first), so small and huge positions are both well represented.
 */
function randomPosition(random: () => number): bigint {
  const full = (BigInt(randomUint32(random)) << 32n) | BigInt(randomUint32(random));
  const bits = BigInt(Math.floor(random() * 65)); // 0..64
  return bits === 64n ? full : full & ((1n << bits) - 1n);
}

function randomIndex(random: () => number): number {
  const bits = Math.floor(random() * 33); // 0..32
  return bits === 32 ? randomUint32(random) : randomUint32(random) % 2 ** bits;
}

interface Pair {
  position: bigint;
  index: number;
}

function compareTuples(a: Pair, b: Pair): number {
  if (a.position !== b.position) return a.position < b.position ? -1 : 1;
  return a.index - b.index;
}

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/** Asserts `fn` throws a RangeError whose message names `value`. */
function assertRangeErrorNaming(fn: () => unknown, value: unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof RangeError, `expected RangeError, got ${String(err)}`);
    assert.ok(err.message.includes(String(value)), `message "${err.message}" should name ${String(value)}`);
    return true;
  });
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe('version (core/event/version.ts)', () => {
  describe('string order equals (commit position, index) order', () => {
    it('sorting 2000 random (position, index) pairs by tuple and by version string gives the same order', () => {
      const random = seededRandom(0xc0ffee);
      const pairs: Pair[] = [];
      for (let i = 0; i < 2000; i++) pairs.push({ position: randomPosition(random), index: randomIndex(random) });
      // Edge values and ties on one field, which random data rarely produces.
      pairs.push(
        { position: 0n, index: 0 },
        { position: 0n, index: MAX_INDEX },
        { position: MAX_POSITION, index: 0 },
        { position: MAX_POSITION, index: MAX_INDEX },
        { position: 0xffffffffn, index: 1 },
        { position: 0x100000000n, index: 0 },
        { position: 42n, index: 7 },
        { position: 42n, index: 8 },
        { position: 43n, index: 0 },
      );

      const byTuple = [...pairs].sort(compareTuples).map((p) => makeVersion(p.position, p.index));
      const byString = pairs.map((p) => makeVersion(p.position, p.index)).sort();
      assert.deepEqual(byString, byTuple);
    });

    it('compareVersions agrees with tuple comparison on 2000 random pairs of versions', () => {
      const random = seededRandom(12345);
      for (let i = 0; i < 2000; i++) {
        const a = { position: randomPosition(random), index: randomIndex(random) };
        // Half the time share the position, so the index decides.
        const b = i % 2 === 0 ? { position: a.position, index: randomIndex(random) } : { position: randomPosition(random), index: randomIndex(random) };
        const expected = sign(compareTuples(a, b));
        assert.equal(
          sign(compareVersions(makeVersion(a.position, a.index), makeVersion(b.position, b.index))),
          expected,
          `(${a.position}, ${a.index}) vs (${b.position}, ${b.index})`,
        );
      }
    });

    it('a later commit position wins whatever the index (no carry from index into position)', () => {
      assert.ok(makeVersion(1n, 0) > makeVersion(0n, MAX_INDEX));
      assert.ok(makeVersion(0x100n, 0) > makeVersion(0xffn, MAX_INDEX));
    });
  });

  describe('snapshot versions', () => {
    const points = [0n, 1n, 0x16b3748n, 0x100000000n, MAX_POSITION - 1n, MAX_POSITION];

    for (const point of points) {
      it(`a snapshot at position ${point} sorts below every change committed at or after it and above every change committed before it`, () => {
        const snapshot = snapshotVersion(point);
        // Committed exactly at the snapshot point: any streamed index (>= 1) wins.
        for (const index of [1, 2, 1000, MAX_INDEX]) {
          assert.ok(makeVersion(point, index) > snapshot, `(${point}, ${index}) should beat snapshot ${snapshot}`);
        }
        // Committed later.
        if (point < MAX_POSITION) {
          for (const index of [1, MAX_INDEX]) assert.ok(makeVersion(point + 1n, index) > snapshot);
          assert.ok(makeVersion(MAX_POSITION, 1) > snapshot);
        }
        // Committed earlier: already in the snapshot, so the snapshot row wins.
        if (point > 0n) {
          for (const index of [0, 1, MAX_INDEX]) {
            assert.ok(makeVersion(point - 1n, index) < snapshot, `(${point - 1n}, ${index}) should lose to snapshot ${snapshot}`);
          }
          assert.ok(makeVersion(0n, MAX_INDEX) < snapshot);
        }
      });
    }

    it('the snapshot version is the version with index 0 at the snapshot position', () => {
      assert.equal(snapshotVersion(0x16b3748n), makeVersion(0x16b3748n, 0));
      assert.deepEqual(parseVersion(snapshotVersion(0x16b3748n)), { commitPosition: 0x16b3748n, index: 0 });
    });

    it('with random snapshot points and random changes, version order equals "committed at/after the point"', () => {
      const random = seededRandom(777);
      for (let i = 0; i < 2000; i++) {
        const point = randomPosition(random);
        const commit = i % 3 === 0 ? point : randomPosition(random);
        const index = 1 + (randomIndex(random) % MAX_INDEX); // streamed changes use 1..MAX_INDEX
        const change = makeVersion(commit, index);
        assert.equal(change > snapshotVersion(point), commit >= point, `commit ${commit}/${index} vs snapshot ${point}`);
      }
    });
  });

  describe('parseVersion', () => {
    it('round-trips makeVersion for edge and random values', () => {
      const random = seededRandom(99);
      const pairs: Pair[] = [
        { position: 0n, index: 0 },
        { position: MAX_POSITION, index: MAX_INDEX },
        { position: 0x16b3748n, index: 1 },
      ];
      for (let i = 0; i < 500; i++) pairs.push({ position: randomPosition(random), index: randomIndex(random) });
      for (const { position, index } of pairs) {
        const version = makeVersion(position, index);
        assert.deepEqual(parseVersion(version), { commitPosition: position, index });
        assert.equal(makeVersion(parseVersion(version).commitPosition, parseVersion(version).index), version);
      }
    });

    it('versions are fixed width (24 lowercase hex digits) so they compare as plain strings', () => {
      assert.equal(makeVersion(0n, 0), '000000000000000000000000');
      assert.equal(makeVersion(MAX_POSITION, MAX_INDEX), 'ffffffffffffffffffffffff');
      assert.equal(makeVersion(0x16b3748n, 2), '00000000016b374800000002');
    });

    for (const text of ['', 'abc', '00000000016B374800000002', '00000000016b37480000000', '00000000016b3748000000020', 'g00000000016b37480000000']) {
      it(`rejects malformed version ${JSON.stringify(text)} with a message quoting it`, () => {
        assert.throws(
          () => parseVersion(text),
          (err: unknown) => err instanceof Error && err.message.includes(`"${text}"`),
        );
      });
    }
  });

  describe('out-of-range inputs', () => {
    it('a negative commit position throws a RangeError naming it', () => {
      assertRangeErrorNaming(() => makeVersion(-1n, 1), -1n);
    });

    it('a commit position of 2^64 or more throws a RangeError naming it', () => {
      assertRangeErrorNaming(() => makeVersion(MAX_POSITION + 1n, 1), MAX_POSITION + 1n);
      assertRangeErrorNaming(() => makeVersion(1n << 70n, 0), 1n << 70n);
    });

    it('the largest commit position and index are accepted', () => {
      assert.doesNotThrow(() => makeVersion(MAX_POSITION, MAX_INDEX));
    });

    for (const index of [-1, MAX_INDEX + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      it(`index ${index} throws a RangeError naming it`, () => {
        assertRangeErrorNaming(() => makeVersion(1n, index), index);
      });
    }

    it('snapshotVersion rejects an out-of-range position with a RangeError naming it', () => {
      assertRangeErrorNaming(() => snapshotVersion(-5n), -5n);
      assertRangeErrorNaming(() => snapshotVersion(MAX_POSITION + 1n), MAX_POSITION + 1n);
    });
  });
});

describe('source epochs (positions that went backwards)', () => {
  const mysqlPosition = (sequence: number, offset: number) => (BigInt(sequence) << 40n) | BigInt(offset);

  it('epoch 0 leaves versions exactly as they were', () => {
    const version = makeVersion(mysqlPosition(5000, 123), 7);
    assert.equal(withEpoch(version, 0), version);
    assert.equal(versionEpoch(version), 0);
  });

  it('a version of a later epoch beats every version of an earlier one, whatever the positions', () => {
    const before = [makeVersion(mysqlPosition(500_000, 2 ** 40 - 1), MAX_INDEX), makeVersion(mysqlPosition(3, 154), 1), snapshotVersion(mysqlPosition(1, 4))];
    for (let epoch = 1; epoch <= MAX_EPOCH; epoch++) {
      const after = [snapshotVersion(epochPosition(epoch, mysqlPosition(1, 4))), withEpoch(makeVersion(mysqlPosition(1, 4) - 1n, MAX_INDEX), epoch), withEpoch(makeVersion(0n, 0), epoch)];
      for (const older of before) {
        for (const newer of after) {
          assert.equal(compareVersions(newer, older), 1, `epoch ${epoch}: ${newer} must beat ${older}`);
          assert.ok(externalVersion(newer) > externalVersion(older), `Elasticsearch orders ${newer} after ${older} too`);
        }
      }
      assert.equal(versionEpoch(after[0]), epoch);
      before.push(...after);
    }
  });

  it('within an epoch versions order as before, and the Elasticsearch number stays below 2^63', () => {
    const a = withEpoch(makeVersion(mysqlPosition(1, 500), 1), MAX_EPOCH);
    const b = withEpoch(makeVersion(mysqlPosition(1, 500), 2), MAX_EPOCH);
    const c = withEpoch(makeVersion(mysqlPosition(2, 4), 1), MAX_EPOCH);
    assert.deepEqual([c, b, a].sort(), [a, b, c]);
    const top = withEpoch(makeVersion((1n << 59n) - 1n, MAX_INDEX), MAX_EPOCH);
    assert.equal(externalVersion(top), (1n << 63n) - 1n);
  });

  it('refuses an epoch above 15 or a position that does not fit below the epoch, naming them', () => {
    assert.throws(() => epochPosition(MAX_EPOCH + 1, 1n), /source epoch 16 is outside 0\.\.15/);
    assert.throws(() => withEpoch(makeVersion(1n << 59n, 1), 1), /position 576460752303423488 does not fit in the 59 bits left below source epoch 1/);
  });
});
