import { strict as assert } from 'node:assert';
import { CopyTextParser, unescapeCopyText } from '../../connectors/postgres/copy-text';

/** Parses `bytes` handed over in pieces of `size` bytes (cutting rows and UTF-8 characters anywhere). */
function parse(bytes: Buffer, columns: number, size: number): (string | null)[][] {
  const rows: (string | null)[][] = [];
  const parser = new CopyTextParser(columns, (fields) => rows.push(fields));
  for (let i = 0; i < bytes.length; i += size) parser.push(bytes.subarray(i, i + size));
  parser.end();
  return rows;
}

describe('COPY text format parser', () => {
  // What Postgres sends for: tab / newline / backslash / unicode, NULL vs empty string, the text "\N".
  const wire = Buffer.from('1\ta\\tb\\nc\\\\d\t日本語 🦀\n2\t\\N\t\n3\t\\\\N\t\\r\\b\\f\\v\n', 'utf8');
  const expected = [
    ['1', 'a\tb\nc\\d', '日本語 🦀'],
    ['2', null, ''],
    ['3', '\\N', '\r\b\f\v'],
  ];

  for (const size of [1, 2, 3, 5, 7, 64, 1 << 16]) {
    it(`gives the same rows whatever the pieces the stream arrives in (${size} bytes)`, () => {
      assert.deepStrictEqual(parse(wire, 3, size), expected);
    });
  }

  it('decodes octal and hex escapes as bytes, so they may form one UTF-8 character', () => {
    assert.equal(unescapeCopyText('\\101\\x42\\343\\201\\202'), 'AB\u3042');
    // Any other escaped character stands for itself; a lone backslash at the end is dropped (as COPY FROM does).
    assert.equal(unescapeCopyText('\\q\\'), 'q');
    assert.equal(unescapeCopyText('\\101\\'), 'A');
  });

  it('refuses a row cut short, and a row whose field count is not the columns described', () => {
    assert.throws(() => parse(Buffer.from('1\tabc'), 2, 100), /ended in the middle of a row/);
    assert.throws(() => parse(Buffer.from('1\tabc\tx\n'), 2, 100), /3 fields where 2 columns/);
  });
});
