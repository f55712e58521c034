import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { lockDirectory } from '../../core/fs/dir-lock';

const DIR_LOCK_JS = require.resolve('../../core/fs/dir-lock');

/** A node process that locks `dir`, prints `locked <pid>`, and then idles until killed. */
const holderScript = (dir: string) =>
  `require(${JSON.stringify(DIR_LOCK_JS)}).lockDirectory(${JSON.stringify(dir)}, 'file-log:')` +
  `.then(() => { console.log('locked ' + process.pid); setInterval(() => {}, 1000); }, (e) => { console.log('refused ' + e.message); process.exit(3); })`;

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    child.once('exit', (code) => reject(new Error(`the holder exited (${code}) before locking: ${out}`)));
  });
}

/** The state letter of a process in /proc (Z for a zombie), or undefined once it is gone. */
function procState(pid: number): string | undefined {
  const file = `/proc/${pid}/stat`;
  if (!existsSync(file)) return undefined;
  return readFileSync(file, 'utf8').replace(/^.*\) /, '')[0];
}

describe('directory lock (flock, released by the kernel when its holder dies)', function () {
  this.timeout(30_000);
  let dir: string;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dir-lock-'));
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await fs.rm(dir, { recursive: true, force: true });
  });

  const startHolder = async (): Promise<{ child: ChildProcess; pid: number }> => {
    const child = spawn(process.execPath, ['-e', holderScript(dir)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const line = await firstLine(child);
    assert.match(line, /^locked \d+$/);
    return { child, pid: Number(line.split(' ')[1]) };
  };

  it('refuses a second live process, naming the directory and the holder', async () => {
    const { pid } = await startHolder();
    const started = Date.now();
    await assert.rejects(lockDirectory(dir, 'file-log:', { waitMs: 500 }), (error: Error) => {
      assert.equal(error.message.startsWith(`file-log: ${dir} is in use by process ${pid} (it holds the lock on ${path.join(dir, 'LOCK')})`), true, error.message);
      assert.match(error.message, /stop that process first/);
      return true;
    });
    assert.ok(Date.now() - started < 5000, 'refused after the wait, not hanging');
  });

  it('takes the lock at once after its holder is killed with SIGKILL', async () => {
    const { child } = await startHolder();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const started = Date.now();
    const unlock = await lockDirectory(dir, 'file-log:');
    console.log(`      locked ${Date.now() - started} ms after the holder's kill -9`);
    assert.equal(readFileSync(path.join(dir, 'LOCK'), 'utf8').trim(), String(process.pid), 'the lock file names its new holder');
    await unlock();
  });

  it('takes the lock while the killed holder is still a zombie (its parent never wait()s)', async () => {
    // `exec sleep` replaces the shell, so nothing reaps the holder: once killed it stays a zombie.
    const parent = spawn('sh', ['-c', `"${process.execPath}" -e "$HOLDER" & exec sleep 30`], {
      env: { ...process.env, HOLDER: holderScript(dir) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(parent);
    const line = await firstLine(parent);
    const pid = Number(line.split(' ')[1]);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && procState(pid) !== 'Z'; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(procState(pid), 'Z', `the killed holder ${pid} is a zombie`);
    process.kill(pid, 0); // a PID file lock would see it alive: that was the bug
    const unlock = await lockDirectory(dir, 'file-log:');
    assert.equal(procState(pid), 'Z', 'still a zombie when the lock was taken');
    await unlock();
  });

  it('lets go on release, so the next process locks without waiting', async () => {
    const unlock = await lockDirectory(dir, 'file-log:');
    await unlock();
    const started = Date.now();
    const { child } = await startHolder();
    assert.ok(Date.now() - started < 3000);
    child.kill('SIGKILL');
  });
});
