import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { AdminHandlers, handleAdmin } from './admin';
import type { ConsoleRoutes } from './console';
import { Metrics } from './metrics';

export interface HealthReport {
  ready: boolean;
  /** Components that are not ready yet, with what they wait for. */
  waiting: string[];
}

/** `/metrics` (Prometheus), `/healthz` (the process is up), `/readyz` (every component is running). */
export async function startHttpServer(options: {
  host: string;
  port: number;
  metrics: Metrics;
  health: () => HealthReport;
  admin?: AdminHandlers;
  /** Bearer token the admin API requires (service.http.token). */
  token?: string;
  /** The operator console at `/` (core/http/console.ts). */
  console?: ConsoleRoutes;
}): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  let listeningPort = options.port; // the real one once listening (port 0 picks one)
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname === '/metrics') {
      options.metrics.registry.metrics().then(
        (text) => {
          response.writeHead(200, { 'content-type': options.metrics.registry.contentType });
          response.end(text);
        },
        (error: Error) => {
          response.writeHead(500, { 'content-type': 'text/plain' });
          response.end(`metrics failed: ${error.message}\n`);
        },
      );
      return;
    }
    if (url.pathname.startsWith('/api/') && options.admin) {
      void handleAdmin(request, response, url.pathname, options.admin, { token: options.token, host: options.host, port: listeningPort });
      return;
    }
    if (url.pathname === '/healthz') {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok\n');
      return;
    }
    if (url.pathname === '/readyz') {
      const report = options.health();
      response.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json' });
      response.end(JSON.stringify(report) + '\n');
      return;
    }
    if (options.console?.handle(request, response, url)) return;
    response.writeHead(404, { 'content-type': 'text/plain' });
    response.end('not found: try /, /metrics, /healthz or /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${options.host}:${options.port} (service.http): ${error.message}${error.code === 'EADDRINUSE' ? ' — another process uses that port; set service.http.port' : ''}`)),
    );
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  listeningPort = port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
