import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ensureBinary, findBinary } from '../support/ensure-binary';
import { packageRoot } from '../support/kafka';
import { loadConfig } from '../../config/load';
import { checkObjects, K8sObject, schemaProblems } from './k8s-check';

const root = packageRoot();
const deploy = (...parts: string[]) => join(root, 'deploy', ...parts);

function run(command: string, args: string[], cwd = root) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status ?? 1, stdout: result.stdout ?? '', stderr: result.stderr ?? '', output: `${result.stdout}${result.stderr}` };
}

/** The binary, or a skip that prints why (not root and not installed, or apt failed). */
function binaryOrSkip(context: Mocha.Context, candidates: string[], debPackage: string): string {
  try {
    return ensureBinary(candidates, debPackage);
  } catch (error) {
    console.log(`      skipped: ${(error as Error).message}`);
    context.skip();
  }
}

const PLACEHOLDER_ENV = {
  PG_URL: 'postgres://cdc:secret@db:5432/shop',
  MYSQL_URL: 'mysql://cdc:secret@mariadb:3306/',
  REDIS_URL: 'redis://redis:6379',
  ES_URL: 'http://elasticsearch:9200',
  CDC_ADMIN_TOKEN: 'a-token-of-at-least-16-characters',
};

/** What `cdc validate` checks, on a config text, as the service would read it (in-process: fast). */
/** The objects a kustomization's `resources` list (following directories), without applying patches or labels. */
function kustomizeResources(dir: string): K8sObject[] {
  const kustomization = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as { resources?: string[] };
  return (kustomization.resources ?? []).flatMap((entry) => {
    const path = join(dir, entry);
    if (existsSync(join(path, 'kustomization.yaml'))) return kustomizeResources(path);
    return parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as K8sObject).filter(Boolean);
  });
}

function validateConfig(text: string, env: Record<string, string> = PLACEHOLDER_ENV): { code: number; output: string } {
  const file = join(mkdtempSync(join(tmpdir(), 'cdc-deploy-')), 'cdc.yaml');
  writeFileSync(file, text);
  try {
    loadConfig(file, env);
    return { code: 0, output: '' };
  } catch (error) {
    return { code: 1, output: (error as Error).message };
  }
}

