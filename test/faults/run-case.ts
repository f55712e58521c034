// One case from start to verdict: pipeline up, load and service started, the
// fault injected, recovery timed, load stopped, the pipeline drained (a marker
// row reaches Redis and every sink's lag is 0), the service stopped, every
// sink compared with the source.
import Redis from 'ioredis';
import { FaultCase } from './cases';
import { compareAll, SinkComparison } from './compare';
import { CaseContext } from './context';
import { sleep } from './faults';
import { WriteLoad } from './load';
import { Monitor } from './monitor';
import { logKindOf, Pipeline } from './pipeline';
import { Lab } from './lab';
import { logDuplicates } from './log-duplicates';
import { CaseResult, LIMITS, isLimitReason } from './report';

export interface RunOptions {
  quick: boolean;
  workDir: string;
}

/** The case's service name (and database, Redis prefix, Kafka topic): its place in the full catalog. */
export function caseId(all: FaultCase[], c: FaultCase): string {
  return `fc${String(all.indexOf(c) + 1).padStart(2, '0')}`;
}

/** Past these a case has failed anyway; waiting longer only slows the suite. */
const RECOVERY_TIMEOUT_MS = 90_000;
const DRAIN_TIMEOUT_MS = 90_000;
const DRAIN_AFTER_NO_RECOVERY_MS = 30_000;
/** How often the service refreshes cdc_sink_lag_events (the sink runner's default lagIntervalMs). */
const LAG_GAUGE_REFRESH_MS = 1000;

