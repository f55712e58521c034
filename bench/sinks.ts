// Scenario 4: replay into each sink (Redis, DuckDB, Postgres warehouse, the
// in-repo Elasticsearch server) beside the raw client writing the same rows.
// Wraps bench/sink-replay.js (run as a child, once per sink and run, so each
// sink's peak RSS is its own) and reads the JSON line it prints last.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { asDeployed } from '../core/runtime/gc-tuning';
import { BenchRow, summarize } from './lib/report';
import { main } from './lib/runner';
import { BenchContext, Scenario } from './lib/scenario';

interface ReplayOutput {
  workload: { events: number; keys: number; partitions: number; batch: number };
  results: Array<{ sink: string; ours: number; peakRssMb: number; batch?: number; baselines: Array<{ label: string; perSecond: number }> }>;
}

const SINKS = ['redis', 'duckdb', 'postgres', 'elasticsearch'];

function replayOnce(args: string[]): Promise<ReplayOutput> {
  const script = join(__dirname, 'sink-replay.js');
  return new Promise((resolve, reject) => {
    const node = asDeployed([script, ...args]);
    const child = spawn(process.execPath, node.args, { stdio: ['ignore', 'pipe', 'pipe'], env: node.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const json = out.split('\n').reverse().find((line) => line.startsWith('{"workload"'));
      if (code !== 0 || !json) return reject(new Error(`sink-replay ${args.join(' ')} exited with ${code}: ${(err || out).slice(-2000)}`));
      resolve(JSON.parse(json) as ReplayOutput);
    });
  });
}

export const sinksScenario: Scenario = {
  name: 'sinks',
  summary: 'replay into Redis, DuckDB, Postgres warehouse, ES (in-repo server), events/s, vs the raw clients',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const events = ctx.option('sink-events', ctx.quick ? 20_000 : 100_000);
    const keys = Math.max(1, Math.round(events / 5));
    const runs: ReplayOutput[] = [];
    for (let run = 0; run < ctx.runs; run++) {
      const outputs: ReplayOutput[] = [];
      for (const sink of SINKS) outputs.push(await replayOnce(['--events', String(events), '--keys', String(keys), '--sinks', sink]));
      const output = { workload: outputs[0].workload, results: outputs.flatMap((o) => o.results) };
      runs.push(output);
      ctx.say(`  run ${run + 1}: ${output.results.map((r) => `${r.sink} ${Math.round(r.ours)}/s (${Math.round(r.peakRssMb)} MB)`).join(', ')}`);
    }
    const w = runs[0].workload;
    return runs[0].results.map(({ sink, baselines }, i) => {
      const others = baselines.slice(1).map((b, k) => `${b.label}: ${Math.round(summarize(runs.map((r) => r.results[i].baselines[k + 1].perSecond)).median).toLocaleString('en-US')}/s`);
      return {
        scenario: `4. replay → ${sink} (${w.events.toLocaleString('en-US')} events, ${w.keys.toLocaleString('en-US')} rows)`,
        unit: 'events/s',
        ours: summarize(runs.map((r) => r.results[i].ours)),
        baseline: summarize(runs.map((r) => r.results[i].baselines[0].perSecond)),
        baselineName: baselines[0].label,
        peakRssMb: Math.max(...runs.map((r) => r.results[i].peakRssMb)),
        notes: [`${w.partitions} partitions, batches of ${runs[0].results[i].batch ?? w.batch}; RSS is this sink's replay process from open to close (the baselines run after, the servers in processes of their own)`, ...others].join('; '),
      };
    });
  },
};

if (require.main === module) main([sinksScenario]);
