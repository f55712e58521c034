// A source appending durably into the embedded log, run the way the service
// runs it (SourceRunner + FileLog) until a given number of events is in the
// log. Measured in a child process of its own, so its peak memory is the
// pipeline's alone and a CPU profile (BENCH_CPU_PROF=dir) covers nothing else.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangeEvent } from '../../core/event/change-event';
import { Metrics } from '../../core/http/metrics';
import { AppendHint } from '../../core/log/change-log';
import { FileLog } from '../../core/log/file-log';
import { JsonStateFile } from '../../core/runtime/json-state';
import { asDeployed } from '../../core/runtime/gc-tuning';
import { createLogger } from '../../core/runtime/logger';
import { createSource, SourceConfig, sourceTypes } from '../../app/registry';
import { SourceRunner } from '../../core/runtime/source-runner';
import { peakRssMb } from './rss';

export interface SourceToLogSpec {
  /** The source's config as it would appear in cdc.yaml. */
  source: { type: keyof typeof sourceTypes } & Record<string, unknown>;
  /** Stop once this many events are durable in the log. */
  events: number;
  /** Start from this checkpoint (the source's own format), as after a restart. */
  from?: string;
  partitions?: number;
  /** Give up after this long (a stuck source must not hang the benchmark). */
  timeoutMs?: number;
}

export interface SourceToLogResult {
  events: number;
  seconds: number;
  /** events / seconds, start of the runner to the last durable append. */
  rate: number;
  /** From the start of the runner to the first durable append (connect, slot, snapshot setup). */
  firstEventSeconds: number;
  peakRssMb: number;
}

const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

/** Runs the pipeline in this process. */
export async function sourceToLog(spec: SourceToLogSpec): Promise<SourceToLogResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-source-'));
  const logger = createLogger('bench', () => undefined);
  const config = sourceTypes[spec.source.type].configSchema.parse(spec.source) as SourceConfig;
  const state = new JsonStateFile<{ position: string; updatedAt: string }>(join(dir, 'source.json'));
  if (spec.from) await state.write({ position: spec.from, updatedAt: new Date().toISOString() });
  const started = process.hrtime.bigint();
  const log = new FileLog({ dir: join(dir, 'log'), partitions: spec.partitions ?? 8 });
  await log.open();
  let appended = 0;
  let firstEventSeconds = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const counting = Object.create(log) as FileLog;
  counting.append = async (events: readonly ChangeEvent[], hint?: AppendHint) => {
    if (!process.env.BENCH_NULL_LOG) await log.append(events, hint); // BENCH_NULL_LOG=1 isolates the source's own cost
    if (appended === 0 && events.length > 0) firstEventSeconds = seconds(started);
    appended += events.length;
    if (appended >= spec.events) done();
  };
  const runner = new SourceRunner({
    name: config.name,
    createSource: () => createSource(config, { logger, dataDir: dir }),
    log: counting,
    state,
    metrics: new Metrics(),
    logger,
  });
  const stop = new AbortController();
  const running = runner.run(stop.signal);
  const timeoutMs = spec.timeoutMs ?? 600_000;
  const timer = setTimeout(() => done(), timeoutMs);
  await finished;
  clearTimeout(timer);
  const elapsed = seconds(started);
  stop.abort();
  await running;
  await log.close();
  rmSync(dir, { recursive: true, force: true });
  if (appended < spec.events) throw new Error(`${config.name}: only ${appended} of ${spec.events} events reached the log within ${timeoutMs} ms`);
  return { events: appended, seconds: elapsed, rate: appended / elapsed, firstEventSeconds, peakRssMb: peakRssMb() ?? 0 };
}

/** Runs the pipeline in a child process (bench/lib/source-to-log-worker.js) and returns what it measured. */
export function sourceToLogInChild(spec: SourceToLogSpec): Promise<SourceToLogResult> {
  const profileDir = process.env.BENCH_CPU_PROF;
  const node = asDeployed([...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), join(__dirname, 'source-to-log-worker.js'), JSON.stringify(spec)]);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, node.args, { stdio: ['ignore', 'pipe', 'pipe'], env: node.env });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) return resolve(JSON.parse(last) as SourceToLogResult);
      reject(new Error(`source → log worker (${spec.source.type}) exited with ${code}: ${(err || out).slice(-2000)}`));
    });
  });
}
