import { existsSync } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join } from 'node:path';
import type { LoadedConfig } from '../../config/load';
import { ChangeLog } from '../log/change-log';
import { JsonStateFile } from '../runtime/json-state';
import { Logger } from '../runtime/logger';
import { attachTablePauses, TablePauses, TablePausesState } from '../runtime/table-pauses';
import { AdminError, AdminHandlers } from './admin';
import { ServiceEvents } from './console/events-tap';
import { buildOverview } from './console/overview';
import { ResyncTracker } from './console/resync-tracker';
import { MetricsHistory } from './history';
import { Metrics } from './metrics';

/** The routes the HTTP server hands to the console: the page, its assets and its data. */
export interface ConsoleRoutes {
  /** Answers the request and returns true when the path is the console's. */
  handle(request: IncomingMessage, response: ServerResponse, url: URL): boolean;
}

/**
 * The operator console and per-table pauses of one service: the page at `/`
 * (static files from `console/`, Preact + htm + uPlot served from
 * node_modules, nothing fetched from the internet), its data at
 * `GET /console/overview` and `GET /console/history`, and admin routes for its actions (the actions go
 * through the admin API, so its token and cross-site rules apply):
 *   POST /api/pause  { table, sink? }     POST /api/resume { table, sink? }
 *   GET  /api/dead-letters?sink=NAME&limit=N   the last N dead letters of a sink
 *   GET  /api/history                     lag and throughput samples of the last hour
 */
export class ServiceConsole {
  readonly events = new ServiceEvents();
  readonly history: MetricsHistory;
  readonly resyncs = new ResyncTracker(this.events);
  readonly logger: Logger;
  private pauses: TablePauses | null = null;
  private log: ChangeLog | null = null;
  private readonly tables: Record<string, string[]>;

  constructor(private readonly config: LoadedConfig, private readonly metrics: Metrics, logger: Logger) {
    this.logger = this.events.tap(logger);
    this.history = new MetricsHistory(metrics);
    this.tables = Object.fromEntries(config.sources.map((s) => [s.name, ((s as { tables?: unknown }).tables as string[] | undefined) ?? []]));
  }

