import { LoadedConfig } from '../config/load';
import { callAdmin } from './admin-client';
import { formatStatus, StatusReport } from './format-status';

interface PausedTable {
  table: string;
  sink: string | null;
  since: string;
  heldEvents: number;
}

/** The per-table pauses of `cdc status` ('' when none). */
export function formatPauses(status: StatusReport): string {
  const paused = ((status as unknown as { pausedTables?: PausedTable[] }).pausedTables ?? []);
  return paused
    .map((p) => `  table ${p.table}: paused for ${p.sink ? `sink ${p.sink}` : 'every sink'} since ${p.since}, ${p.heldEvents} change(s) held in the log (cdc resume --table ${p.table})\n`)
    .join('');
}

export async function watchStatus(config: LoadedConfig, intervalSeconds: number): Promise<never> {
  for (;;) {
    const status = (await callAdmin(config, 'GET', '/api/status')) as StatusReport;
    process.stdout.write('\x1b[H\x1b[2J' + formatStatus(status) + formatPauses(status));
    await new Promise((resolve) => setTimeout(resolve, intervalSeconds * 1000));
  }
}
