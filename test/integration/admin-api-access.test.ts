import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { callAdmin } from '../../cli/admin-client';
import { LoadedConfig } from '../../config/load';
import { AdminHandlers } from '../../core/http/admin';
import { Metrics } from '../../core/http/metrics';
import { startHttpServer } from '../../core/http/server';

interface RawResponse {
  status: number;
  body: string;
}

/** A request exactly as given: node's http client lets us set Host and Origin as a browser or a rebound page would. */
function send(port: number, options: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method, path: options.path, headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('admin API against cross-site requests and DNS rebinding', function () {
  this.timeout(30_000);
  const calls: string[] = [];
  const handlers: AdminHandlers = {
    status: async () => ({ service: 'shop', sources: [], sinks: [] }),
    resync: async (body) => {
      calls.push(`resync ${JSON.stringify(body)}`);
      return { requestId: 'r-1' };
    },
    reprocess: async (body) => {
      calls.push(`reprocess ${JSON.stringify(body)}`);
      return { sink: body.sink, generation: 2, consumer: 'c' };
    },
    cancelResync: async (body) => {
      calls.push(`cancel ${JSON.stringify(body)}`);
      return { requestId: body.requestId, cancelled: ['public.t'] };
    },
  };

  describe('on loopback without a token', () => {
    let server: Awaited<ReturnType<typeof startHttpServer>>;
    let own: string;
    before(async () => {
      server = await startHttpServer({ host: '127.0.0.1', port: 0, metrics: new Metrics(), health: () => ({ ready: true, waiting: [] }), admin: handlers });
      own = `127.0.0.1:${server.port}`;
    });
    after(() => server.close());
    beforeEach(() => (calls.length = 0));

    const resyncBody = JSON.stringify({ source: 'pg', tables: ['public.t'] });

    it('refuses a text/plain POST from a foreign Origin (what fetch(..., {mode: "no-cors"}) sends)', async () => {
      const res = await send(server.port, { method: 'POST', path: '/api/resync', headers: { host: own, origin: 'http://evil.example', 'content-type': 'text/plain;charset=UTF-8' }, body: resyncBody });
      assert.equal(res.status, 415, res.body);
      assert.match(res.body, /needs content-type application\/json/);
      assert.deepEqual(calls, []);
    });

    it('refuses an HTML form POST', async () => {
      const res = await send(server.port, {
        method: 'POST',
        path: '/api/reprocess',
        headers: { host: own, origin: 'null', 'content-type': 'application/x-www-form-urlencoded' },
        body: 'sink=cache',
      });
      assert.equal(res.status, 415, res.body);
      assert.deepEqual(calls, []);
    });

    it('refuses a JSON POST from a foreign Origin', async () => {
      const res = await send(server.port, { method: 'POST', path: '/api/resync', headers: { host: own, origin: 'http://evil.example', 'content-type': 'application/json' }, body: resyncBody });
      assert.equal(res.status, 403, res.body);
      assert.match(res.body, /cross-site request refused: Origin http:\/\/evil\.example is not this service/);
      assert.deepEqual(calls, []);
    });

    it('refuses a DNS-rebound Host, for reads too', async () => {
      for (const [method, path] of [['GET', '/api/status'], ['POST', '/api/resync']]) {
        const res = await send(server.port, {
          method,
          path,
          headers: { host: `evil.example:${server.port}`, 'content-type': 'application/json' },
          body: method === 'POST' ? resyncBody : undefined,
        });
        assert.equal(res.status, 421, `${method} ${path}: ${res.body}`);
        assert.match(res.body, /Host header .*evil\.example.* does not name this service/);
      }
      assert.deepEqual(calls, []);
    });

    it('accepts a JSON POST from its own origin (the console page) and from localhost', async () => {
      const res = await send(server.port, { method: 'POST', path: '/api/resync', headers: { host: own, origin: `http://${own}`, 'content-type': 'application/json' }, body: resyncBody });
      assert.equal(res.status, 202, res.body);
      const local = await send(server.port, { method: 'GET', path: '/api/status', headers: { host: `localhost:${server.port}` } });
      assert.equal(local.status, 200, local.body);
    });

    it('the cdc commands keep working (the CLI admin client: status, resync, cancel, reprocess)', async () => {
      const config = { service: { name: 'shop', http: { host: '127.0.0.1', port: server.port } }, configFile: 'cdc.yaml' } as unknown as LoadedConfig;
      assert.deepEqual(await callAdmin(config, 'GET', '/api/status'), { service: 'shop', sources: [], sinks: [] });
      assert.deepEqual(await callAdmin(config, 'POST', '/api/resync', { source: 'pg', tables: ['public.t'] }), { requestId: 'r-1' });
      assert.deepEqual(await callAdmin(config, 'POST', '/api/resync/cancel', { source: 'pg', requestId: 'r-1' }), { requestId: 'r-1', cancelled: ['public.t'] });
      await callAdmin(config, 'POST', '/api/reprocess', { sink: 'cache' });
      assert.equal(calls.length, 3);
    });
  });

  describe('with a token', () => {
    let server: Awaited<ReturnType<typeof startHttpServer>>;
    const token = 'a-token-of-32-characters-0123456';
    before(async () => {
      server = await startHttpServer({ host: '127.0.0.1', port: 0, token, metrics: new Metrics(), health: () => ({ ready: true, waiting: [] }), admin: handlers });
    });
    after(() => server.close());

    it('refuses a request without it, and the CLI sends it', async () => {
      const res = await send(server.port, { method: 'POST', path: '/api/resync', headers: { host: `127.0.0.1:${server.port}`, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(res.status, 401, res.body);
      const config = { service: { name: 'shop', http: { host: '127.0.0.1', port: server.port, token } }, configFile: 'cdc.yaml' } as unknown as LoadedConfig;
      assert.deepEqual(await callAdmin(config, 'GET', '/api/status'), { service: 'shop', sources: [], sinks: [] });
    });
  });
});
