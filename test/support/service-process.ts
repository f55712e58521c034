import { ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './kafka';
import { waitFor } from './wait';
import { asDeployed } from '../../core/runtime/gc-tuning';

const CLI = join(packageRoot(), 'dist', 'cli', 'main.js');

/** The `cdc` service running as a child process, as an operator runs it. */
export class ServiceProcess {
  private child: ChildProcess | null = null;
  readonly output: string[] = [];
  private exitCode: number | null = null;
  /** How the last run ended (`code 1`, `signal SIGSEGV`), for a crash report; null while running. */
  lastExit: string | null = null;

  constructor(
    readonly configPath: string,
    readonly httpPort: number,
    readonly env: NodeJS.ProcessEnv = {},
    /** Sees every line the service prints (the demo echoes them). */
    private readonly onLine?: (line: string) => void,
  ) {}

  /** Starts `cdc run`; by default resolves once /readyz says ready (or throws with the output when it exits). */
  async start(options: { args?: string[]; waitUntilReady?: boolean } = {}): Promise<void> {
    const args = options.args ?? [];
    this.exitCode = null;
    // Started as deploy/ starts it (core/runtime/gc-tuning.ts). Tests match the pretty lines' `key=value` text; a test can ask for json through env.
    const node = asDeployed([CLI, 'run', '-c', this.configPath, ...args], { CDC_LOG_FORMAT: 'pretty', ...process.env, ...this.env });
    const child = spawn(process.execPath, node.args, { env: node.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const collect = (chunk: Buffer) => {
      const lines = chunk.toString().split('\n').filter(Boolean);
      this.output.push(...lines);
      if (this.output.length > 5000) this.output.splice(0, this.output.length - 5000);
      lines.forEach((line) => this.onLine?.(line));
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.on('exit', (code, signal) => {
      this.exitCode = code ?? (signal ? 128 : 0);
      this.lastExit = signal ? `signal ${signal}` : `code ${code}`;
      if (this.child === child) this.child = null;
    });
    if (options.waitUntilReady === false) return;
    await waitFor(async () => this.exitCode !== null || (await this.isReady()), {
      timeoutMs: 30_000,
      what: 'the service to become ready (/readyz)',
      describe: () => this.recentOutput(),
    });
    if (this.exitCode !== null) throw new Error(`the service exited with code ${this.exitCode}: ${this.recentOutput()}`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async isReady(): Promise<boolean> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.httpPort}/readyz`);
      return response.status === 200;
    } catch {
      return false;
    }
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.httpPort}/metrics`)).text();
  }

  /** SIGTERM and wait for a clean exit; returns the exit code. */
  async stop(timeoutMs = 20_000): Promise<number> {
    const child = this.child;
    if (!child) return this.exitCode ?? 0;
    const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? 128)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** kill -9: no chance to clean up. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  recentOutput(lines = 30): string {
    return this.output.slice(-lines).join('\n');
  }
}

/** Runs the `cdc` CLI to completion (e.g. `validate`). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 });
  return { code: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

/** runCli without blocking the event loop: pollers of the test keep running while the command does. */
export function runCliAsync(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export function writeConfig(path: string, yaml: string): string {
  writeFileSync(path, yaml);
  return path;
}
