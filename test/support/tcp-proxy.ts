import * as net from 'node:net';

/**
 * A tiny TCP proxy for fault tests: put it between the service and a server
 * (Postgres, MariaDB, Redis, ...) and break the network on demand.
 *
 *   const proxy = await startTcpProxy({ port: pg.port });      // listens on 127.0.0.1:proxy.port
 *   proxy.blackhole();  // a hang: nothing is forwarded either way, no socket is closed, no FIN/RST
 *   proxy.restore();    // forwarding resumes; bytes held during the blackhole are delivered intact
 *   proxy.reset();      // every open connection is dropped at once (RST to both sides)
 *   await proxy.close();
 *
 * While blackholed, new connections are accepted but not connected upstream until
 * `restore()` (the client sees a server that never greets it). Held sockets are
 * paused, so the kernel buffers fill and TCP flow control stops the sender, as on a
 * network that silently drops packets.
 */
export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** Connections currently open through the proxy. */
  readonly connectionCount: number;
  readonly blackholed: boolean;
  blackhole(): void;
  restore(): void;
  /** Destroys every open connection (both sides, with RST where Node supports it). */
  reset(): void;
  close(): Promise<void>;
}

export interface TcpProxyOptions {
  /** The server to forward to. */
  port: number;
  host?: string;
  /** Port to listen on (default: any free port on 127.0.0.1). */
  listenPort?: number;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
}

export async function startTcpProxy(options: TcpProxyOptions): Promise<TcpProxy> {
  const targetHost = options.host ?? '127.0.0.1';
  const pairs = new Set<Pair>();
  let blackholed = false;

  const destroyPair = (pair: Pair, hard: boolean) => {
    for (const socket of [pair.client, pair.upstream]) {
      if (!socket || socket.destroyed) continue;
      const withReset = socket as net.Socket & { resetAndDestroy?: () => void };
      if (hard && typeof withReset.resetAndDestroy === 'function' && !socket.connecting) withReset.resetAndDestroy();
      else socket.destroy();
    }
    pairs.delete(pair);
  };

  const connectUpstream = (pair: Pair) => {
    const upstream = net.connect({ host: targetHost, port: options.port });
    pair.upstream = upstream;
    upstream.on('error', () => destroyPair(pair, false));
    pair.client.on('error', () => destroyPair(pair, false));
    upstream.on('close', () => destroyPair(pair, false));
    pair.client.on('close', () => destroyPair(pair, false));
    pair.client.pipe(upstream);
    upstream.pipe(pair.client);
    if (blackholed) pauseBoth(pair);
  };

  const pauseBoth = (pair: Pair) => {
    // Unpiping then pausing stops reading: no byte crosses, none is lost.
    if (pair.upstream) {
      pair.client.unpipe(pair.upstream);
      pair.upstream.unpipe(pair.client);
      pair.upstream.pause();
    }
    pair.client.pause();
  };

  const resumeBoth = (pair: Pair) => {
    if (!pair.upstream) return connectUpstream(pair);
    pair.client.pipe(pair.upstream);
    pair.upstream.pipe(pair.client);
  };

  const server = net.createServer((client) => {
    const pair: Pair = { client, upstream: null };
    pairs.add(pair);
    if (blackholed) {
      client.pause();
      client.on('error', () => destroyPair(pair, false));
      client.on('close', () => destroyPair(pair, false));
      return;
    }
    connectUpstream(pair);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listenPort ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    get connectionCount() {
      return pairs.size;
    },
    get blackholed() {
      return blackholed;
    },
    blackhole() {
      blackholed = true;
      for (const pair of pairs) pauseBoth(pair);
    },
    restore() {
      if (!blackholed) return;
      blackholed = false;
      for (const pair of [...pairs]) resumeBoth(pair);
    },
    reset() {
      for (const pair of [...pairs]) destroyPair(pair, true);
    },
    close() {
      for (const pair of [...pairs]) destroyPair(pair, false);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
