import { LoadedConfig } from '../config/load';
import type { Overview, Progress } from '../core/http/console/overview';
import { callAdmin } from './admin-client';
import { StatusReport } from './format-status';

interface PausedTable {
  table: string;
  sink: string | null;
  since: string;
  heldEvents: number;
}

/** The per-table pauses of `cdc status` ('' when none). */
export function formatPauses(status: StatusReport): string {
  const paused = (status as unknown as { pausedTables?: PausedTable[] }).pausedTables ?? [];
  return paused
    .map((p) => `  table ${p.table}: paused for ${p.sink ? `sink ${p.sink}` : 'every sink'} since ${p.since}, ${p.heldEvents} change(s) held in the log (cdc resume --table ${p.table})\n`)
    .join('');
}

/**
 * `cdc status --watch`: redraws in place every `intervalSeconds` with lag,
 * throughput and progress bars (snapshot, resync, reprocess), from the
 * console's overview. Not on a terminal (or with --json), it prints one
 * frame (one JSON line) per interval instead. Runs until Ctrl-C.
 */
export async function watchStatus(config: LoadedConfig, intervalSeconds: number, json = false): Promise<void> {
  const tty = process.stdout.isTTY && !json;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (tty) process.stdout.write('\x1b[?25l'); // hide the cursor while redrawing
  try {
    while (!stop.signal.aborted) {
      let frame: string;
      try {
        const overview = (await callAdmin(config, 'GET', '/console/overview')) as Overview;
        frame = json ? JSON.stringify(overview) : formatOverview(overview, process.stdout.columns ?? 100);
      } catch (error) {
        frame = json ? JSON.stringify({ error: (error as Error).message }) : `cdc: ${(error as Error).message}\n(retrying every ${intervalSeconds} s; Ctrl-C to stop)`;
      }
      if (tty) process.stdout.write('\x1b[H' + frame.split('\n').map((line) => line + '\x1b[K').join('\n') + '\n\x1b[J');
      else process.stdout.write(frame + (json ? '\n' : '\n\n'));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalSeconds * 1000);
        stop.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
    }
  } finally {
    if (tty) process.stdout.write('\x1b[?25h');
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** One screen of `status --watch`. */
export function formatOverview(o: Overview, columns = 100): string {
  const barWidth = Math.max(10, Math.min(30, columns - 70));
  const lines = [`${o.service} — ${new Date(o.now).toLocaleTimeString()}  (Ctrl-C to stop)`, ''];
  for (const s of o.sources) {
    lines.push(`source ${s.name}  ${s.state}  lag ${seconds(s.lagSeconds)}  ${rate(s.eventsPerSecond)}  backlog ${bytes(s.backlogBytes)}  position ${s.position ?? 'none yet'}`);
    if (s.lastError) lines.push(`  last error: ${s.lastError}`);
    for (const t of s.tables) {
      if (t.snapshot && (t.snapshot.percent ?? 0) < 100) lines.push(`  ${pad(t.table, 28)} snapshot ${bar(t.snapshot, barWidth)}`);
      if (t.resync) lines.push(`  ${pad(t.table, 28)} resync   ${t.resync.queued ? 'queued' : bar(t.resync, barWidth)}${t.resync.where ? `  where ${t.resync.where}` : ''}`);
    }
  }
  lines.push(`log (${o.log.type})  ${o.log.partitions} partitions  end offsets ${o.log.endOffsets.join(' ')}  size ${bytes(o.log.sizeBytes)}`);
  for (const s of o.sinks) {
    lines.push(`sink ${s.name}  ${s.state}  lag ${s.lagEvents} events / ${seconds(s.lagSeconds)}  ${rate(s.eventsPerSecond)}${s.deadLetters ? `  ${s.deadLetters} dead letter(s)` : ''}`);
    if (s.lastError) lines.push(`  last error: ${s.lastError}`);
    const r = s.reprocess as { generation?: number; phase?: string; percent?: number; etaSeconds?: number | null; eventsDone?: number; logEnd?: number } | null;
    if (r) lines.push(`  reprocess → generation ${r.generation} (${r.phase})  ${bar({ rows: r.eventsDone ?? 0, total: r.logEnd ?? null, percent: r.percent ?? null, etaSeconds: r.etaSeconds ?? null }, barWidth, 'events')}`);
    for (const t of s.tables.filter((x) => x.paused)) lines.push(`  ${pad(t.table, 28)} paused since ${t.since}, ${t.heldEvents} change(s) held`);
  }
  return lines.join('\n');
}

function bar(p: Progress, width: number, unit = 'rows'): string {
  const percent = p.percent ?? 0;
  const filled = Math.round((width * Math.min(100, percent)) / 100);
  const counts = `${p.rows}${p.total !== null ? `/${p.total}` : ''} ${unit}`;
  const eta = p.percent === 100 ? 'done' : p.etaSeconds === null ? 'ETA unknown yet' : `ETA ${seconds(p.etaSeconds)}`;
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${p.percent === null ? '   ? %' : `${percent.toFixed(1).padStart(5)} %`}  ${counts}  ${eta}`;
}

const pad = (text: string, width: number) => (text.length >= width ? text : text + ' '.repeat(width - text.length));
const rate = (n: number | null) => (n === null ? '– events/s' : `${n.toFixed(1)} events/s`);
const seconds = (s: number) => (s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${(s / 3600).toFixed(1)} h`);
function bytes(b: number | null): string {
  if (b === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) (b /= 1024), i++;
  return `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}
