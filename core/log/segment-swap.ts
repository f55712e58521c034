import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fsyncDir } from '../fs/durable-fs';
import { segmentFileName } from './segment';

/**
 * Crash-safe replacement of consecutive sealed segments by their compacted
 * copy (the protocol of Kafka's log cleaner, simplified):
 *   1. the copy is written to `<base>.cleaned` and synced;
 *   2. it is renamed to `<base>-<end>.swap` (the commit point: from here on
 *      recovery completes the swap);
 *   3. the old segments with base in [base, end) are deleted and the swap
 *      file becomes `<base>.log`.
 * A crash before 2 leaves the old segments and a `.cleaned` file to delete.
 */
export function cleanedFileName(base: number): string {
  return segmentFileName(base, '.cleaned');
}

function swapFileName(base: number, end: number): string {
  return `${segmentFileName(base, '')}-${segmentFileName(end, '')}.swap`;
}

/** Step 2 then 3: commits the synced `.cleaned` copy covering offsets [base, end). */
export async function commitSwap(dir: string, base: number, end: number): Promise<void> {
  const swap = path.join(dir, swapFileName(base, end));
  await fs.rename(path.join(dir, cleanedFileName(base)), swap);
  await fsyncDir(dir);
  await completeSwap(dir, base, end);
}

async function completeSwap(dir: string, base: number, end: number): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const match = /^(\d{20})\.(log|index)$/.exec(name);
    if (match && Number(match[1]) >= base && Number(match[1]) < end) await fs.rm(path.join(dir, name), { force: true });
  }
  await fs.rename(path.join(dir, swapFileName(base, end)), path.join(dir, segmentFileName(base)));
  await fsyncDir(dir);
}

/** At open: completes committed swaps, drops uncommitted copies, temp files and orphaned indexes. */
export async function finishInterruptedSwaps(dir: string): Promise<void> {
  const names = await fs.readdir(dir);
  for (const name of names) {
    const swap = /^(\d{20})-(\d{20})\.swap$/.exec(name);
    if (swap) await completeSwap(dir, Number(swap[1]), Number(swap[2]));
    else if (name.endsWith('.cleaned') || name.endsWith('.tmp')) await fs.rm(path.join(dir, name), { force: true });
  }
  const remaining = new Set(await fs.readdir(dir));
  for (const name of remaining) {
    if (name.endsWith('.index') && !remaining.has(name.replace(/\.index$/, '.log'))) await fs.rm(path.join(dir, name), { force: true });
  }
}
