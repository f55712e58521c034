// A throwaway certificate authority made with the openssl CLI: a CA, server
// certificates for 127.0.0.1/localhost (or any names), client certificates.
// EC P-256 keys: fast to make, accepted by Postgres, MariaDB, Redis and Node.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ensureBinary } from './ensure-binary';
import { makeTempDir, RunAs } from './proc';

export interface IssuedCert {
  certFile: string;
  keyFile: string;
  /** The certificate followed by the CA's: what a server sends when clients pin the CA (Elasticsearch does). */
  chainFile: string;
}

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM): what clients trust. */
  caFile: string;
  /**
   * A certificate signed by this CA. `names`: IP addresses and DNS names it is
   * valid for (server certificates; default 127.0.0.1 and localhost);
   * `commonName`: the subject CN (Postgres maps a client certificate's CN to the user).
   */
  issue(id: string, options?: { names?: string[]; commonName?: string; client?: boolean }): IssuedCert;
  /** Copies files into `dir`, owned by `owner` with mode 0600 (servers refuse world-readable keys). */
  copyFor(owner: RunAs | undefined, dir: string, files: string[]): string[];
}

function openssl(args: string[], cwd: string): void {
  execFileSync(ensureBinary(['openssl'], 'openssl'), args, { cwd, stdio: 'pipe' });
}

export function makeCa(name = 'tidewater test CA'): TestCa {
  const dir = makeTempDir('tls-ca');
  const caKey = path.join(dir, 'ca.key');
  const caFile = path.join(dir, 'ca.crt');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey], dir);
  openssl([
    'req', '-x509', '-new', '-key', caKey, '-out', caFile, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], dir);
  let serial = 1;
  return {
    dir,
    caFile,
    issue(id, options = {}) {
      const keyFile = path.join(dir, `${id}.key`);
      const certFile = path.join(dir, `${id}.crt`);
      const csr = path.join(dir, `${id}.csr`);
      const ext = path.join(dir, `${id}.ext`);
      const names = options.names ?? ['127.0.0.1', 'localhost'];
      const sans = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      fs.writeFileSync(ext, [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        `extendedKeyUsage=${options.client ? 'clientAuth' : 'serverAuth'}`,
        ...(options.client ? [] : [`subjectAltName=${sans}`]),
        '',
      ].join('\n'));
      openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile], dir);
      openssl(['req', '-new', '-key', keyFile, '-out', csr, '-subj', `/CN=${options.commonName ?? names[0] ?? id}`], dir);
      openssl(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', String(serial++), '-out', certFile, '-days', '2', '-extfile', ext], dir);
      // mysql2 and pg read keys as PKCS#8 or SEC1 alike; Postgres wants the key file private.
      fs.chmodSync(keyFile, 0o600);
      const chainFile = path.join(dir, `${id}-chain.crt`);
      fs.writeFileSync(chainFile, fs.readFileSync(certFile, 'utf8') + fs.readFileSync(caFile, 'utf8'));
      return { certFile, keyFile, chainFile };
    },
    copyFor(owner, target, files) {
      return files.map((file) => {
        const copy = path.join(target, path.basename(file));
        fs.copyFileSync(file, copy);
        fs.chmodSync(copy, 0o600);
        if (owner) fs.chownSync(copy, owner.uid, owner.gid);
        return copy;
      });
    },
  };
}

export interface TlsProxy {
  port: number;
  /** Subject CNs of the client certificates presented, one per accepted TLS connection ('' without one). */
  readonly clients: string[];
  /** The first bytes each client sent after the handshake (an HTTP request's head, for instance). */
  readonly firstBytes: string[];
  /** Everything clients sent after their handshakes (the first MiB), to look for protocol fields. */
  received(): Buffer;
  stop(): Promise<void>;
}

/**
 * Terminates TLS on a free 127.0.0.1 port and pipes the plain bytes to
 * 127.0.0.1:`targetPort`: puts TLS in front of a server that has none (the
 * in-repo Elasticsearch semantics server). With `caFile` and
 * `requireClientCert`, only clients with a certificate of that CA get through.
 */
export async function startTlsProxy(options: { targetPort: number; certFile: string; keyFile: string; caFile?: string; requireClientCert?: boolean }): Promise<TlsProxy> {
  const clients: string[] = [];
  const firstBytes: string[] = [];
  const received: Buffer[] = [];
  let receivedBytes = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({
    cert: fs.readFileSync(options.certFile),
    key: fs.readFileSync(options.keyFile),
    ...(options.caFile ? { ca: fs.readFileSync(options.caFile) } : {}),
    requestCert: options.requireClientCert ?? false,
    rejectUnauthorized: options.requireClientCert ?? false,
  }, (secure) => {
    const peer = secure.getPeerCertificate();
    clients.push(typeof peer?.subject?.CN === 'string' ? peer.subject.CN : '');
    secure.once('data', (chunk: Buffer) => firstBytes.push(chunk.toString('latin1')));
    secure.on('data', (chunk: Buffer) => {
      if (receivedBytes >= 1 << 20) return;
      received.push(chunk);
      receivedBytes += chunk.length;
    });
    const upstream = net.connect(options.targetPort, '127.0.0.1');
    sockets.add(secure).add(upstream);
    secure.pipe(upstream).pipe(secure);
    const close = () => { secure.destroy(); upstream.destroy(); sockets.delete(secure); sockets.delete(upstream); };
    secure.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  server.on('tlsClientError', () => undefined); // a client that rejects our certificate: expected in tests
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    clients,
    firstBytes,
    received: () => Buffer.concat(received),
    stop: () => new Promise<void>((resolve) => {
      sockets.forEach((s) => s.destroy());
      server.close(() => resolve());
    }),
  };
}
