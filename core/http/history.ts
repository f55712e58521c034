import { Metrics } from './metrics';

/** One sample of what the console charts: per source and per sink, at time `t` (ms since epoch). */
export interface HistoryPoint {
  t: number;
  sources: Record<string, { lagSeconds: number; backlogBytes: number; eventsTotal: number }>;
  sinks: Record<string, { lagEvents: number; lagSeconds: number; eventsTotal: number }>;
}

/** Per series, the rate between the two newest samples (events per second). */
export interface Rates {
  sources: Record<string, number>;
  sinks: Record<string, number>;
}

type MetricValues = Array<{ labels: Record<string, string | number | undefined>; value: number }>;

/**
 * The last hour of lag and throughput, kept in memory (no Prometheus needed
 * for the console's charts): a ring of samples of the Metrics taken every
 * `intervalMs` (default 5 s; 720 samples = 1 hour).
 */
export class MetricsHistory {
  private readonly ring: HistoryPoint[] = [];
  private next = 0;
  private timer: NodeJS.Timeout | undefined;
  readonly capacity: number;

  constructor(private readonly metrics: Metrics, private readonly options: { intervalMs?: number; keepMs?: number } = {}) {
    this.capacity = Math.max(2, Math.ceil((options.keepMs ?? 3_600_000) / (options.intervalMs ?? 5000)));
  }

  start(): void {
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.options.intervalMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async sample(): Promise<HistoryPoint> {
    const point = await readPoint(this.metrics);
    if (this.ring.length < this.capacity) this.ring.push(point);
    else this.ring[this.next] = point;
    this.next = (this.next + 1) % this.capacity;
    return point;
  }

  /** Oldest first. */
  points(): HistoryPoint[] {
    return this.ring.length < this.capacity ? [...this.ring] : [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  /** Events per second between `now` (a fresh reading) and the newest sample at least one interval older. */
  rates(now: HistoryPoint): Rates {
    const points = this.points();
    const minGapMs = Math.min(this.options.intervalMs ?? 5000, 5000) - 100;
    let before: HistoryPoint | undefined;
    for (let i = points.length - 1; i >= 0; i--) {
      if (now.t - points[i].t >= minGapMs) {
        before = points[i];
        break;
      }
    }
    const rates: Rates = { sources: {}, sinks: {} };
    if (!before) return rates;
    const seconds = (now.t - before.t) / 1000;
    for (const [name, s] of Object.entries(now.sources)) rates.sources[name] = Math.max(0, (s.eventsTotal - (before.sources[name]?.eventsTotal ?? 0)) / seconds);
    for (const [name, s] of Object.entries(now.sinks)) rates.sinks[name] = Math.max(0, (s.eventsTotal - (before.sinks[name]?.eventsTotal ?? 0)) / seconds);
    return rates;
  }
}

/** The current values of the metrics the console shows, summed per source and per sink. */
export async function readPoint(metrics: Metrics): Promise<HistoryPoint> {
  const values = async (metric: { get(): Promise<{ values: MetricValues }> | { values: MetricValues } }) => (await metric.get()).values;
  const [sourceLag, backlog, sourceEvents, sinkLagEvents, sinkLagSeconds, sinkEvents] = await Promise.all([
    values(metrics.sourceLagSeconds),
    values(metrics.sourceBacklogBytes),
    values(metrics.sourceEvents),
    values(metrics.sinkLagEvents),
    values(metrics.sinkLagSeconds),
    values(metrics.sinkEvents),
  ]);
  const point: HistoryPoint = { t: Date.now(), sources: {}, sinks: {} };
  const source = (name: string) => (point.sources[name] ??= { lagSeconds: 0, backlogBytes: 0, eventsTotal: 0 });
  const sink = (name: string) => (point.sinks[name] ??= { lagEvents: 0, lagSeconds: 0, eventsTotal: 0 });
  for (const v of sourceLag) source(String(v.labels.source)).lagSeconds = v.value;
  for (const v of backlog) source(String(v.labels.source)).backlogBytes = v.value;
  for (const v of sourceEvents) source(String(v.labels.source)).eventsTotal += v.value;
  for (const v of sinkLagEvents) sink(String(v.labels.sink)).lagEvents = v.value;
  for (const v of sinkLagSeconds) sink(String(v.labels.sink)).lagSeconds = v.value;
  for (const v of sinkEvents) sink(String(v.labels.sink)).eventsTotal += v.value;
  return point;
}
