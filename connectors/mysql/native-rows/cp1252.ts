/**
 * MySQL's latin1 is Windows-1252 (0x80–0x9F are printable), decoded as
 * iconv-lite's cp1252 does on the zongji path: the five bytes cp1252 leaves
 * undefined become U+FFFD.
 */
const HIGH = [
  0x20ac, 0xfffd, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0xfffd, 0x017d, 0xfffd,
  0xfffd, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0xfffd, 0x017e, 0x0178,
];

export function cp1252(buf: Buffer, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    const byte = buf[i];
    if (byte >= 0x80 && byte < 0xa0) {
      let text = '';
      for (let j = start; j < end; j++) {
        const b = buf[j];
        text += String.fromCharCode(b >= 0x80 && b < 0xa0 ? HIGH[b - 0x80] : b);
      }
      return text;
    }
  }
  return buf.toString('latin1', start, end); // ISO-8859-1 elsewhere
}
