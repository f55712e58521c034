import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * Claims a directory for this process with a `LOCK` file holding our PID, so a
 * second process cannot open the same log and interleave writes with ours.
 * A lock left by a process that no longer runs (after kill -9) is taken over.
 */
export async function lockDirectory(dir: string, what: string): Promise<() => Promise<void>> {
  const file = path.join(dir, 'LOCK');
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(file, `${process.pid}\n`, { flag: 'wx' });
      return async () => {
        await fs.rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
    if (owner && owner !== process.pid && isAlive(owner)) {
      throw new Error(
        `${what} ${dir} is in use by process ${owner}: stop that process first ` +
          `(two processes writing one log would corrupt it; give each service its own dataDir)`,
      );
    }
    await fs.rm(file, { force: true }); // stale: its process is gone
  }
  throw new Error(`${what} ${dir}: could not take the lock file ${file}; remove it if no service uses this directory`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
