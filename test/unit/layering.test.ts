import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/*
 * The ground floor (core/) holds the contracts, the log and the runtime; the
 * rooms above it (connectors/, sinks/) and the composition root (app/, cli/)
 * plug into it. An import from core/ up into them would tie the floor to one
 * source or sink, so this test reads every import in core/ and names the ones
 * that reach up.
 */
const repo = resolve(__dirname, '..', '..', '..');
const upperRooms = ['connectors', 'sinks', 'app', 'cli'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

describe('layering', () => {
  it('core/ imports nothing from connectors/, sinks/, app/ or cli/', () => {
    const offending: string[] = [];
    for (const file of tsFiles(join(repo, 'core'))) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/(?:from\s+|require\(|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = relative(repo, resolve(dirname(file), match[1]));
        if (upperRooms.includes(target.split('/')[0])) offending.push(`${relative(repo, file)} imports ${target}`);
      }
    }
    assert.deepEqual(offending, [], `core/ reaches up:\n${offending.join('\n')}`);
  });
});