  /** Per-table pauses apply to every sink runner of this log; the history sampler starts. */
  async attach(log: ChangeLog): Promise<void> {
    this.log = log;
    const logDir = this.embeddedLogDir();
    this.pauses = await new TablePauses({
      state: new JsonStateFile<TablePausesState>(join(this.config.service.dataDir, 'table-pauses.json')),
      sinks: this.config.sinks.map((s) => s.name),
      tables: Object.values(this.tables).flat(),
      logger: this.logger.child('pauses'),
      unsupported: (this.config.log as { topicPerTable?: boolean }).topicPerTable
        ? 'with log.topicPerTable a partition number names no single topic, so a sink cannot re-read the held changes on resume; use one topic (the default) to pause tables'
        : undefined,
      forgetConsumer: logDir
        ? (consumer) => unlink(join(logDir, 'consumers', `${consumer}.json`)).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)))
        : undefined,
    }).load();
    attachTablePauses(log, this.pauses);
    this.history.start();
  }

  stop(): void {
    this.history.stop();
  }

  /** The admin handlers plus pauses in status, resyncs remembered for the console, and the console's routes. */
  admin(handlers: AdminHandlers): AdminHandlers {
    const pauses = () => {
      if (!this.pauses) throw new AdminError(503, 'the service is still starting: try again shortly');
      return this.pauses;
    };
    return {
      ...handlers,
      status: async () => ({ ...((await handlers.status()) as object), pausedTables: this.pauses?.status() ?? [] }),
      resync: async (body) => {
        const counted = (await this.metrics.snapshotRows.get()).values.filter((v) => v.labels.source === String(body.source));
        const result = (await handlers.resync(body)) as { requestId: string };
        const tables = body.tables as string[];
        const baseRows = Object.fromEntries(tables.map((t) => [t, counted.find((v) => v.labels.table === t)?.value ?? 0]));
        this.resyncs.requested(String(body.source), tables, body.where as string | undefined, result.requestId, baseRows);
        return result;
      },
      // A rebuilt generation would lack a paused table's rows (Redis sweeps keys it did not write, a new index or
      // table starts empty): readers would see the table emptied. So the two exclude each other.
      reprocess: async (body) => {
        const paused = [...(this.pauses?.pausedFor(String(body.sink)) ?? [])];
        if (paused.length > 0) {
          throw new AdminError(409, `sink ${String(body.sink)} has paused tables (${paused.join(', ')}): a new generation would not hold their rows; resume them first (cdc resume --table ${paused[0]} --sink ${String(body.sink)})`);
        }
        return handlers.reprocess(body);
      },
      cancelResync: handlers.cancelResync
        ? async (body) => {
            const result = await handlers.cancelResync!(body);
            this.resyncs.cancelled(String(body.requestId));
            return result;
          }
        : undefined,
      more: {
        ...handlers.more,
        'POST /api/pause': async ({ body }) => {
          const { sinks } = (await handlers.status()) as { sinks: Array<{ name: string; reprocess?: unknown }> };
          const rebuilding = sinks.filter((s) => s.reprocess && (!body.sink || s.name === body.sink)).map((s) => s.name);
          if (rebuilding.length > 0) {
            throw new AdminError(409, `sink ${rebuilding.join(', ')} is being reprocessed: pause ${String(body.table)} once the reprocess is done (cdc status shows its progress)`);
          }
          return pauses().pause(body.table, body.sink);
        },
        'POST /api/resume': async ({ body }) => pauses().resume(body.table, body.sink),
        'GET /api/dead-letters': async ({ query }) => this.deadLetters(query.get('sink'), Number(query.get('limit') ?? 50)),
        'GET /api/history': async () => this.historyReply(),
      },
    };
  }

  /** Routes for the HTTP server: `/`, `/console/*`, `/assets/*`. */
  routes(handlers: AdminHandlers): ConsoleRoutes {
    return {
      handle: (request, response, url) => {
        const path = url.pathname;
        if (path === '/console/overview' || path === '/console/history') {
          void this.serveData(request, response, path === '/console/history' ? async () => this.historyReply() : () => this.overview(handlers));
          return true;
        }
        const file = path === '/' || path === '/console' || path === '/console/' ? join(CONSOLE_DIR, 'index.html') : staticFile(path);
        if (!file) return false;
        void serveFile(response, file);
        return true;
      },
    };
  }

  private async serveData(request: IncomingMessage, response: ServerResponse, read: () => Promise<unknown>): Promise<void> {
    const send = (status: number, body: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(body));
    };
    try {
      const refusal = this.readRefusal(request);
      if (refusal) return send(refusal.status, { error: refusal.message });
      if (!this.log || !this.pauses) return send(503, { error: 'the service is still starting' });
      send(200, await read());
    } catch (error) {
      send(500, { error: (error as Error).message });
    }
  }

  private historyReply(): { intervalMs: number; points: ReturnType<MetricsHistory['points']> } {
    return { intervalMs: 5000, points: this.history.points() };
  }

  private overview(handlers: AdminHandlers): ReturnType<typeof buildOverview> {
    return buildOverview({
      serviceName: this.config.service.name,
      log: this.log!,
      logType: this.config.log.type,
      logDir: this.embeddedLogDir(),
      metrics: this.metrics,
      history: this.history,
      events: this.events,
      pauses: this.pauses!,
      resyncs: this.resyncs,
      tables: this.tables,
      status: () => handlers.status(),
    });
  }

  /**
   * Reading the console needs no token from this machine (loopback peer);
   * from elsewhere it needs the admin token when one is set. A Host header
   * that is not this service's (DNS rebinding) is refused either way.
   */
  private readRefusal(request: IncomingMessage): { status: number; message: string } | null {
    const host = (request.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const allowedHosts = new Set(['localhost', '127.0.0.1', '::1', this.config.service.http.host]);
    const token = this.config.service.http.token;
    const tokenGiven = !!token && request.headers.authorization === `Bearer ${token}`;
    if (host && !allowedHosts.has(host) && !/^\d+\.\d+\.\d+\.\d+$/.test(host) && !tokenGiven) {
      return { status: 403, message: `Host ${host} is not this service's (service.http.host ${this.config.service.http.host}): open the console by IP address, or send the admin token` };
    }
    const peer = request.socket.remoteAddress ?? '';
    const loopback = peer === '::1' || peer.startsWith('127.') || peer.startsWith('::ffff:127.');
    if (token && !loopback && !tokenGiven) {
      return { status: 401, message: 'missing or wrong bearer token (service.http.token): enter it in the console' };
    }
    return null;
  }

  /** The last `limit` dead letters of a sink, newest last (reads only the file's tail). */
  private async deadLetters(sink: string | null, limit: number): Promise<{ sink: string; file: string; total: number; letters: unknown[] }> {
    if (!sink || !this.config.sinks.some((s) => s.name === sink)) {
      throw new AdminError(404, `no sink named ${JSON.stringify(sink)} (configured: ${this.config.sinks.map((s) => s.name).join(', ') || 'none'}); pass ?sink=NAME`);
    }
    const file = join(this.config.service.dataDir, 'dead-letters', `${sink}.jsonl`);
    const wanted = Math.max(1, Math.min(Number.isFinite(limit) ? limit : 50, 1000));
    const size = await stat(file).then((s) => s.size, () => 0);
    const tailBytes = Math.min(size, wanted * 64 * 1024);
    let text = '';
    if (tailBytes > 0) {
      const handle = await open(file, 'r');
      try {
        const buffer = Buffer.alloc(tailBytes);
        await handle.read(buffer, 0, tailBytes, size - tailBytes);
        text = buffer.toString('utf8');
      } finally {
        await handle.close();
      }
    }
    const lines = text.split('\n').filter(Boolean);
    if (tailBytes < size) lines.shift(); // a partial first line
    const letters = lines.slice(-wanted).flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    });
    const total = this.metrics.sinkDeadLetters ? (await this.metrics.sinkDeadLetters.get()).values.filter((v) => v.labels.sink === sink).reduce((n, v) => n + v.value, 0) : 0;
    return { sink, file, total, letters };
  }

  private embeddedLogDir(): string | null {
    const log = this.config.log as { type: string; dir?: string };
    return log.type === 'embedded' ? log.dir ?? join(this.config.service.dataDir, 'log') : null;
  }
}

