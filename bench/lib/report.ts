import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Several runs of one measurement: the median is what we quote, min and max show the spread. */
export interface Measured {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function summarize(runs: number[]): Measured {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs };
}

/** One row of the benchmark table: our figure beside the physical limit measured in the same run. */
export interface BenchRow {
  scenario: string;
  unit: string;
  ours: Measured;
  baseline: Measured;
  baselineName: string;
  /** Latencies: smaller is better, so the ratio is baseline / ours (100% = at the limit either way). */
  lowerIsBetter?: boolean;
  /** Peak resident memory (VmHWM) of the process that ran our side, in MiB. */
  peakRssMb?: number;
  /** Extra facts worth printing (latency percentiles, sustained rate ...). */
  notes?: string;
}

/** How close we are to the limit: 1 = as good as the baseline, whatever the direction of the unit. */
export function ratio(row: BenchRow): number {
  return row.lowerIsBetter ? row.baseline.median / row.ours.median : row.ours.median / row.baseline.median;
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(n >= 10 ? 1 : 2));
const spread = (m: Measured) => (m.runs.length > 1 ? `${fmt(m.median)} (${fmt(m.min)}–${fmt(m.max)})` : fmt(m.median));

/** A Markdown table, ready for the README. */
export function formatTable(rows: BenchRow[]): string {
  const lines = [
    '| scenario | ours (median, min–max) | baseline | baseline (median, min–max) | ratio | peak RSS | notes |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const row of rows) {
    const rss = row.peakRssMb === undefined ? '' : `${Math.round(row.peakRssMb)} MB`;
    lines.push(`| ${row.scenario} | ${spread(row.ours)} ${row.unit} | ${row.baselineName} | ${spread(row.baseline)} ${row.unit} | ${(ratio(row) * 100).toFixed(0)}% | ${rss} | ${row.notes ?? ''} |`);
  }
  return lines.join('\n');
}

export function writeJson(path: string, rows: BenchRow[], extra: Record<string, unknown> = {}): void {
  mkdirSync(dirname(path), { recursive: true });
  const document = { at: new Date().toISOString(), ...extra, rows: rows.map((r) => ({ ...r, ratio: ratio(r) })) };
  writeFileSync(path, JSON.stringify(document, null, 2) + '\n');
}

/** Runs `measure` `count` times (fresh state each time is the measure's job) and summarizes. */
export async function repeat(count: number, measure: (run: number) => Promise<number>): Promise<Measured> {
  const runs: number[] = [];
  for (let i = 0; i < count; i++) runs.push(await measure(i));
  return summarize(runs);
}

/** Runs two measurements alternately (a, b, a, b, ...), so load from elsewhere on a shared machine hits both alike. */
export async function alternate(count: number, a: (run: number) => Promise<number>, b: (run: number) => Promise<number>): Promise<[Measured, Measured]> {
  const first: number[] = [];
  const second: number[] = [];
  for (let i = 0; i < count; i++) {
    first.push(await a(i));
    second.push(await b(i));
  }
  return [summarize(first), summarize(second)];
}
