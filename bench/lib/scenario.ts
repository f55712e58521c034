// What every benchmark scenario gets from the runner (bench/run.ts): sizes,
// run count, and throwaway servers started on first use and shared by the
// scenarios of one run.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { MariadbServer, PgServer, RedisServer, startMariadb, startPostgres, startRedis } from '../../test/support/servers';
import { BenchRow } from './report';

export interface BenchContext {
  /** Small sizes and one run: what a test or a quick look runs. */
  quick: boolean;
  /** How many times each measurement is repeated (the table quotes the median). */
  runs: number;
  /** `--name value` from the command line, or `fallback`. */
  option(name: string, fallback: number): number;
  postgres(): Promise<PgServer>;
  mariadb(): Promise<MariadbServer>;
  redis(): Promise<RedisServer>;
  /** Progress line on stderr (the table goes to stdout). */
  say(message: string): void;
}

export interface Scenario {
  name: string;
  /** One line for --help. */
  summary: string;
  /** Left out of the default (all scenarios) run: too long for it; runs when named. */
  onlyWhenNamed?: boolean;
  run(ctx: BenchContext): Promise<BenchRow[]>;
}

/** Lazily started servers, one of each kind per benchmark run. */
export class SharedServers {
  private pg?: Promise<PgServer>;
  private maria?: Promise<MariadbServer>;
  private red?: Promise<RedisServer>;

  postgres(): Promise<PgServer> {
    return (this.pg ??= startPostgres());
  }

  mariadb(): Promise<MariadbServer> {
    return (this.maria ??= startMariadb());
  }

  redis(): Promise<RedisServer> {
    return (this.red ??= startRedis());
  }
}

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

/**
 * Runs a command with stdout thrown away (as `> /dev/null` would) and
 * resolves with its wall-clock seconds; rejects with its stderr on failure.
 */
export function timeCommand(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(seconds(started)) : reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`))));
  });
}

/** Rounds to whole MiB for notes. */
export const mb = (value: number) => `${Math.round(value)} MB`;

/** Env that makes a `cdc` child write a CPU profile into $BENCH_CPU_PROF (cpu-profile-preload.ts); empty when unset. */
export function profiledChildEnv(): NodeJS.ProcessEnv {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return {};
  return { NODE_OPTIONS: [process.env.NODE_OPTIONS, `--require ${join(__dirname, 'cpu-profile-preload.js')}`].filter(Boolean).join(' '), BENCH_CPU_PROF: dir };
}
