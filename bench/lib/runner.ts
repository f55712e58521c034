// Runs benchmark scenarios by name (or all), prints one Markdown table on
// stdout and writes it as JSON to bench/results/latest.json.
import { cpus } from 'node:os';
import { join } from 'node:path';
import { stopAll } from '../../test/support/servers';
import { BenchRow, formatTable, writeJson } from './report';
import { BenchContext, Scenario, SharedServers } from './scenario';

export interface RunnerOptions {
  /** Where the JSON goes (default bench/results/latest.json, relative to the working directory). */
  jsonPath?: string;
}

function usage(scenarios: readonly Scenario[]): string {
  return [
    'usage: node dist/bench/run.js [scenario ...] [--quick] [--runs N] [--<size option> N ...]',
    '',
    'scenarios (default: all but those marked "when named", in this order):',
    ...scenarios.map((s) => `  ${s.name.padEnd(14)} ${s.onlyWhenNamed ? '(when named) ' : ''}${s.summary}`),
    '',
    '--quick   small sizes and one run (about a minute or two for all)',
    '--runs N  repetitions per measurement (default 3; 1 with --quick)',
    '--json F  where the JSON goes (default bench/results/latest.json)',
  ].join('\n');
}

/** Parses argv, runs the chosen scenarios against shared throwaway servers, prints and saves the table. */
export async function runScenarios(scenarios: readonly Scenario[], argv: string[], options: RunnerOptions = {}): Promise<BenchRow[]> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage(scenarios));
    return [];
  }
  const named = new Map<string, string>();
  const chosen: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') named.set('quick', '1');
    else if (arg.startsWith('--')) named.set(arg.slice(2), argv[++i] ?? '');
    else chosen.push(arg);
  }
  const unknown = chosen.filter((name) => !scenarios.some((s) => s.name === name));
  if (unknown.length) throw new Error(`unknown scenario(s) ${unknown.join(', ')}\n\n${usage(scenarios)}`);
  const quick = named.has('quick');
  const option = (name: string, fallback: number) => {
    if (!named.has(name)) return fallback;
    const value = Number(named.get(name));
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(named.get(name))}`);
    return value;
  };
  const servers = new SharedServers();
  const ctx: BenchContext = {
    quick,
    runs: option('runs', quick ? 1 : 3),
    option,
    postgres: () => servers.postgres(),
    mariadb: () => servers.mariadb(),
    redis: () => servers.redis(),
    say: (message) => process.stderr.write(`${message}\n`),
  };
  const selected = chosen.length ? scenarios.filter((s) => chosen.includes(s.name)) : scenarios.filter((s) => !s.onlyWhenNamed);
  const rows: BenchRow[] = [];
  const started = Date.now();
  try {
    for (const scenario of selected) {
      const at = Date.now();
      ctx.say(`▶ ${scenario.name}: ${scenario.summary}`);
      rows.push(...(await scenario.run(ctx)));
      ctx.say(`  ${scenario.name} took ${((Date.now() - at) / 1000).toFixed(0)} s`);
    }
  } finally {
    await stopAll();
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}`;
  console.log(formatTable(rows));
  console.log(`\n${quick ? 'quick run' : `${ctx.runs} runs each`}; ${machine}; ${((Date.now() - started) / 1000).toFixed(0)} s in all`);
  writeJson(named.get('json') || options.jsonPath || join('bench', 'results', 'latest.json'), rows, { quick, runs: ctx.runs, machine, scenarios: selected.map((s) => s.name) });
  return rows;
}

/** Entry point helper: runs, and exits non-zero with the error on failure. */
export function main(scenarios: readonly Scenario[]): void {
  runScenarios(scenarios, process.argv.slice(2)).then(
    () => process.exit(0),
    (error: Error) => {
      console.error(error.stack ?? error.message);
      process.exit(1);
    },
  );
}
