// Latency samples of one trial → percentiles, per-window p99 and whether lag grew.
import { Measured, summarize } from './report';

export interface Sample {
  committedAt: number;
  latencyMs: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export interface TrialStats {
  count: number;
  p50: number;
  p99: number;
  max: number;
  /** p99 of each consecutive window of the trial (the "runs" the table summarizes). */
  windows: Measured;
  /** The median latency of the last third exceeds twice (and by 50 ms) that of the first third. */
  growing: boolean;
}

const sortedLatencies = (samples: readonly Sample[]) => samples.map((s) => s.latencyMs).sort((a, b) => a - b);

export function trialStats(samples: readonly Sample[], windows: number): TrialStats {
  const ordered = [...samples].sort((a, b) => a.committedAt - b.committedAt);
  const all = sortedLatencies(ordered);
  const size = Math.max(1, Math.ceil(ordered.length / windows));
  const perWindow: number[] = [];
  for (let i = 0; i < ordered.length; i += size) perWindow.push(percentile(sortedLatencies(ordered.slice(i, i + size)), 99));
  const third = Math.max(1, Math.floor(ordered.length / 3));
  const first = percentile(sortedLatencies(ordered.slice(0, third)), 50);
  const last = percentile(sortedLatencies(ordered.slice(-third)), 50);
  return {
    count: ordered.length,
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    max: all[all.length - 1] ?? NaN,
    windows: summarize(perWindow.length ? perWindow : [NaN]),
    growing: last > Math.max(2 * first, first + 50),
  };
}
