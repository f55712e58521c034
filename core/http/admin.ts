import { IncomingMessage, ServerResponse } from 'node:http';

/** A failure the admin API reports with an HTTP status and a message for the operator. */
export class AdminError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface AdminHandlers {
  status(): Promise<unknown>;
  resync(body: { source?: unknown; tables?: unknown; where?: unknown }): Promise<unknown>;
  reprocess(body: { sink?: unknown }): Promise<unknown>;
  /** Writes a sink's dead letters (of one table, or all) through it again; answers when done. */
  replayDeadLetters?(body: { sink?: unknown; table?: unknown }): Promise<unknown>;
  /** Stops a queued or running resync request and removes it from the source's durable queue. */
  cancelResync?(body: { source?: unknown; requestId?: unknown }): Promise<unknown>;
  /** Further routes by `METHOD /api/path` (pause, resume, dead letters: see core/http/console.ts); same token rules. */
  more?: Record<string, (input: { body: Record<string, unknown>; query: URLSearchParams }) => Promise<unknown>>;
}

/** Who may call the admin API: the token, and where the service listens (for the Host and Origin checks). */
export interface AdminAccess {
  /** service.http.token: when set, every request needs `Authorization: Bearer <token>`. */
  token?: string;
  /** service.http.host as configured. */
  host: string;
  /** The port the server listens on (the real one when the config says 0). */
  port: number;
}

const MAX_BODY_BYTES = 64 * 1024;

/**
 * The admin API the CLI talks to (`cdc status`, `cdc resync`):
 *   GET  /api/status   positions, lag, snapshot and resync progress
 *   POST /api/resync   { source, tables: [schema.table], where? } → 202 { requestId }
 *   POST /api/resync/cancel { source, requestId } → 200 { requestId, cancelled: [tables] }
 *   POST /api/reprocess { sink } → 202 { sink, generation, consumer }
 *   POST /api/dead-letters/replay { sink, table? } → 200 { replayed, succeeded, failed, failures, remaining }
 * Every request is checked first (checkAccess): bearer token, Host, and for
 * changes without a token a JSON body from no foreign Origin.
 */
export async function handleAdmin(request: IncomingMessage, response: ServerResponse, path: string, handlers: AdminHandlers, access: AdminAccess): Promise<void> {
  try {
    checkAccess(request, access);
    if (request.method === 'GET' && path === '/api/status') return reply(response, 200, await handlers.status());
    if (request.method === 'POST' && path === '/api/resync') return reply(response, 202, await handlers.resync(await readJson(request)));
    if (request.method === 'POST' && path === '/api/resync/cancel' && handlers.cancelResync) return reply(response, 200, await handlers.cancelResync(await readJson(request)));
    if (request.method === 'POST' && path === '/api/reprocess') return reply(response, 202, await handlers.reprocess(await readJson(request)));
    if (request.method === 'POST' && path === '/api/dead-letters/replay' && handlers.replayDeadLetters) return reply(response, 200, await handlers.replayDeadLetters(await readJson(request)));
    const more = handlers.more?.[`${request.method} ${path}`];
    if (more) {
      const body = request.method === 'POST' ? await readJson(request) : {};
      return reply(response, 200, await more({ body, query: new URL(request.url ?? '/', 'http://localhost').searchParams }));
    }
    throw new AdminError(404, `no admin endpoint ${request.method} ${path}: try GET /api/status, POST /api/resync or POST /api/reprocess`);
  } catch (error) {
    const status = error instanceof AdminError ? error.status : 500;
    reply(response, status, { error: (error as Error).message });
  }
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
const WILDCARD_HOSTS = ['0.0.0.0', '::', '[::]'];
const SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS'];

/**
 * Refuses what a web page in a browser on this host could send:
 *  - Host must name this service (configured host or a loopback name, with our
 *    port): a DNS-rebound name (evil.example:PORT) never matches, reads included.
 *    A wildcard listener has no one name; it requires a token (schema), which
 *    a rebound page cannot send.
 *  - with a token configured, every request carries it (a page cannot add the
 *    header cross-site without a CORS preflight, which we never grant);
 *  - without one (loopback only), a change must be an `application/json` body
 *    (a form or `text/plain` POST needs no preflight, JSON does) and carry no
 *    Origin other than our own.
 */
export function checkAccess(request: IncomingMessage, access: AdminAccess): void {
  const host = (request.headers.host ?? '').toLowerCase();
  const configured = access.host.toLowerCase();
  if (!WILDCARD_HOSTS.includes(configured)) {
    const own = configured.includes(':') && !configured.startsWith('[') ? `[${configured}]` : configured;
    const allowed = [...new Set([own, ...LOOPBACK_NAMES])].map((name) => `${name}:${access.port}`);
    if (!allowed.includes(host)) {
      throw new AdminError(421, `Host header ${JSON.stringify(request.headers.host ?? '')} does not name this service: call it as http://${allowed[0]} (service.http.host and port)`);
    }
  }
  if (access.token) {
    if (request.headers.authorization !== `Bearer ${access.token}`) throw new AdminError(401, 'missing or wrong bearer token (service.http.token)');
    return;
  }
  if (SAFE_METHODS.includes(request.method ?? 'GET')) return;
  const contentType = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (contentType !== 'application/json') {
    throw new AdminError(415, `${request.method} ${request.url} needs content-type application/json (got ${request.headers['content-type'] ? JSON.stringify(request.headers['content-type']) : 'none'}): use the cdc command, or curl -H 'content-type: application/json'`);
  }
  const origin = request.headers.origin;
  if (origin !== undefined && origin.toLowerCase() !== `http://${host}`) {
    throw new AdminError(403, `cross-site request refused: Origin ${origin} is not this service (http://${host}); set service.http.token to call the admin API from another origin`);
  }
  const fetchSite = request.headers['sec-fetch-site'];
  if (origin === undefined && (fetchSite === 'cross-site' || fetchSite === 'same-site')) {
    throw new AdminError(403, `cross-site request refused (Sec-Fetch-Site: ${fetchSite})`);
  }
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body, null, 2) + '\n');
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new AdminError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch (error) {
    throw new AdminError(400, `request body is not JSON: ${(error as Error).message}`);
  }
}
