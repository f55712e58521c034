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
  /** Further routes by `METHOD /api/path` (pause, resume, dead letters: see core/http/console.ts); same token rules. */
  more?: Record<string, (input: { body: Record<string, unknown>; query: URLSearchParams }) => Promise<unknown>>;
}

const MAX_BODY_BYTES = 64 * 1024;

/**
 * The admin API the CLI talks to (`cdc status`, `cdc resync`):
 *   GET  /api/status   positions, lag, snapshot and resync progress
 *   POST /api/resync   { source, tables: [schema.table], where? } → 202 { requestId }
 *   POST /api/reprocess { sink } → 202 { sink, generation, consumer }
 * A bearer token is required when one is configured.
 */
export async function handleAdmin(request: IncomingMessage, response: ServerResponse, path: string, handlers: AdminHandlers, token?: string): Promise<void> {
  try {
    if (token && request.headers.authorization !== `Bearer ${token}`) throw new AdminError(401, 'missing or wrong bearer token (service.http.token)');
    if (request.method === 'GET' && path === '/api/status') return reply(response, 200, await handlers.status());
    if (request.method === 'POST' && path === '/api/resync') return reply(response, 202, await handlers.resync(await readJson(request)));
    if (request.method === 'POST' && path === '/api/reprocess') return reply(response, 202, await handlers.reprocess(await readJson(request)));
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
