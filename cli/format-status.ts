export interface StatusReport {
  service: string;
  sources: Array<{ name: string; ready: boolean; health?: HealthReport | null; lagSeconds: number; checkpoint: string | null; savedAt: string | null; resyncSlowed?: boolean }>;
  sinks: Array<{ name: string; ready: boolean; health?: HealthReport | null; generation?: number | null; lagEvents?: number; reprocess?: ReprocessReport; deadLetters?: DeadLetterCounts; [key: string]: unknown }>;
}

/** core/runtime/dead-letters.ts DeadLetterCounts (or why they could not be counted). */
interface DeadLetterCounts {
  total?: number;
  tables?: Record<string, number>;
  error?: string;
}

/** core/runtime/component-health.ts HealthStatus, as the admin API sends it. */
interface HealthReport {
  state: 'starting' | 'up' | 'reconnecting' | 'stopped';
  since: string;
  attempt: number;
  lastError: string | null;
}

interface ReprocessReport {
  generation: number;
  yieldingToLive?: boolean;
  phase: string;
  eventsDone: number;
  logEnd: number;
  percent: number;
  eventsPerSecond: number | null;
  etaSeconds: number | null;
}

/** `cdc status` for people: one line per source and sink. */
export function formatStatus(status: StatusReport): string {
  const lines = [`service ${status.service}`];
  for (const s of status.sources) {
    // A source may put tags before its position (MySQL: `server=1;epoch=2;`); a snapshot or resync under way makes the rest a JSON object.
    const [, tags = '', rest = ''] = /^((?:[a-z]+=[^;{]*;)*)(.*)$/s.exec(s.checkpoint ?? '') ?? [];
    const checkpoint = rest.startsWith('{') ? (JSON.parse(rest) as SourceCheckpoint) : null;
    const position = checkpoint ? `${tags}${describeCheckpoint(checkpoint)}` : s.checkpoint ?? 'none yet';
    const slowed = checkpoint?.resync?.length && s.resyncSlowed ? '; resync slowed while the sinks catch up (their lag is over 2 s)' : '';
    lines.push(`  source ${s.name}: ${describeHealth(s.ready, s.health, 'streaming', 'not streaming')}, lag ${s.lagSeconds.toFixed(1)} s, position ${position}${slowed}`);
  }
  for (const s of status.sinks) {
    const parts = [describeHealth(s.ready, s.health, 'running', 'not running')];
    if (s.generation) parts.push(`generation ${s.generation}`);
    if (s.lagEvents !== undefined) parts.push(`lag ${s.lagEvents} events`);
    if (s.reprocess) parts.push(describeReprocess(s.reprocess));
    if (s.deadLetters && (s.deadLetters.total || s.deadLetters.error !== undefined)) parts.push(describeDeadLetters(s.name, s.deadLetters));
    lines.push(`  sink ${s.name}: ${parts.join(', ')}`);
  }
  return lines.join('\n') + '\n';
}

/** `streaming`, or `reconnecting since <time>, attempt N, last error: <message>`. */
function describeHealth(ready: boolean, health: HealthReport | null | undefined, up: string, down: string): string {
  if (ready || !health) return ready ? up : down;
  if (health.state === 'starting' && !health.lastError) return `starting since ${health.since}`;
  const verb = health.state === 'stopped' ? 'stopped' : 'reconnecting';
  return `${verb} since ${health.since}${health.attempt > 0 ? `, attempt ${health.attempt}` : ''}${health.lastError ? `, last error: ${health.lastError}` : ''}`;
}

/** A source's checkpoint while a snapshot or a resync is under way (a JSON object; a plain position otherwise). */
interface SourceCheckpoint {
  position?: string;
  snapshot?: { tables: Record<string, { done: boolean; rows: number }> };
  resync?: Array<{ table: string; rows: number }>;
}

function describeCheckpoint(checkpoint: SourceCheckpoint): string {
  const parts = [checkpoint.position ?? ''];
  if (checkpoint.snapshot) {
    const tables = Object.entries(checkpoint.snapshot.tables);
    parts.push(`snapshot: ${tables.filter(([, t]) => t.done).length}/${tables.length} tables done, ${tables.reduce((n, [, t]) => n + t.rows, 0)} rows`);
  }
  if (checkpoint.resync?.length) parts.push(`resync: ${checkpoint.resync.map((t) => `${t.table} (${t.rows} rows so far)`).join(', ')}`);
  return parts.join('; ');
}

function describeReprocess(r: ReprocessReport): string {
  const rate = r.eventsPerSecond === null ? '' : `, ${r.eventsPerSecond} events/s`;
  const eta = r.etaSeconds === null ? ', ETA unknown yet' : `, ETA ${r.etaSeconds} s`;
  const slowed = r.yieldingToLive ? '; slowed while the live generation catches up (its lag is over 5 s)' : '';
  return `reprocess into generation ${r.generation} (${r.phase}): ${r.eventsDone}/${r.logEnd} events (${r.percent}%)${rate}${eta}${slowed}`;
}

/** `2 dead letter(s) (public.items 2), see cdc dead-letters list --sink NAME`. */
function describeDeadLetters(sink: string, d: DeadLetterCounts): string {
  if (d.error !== undefined) return `dead letters unreadable: ${d.error}`;
  const tables = Object.entries(d.tables ?? {}).map(([table, n]) => `${table} ${n}`);
  return `${d.total} dead letter(s) (${tables.join(', ')}), see cdc dead-letters list --sink ${sink}`;
}
