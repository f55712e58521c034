// The suite's one table (fault × pipeline → rows compared, missing, different,
// extra, duplicate changes, seconds to recover, peak RSS, verdict), printed and
// written as Markdown with the details of every failure below it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SinkComparison } from './compare';

export interface CaseResult {
  name: string;
  kind: string;
  pipeline: string;
  skipped?: string;
  sinks: SinkComparison[];
  recoverSeconds: number | null;
  peakRssMb: number;
  passed: boolean;
  /** Data held (0 missing/different/extra/duplicates, no crash, comparison made): every reason, if any, is a peak-RSS or recovery-time limit. */
  dataOk?: boolean;
  /** Why it failed (empty when it passed). */
  reasons: string[];
  notes: string[];
  seconds: number;
}

export const LIMITS = { recoverSeconds: 30, peakRssMb: 300 };

/** Reasons that are limits on resources and time rather than on the data (see `--gate data`). */
export function isLimitReason(reason: string): boolean {
  return reason.startsWith('peak RSS ') || reason.startsWith('recovery ');
}

const sum = (r: CaseResult, field: keyof Omit<SinkComparison, 'sink' | 'examples'>) => r.sinks.reduce((s, x) => s + x[field], 0);

const HEADER = ['fault', 'pipeline', 'rows compared', 'missing', 'different', 'extra', 'duplicate changes', 'seconds to recover', 'peak RSS MB', 'verdict'];

function cells(r: CaseResult): string[] {
  if (r.skipped) return [r.name.split('@')[0], r.pipeline, '-', '-', '-', '-', '-', '-', '-', 'SKIP'];
  return [
    r.name.split('@')[0], r.pipeline, String(sum(r, 'compared')), String(sum(r, 'missing')), String(sum(r, 'different')),
    String(sum(r, 'extra')), String(sum(r, 'duplicates')), r.recoverSeconds === null ? 'never' : r.recoverSeconds.toFixed(1),
    r.peakRssMb.toFixed(0), r.passed ? 'PASS' : 'FAIL',
  ];
}

export function textTable(results: CaseResult[]): string {
  const rows = [HEADER, ...results.map(cells)];
  const widths = HEADER.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function details(r: CaseResult): string[] {
  const out: string[] = [];
  if (r.skipped) return [`${r.name}: skipped: ${r.skipped}`];
  out.push(`${r.name} (${r.kind}, ${r.seconds.toFixed(0)} s, peak RSS ${r.peakRssMb.toFixed(0)} MB): ${r.passed ? 'PASS' : `FAIL: ${r.reasons.join('; ')}`}`);
  for (const s of r.sinks) {
    out.push(`  sink ${s.sink}: ${s.compared} compared, ${s.missing} missing, ${s.different} different, ${s.extra} extra, ${s.duplicates} duplicate changes`);
    for (const e of s.examples) out.push(`    ${e}`);
  }
  for (const n of r.notes) out.push(`  note: ${n}`);
  return out;
}

/** Writes the table to `dir/faults-<date>-seed<seed>.md` (two runs of a day, or a rerun beside a run, keep their own files). */
export function writeMarkdown(dir: string, seed: number, header: string[], results: CaseResult[]): string {
  mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  const file = join(dir, `faults-${date}-seed${seed}.md`);
  const md = [
    `# Fault suite, ${new Date().toISOString().replace('T', ' ').slice(0, 16)} UTC`, '',
    ...header.map((h) => `${h}  `), '',
    `| ${HEADER.join(' | ')} |`, `|${HEADER.map((_, i) => (i < 2 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...results.map((r) => `| ${cells(r).join(' | ')} |`), '',
    '## Details', '', '```', ...results.flatMap(details), '```', '',
  ].join('\n');
  writeFileSync(file, md);
  return file;
}
