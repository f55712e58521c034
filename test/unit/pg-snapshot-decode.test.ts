import { strict as assert } from 'node:assert';
import { CopyTextParser } from '../../connectors/postgres/copy-text';
import { isoTimestamp } from '../../connectors/postgres/types';
import { ChunkSizer } from '../../connectors/shared/chunk-sizer';

describe('snapshot decoding fast paths', () => {
  it('isoTimestamp gives the same text for the common forms and leaves the rest to the general path', () => {
    const cases: [string, string][] = [
      ['2024-01-01 00:00:01.000001+00', '2024-01-01T00:00:01.000001Z'],
      ['2024-01-01 00:00:01+00', '2024-01-01T00:00:01.000000Z'],
      ['2024-01-01 00:00:01', '2024-01-01T00:00:01.000000'],
      ['2024-01-01 00:00:01.5', '2024-01-01T00:00:01.500000'],
      ['2024-01-01 00:00:01.1234567+00', '2024-01-01T00:00:01.1234567Z'],
      ['2024-01-01 00:00:01.12+00:00', '2024-01-01T00:00:01.120000Z'],
      ['2024-01-01 00:00:01.000+00:00:00', '2024-01-01T00:00:01.000000+00:00:00'],
      ['2024-01-01 00:00:01-00', '2024-01-01T00:00:01.000000Z'],
      ['2024-01-01 00:00:01.123456-03', '2024-01-01T00:00:01.123456-03:00'],
      ['2024-01-01 00:00:01+1000', '2024-01-01T00:00:01.000000+10:00'],
      ['12024-01-01 00:00:01+00', '12024-01-01T00:00:01.000000Z'],
      // Not a form the fast path knows, nor the general one: as Postgres sent it.
      ['2024-01-01 00:00:01+00 BC', '2024-01-01 00:00:01+00 BC'],
      ['2024-01-01 00:00:01.+00', '2024-01-01 00:00:01.+00'],
      ['2024-01-01 00:00:0a+00', '2024-01-01 00:00:0a+00'],
      ['infinity', 'infinity'],
    ];
    for (const [text, expected] of cases) assert.equal(isoTimestamp(text), expected, text);
  });

  it('the COPY parser counts fields per row, NULL only for \\N alone', () => {
    const rows: (string | null)[][] = [];
    const parser = new CopyTextParser(3, (r) => rows.push(r));
    parser.push(Buffer.from('\t\t\n\\N\t\\\\N\tx\\\\\n'));
    parser.end();
    assert.deepStrictEqual(rows, [['', '', ''], [null, '\\N', 'x\\']]);
    assert.throws(() => new CopyTextParser(3, () => undefined).push(Buffer.from('a\tb\n')), /2 fields where 3 columns/);
  });

  it('a chunk sized from a sample of its events follows their average size', () => {
    const event = (bytes: number) => ({ before: null, after: { v: 'x'.repeat(bytes) } });
    const sizer = new ChunkSizer(10_000, 1_000_000);
    sizer.observe(Array.from({ length: 10_000 }, () => event(1000)));
    const measured = new ChunkSizer(10_000, 1_000_000);
    measured.observe(Array.from({ length: 100 }, () => event(1000)));
    assert.equal(sizer.next(), measured.next());
    // A sample finds large rows anywhere in the chunk.
    const mixed = new ChunkSizer(10_000, 1_000_000);
    mixed.observe(Array.from({ length: 10_000 }, (_, i) => event(i % 2 ? 10 : 2000)));
    assert.ok(mixed.next() > 900 && mixed.next() < 1100, `next chunk ${mixed.next()}`);
    const small = new ChunkSizer(10_000, 1_000_000);
    small.observe([event(100_000), event(100_000)]);
    assert.equal(small.next(), 9);
  });
});
