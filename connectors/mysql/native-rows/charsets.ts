import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** zongji's own collation → charset tables (lib/charset_map.js), so char widths and charsets come out as on its path. */
export interface CharsetMap {
  collationToCharset(id: number): string;
  charsetMaxLength(charset: string | null): number;
}

let charsetMap: Promise<CharsetMap> | null = null;

/** Loads them once (an ES module file of the pinned @vlasky/zongji, not among its package exports). */
export function loadCharsetMap(): Promise<CharsetMap> {
  return (charsetMap ??= import(pathToFileURL(join(dirname(require.resolve('@vlasky/zongji')), 'lib', 'charset_map.js')).href) as Promise<CharsetMap>);
}
