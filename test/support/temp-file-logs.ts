import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileLog, FileLogOptions } from '../../core/log/file-log';

/**
 * For a describe() block: opens file logs in fresh temp directories (compaction off unless asked) and, after
 * each test, closes them and removes the directories.
 */
export function tempFileLogs(prefix: string): (partitions: number, options?: Partial<FileLogOptions>) => Promise<FileLog> {
  let dirs: string[] = [];
  let logs: FileLog[] = [];
  afterEach(async () => {
    await Promise.allSettled(logs.map((l) => l.close()));
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
    [dirs, logs] = [[], []];
  });
  return async (partitions, options = {}) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    dirs.push(dir);
    const log = new FileLog({ dir, partitions, compaction: { enabled: false }, ...options });
    await log.open();
    logs.push(log);
    return log;
  };
}