describe('deploy/: files an operator deploys with', function () {
  this.timeout(120_000);

  describe('Prometheus alert rules (promtool)', () => {
    it('the rules load and their unit tests pass (alerts.test.yml)', function () {
      const promtool = binaryOrSkip(this, ['promtool'], 'prometheus');
      const check = run(promtool, ['check', 'rules', deploy('prometheus', 'alerts.yml')]);
      assert.equal(check.code, 0, check.output);
      assert.match(check.output, /SUCCESS: 9 rules found/);
      const tests = run(promtool, ['test', 'rules', deploy('prometheus', 'alerts.test.yml')]);
      assert.equal(tests.code, 0, tests.output);
      assert.match(tests.output, /SUCCESS/);
      const config = run(promtool, ['check', 'config', deploy('prometheus', 'prometheus.yml')]);
      assert.equal(config.code, 0, config.output);
    });

    it('every alert links to its section of docs/operations.md', () => {
      const rules = parse(readFileSync(deploy('prometheus', 'alerts.yml'), 'utf8')).groups[0].rules as { alert: string; annotations: { runbook_url: string } }[];
      const operations = readFileSync(join(root, 'docs', 'operations.md'), 'utf8');
      for (const rule of rules) {
        const anchor = rule.annotations.runbook_url.split('#')[1];
        assert.ok(operations.includes(`<a id="${anchor}"></a>`), `docs/operations.md has a section for ${rule.alert} (#${anchor})`);
      }
    });
  });

  describe('systemd unit', () => {
    it('passes systemd-analyze verify, is hardened, and scores an OK exposure', function () {
      const analyze = binaryOrSkip(this, ['systemd-analyze'], 'systemd');
      const unit = deploy('systemd', 'tidewater.service');
      const verify = run(analyze, ['verify', unit]);
      assert.equal(verify.code, 0, verify.output);
      assert.equal(verify.stderr.trim(), '', 'no warnings');
      const text = readFileSync(unit, 'utf8');
      for (const line of ['User=tidewater', 'StateDirectory=tidewater', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'Restart=on-failure']) {
        assert.ok(text.split('\n').includes(line), `the unit has ${line}`);
      }
      const security = run(analyze, ['security', '--offline=true', unit]);
      const exposure = /Overall exposure level for tidewater\.service: ([\d.]+)/.exec(security.output);
      if (!exposure) return console.log(`      (systemd-analyze security --offline is not available here: ${security.output.trim().split('\n').pop()})`);
      assert.ok(Number(exposure[1]) <= 2, `exposure ${exposure[1]} (10 = unprotected) is at most 2`);
    });
  });

  describe('docker-compose quick start', () => {
    it('docker-compose config accepts it, with every service, their settings and the files they mount', function () {
      const compose = binaryOrSkip(this, ['docker-compose'], 'docker-compose');
      const file = deploy('docker-compose.yml');
      const rendered = run(compose, ['-f', file, '--profile', 'kafka', 'config']);
      assert.equal(rendered.code, 0, rendered.output);
      const config = parse(rendered.stdout) as { services: Record<string, { command?: string[] | string; volumes?: ({ source: string } | string)[]; profiles?: string[] }> };
      assert.deepEqual(Object.keys(config.services).sort(), [
        'elasticsearch', 'grafana', 'kafka', 'kafka-topic', 'mariadb', 'postgres', 'prometheus', 'redis', 'tidewater', 'tidewater-sinks', 'tidewater-sources',
      ]);
      const command = (name: string) => [config.services[name].command ?? []].flat().join(' ');
      assert.match(command('postgres'), /wal_level=logical/);
      assert.match(command('mariadb'), /--log-bin.*--binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL --server-id=1/);
      assert.match(command('tidewater-sources'), /--only sources/);
      assert.match(command('tidewater-sinks'), /--only sinks/);
      for (const [name, service] of Object.entries(config.services)) {
        for (const volume of service.volumes ?? []) {
          const source = typeof volume === 'string' ? volume.split(':')[0] : volume.source;
          if (source.startsWith('/')) assert.ok(existsSync(source), `${name} mounts ${source}, which exists`);
        }
      }
      const withProfile = Object.entries(config.services).filter(([, s]) => s.profiles?.includes('kafka')).map(([name]) => name).sort();
      assert.deepEqual(withProfile, ['kafka', 'kafka-topic', 'tidewater-sinks', 'tidewater-sources'], 'Kafka and the split roles run only with --profile kafka');
    });

    it('the configs it mounts are valid service configs', () => {
      for (const name of ['cdc.yaml', 'cdc-kafka.yaml']) {
        const result = validateConfig(readFileSync(deploy('compose', name), 'utf8'));
        assert.equal(result.code, 0, `${name}: ${result.output}`);
      }
      const image = validateConfig(readFileSync(deploy('config', 'cdc.yaml'), 'utf8'));
      assert.equal(image.code, 0, `deploy/config/cdc.yaml: ${image.output}`);
    });
  });

  describe('Grafana dashboard', () => {
    it('is a dashboard whose panels all query Prometheus', () => {
      const dashboard = JSON.parse(readFileSync(deploy('grafana', 'tidewater.json'), 'utf8'));
      assert.equal(dashboard.uid, 'tidewater');
      const panels = (dashboard.panels as { type: string; title: string; targets?: { expr: string }[] }[]).filter((p) => p.type !== 'row');
      assert.ok(panels.length >= 15, `${panels.length} panels`);
      for (const panel of panels) assert.ok(panel.targets?.length && panel.targets.every((t) => t.expr), `panel "${panel.title}" has queries`);
      const titles = panels.map((p) => p.title).join(' | ');
      for (const topic of [/Source lag/, /backlog/, /Log end offset/, /Sink lag \(events\)/, /Sink lag \(seconds\)/, /per second/, /Dead letters/, /restarts/, /Snapshot progress/]) {
        assert.match(titles, topic);
      }
    });
  });

  describe('Kubernetes manifests (kustomize)', () => {
    for (const layout of ['base', 'overlays/kafka']) {
      it(`${layout}: every rendered object is well formed and its references resolve`, async function () {
        const kubectl = process.env.TIDEWATER_NO_KUBECTL ? undefined : findBinary(['kubectl', 'kustomize']);
        if (!kubectl) {
          // Debian has no kubectl: still validate every object the kustomization lists, as written (patches not applied).
          const objects = kustomizeResources(deploy('kubernetes', layout));
          console.log(`      (no kubectl or kustomize to render ${layout}: its ${objects.length} listed objects are checked as written, patches not applied)`);
          const schemas = await schemaProblems(objects);
          assert.deepEqual(schemas.problems, [], 'objects against the Kubernetes JSON schemas');
          assert.ok(objects.some((o) => o.kind === 'ConfigMap') && objects.some((o) => o.kind === 'Secret'), objects.map((o) => o.kind).join(','));
          return;
        }
        const args = kubectl.endsWith('kustomize') ? ['build', deploy('kubernetes', layout)] : ['kustomize', deploy('kubernetes', layout)];
        const rendered = run(kubectl, args);
        assert.equal(rendered.code, 0, rendered.output);
        const objects = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as K8sObject);
        assert.deepEqual(checkObjects(objects), []);
        const schemas = await schemaProblems(objects);
        assert.deepEqual(schemas.problems, [], 'objects against the Kubernetes JSON schemas');
        if (schemas.skipped.length) console.log(`      (JSON-schema validation skipped: ${schemas.skipped.join('; ')}; the structural check above ran)`);

        const kinds = objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort();
        if (layout === 'base') {
          assert.deepEqual(kinds, ['ConfigMap/tidewater-config', 'Secret/tidewater-credentials', 'Service/tidewater', 'ServiceMonitor/tidewater', 'StatefulSet/tidewater']);
        } else {
          assert.deepEqual(kinds, ['ConfigMap/tidewater-config', 'Deployment/tidewater-sinks', 'Deployment/tidewater-sources', 'PersistentVolumeClaim/tidewater-sources-data',
            'Secret/tidewater-credentials', 'Service/tidewater', 'ServiceMonitor/tidewater']);
          const args = (name: string) => JSON.stringify(objects.find((o) => o.metadata?.name === name)?.spec);
          assert.match(args('tidewater-sources'), /"--only","sources"/);
          assert.match(args('tidewater-sinks'), /"--only","sinks"/);
        }
        const configMap = objects.find((o) => o.kind === 'ConfigMap') as { data: Record<string, string> };
        const secret = objects.find((o) => o.kind === 'Secret') as { stringData: Record<string, string> };
        const result = validateConfig(configMap.data['cdc.yaml'], { ...PLACEHOLDER_ENV, ...secret.stringData, CDC_ADMIN_TOKEN: PLACEHOLDER_ENV.CDC_ADMIN_TOKEN });
        assert.equal(result.code, 0, `the ConfigMap's cdc.yaml: ${result.output}`);
      });
    }

    it('the JSON-schema validation (kubernetes-models) rejects a wrong type', async function () {
      const wrong = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { replicas: 'three', selector: {}, template: { spec: { containers: [{ name: 'c' }] } } } };
      const result = await schemaProblems([wrong]);
      if (result.skipped.length) {
        console.log(`      skipped: ${result.skipped.join('; ')}`);
        this.skip();
      }
      assert.deepEqual(result.problems, ['Deployment/x: data/spec/replicas must be integer']);
    });

    it('the check finds what a schema would: unknown fields, missing probes, dangling references', () => {
      const broken = [
        { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'y' } },
          spec: { containers: [{ name: 'c', image: 'i', readinessprobe: {}, volumeMounts: [{ name: 'data', mountPath: '/d' }], envFrom: [{ secretRef: { name: 'nope' } }] }] } } } },
      ];
      const problems = checkObjects(broken).join('\n');
      assert.match(problems, /Deployment\/x spec\.selector\.matchLabels: app=x is not a label of spec\.template/);
      assert.match(problems, /containers\.c\.readinessprobe: unknown field/);
      assert.match(problems, /containers\.c\.livenessProbe: is required/);
      assert.match(problems, /containers\.c\.volumeMounts\.data: no such volume/);
      assert.match(problems, /Secret nope is not among the objects/);
      assert.match(problems, /resources\.requests\.cpu: is required/);
    });
  });
});