export async function runCase(lab: Lab, c: FaultCase, id: string, random: () => number, o: RunOptions): Promise<CaseResult> {
  const started = Date.now();
  const result: CaseResult = { name: c.name, kind: c.kind, pipeline: c.pipeline, sinks: [], recoverSeconds: null, peakRssMb: 0, passed: false, reasons: [], notes: [], seconds: 0 };
  console.log(`\n== ${c.name} (service ${id}) ==`);
  const skip = c.prepare?.(id) ?? null;
  if (skip) {
    result.skipped = skip;
    console.log(`skipped: ${skip}`);
    return result;
  }
  // The Kafka mock keeps only ~5 MiB per partition (older records are dropped): Kafka cases stay well under it.
  const kafka = logKindOf(c.pipeline) === 'kafka';
  const seedRows = kafka ? 3000 : o.quick ? 10_000 : 40_000;
  // The mock also hands a consumer one producer batch per fetch (a real broker returns up to
  // maxBytes), so the DuckDB warehouse gets a few records per transaction there and falls
  // behind at 150 changes/s on this 2-core machine: Kafka cases write 60/s.
  const changesPerSecond = kafka ? 60 : 300;
  const p = new Pipeline(lab, c.pipeline, id, { seedRows, snapshotChunk: 1000, serverId: 5400 + Number(id.slice(2)), ...c.options }, o.workDir);
  let ctx: CaseContext | undefined;
  let faultClearedAt = Date.now();
  const monitor = new Monitor(p);
  try {
    await p.setUp();
    const load = new WriteLoad({
      kind: p.source, seed: Math.floor(random() * 2 ** 31), changesPerSecond, maxChanges: 200_000, maxMs: 300_000, workers: 3,
      idSpace: Math.floor(seedRows * 1.1), client: () => p.sourceClient(),
    });
    ctx = new CaseContext(p, monitor, random, load, o.quick);
    ctx.deadlineMs = Date.now() + (o.quick ? 180_000 : 600_000);
    monitor.start();
    load.start();
    await p.start();
    let clearedAt = Date.now();
    try {
      clearedAt = await c.inject(ctx);
      faultClearedAt = clearedAt;
    } catch (error) {
      result.reasons.push(`the fault could not be injected: ${(error as Error).message}`);
    }
    // A case that may take minutes to drain is watched as long: "never" would hide how far over 30 s it is.
    const recoveryTimeoutMs = Math.max(RECOVERY_TIMEOUT_MS, c.drainMs ?? 0);
    result.recoverSeconds = await monitor.secondsToRecover(clearedAt, recoveryTimeoutMs);
    ctx.note(`recovery: ${result.recoverSeconds === null ? `not within ${recoveryTimeoutMs / 1000} s (last seen: ${monitor.lastLags})` : `${result.recoverSeconds.toFixed(1)} s`} after the fault cleared`
      + (monitor.atLimit && result.recoverSeconds !== null ? ` (30 s after it: ${monitor.atLimit})` : ''));
    await sleep(2000); // a little more load on the recovered pipeline
    const stats = await load.stop();
    ctx.note(`load: ${stats.transactions} transactions, ~${stats.changes} changes, ${stats.failed} failed${stats.failed ? ` (last: ${stats.lastError.slice(0, 120)})` : ''}`);
    const drainMs = c.drainMs ?? (result.recoverSeconds === null ? DRAIN_AFTER_NO_RECOVERY_MS : DRAIN_TIMEOUT_MS);
    const drainStarted = Date.now();
    const drained = await drain(p, monitor, drainMs);
    if (c.drainMs) ctx.note(`drained ${drained.ok ? `in ${((Date.now() - drainStarted) / 1000).toFixed(0)} s after the load stopped` : `not within ${drainMs / 1000} s`}`);
    if (!drained.ok) result.reasons.push(`did not drain within ${drainMs / 1000} s: ${drained.detail}`);
    const code = await p.stopService();
    if (code !== 0) ctx.note(`the service exited with code ${code} on SIGTERM`);
    result.sinks = await compareAll(p);
    if (logKindOf(c.pipeline) === 'embedded') {
      ctx.note(`changes appended to the log more than once (replays after a crash; sinks must absorb them): ${await logDuplicates(p).catch((e) => `not counted: ${(e as Error).message}`)}`);
    }
  } catch (error) {
    result.reasons.push(`harness error: ${(error as Error).stack?.split('\n').slice(0, 3).join(' ')}`);
  } finally {
    monitor.stop();
    result.peakRssMb = monitor.peakRssMb;
    if (result.peakRssMb > 0 && ctx) {
      const { ms, anonMb, fileMb, v8 } = monitor.peakAt;
      ctx.note(`peak RSS ${result.peakRssMb.toFixed(0)} MB reached ${((ms - faultClearedAt) / 1000).toFixed(1)} s after the fault cleared (resident then: ${anonMb.toFixed(0)} MB anonymous, ${fileMb.toFixed(0)} MB files${v8 ? `; near then: ${v8}` : ''})`);
    }
    ctx?.close();
    await p.tearDown().catch(() => undefined);
    await c.cleanup?.(ctx!).catch(() => undefined);
  }
  verdict(result, p, ctx);
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

function verdict(result: CaseResult, p: Pipeline, ctx: CaseContext | undefined): void {
  const bad = (s: SinkComparison) => s.missing + s.different + s.extra + s.duplicates > 0;
  for (const s of result.sinks.filter(bad)) {
    result.reasons.push(`sink ${s.sink}: ${s.missing} missing, ${s.different} different, ${s.extra} extra, ${s.duplicates} duplicate changes`);
  }
  if (result.sinks.length === 0 && result.reasons.length === 0) result.reasons.push('no comparison was made');
  if (result.recoverSeconds === null || result.recoverSeconds > LIMITS.recoverSeconds) {
    result.reasons.push(`recovery ${result.recoverSeconds === null ? 'never seen' : `took ${result.recoverSeconds.toFixed(1)} s`} (limit ${LIMITS.recoverSeconds} s)`);
  }
  if (result.peakRssMb > LIMITS.peakRssMb) result.reasons.push(`peak RSS ${result.peakRssMb.toFixed(0)} MB (limit ${LIMITS.peakRssMb} MB)`);
  for (const crash of p.crashes) result.reasons.push(`the service exited on its own: ${crash}`);
  result.notes = ctx?.notes ?? [];
  result.passed = result.reasons.length === 0;
  result.dataOk = result.reasons.every(isLimitReason);
}

/** After the load: a marker row must reach Redis (the source caught up) and every sink's lag must be 0. */
async function drain(p: Pipeline, monitor: Monitor, timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
  const deadline = Date.now() + timeoutMs;
  const marker = `drain-${Date.now()}`;
  const client = p.sourceClient();
  const redis = new Redis(p.lab.redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on('error', () => undefined);
  let detail = '';
  try {
    for (;;) {
      try {
        await client.query(p.source === 'postgres'
          ? `INSERT INTO customers (id, name) VALUES (-1, '${marker}') ON CONFLICT (id) DO UPDATE SET name = excluded.name`
          : `INSERT INTO customers (id, name) VALUES (-1, '${marker}') ON DUPLICATE KEY UPDATE name = VALUES(name)`);
        break;
      } catch (error) {
        if (Date.now() > deadline) return { ok: false, detail: `cannot write the marker row: ${(error as Error).message}` };
        await sleep(500);
      }
    }
    const key = `${p.prefix}${p.schema}.customers:-1`;
    let markerSeenAt = 0;
    while (Date.now() < deadline) {
      const value = await redis.get(key).catch(() => null);
      if (value?.includes(marker)) {
        markerSeenAt ||= Date.now();
        // The lag gauges refresh once a second: a 0 read sooner may predate the marker's append (a
        // warehouse still committing it then looked drained, and was stopped without it).
        const fresh = Date.now() - markerSeenAt >= LAG_GAUGE_REFRESH_MS + 500;
        const lags = await monitor.lags();
        if (fresh && lags && p.sinks.every((s) => lags.sinkEvents[s] === 0)) return { ok: true, detail: '' };
        detail = lags ? `sink lag events ${JSON.stringify(lags.sinkEvents)}` : 'no metrics';
      } else detail = `the marker row has not reached Redis (${key})`;
      await sleep(250);
    }
    return { ok: false, detail };
  } finally {
    redis.disconnect();
    await client.close();
  }
}
