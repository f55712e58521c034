// What the harness watches while a case runs: the service's peak memory
// (VmHWM of every process it ran, sampled), its metrics (lag per sink and
// source), and whether /readyz ever said 503 (health telling the truth).
import Redis from 'ioredis';
import { Pipeline } from './pipeline';
import { statusMb } from '../../bench/lib/rss';

export type Metrics = Map<string, number>;

/** Prometheus text → `name{labels}` → value. */
export function parseMetrics(text: string): Metrics {
  const out: Metrics = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

export function metric(metrics: Metrics, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const [key, value] of metrics) {
    if (key !== name && !key.startsWith(`${name}{`)) continue;
    if (wanted.every((w) => key.includes(w))) return value;
  }
  return undefined;
}

/** /proc/PID/status's VmHWM (peak resident set) and what is resident now, in MB; null when the process is gone. */
function memoryOf(pid: number): { peak: number; anon: number; file: number } | null {
  const peak = statusMb(pid, 'VmHWM');
  return peak === undefined ? null : { peak, anon: statusMb(pid, 'RssAnon') ?? 0, file: statusMb(pid, 'RssFile') ?? 0 };
}

export class Monitor {
  peakRssMb = 0;
  /** When the peak last grew, and the resident memory's make-up then (anonymous: heaps, V8's and native; file: mapped files). */
  peakAt = { ms: 0, anonMb: 0, fileMb: 0, v8: '' };
  private heapAskedAtMs = 0;
  /** What the last recovery poll saw (for the report when recovery never came). */
  lastLags = '';
  /** What held recovery up when it passed 30 s. */
  atLimit = '';
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pipeline: Pipeline) {}

  /** When /readyz answered 503 (ms timestamps). */
  private readonly notReadyAt: number[] = [];
  private readyTimer: NodeJS.Timeout | null = null;

  start(): void {
    this.timer = setInterval(() => {
      const pid = this.pipeline.service.pid;
      const memory = pid ? memoryOf(pid) : null;
      if (memory && memory.peak > this.peakRssMb) {
        this.peakRssMb = memory.peak;
        this.peakAt = { ms: Date.now(), anonMb: memory.anon, fileMb: memory.file, v8: this.peakAt.v8 };
        if (Date.now() - this.heapAskedAtMs >= 1000) void this.v8HeapAtPeak();
      }
    }, 200);
    this.readyTimer = setInterval(() => void this.ready(), 1000);
  }

  /** V8's share of a new peak (at most once a second): whether the JS heap or native memory grew. */
  private async v8HeapAtPeak(): Promise<void> {
    this.heapAskedAtMs = Date.now();
    const m = await this.metrics();
    if (!m) return;
    const mb = (name: string) => ((metric(m, name) ?? Number.NaN) / 1e6).toFixed(0);
    this.peakAt.v8 = `V8 heap ${mb('nodejs_heap_size_total_bytes')} MB (${mb('nodejs_heap_size_used_bytes')} used), external ${mb('nodejs_external_memory_bytes')} MB`;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.readyTimer) clearInterval(this.readyTimer);
  }

  /** Whether /readyz said 503 at some point between the two moments. */
  notReadyBetween(fromMs: number, toMs: number): boolean {
    return this.notReadyAt.some((t) => t >= fromMs && t <= toMs);
  }

  async metrics(): Promise<Metrics | null> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.pipeline.service.httpPort}/metrics`, { signal: AbortSignal.timeout(3000) });
      return response.ok ? parseMetrics(await response.text()) : null;
    } catch {
      return null;
    }
  }

  async ready(): Promise<boolean | null> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.pipeline.service.httpPort}/readyz`, { signal: AbortSignal.timeout(3000) });
      if (response.status === 503) this.notReadyAt.push(Date.now());
      return response.status === 200;
    } catch {
      return null;
    }
  }

  /** Each sink's lag in events and seconds and the source's lag, or null when the service does not answer. */
  async lags(): Promise<{ sinkEvents: Record<string, number>; sinkSeconds: Record<string, number>; sourceSeconds: number } | null> {
    const m = await this.metrics();
    if (!m) return null;
    const sinkEvents: Record<string, number> = {};
    const sinkSeconds: Record<string, number> = {};
    for (const sink of this.pipeline.sinks) {
      sinkEvents[sink] = metric(m, 'cdc_sink_lag_events', { sink }) ?? Number.NaN;
      sinkSeconds[sink] = metric(m, 'cdc_sink_lag_seconds', { sink }) ?? Number.NaN;
    }
    return { sinkEvents, sinkSeconds, sourceSeconds: metric(m, 'cdc_source_lag_seconds', { source: this.pipeline.sourceName }) ?? Number.NaN };
  }

  /**
   * Seconds from `clearedAtMs` until a probe row written after the fault
   * cleared is in Redis and Elasticsearch, and every sink's lag is under 5 s
   * (or 0 events) with the source's under 5 s; null if not within `timeoutMs`.
   */
  async secondsToRecover(clearedAtMs: number, timeoutMs: number): Promise<number | null> {
    const deadline = clearedAtMs + timeoutMs;
    const p = this.pipeline;
    const probe = `probe-${clearedAtMs}`;
    const client = p.sourceClient();
    const redis = new Redis(p.lab.redis.url, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    let written = false;
    try {
      while (Date.now() < deadline) {
        if (!written) {
          written = await client.query(p.source === 'postgres'
            ? `INSERT INTO customers (id, name) VALUES (-2, '${probe}') ON CONFLICT (id) DO UPDATE SET name = excluded.name`
            : `INSERT INTO customers (id, name) VALUES (-2, '${probe}') ON DUPLICATE KEY UPDATE name = VALUES(name)`).then(() => true, () => false);
        }
        void this.ready();
        const lags = await this.lags();
        const inRedis = written && ((await redis.get(`${p.prefix}${p.schema}.customers:-2`).catch(() => null)) ?? '').includes(probe);
        const inEs = written && String(p.lab.es.documents(`${p.indexPrefix}${p.schema}.customers`.toLowerCase()).get('-2')?.name ?? '') === probe;
        this.lastLags = `${lags ? JSON.stringify(lags) : 'the service did not answer /metrics'}; probe row ${written ? '' : 'not '}written, in Redis: ${inRedis}, in ES: ${inEs}`;
        if (!this.atLimit && Date.now() - clearedAtMs > 30_000) this.atLimit = this.lastLags;
        if (lags && inRedis && inEs) {
          const sinksOk = p.sinks.every((s) => lags.sinkEvents[s] === 0 || lags.sinkSeconds[s] <= 5);
          if (sinksOk && lags.sourceSeconds <= 5) return Math.max(0, (Date.now() - clearedAtMs) / 1000);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      return null;
    } finally {
      redis.disconnect();
      await client.close();
    }
  }
}
