import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Makes a directory's entries (created, renamed files) survive a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `file` so that after a crash it holds either the old or the new
 * content, never a mix: write a temp file, fsync it, rename over, fsync the dir.
 * Callers serialize writes to one file (the temp name is fixed).
 */
export async function writeFileAtomic(file: string, content: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await fs.open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

/** The parsed JSON of `file`, or undefined when it does not exist. */
export async function readJsonIfExists(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}); restore it from a backup or delete it`);
  }
}
