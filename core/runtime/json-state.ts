import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readJsonIfExists, writeFileAtomic } from '../fs/durable-fs';

/** A small JSON document on disk (e.g. a source's last durable position), replaced atomically. */
export class JsonStateFile<T> {
  constructor(readonly path: string) {}

  async read(): Promise<T | null> {
    return ((await readJsonIfExists(this.path)) as T | undefined) ?? null;
  }

  async write(value: T): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    await writeFileAtomic(this.path, JSON.stringify(value, null, 2) + '\n');
  }
}
