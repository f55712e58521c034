export interface StatusReport {
  service: string;
  sources: Array<{ name: string; ready: boolean; lagSeconds: number; checkpoint: string | null; savedAt: string | null }>;
  sinks: Array<{ name: string; ready: boolean; [key: string]: unknown }>;
}

/** `cdc status` for people: one line per source and sink. */
export function formatStatus(status: StatusReport): string {
  const lines = [`service ${status.service}`];
  for (const s of status.sources) {
    const position = s.checkpoint?.startsWith('{') ? describeCheckpoint(s.checkpoint) : s.checkpoint ?? 'none yet';
    lines.push(`  source ${s.name}: ${s.ready ? 'streaming' : 'not streaming'}, lag ${s.lagSeconds.toFixed(1)} s, position ${position}`);
  }
  for (const s of status.sinks) {
    const extra = Object.entries(s).filter(([k]) => k !== 'name' && k !== 'ready').map(([k, v]) => `${k} ${JSON.stringify(v)}`);
    lines.push(`  sink ${s.name}: ${s.ready ? 'running' : 'not running'}${extra.length ? ', ' + extra.join(', ') : ''}`);
  }
  return lines.join('\n') + '\n';
}

function describeCheckpoint(text: string): string {
  const checkpoint = JSON.parse(text) as { lsn?: string; position?: string; snapshot?: { tables: Record<string, { done: boolean; rows: number }> }; resync?: Array<{ table: string; rows: number }> };
  const parts = [checkpoint.lsn ?? checkpoint.position ?? ''];
  if (checkpoint.snapshot) {
    const tables = Object.entries(checkpoint.snapshot.tables);
    parts.push(`snapshot: ${tables.filter(([, t]) => t.done).length}/${tables.length} tables done, ${tables.reduce((n, [, t]) => n + t.rows, 0)} rows`);
  }
  if (checkpoint.resync?.length) parts.push(`resync: ${checkpoint.resync.map((t) => `${t.table} (${t.rows} rows so far)`).join(', ')}`);
  return parts.join('; ');
}
