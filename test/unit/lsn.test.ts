import { strict as assert } from 'node:assert';
import { compareLsn, formatLsn, lsnCodec, parseLsn, ZERO_LSN } from '../../connectors/postgres/lsn';
import { seededRandom } from '../support/seeded-random';

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const MAX_LSN = 0xffffffffffffffffn;

/** A random LSN in 0..2^64-1 with a random bit length, so both halves vary in width. */
function randomLsn(random: () => number): bigint {
  const word = () => BigInt(Math.floor(random() * 4294967296));
  const full = (word() << 32n) | word();
  const bits = BigInt(Math.floor(random() * 65));
  return bits === 64n ? full : full & ((1n << bits) - 1n);
}

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function numericSign(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe('Postgres LSN (connectors/postgres/lsn.ts)', () => {
  describe('parse / format', () => {
    const cases: Array<[string, bigint]> = [
      ['0/16B3748', 0x16b3748n],
      ['FFFFFFFF/FFFFFFFF', MAX_LSN],
      ['1/0', 0x100000000n],
      ['0/0', 0n],
      ['16/B374D848', (0x16n << 32n) | 0xb374d848n],
    ];

    for (const [text, value] of cases) {
      it(`"${text}" parses to ${value} and formats back to "${text}"`, () => {
        assert.equal(parseLsn(text), value);
        assert.equal(formatLsn(value), text);
        assert.equal(formatLsn(parseLsn(text)), text);
      });
    }

    it('accepts the zero-padded form the pgoutput decoder prints and normalises it to Postgres\'s canonical form', () => {
      assert.equal(parseLsn('00000000/00000228'), 0x228n);
      assert.equal(formatLsn(parseLsn('00000000/00000228')), '0/228');
      assert.equal(formatLsn(parseLsn('0000000A/0016B374')), 'A/16B374');
    });

    it('accepts lower-case hex and formats upper case, like pg_lsn', () => {
      assert.equal(parseLsn('0/16b3748'), 0x16b3748n);
      assert.equal(formatLsn(parseLsn('ab/cdef')), 'AB/CDEF');
    });

    it('round-trips 2000 random 64-bit values', () => {
      const random = seededRandom(2024);
      for (let i = 0; i < 2000; i++) {
        const lsn = randomLsn(random);
        assert.equal(parseLsn(formatLsn(lsn)), lsn, `LSN ${lsn} (${formatLsn(lsn)})`);
      }
    });

    it('ZERO_LSN is 0/0', () => {
      assert.equal(formatLsn(ZERO_LSN), '0/0');
    });

    it('formatting a value outside 0..2^64-1 throws a RangeError naming it', () => {
      for (const bad of [-1n, MAX_LSN + 1n]) {
        assert.throws(
          () => formatLsn(bad),
          (err: unknown) => err instanceof RangeError && err.message.includes(String(bad)),
        );
      }
    });
  });

  describe('order', () => {
    it('compareLsn orders parsed LSNs like their numeric values (2000 random pairs)', () => {
      const random = seededRandom(42);
      for (let i = 0; i < 2000; i++) {
        const a = randomLsn(random);
        const b = i % 5 === 0 ? a : randomLsn(random);
        const parsedA = parseLsn(formatLsn(a));
        const parsedB = parseLsn(formatLsn(b));
        assert.equal(sign(compareLsn(parsedA, parsedB)), numericSign(a, b), `${formatLsn(a)} vs ${formatLsn(b)}`);
      }
    });

    it('orders by the high word first, then the low word (where text order would be wrong)', () => {
      // As text, "0/9" > "0/10" and "0/FFFFFFFF" > "1/0": positions must be compared parsed.
      assert.equal(sign(compareLsn(parseLsn('0/9'), parseLsn('0/10'))), -1);
      assert.equal(sign(compareLsn(parseLsn('0/FFFFFFFF'), parseLsn('1/0'))), -1);
      assert.equal(sign(compareLsn(parseLsn('A/0'), parseLsn('9/FFFFFFFF'))), 1);
      assert.equal(compareLsn(parseLsn('0/016B3748'), parseLsn('0/16B3748')), 0);
    });

    it('sorting random LSN texts with lsnCodec gives numeric order', () => {
      const random = seededRandom(7);
      const values = Array.from({ length: 500 }, () => randomLsn(random));
      const texts = values.map(lsnCodec.serialize);
      const sortedByCodec = [...texts].map(lsnCodec.parse).sort(lsnCodec.compare).map(lsnCodec.serialize);
      const sortedNumerically = [...values].sort((a, b) => numericSign(a, b)).map(formatLsn);
      assert.deepEqual(sortedByCodec, sortedNumerically);
    });
  });

  describe('malformed text', () => {
    for (const text of ['', '0/', '/0', 'G/1', '1/2/3', '123', '0/16B3748 ', ' 0/1', '-1/0', '0x1/0', '123456789/0', '0/123456789']) {
      it(`"${text}" throws an error quoting the text`, () => {
        assert.throws(
          () => parseLsn(text),
          (err: unknown) => err instanceof Error && err.message.includes(`"${text}"`),
        );
      });
    }
  });
});
