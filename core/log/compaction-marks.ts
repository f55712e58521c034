import * as path from 'node:path';
import { readJsonIfExists, writeFileAtomic } from '../fs/durable-fs';

/**
 * Where a partition's last compaction pass left off, kept beside its segments
 * so a restart does not map the whole partition again (after a `kill -9` under
 * load that first pass read every partition from offset zero, seconds of work
 * in the middle of the catch-up). A mark that is missing or unreadable means
 * "never compacted": the next pass maps everything, which is always safe.
 */
export interface CompactionMark {
  /** First offset not yet covered by a pass's key map. */
  dirtyFrom: number;
  /** When the earliest tombstone the last pass kept may go (null: none kept). */
  tombstoneCheckAt: number | null;
}

const MARK_FILE = 'compaction.json';

export async function readCompactionMark(dir: string): Promise<CompactionMark | undefined> {
  const value = (await readJsonIfExists(path.join(dir, MARK_FILE)).catch(() => undefined)) as Partial<CompactionMark> | undefined;
  if (!value || !Number.isSafeInteger(value.dirtyFrom) || (value.dirtyFrom as number) < 0) return undefined;
  const check = value.tombstoneCheckAt;
  return { dirtyFrom: value.dirtyFrom as number, tombstoneCheckAt: typeof check === 'number' && Number.isFinite(check) ? check : null };
}

export function writeCompactionMark(dir: string, mark: CompactionMark): Promise<void> {
  return writeFileAtomic(path.join(dir, MARK_FILE), `${JSON.stringify(mark)}\n`);
}
