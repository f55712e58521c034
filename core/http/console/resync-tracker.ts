import { ServiceEvents } from './events-tap';

interface Request {
  requestId: string;
  source: string;
  tables: string[];
  where?: string;
  startedAt: number;
  /** Per table: rows read so far as last seen in the source's checkpoint. */
  seen: Map<string, { rows: number; position: number }>;
  gone: Set<string>;
  cancelled?: boolean;
  /** Per table, cdc_snapshot_rows_total when requested: rows read since, consistent with the remaining-rows gauge. */
  baseRows: Record<string, number>;
}

/**
 * The resyncs requested through the admin API, for the console's progress
 * bars: a table is running while the source's checkpoint lists it first,
 * queued behind others, and done once the source logged it done or its task
 * left the checkpoint.
 */
export class ResyncTracker {
  private readonly requests: Request[] = [];

  constructor(private readonly events: ServiceEvents) {}

  requested(source: string, tables: string[], where: string | undefined, requestId: string, baseRows: Record<string, number>): void {
    if (this.requests.some((r) => r.requestId === requestId)) return; // joined a request already tracked
    this.requests.push({ requestId, source, tables, where, startedAt: Date.now(), seen: new Map(), gone: new Set(), baseRows });
    if (this.requests.length > 20) this.requests.shift();
  }

  /** cdc_snapshot_rows_total of the table when the resync was requested here (undefined: requested before a restart). */
  baseRows(requestId: string, table: string): number | undefined {
    return this.requests.find((r) => r.requestId === requestId)?.baseRows[table];
  }

  /** Done or cancelled, though the source's saved checkpoint may still list it (it is rewritten with the next append). */
  finished(requestId: string, table: string): boolean {
    return !!this.requests.find((r) => r.requestId === requestId)?.cancelled || this.events.resyncsDone.some((d) => d.requestId === requestId && d.table === table);
  }

  cancelled(requestId: string): void {
    const request = this.requests.find((r) => r.requestId === requestId);
    if (request) request.cancelled = true;
  }

  observe(sources: Array<{ source: string; checkpoint: { resync?: Array<{ requestId: string; table: string; rows: number }> } }>): void {
    for (const request of this.requests) {
      const tasks = sources.find((s) => s.source === request.source)?.checkpoint.resync ?? [];
      for (const table of request.tables) {
        const position = tasks.findIndex((t) => t.requestId === request.requestId && t.table === table);
        if (position >= 0) request.seen.set(table, { rows: tasks[position].rows, position });
        else if (request.seen.has(table)) request.gone.add(table);
      }
    }
  }

  list(): Array<{ requestId: string; source: string; where?: string; startedAt: string; tables: Array<{ table: string; state: 'pending' | 'queued' | 'running' | 'done' | 'cancelled'; rows: number }> }> {
    return this.requests.map((r) => ({
      requestId: r.requestId,
      source: r.source,
      where: r.where,
      startedAt: new Date(r.startedAt).toISOString(),
      tables: r.tables.map((table) => {
        const done = this.events.resyncsDone.find((d) => d.requestId === r.requestId && d.table === table);
        const seen = r.seen.get(table);
        if (!done && r.cancelled) return { table, state: 'cancelled' as const, rows: seen?.rows ?? 0 };
        if (done || r.gone.has(table)) return { table, state: 'done' as const, rows: done?.rows ?? seen?.rows ?? 0 };
        if (!seen) return { table, state: 'pending' as const, rows: 0 };
        return { table, state: seen.position === 0 ? ('running' as const) : ('queued' as const), rows: seen.rows };
      }),
    }));
  }
}