/** The front end's files (`console/` at the package root). */
const CONSOLE_DIR = [join(__dirname, '..', '..', '..', 'console'), join(__dirname, '..', '..', 'console')].find((d) => existsSync(join(d, 'index.html'))) ?? join(__dirname, '..', '..', '..', 'console');

/** Browser builds of the front-end libraries, resolved in node_modules once at start. */
const ASSETS: Record<string, string> = (() => {
  const beside = (module: string, file: string) => {
    try {
      return join(dirname(require.resolve(module)), file);
    } catch {
      return '';
    }
  };
  return {
    '/assets/preact.mjs': beside('preact', 'preact.mjs'),
    '/assets/preact-hooks.mjs': beside('preact/hooks', 'hooks.mjs'),
    '/assets/htm.mjs': beside('htm', 'htm.mjs'),
    '/assets/uplot.mjs': beside('uplot', 'uPlot.esm.js'),
    '/assets/uplot.css': beside('uplot', 'uPlot.min.css'),
  };
})();

function staticFile(path: string): string | null {
  if (ASSETS[path]) return ASSETS[path];
  const match = /^\/console\/([a-z0-9-]+\.(?:js|css|svg))$/.exec(path);
  return match ? join(CONSOLE_DIR, match[1]) : null;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

async function serveFile(response: ServerResponse, file: string): Promise<void> {
  try {
    const body = await readFile(file);
    response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    response.end(body);
  } catch {
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end(`console file missing: ${file} (is the package's console/ folder installed?)\n`);
  }
}
