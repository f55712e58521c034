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
  /** Extra facts worth printing (peak RSS, latency percentiles ...). */
  notes?: string;
}

export function ratio(row: BenchRow): number {
  return row.ours.median / row.baseline.median;
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
const spread = (m: Measured) => `${fmt(m.median)} (${fmt(m.min)}–${fmt(m.max)})`;

/** A Markdown table, ready for the README. */
export function formatTable(rows: BenchRow[]): string {
  const lines = [
    '| scenario | ours (median, min–max) | baseline | baseline (median, min–max) | ratio | notes |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const row of rows) {
    lines.push(`| ${row.scenario} | ${spread(row.ours)} ${row.unit} | ${row.baselineName} | ${spread(row.baseline)} ${row.unit} | ${(ratio(row) * 100).toFixed(0)}% | ${row.notes ?? ''} |`);
  }
  return lines.join('\n');
}

export function writeJson(path: string, rows: BenchRow[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ at: new Date().toISOString(), rows: rows.map((r) => ({ ...r, ratio: ratio(r) })) }, null, 2) + '\n');
}

/** Runs `measure` `count` times (fresh state each time is the measure's job) and summarizes. */
export async function repeat(count: number, measure: (run: number) => Promise<number>): Promise<Measured> {
  const runs: number[] = [];
  for (let i = 0; i < count; i++) runs.push(await measure(i));
  return summarize(runs);
}
