import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { createLogger } from '../../core/runtime/logger';
import { packageRoot } from '../support/kafka';
import { PgRedisFixture } from '../support/pg-redis-fixture';
import { PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../support/servers';
import { waitFor } from '../support/wait';

const root = packageRoot();

/** Metric names a PromQL text uses (histogram series map to their histogram). */
function metricNames(promql: string): string[] {
  return [...promql.matchAll(/\b((?:cdc|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, ''));
}

function namedByDashboardAndRules(): Map<string, string> {
  const named = new Map<string, string>();
  const dashboard = JSON.parse(readFileSync(join(root, 'deploy', 'grafana', 'tidewater.json'), 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
  for (const panel of dashboard.panels) for (const target of panel.targets ?? []) for (const name of metricNames(target.expr)) named.set(name, `dashboard panel "${panel.title}"`);
  const rules = parse(readFileSync(join(root, 'deploy', 'prometheus', 'alerts.yml'), 'utf8')).groups[0].rules as { alert: string; expr: string }[];
  for (const rule of rules) for (const name of metricNames(rule.expr)) named.set(name, `alert ${rule.alert}`);
  return named;
}

type LogRecord = { level: string; time: string; component: string; msg: string; [field: string]: unknown };

describe('observability of a running service: metrics the dashboard and alerts use, structured logs', function () {
  this.timeout(120_000);
  let pg: PgServer;
  let redis: RedisServer;
  let fixture: PgRedisFixture;

  before(async () => {
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    fixture = new PgRedisFixture(pg, redis, 'observe1');
    await fixture.setUp();
    fixture.service.env.CDC_LOG_FORMAT = 'json'; // what a non-terminal stderr gets by default, stated for clarity
  });
  after(async () => {
    await fixture?.tearDown();
    await stopAll();
  });

  it('every metric named by the Grafana dashboard and the alert rules is on /metrics', async () => {
    await fixture.service.start();
    await fixture.sql(`INSERT INTO customers (id, name) VALUES (1, 'Ada')`);
    await waitFor(async () => (await fixture.difference()) === '', { timeoutMs: 20_000, what: 'the row in Redis', describe: () => fixture.difference() });
    const exposed = await fixture.service.metrics();
    const named = namedByDashboardAndRules();
    assert.ok(named.size >= 15, `${named.size} metric names found in the dashboard and the rules`);
    // A labelled metric with no samples yet shows only its HELP and TYPE lines: that is enough to be scraped once set.
    const missing = [...named].filter(([name]) => !new RegExp(`^# TYPE ${name} `, 'm').test(exposed)).map(([name, where]) => `${name} (${where})`);
    assert.deepEqual(missing, [], 'metrics the dashboard or the rules query but the service does not export');
  });

  it('logs one JSON object per line with level, time, component and message; the stop is logged', async () => {
    await fixture.service.stop();
    const records = fixture.service.output.map((line) => {
      try {
        return JSON.parse(line) as LogRecord;
      } catch {
        return assert.fail(`not a JSON line: ${line}`);
      }
    });
    for (const record of records) {
      assert.ok(['info', 'warn', 'error'].includes(record.level), `level of ${JSON.stringify(record)}`);
      assert.match(record.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.match(record.component, /^cdc(\/|$)/);
      assert.equal(typeof record.msg, 'string');
    }
    const streaming = records.find((r) => r.msg === 'streaming');
    assert.ok(streaming, 'the source logged that it streams');
    assert.equal(streaming.slot, 'tidewater_observe1_pg', 'fields stay fields, typed');
    assert.ok(records.some((r) => r.msg.includes('service stopped')));
  });

  it('--log-level warn drops info records', async () => {
    const before = fixture.service.output.length;
    await fixture.service.start({ args: ['--log-level', 'warn'] });
    await fixture.service.stop();
    const records = fixture.service.output.slice(before).map((line) => JSON.parse(line) as LogRecord);
    assert.deepEqual(records.filter((r) => r.level === 'info').map((r) => r.msg), []);
  });

  it('errors keep their stack and cause chain as fields; the pretty format keeps one readable line; passwords are masked', () => {
    const lines: string[] = [];
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const error = new Error('source shop-pg: cannot connect', { cause });
    createLogger('cdc', { format: 'json', write: (line) => lines.push(line) }).child('shop-pg').error('source failed; retrying', { error, inMs: 1000 });
    const record = JSON.parse(lines[0]) as LogRecord & { error: { message: string; stack: string; cause: { message: string; code: string; stack: string } } };
    assert.equal(record.component, 'cdc/shop-pg');
    assert.equal(record.msg, 'source failed; retrying');
    assert.equal(record.inMs, 1000);
    assert.equal(record.error.message, 'source shop-pg: cannot connect');
    assert.match(record.error.stack, /^Error: source shop-pg: cannot connect\n\s+at /);
    assert.deepEqual([record.error.cause.message, record.error.cause.code], ['connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED']);
    assert.match(record.error.cause.stack, /\n\s+at /);

    createLogger('cdc', (line) => lines.push(line)).child('shop-pg').warn('slot lagging', { slot: 'tidewater_shop', error });
    createLogger('cdc', { format: 'json', write: (line) => lines.push(line) }).error('cannot connect to postgres://cdc:hunter2@db/shop', { url: 'redis://:s3cret-pass@cache:6379' });
    assert.ok(!/hunter2|s3cret-pass/.test(lines[2]), `no password in ${lines[2]}`);
    assert.match(lines[2], /postgres:\/\/cdc:\*\*\*@db\/shop/);
    assert.match(lines[1], /^\d{4}-\d\d-\d\dT[\d:.]+Z WARN  \[cdc\/shop-pg\] slot lagging slot=tidewater_shop error="source shop-pg: cannot connect"$/);
  });
});
