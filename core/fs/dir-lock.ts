import { ChildProcess, spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

export interface DirLockOptions {
  /** How long to wait for a holder to let go (default 3 s: a holder killed just now needs a moment to see its pipe close). */
  waitMs?: number;
}

const CONFLICT = 75; // EX_TEMPFAIL: flock(1) exits with it when another process holds the lock

/**
 * Claims a directory for this process with a kernel lock (flock(2)) on
 * `<dir>/LOCK`, so a second process cannot open the same log and interleave
 * writes with ours. Node has no flock, so a `flock(1)` child (util-linux)
 * takes the lock and holds it while its stdin, a pipe from us, stays open:
 * when this process dies in any way (kill -9 included, and while it is a
 * zombie, since the kernel closes a dead process's files at once) the pipe
 * closes, the child exits and the kernel drops the lock. A PID file cannot do
 * this: a zombie still "runs", and containers sharing a volume are all PID 1.
 * The file also holds the holder's PID, only to name it in the refusal.
 */
export async function lockDirectory(dir: string, what: string, options: DirLockOptions = {}): Promise<() => Promise<void>> {
  const file = path.join(dir, 'LOCK');
  const waitSeconds = Math.max(0, (options.waitMs ?? 3000) / 1000);
  const child = spawn('flock', ['--exclusive', '--wait', String(waitSeconds), '--conflict-exit-code', String(CONFLICT), file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.on('error', () => undefined); // reported through lockOutcome; later ones (the child gone) change nothing
  child.stdin?.on('error', () => undefined);
  const outcome = await lockOutcome(child);
  if (outcome.kind === 'spawn-error') {
    throw new Error(`${what} ${dir}: cannot lock it: running flock(1) failed (${outcome.message}); install util-linux, which provides flock`);
  }
  if (outcome.kind === 'exited') {
    if (outcome.code === CONFLICT) {
      const holder = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      const who = holder === process.pid ? `this process (${holder}) already` : holder > 0 ? `process ${holder}` : 'another process';
      throw new Error(
        `${what} ${dir} is in use by ${who} (it holds the lock on ${file}): stop that process first ` +
          `(two processes writing one log would corrupt it; give each service its own dataDir)`,
      );
    }
    throw new Error(`${what} ${dir}: flock(1) on ${file} failed with exit code ${outcome.code}: ${outcome.stderr.trim() || 'no message'}`);
  }

  // Locked. Our PID in the file names us to a process that is refused; the lock itself is on the inode, never replace the file.
  await fs.writeFile(file, `${process.pid}\n`).catch(() => undefined);
  let released = false;
  child.once('exit', (code, signal) => {
    if (!released) {
      console.error(`${what} ${dir}: the flock(1) process holding the lock on ${file} exited (${signal ?? `code ${code}`}); another process could now open the directory: restart this service`);
    }
  });
  // The lock must not keep the event loop alive (a CLI that opens the log exits when done).
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
  return async () => {
    if (released) return;
    released = true;
    const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
    child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  };
}

type Outcome = { kind: 'locked' } | { kind: 'exited'; code: number | null; stderr: string } | { kind: 'spawn-error'; message: string };

function lockOutcome(child: ChildProcess): Promise<Outcome> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    const done = (outcome: Outcome) => {
      child.stdout?.off('data', onOut);
      child.off('exit', onExit);
      child.off('error', onError);
      if (outcome.kind === 'locked') child.stdout?.resume();
      resolve(outcome);
    };
    const onOut = (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes('locked\n')) done({ kind: 'locked' });
    };
    const onExit = (code: number | null) => done({ kind: 'exited', code, stderr });
    const onError = (error: Error) => done({ kind: 'spawn-error', message: error.message });
    child.stdout?.on('data', onOut);
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', onExit);
    child.on('error', onError);
  });
}
