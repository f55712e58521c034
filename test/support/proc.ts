// Process plumbing shared by the throwaway-server starters: temp dirs, spawning with a
// log file, readiness polling, shutdown, and last-resort cleanup of everything we started.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { isRoot } from './ensure-binary';

export interface RunAs { name: string; uid: number; gid: number }

/** Anything with stop(); servers register here so stopAll() and the exit hook find them. */
export interface Stoppable { stop(): Promise<void> }

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
const liveServers = new Set<Stoppable>();

export const trackServer = (s: Stoppable): void => { liveServers.add(s); };
export const untrackServer = (s: Stoppable): void => { liveServers.delete(s); };
export const trackedServers = (): Stoppable[] => [...liveServers];

/**
 * Postgres refuses to run as root and mariadbd needs --user, so when we are root the
 * servers run as an unprivileged OS user, created on first use. Undefined when not root.
 */
export function serviceUser(name: string): RunAs | undefined {
  if (!isRoot()) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  try {
    return { name, uid: id('-u'), gid: id('-g') };
  } catch {
    try {
      execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`could not create the OS user ${name} (useradd --system ${name}): ${(err as Error).message}; create it by hand`);
    }
    return { name, uid: id('-u'), gid: id('-g') };
  }
}

/** mkdtemp under os.tmpdir(), owned by `owner` when given; removed by the exit hook if left behind. */
export function makeTempDir(prefix: string, owner?: RunAs): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tidewater-${prefix}-`));
  if (owner) fs.chownSync(dir, owner.uid, owner.gid);
  liveDirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

export interface SpawnOpts { logFile: string; runAs?: RunAs; cwd?: string; stdin?: 'ignore' | 'pipe'; stdout?: 'log' | 'pipe' }

/** Starts a long-running server process with stderr (and stdout unless piped) appended to `logFile`. */
export function spawnLogged(cmd: string, args: string[], opts: SpawnOpts): ChildProcess {
  installExitHooks();
  const fd = fs.openSync(opts.logFile, 'a');
  try {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C', TZ: 'UTC' };
    if (opts.runAs) Object.assign(env, { USER: opts.runAs.name, LOGNAME: opts.runAs.name, HOME: opts.cwd });
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env,
      stdio: [opts.stdin ?? 'ignore', opts.stdout === 'pipe' ? 'pipe' : fd, fd],
      uid: opts.runAs?.uid,
      gid: opts.runAs?.gid,
    });
    // spawn failures (ENOENT, EACCES) arrive as 'error'; the exit handlers below still run.
    child.on('error', () => undefined);
    if (child.pid !== undefined) liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    return child;
  } finally {
    fs.closeSync(fd);
  }
}

export const isRunning = (c: ChildProcess | undefined): boolean =>
  !!c && c.pid !== undefined && c.exitCode === null && c.signalCode === null;

/** Resolves true once `child` has exited, false after `timeoutMs`. */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (!isRunning(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.off('exit', onExit); resolve(false); }, timeoutMs);
    const onExit = () => { clearTimeout(timer); resolve(true); };
    child.once('exit', onExit);
  });
}

/** True while `pid` exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** All descendants of `pid` (e.g. Postgres backends), found through /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch { /* process vanished while we looked */ }
  }
  const out: number[] = [];
  const walk = (p: number) => { for (const c of children.get(p) ?? []) { out.push(c); walk(c); } };
  walk(pid);
  return out;
}

function signalQuietly(pid: number, sig: NodeJS.Signals): void {
  try { process.kill(pid, sig); } catch { /* already gone */ }
}

/** SIGKILLs `child` and its descendants, then waits until every one of them is gone. */
export async function killHard(child: ChildProcess, what: string): Promise<void> {
  if (!isRunning(child)) return;
  const pids = [child.pid!, ...descendants(child.pid!)];
  for (const p of pids) signalQuietly(p, 'SIGKILL');
  const deadline = Date.now() + 15_000;
  await waitExit(child, 15_000);
  while (pids.some(pidAlive)) {
    if (Date.now() > deadline) throw new Error(`${what}: processes ${pids.filter(pidAlive).join(',')} survived SIGKILL for 15 s; check them with ps`);
    await sleep(50);
  }
}

/** Sends `signal`, waits up to `timeoutMs`, then falls back to SIGKILL. */
export async function stopGracefully(child: ChildProcess | undefined, signal: NodeJS.Signals, timeoutMs: number, what: string): Promise<void> {
  if (!child || !isRunning(child)) return;
  signalQuietly(child.pid!, signal);
  if (!(await waitExit(child, timeoutMs))) await killHard(child, what);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Last `lines` lines of a log file, for error messages. */
export function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

export class EarlyExit extends Error {}

/**
 * Polls `probe` until it resolves true. Throws (with the log tail) if the child exits
 * first (EarlyExit) or after `timeoutMs`.
 */
export async function waitReady(probe: () => Promise<boolean>, o: { child: ChildProcess; what: string; logFile: string; timeoutMs: number }): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  for (;;) {
    if (!isRunning(o.child)) {
      await sleep(100); // let the server flush its last log lines
      throw new EarlyExit(`${o.what} exited during startup (code ${o.child.exitCode}, signal ${o.child.signalCode}); log ${o.logFile}:\n${tail(o.logFile)}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`${o.what} did not accept connections within ${o.timeoutMs / 1000} s; log ${o.logFile}:\n${tail(o.logFile)}`);
    }
    await sleep(100);
  }
}

/** Runs a short command to completion; the error names the command and shows its output. */
export function run(cmd: string, args: string[], opts: { runAs?: RunAs; cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, {
      cwd: opts.cwd, uid: opts.runAs?.uid, gid: opts.runAs?.gid, timeout: opts.timeoutMs ?? 120_000,
      env: { PATH: process.env.PATH, LANG: 'C', LC_ALL: 'C', HOME: opts.cwd ?? os.tmpdir() }, maxBuffer: 16 << 20,
    }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const out = `${stdout}\n${stderr}`.trim().split('\n').slice(-20).join('\n');
      reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${err.message.split('\n')[0]}):\n${out}`));
    });
  });
}

let hooksInstalled = false;

/** Synchronous last resort: SIGKILL every child we started that is still running, remove temp dirs. */
function killLeftoversSync(): void {
  for (const c of liveChildren) {
    if (!isRunning(c)) continue;
    for (const p of [c.pid!, ...descendants(c.pid!)]) signalQuietly(p, 'SIGKILL');
  }
  for (const d of liveDirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort at exit */ }
  }
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killLeftoversSync);
  // A bare SIGINT/SIGTERM/SIGHUP kills node without running 'exit' handlers. When nobody
  // else handles the signal, clean up and re-raise it so the default action still happens.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      if (process.listenerCount(sig) > 1) return; // someone else handles it (and exits)
      killLeftoversSync();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}
