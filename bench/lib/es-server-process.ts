// The in-repo Elasticsearch server in a process of its own, for benchmarks: a
// real Elasticsearch runs beside the service, not inside it, so its request
// handling must not share the sink's thread, nor count in the sink's memory.
// Run as a child: prints `ES_URL <url>` once listening; ends with its stdin.
import { ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { startEsServer } from '../../test/support/es-server';

export interface EsServerProcess {
  url: string;
  stop(): Promise<void>;
}

const READY = 'ES_URL ';

/** Starts the server in a child process (this file's own main) and resolves once it listens. */
export function startEsServerProcess(): Promise<EsServerProcess> {
  const child: ChildProcess = spawn(process.execPath, [__filename], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the Elasticsearch test server process exited with code ${code} before listening`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith(READY)) return;
      child.removeAllListeners('exit');
      resolve({
        url: line.slice(READY.length),
        stop: () => new Promise<void>((done) => {
          if (child.exitCode !== null) return done();
          child.once('exit', () => done());
          child.stdin!.end();
        }),
      });
    });
  });
}

if (require.main === module) {
  void startEsServer().then((server) => {
    process.stdout.write(`${READY}${server.url}\n`);
    process.stdin.on('end', () => void server.stop().then(() => process.exit(0)));
    process.stdin.resume();
  });
}
