// The disk's plain limit for a durable append: the same number of bytes
// written sequentially in 1 MiB chunks, fdatasync every 8 MiB and at the end.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';

/** Writes `bytes` into dir/baseline.bin (removed after) and resolves with the seconds it took. */
export async function sequentialWriteSeconds(dir: string, bytes: number): Promise<number> {
  const chunk = Buffer.alloc(1024 * 1024, 'x');
  const file = join(dir, 'baseline.bin');
  const started = process.hrtime.bigint();
  const fh = await fs.open(file, 'w');
  try {
    for (let written = 0, since = 0; written < bytes; written += chunk.length) {
      await fh.write(chunk);
      if ((since += chunk.length) >= 8 * 1024 * 1024) [since] = [0, await fh.datasync()];
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await fs.rm(file, { force: true });
  return seconds;
}
