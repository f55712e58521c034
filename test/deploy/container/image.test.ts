import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { Client } from 'pg';
import { ensureBinary, isRoot } from '../../support/ensure-binary';
import { packageRoot } from '../../support/kafka';
import { freePort, PgServer, RedisServer, startPostgres, startRedis, stopAll } from '../../support/servers';
import { waitFor } from '../../support/wait';

/**
 * deploy/Dockerfile, built and run as an operator would, with buildah: this sandbox refuses
 * the OCI runtime's setrlimit, so `--isolation chroot` (host network), and no registry is
 * reachable, so the base is made locally (make-base-image.sh) and passed as BASE_IMAGE.
 * Slow (minutes): `npm run test:deploy`, not part of `npm test`.
 */
const root = packageRoot();
/** TIDEWATER_NODE_MAJOR=24 tests the image on the other supported LTS line. */
const NODE_MAJOR = process.env.TIDEWATER_NODE_MAJOR ?? '22';
const BASE_IMAGE = process.env.TIDEWATER_BASE_IMAGE ?? `localhost/tidewater-test-base:node${NODE_MAJOR}`;
const IMAGE = 'localhost/tidewater:test';

function buildah(args: string[], options: { timeoutMs?: number } = {}): { code: number; output: string; stdout: string } {
  const result = spawnSync('buildah', args, { encoding: 'utf8', timeout: options.timeoutMs ?? 120_000, maxBuffer: 256 << 20 });
  return { code: result.status ?? 1, stdout: result.stdout ?? '', output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}` };
}

const tail = (text: string, lines = 30) => text.trim().split('\n').slice(-lines).join('\n');

/** Stops the test with the reason printed, as every skip in this suite does. */
function stopHere(context: Mocha.Context, reason: string): never {
  console.log(`      skipped: ${reason}`);
  context.skip();
}

interface ImageConfig { User?: string; Entrypoint?: string[]; Cmd?: string[]; Volumes?: Record<string, unknown>; Healthcheck?: { Test?: string[] }; Env?: string[] }

describe('container image (deploy/Dockerfile, built and run with buildah)', function () {
  this.timeout(40 * 60_000);
  let pg: PgServer;
  let redis: RedisServer;
  const containers: string[] = [];
  let service: ChildProcess | null = null;
  const work = mkdtempSync('/var/tmp/tidewater-image-test-');
  let built = false;

  before(function () {
    if (!isRoot()) stopHere(this, 'buildah --isolation chroot and debootstrap need root here; run npm run test:deploy as root');
    try {
      ensureBinary(['buildah'], 'buildah');
      ensureBinary(['debootstrap'], 'debootstrap');
    } catch (error) {
      stopHere(this, (error as Error).message);
    }
  });

  after(async () => {
    if (service?.exitCode === null) service.kill('SIGKILL');
    for (const container of containers) buildah(['rm', container]);
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  });

  it('builds from a local Debian + Node base: non-root, volume, healthcheck, exec-form entrypoint', function () {
    if (buildah(['inspect', '--type', 'image', BASE_IMAGE]).code !== 0) {
      console.log(`      making the base image ${BASE_IMAGE} (debootstrap + Node from the npm registry; cached for the next runs)`);
      const started = Date.now();
      const made = spawnSync('bash', [join(root, 'test', 'deploy', 'container', 'make-base-image.sh'), BASE_IMAGE, NODE_MAJOR], { encoding: 'utf8', timeout: 30 * 60_000 });
      if (made.status !== 0) assert.fail(`the base image could not be made (make-base-image.sh exit ${made.status}):\n${tail(`${made.stdout}${made.stderr}`)}`);
      console.log(`      base image made in ${Math.round((Date.now() - started) / 1000)} s`);
    } else {
      console.log(`      reusing the base image ${BASE_IMAGE} (buildah rmi it to rebuild)`);
    }

    // The build context: the checkout's files as on disk (tracked and new, not ignored), as `docker build .` sees them;
    // TIDEWATER_IMAGE_CONTEXT=head (or any commit) builds that commit instead (a shared tree with edits under way).
    const context = join(work, 'context');
    mkdirSync(context);
    const revision = process.env.TIDEWATER_IMAGE_CONTEXT ?? 'worktree';
    if (!/^[\w./~^-]+$/.test(revision)) assert.fail(`TIDEWATER_IMAGE_CONTEXT=${revision}: expected worktree, head or a commit`);
    const files = revision === 'worktree' ? 'git ls-files -z -co --exclude-standard | tar --null -T - -cf - 2>/dev/null' : `git archive ${revision === 'head' ? 'HEAD' : revision}`;
    execFileSync('bash', ['-c', `${files} | tar -x -C ${JSON.stringify(context)}`], { cwd: root });
    const started = Date.now();
    const build = buildah(
      ['bud', '--isolation', 'chroot', '--network', 'host', '--layers', '--force-rm', '--format', 'docker', '--build-arg', `BASE_IMAGE=${BASE_IMAGE}`, '-f', 'deploy/Dockerfile', '-t', IMAGE, context],
      { timeoutMs: 30 * 60_000 },
    );
    if (build.code !== 0 && /error TS\d+/.test(build.output)) {
      assert.fail(`the image's build stage stops at tsc: the checkout does not type-check (an edit under way?):\n${build.output.split('\n').filter((l) => /error TS\d+/.test(l)).join('\n')}`);
    }
    if (build.code !== 0) assert.fail(`buildah bud failed (exit ${build.code}):\n${tail(build.output, 40)}`);
    console.log(`      image built in ${Math.round((Date.now() - started) / 1000)} s`);
    built = true;

    const inspected = JSON.parse(buildah(['inspect', '--type', 'image', IMAGE]).stdout) as { Docker: { config: ImageConfig }; Docker_size?: number };
    const config = inspected.Docker.config;
    assert.equal(config.User, 'node');
    assert.deepEqual(config.Entrypoint, ['node', '/app/dist/cli/main.js'], 'exec form: node is PID 1 and gets SIGTERM itself');
    assert.deepEqual(config.Cmd, ['run', '-c', '/etc/tidewater/cdc.yaml']);
    assert.ok(config.Volumes && '/var/lib/tidewater' in config.Volumes, 'the data directory is a volume');
    assert.match(JSON.stringify(config.Healthcheck?.Test), /\/healthz/);
    const size = buildah(['images', '--format', '{{.Size}}', IMAGE]).stdout.trim();
    console.log(`      image size ${size} (base ${buildah(['images', '--format', '{{.Size}}', BASE_IMAGE]).stdout.trim()})`);
  });

  it('runs against Postgres and Redis: rows arrive, the healthcheck passes, SIGTERM stops it cleanly', async function () {
    if (!built) stopHere(this, `the image ${IMAGE} was not built by this run (see the test above)`);
    [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query('CREATE DATABASE imageshop');
    await admin.end();
    const pgUrl = pg.url.replace(/\/[^/]*$/, '/imageshop');
    const shop = new Client({ connectionString: pgUrl });
    shop.on('error', () => undefined); // stopAll() ends the server under an idle client
    await shop.connect();
    await shop.query(`CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL); INSERT INTO customers VALUES (1, 'before start')`);

    const configDir = join(work, 'etc');
    const dataDir = join(work, 'data');
    mkdirSync(configDir);
    mkdirSync(dataDir);
    chownSync(dataDir, 1000, 1000); // the image's node user owns its volume, as a container runtime's fresh volume would be
    const httpPort = await freePort();
    writeFileSync(
      join(configDir, 'cdc.yaml'),
      `service: { name: imageshop, dataDir: /var/lib/tidewater, http: { host: 127.0.0.1, port: "\${CDC_HTTP_PORT}" } }
sources: [{ name: image-pg, type: postgres, url: "\${PG_URL}", tables: [public.customers] }]
sinks: [{ name: cache, type: redis, url: "\${REDIS_URL}", keyPrefix: "img:", tables: ["*"] }]
`,
    );

    const container = buildah(['from', IMAGE]).stdout.trim().split('\n').pop()!;
    containers.push(container);
    assert.equal(buildah(['config', '--env', `PG_URL=${pgUrl}`, '--env', `REDIS_URL=${redis.url}`, '--env', `CDC_HTTP_PORT=${httpPort}`, container]).code, 0);
    // buildah 1.28 sometimes mounts its own directory over an image VOLUME despite a -v for it (mount order
    // varies between runs): drop the VOLUME from this working container so the -v is a plain bind mount.
    assert.equal(buildah(['config', '--volume', '/var/lib/tidewater-', container]).code, 0);
    const inContainer = ['run', '--isolation', 'chroot', '--network', 'host', '-v', `${dataDir}:/var/lib/tidewater`, '-v', `${configDir}:/etc/tidewater:ro`, container, '--'];
    assert.equal(buildah([...inContainer, 'id', '-u']).stdout.trim(), '1000', 'the service runs as the node user, not root');

    const image = JSON.parse(buildah(['inspect', '--type', 'image', IMAGE]).stdout) as { Docker: { config: ImageConfig } };
    const { Entrypoint = [], Cmd = [], Healthcheck } = image.Docker.config;
    const output: string[] = [];
    service = spawn('buildah', [...inContainer, ...Entrypoint, ...Cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean));
    service.stdout!.on('data', collect);
    service.stderr!.on('data', collect);
    const exited = new Promise<number>((resolve) => service!.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 0))));

    const ready = async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => null))?.status === 200;
    await waitFor(async () => service!.exitCode !== null || (await ready()), { timeoutMs: 60_000, what: 'the containerised service to be ready', describe: () => tail(output.join('\n'), 20) });
    assert.equal(service.exitCode, null, `the service exited: ${tail(output.join('\n'))}`);

    await shop.query(`INSERT INTO customers VALUES (2, 'after start'); UPDATE customers SET name = 'updated' WHERE id = 1`);
    const reader = new Redis(redis.url);
    try {
      await waitFor(async () => (await reader.get('img:public.customers:2')) !== null && (await reader.get('img:public.customers:1'))?.includes('updated') === true, {
        timeoutMs: 30_000,
        what: 'rows in Redis',
        describe: () => tail(output.join('\n'), 10),
      });
      assert.deepEqual(JSON.parse((await reader.get('img:public.customers:1'))!), { id: 1, name: 'updated' });
      assert.deepEqual(JSON.parse((await reader.get('img:public.customers:2'))!), { id: 2, name: 'after start' });
    } finally {
      reader.disconnect();
      await shop.end();
    }

    const check = Healthcheck?.Test ?? [];
    assert.equal(check[0], 'CMD', `exec-form healthcheck: ${JSON.stringify(check)}`);
    const health = buildah([...inContainer, ...check.slice(1)]);
    assert.equal(health.code, 0, `the HEALTHCHECK command passes against the running service: ${health.output}`);

    // What a container runtime does on stop: SIGTERM to the container's PID 1, node itself.
    // (buildah's own chroot helper also carries the command in its arguments: pick the process that is node itself.)
    const node = descendants(service.pid!).find((pid) => {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return /(^|\/)node$/.test(argv[0]) && argv[1] === '/app/dist/cli/main.js'; // buildah resolves node to its path in the image
    });
    assert.ok(node, 'found the node process started by buildah run');
    process.kill(node, 'SIGTERM');
    const code = await Promise.race([exited, new Promise<number>((resolve) => setTimeout(() => resolve(-1), 30_000))]);
    assert.equal(code, 0, `exit code after SIGTERM:\n${tail(output.join('\n'))}`);
    const records = output.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; level: string });
    assert.ok(records.length > 3, `the service logs JSON lines when stderr is not a terminal:\n${tail(output.join('\n'), 5)}`);
    assert.ok(records.some((r) => r.msg.startsWith('received SIGTERM')), `node itself got the SIGTERM:\n${tail(output.join('\n'), 5)}`);
    assert.ok(records.some((r) => r.msg.includes('service stopped')), `a clean stop:\n${tail(output.join('\n'), 5)}`);

    const owned = readdirSync(dataDir).map((name) => [name, statSync(join(dataDir, name)).uid] as const);
    assert.ok(owned.some(([name]) => name === 'log'), `the embedded log is in the volume ${dataDir}: [${owned.map(([n]) => n).join(', ')}]`);
    assert.ok(owned.every(([, uid]) => uid === 1000), 'written by the node user');
  });
});

/** Every process below `pid` (buildah run starts the command as a child, no PID namespace with chroot isolation). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process ended meanwhile
    }
  }
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of parents) if (ppid === parent) { found.push(child); walk(child); }
  };
  walk(pid);
  return found;
}
