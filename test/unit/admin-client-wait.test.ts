import { strict as assert } from 'node:assert';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { callAdminWhenStreaming } from '../../cli/admin-client';
import { LoadedConfig } from '../../config/load';

// `cdc resync` and `cdc verify --repair` asked while the source reconnects or snapshots (409 "not streaming yet")
// wait for it, saying so once, instead of failing at once; any other refusal fails at once.
describe('the CLI asking a source that is not streaming yet', function () {
  this.timeout(10_000);
  let server: Server;
  let answers: { status: number; body: unknown }[] = [];
  let asked = 0;
  let config: LoadedConfig;
  const stderr: string[] = [];
  const write = process.stderr.write.bind(process.stderr);

  before(async () => {
    server = createServer((_request, response) => {
      const answer = answers[Math.min(asked++, answers.length - 1)];
      response.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    config = { configFile: 'cdc.yaml', service: { http: { host: '127.0.0.1', port: (server.address() as AddressInfo).port } } } as unknown as LoadedConfig;
  });
  after(() => server.close());
  beforeEach(() => {
    asked = 0;
    stderr.length = 0;
    process.stderr.write = ((chunk: string) => stderr.push(String(chunk)) > 0) as typeof process.stderr.write;
  });
  afterEach(() => {
    process.stderr.write = write;
  });

  const notYet = { status: 409, body: { error: 'source s is not streaming yet (snapshot or reconnect in progress): try again shortly' } };

  it('asks again every second until the source streams, and says once that it waits', async () => {
    answers = [notYet, notYet, { status: 200, body: { requestId: 'r1' } }];
    const result = await callAdminWhenStreaming(config, '/api/resync', { source: 's', tables: ['public.t'] });
    assert.deepEqual(result, { requestId: 'r1' });
    assert.equal(asked, 3);
    assert.deepEqual(stderr, ['source s is not streaming yet (snapshot or reconnect in progress): try again shortly: waiting up to 60 s\n']);
  });

  it('gives up with the service\'s answer once the wait is over', async () => {
    answers = [notYet];
    await assert.rejects(callAdminWhenStreaming(config, '/api/resync', {}, 1500), /POST \/api\/resync: 409: source s is not streaming yet/);
    assert.equal(asked, 3);
  });

  it('fails at once on any other refusal', async () => {
    answers = [{ status: 400, body: { error: 'table public.x is not captured by source s' } }];
    await assert.rejects(callAdminWhenStreaming(config, '/api/resync', {}), /400: table public\.x is not captured/);
    assert.equal(asked, 1);
  });
});
