import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';

let aptUpdated = false;

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Debian installs Postgres tools under /usr/lib/postgresql/<major>/bin; newest major first. */
function postgresBinDirs(): string[] {
  const root = '/usr/lib/postgresql';
  try {
    return fs.readdirSync(root)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
      .map((v) => path.join(root, v, 'bin'));
  } catch {
    return [];
  }
}

/** First executable among `candidates` (absolute paths or names looked up on PATH), or undefined. */
export function findBinary(candidates: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...postgresBinDirs()];
  for (const c of candidates) {
    if (path.isAbsolute(c)) {
      if (isExecutable(c)) return c;
      continue;
    }
    for (const d of dirs) {
      const full = path.join(d, c);
      if (isExecutable(full)) return full;
    }
  }
  return undefined;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Installs a Debian package with apt-get (root only); runs `apt-get update` once per process. */
export function aptInstall(debPackage: string): void {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) => {
    try {
      execFileSync('apt-get', args, { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
    } catch (err) {
      const e = err as { stderr?: Buffer; message: string };
      const detail = e.stderr?.toString().trim().split('\n').slice(-5).join('\n') || e.message;
      throw new Error(`apt-get ${args.join(' ')} failed; install the Debian package ${debPackage} by hand:\n${detail}`);
    }
  };
  if (!aptUpdated) {
    run(['update', '-q']);
    aptUpdated = true;
  }
  run(['install', '-y', '-q', debPackage]);
}

/**
 * Path of the first executable found among `candidates`. When none is found and we are
 * root, installs `debPackage` with apt-get and looks again; otherwise throws an Error
 * naming the package to install.
 */
export function ensureBinary(candidates: string[], debPackage: string): string {
  const found = findBinary(candidates);
  if (found) return found;
  const what = candidates.join(' / ');
  const hint = `install the Debian package ${debPackage} (apt-get install -y ${debPackage})`;
  if (!isRoot()) throw new Error(`${what} not found: ${hint}`);
  aptInstall(debPackage);
  const again = findBinary(candidates);
  if (!again) throw new Error(`${what} still not found after apt-get install ${debPackage}: check the package's file list (dpkg -L ${debPackage})`);
  return again;
}
