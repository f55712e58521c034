import { isIP } from 'node:net';
import * as tls from 'node:tls';

/**
 * The error of one TLS handshake with `broker` (host:port), or null when it
 * succeeds, times out or cannot connect. kafkajs retries a refused
 * certificate like a lost connection (its whole retry budget, ~40 s) though no
 * retry can change it: a handshake first lets open() say what is wrong at once.
 * Network failures are left to kafkajs's retries.
 */
export function tlsHandshakeError(broker: string, ssl: true | tls.ConnectionOptions, timeoutMs = 10_000): Promise<Error | null> {
  const cut = broker.lastIndexOf(':');
  const host = broker.slice(0, cut);
  const port = Number(broker.slice(cut + 1));
  return new Promise((resolve) => {
    const socket = tls.connect({ ...(ssl === true ? {} : ssl), host, port, ...(isIP(host) ? {} : { servername: host }) });
    const done = (error: Error | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(error);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    socket.once('secureConnect', () => done(null));
    socket.once('error', (error) => done(error));
  });
}
