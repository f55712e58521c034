import * as net from 'node:net';

/**
 * A TCP proxy in front of a MySQL/MariaDB server that reads the client's
 * commands (plain-text protocol only, no TLS), for faults aimed at one
 * connection at one step:
 *
 *   const proxy = await startMysqlHangProxy({ port: mariadb.port });
 *   const held = proxy.holdNext(/@master_heartbeat_period/);  // armed once
 *   await held.held;      // a connection sent such a query: from that command on, nothing crosses
 *                         // either way and nothing is closed (a server that stopped answering)
 *   await held.closed;    // the client gave the connection up (closed its socket)
 *   proxy.reset(/CURRENT_USER\(\) AS account/);  // drops (RST) the connections that sent such a query
 *
 * Commands are told apart by the packet header: sequence id 0 starts a
 * command; a COM_QUERY (0x03) carries its SQL text after the command byte.
 */
export interface MysqlHangProxy {
  readonly host: string;
  readonly port: number;
  /** Connections open through the proxy. */
  readonly connectionCount: number;
  /** Holds the next connection whose client sends a query matching `sql` (once). */
  holdNext(sql: RegExp): HeldConnection;
  /** Drops, with a reset, every open connection that has sent a query matching `sql`; returns how many. */
  reset(sql: RegExp): number;
  close(): Promise<void>;
}

export interface HeldConnection {
  /** Resolves with the query that got the connection held. */
  readonly held: Promise<string>;
  /** Resolves once the client closed the held connection (the proxy never does, until close()). */
  readonly closed: Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  queries: string[];
  held: boolean;
  /** Client bytes not yet parsed into whole packets. */
  pending: Buffer;
}

const COM_QUERY = 0x03;

export async function startMysqlHangProxy(options: { port: number; host?: string }): Promise<MysqlHangProxy> {
  const pairs = new Set<Pair>();
  const holds: Array<{ sql: RegExp; onHeld(query: string, pair: Pair): void }> = [];

  const drop = (pair: Pair, hard: boolean) => {
    for (const socket of [pair.client, pair.upstream]) {
      if (socket.destroyed) continue;
      if (hard && !socket.connecting) socket.resetAndDestroy();
      else socket.destroy();
    }
    pairs.delete(pair);
  };

  /** Forwards the client's bytes packet by packet, until a held query: from there on nothing is forwarded. */
  const fromClient = (pair: Pair, data: Buffer) => {
    if (pair.held) return;
    pair.pending = pair.pending.length ? Buffer.concat([pair.pending, data]) : data;
    let forwardUpTo = 0;
    while (pair.pending.length - forwardUpTo >= 4) {
      const length = pair.pending.readUIntLE(forwardUpTo, 3);
      const end = forwardUpTo + 4 + length;
      if (end > pair.pending.length) break;
      const sequence = pair.pending[forwardUpTo + 3];
      if (sequence === 0 && length > 0 && pair.pending[forwardUpTo + 4] === COM_QUERY) {
        const query = pair.pending.subarray(forwardUpTo + 5, end).toString('utf8');
        pair.queries.push(query);
        if (pair.queries.length > 100) pair.queries.shift();
        const hold = holds.find((h) => h.sql.test(query));
        if (hold) {
          holds.splice(holds.indexOf(hold), 1);
          if (forwardUpTo > 0) pair.upstream.write(pair.pending.subarray(0, forwardUpTo));
          pair.held = true;
          pair.pending = Buffer.alloc(0);
          pair.upstream.pause(); // the server's later bytes (none are asked for) stay unread
          hold.onHeld(query, pair);
          return;
        }
      }
      forwardUpTo = end;
    }
    if (forwardUpTo > 0) pair.upstream.write(pair.pending.subarray(0, forwardUpTo));
    pair.pending = pair.pending.subarray(forwardUpTo);
  };

  const server = net.createServer((client) => {
    const upstream = net.connect({ host: options.host ?? '127.0.0.1', port: options.port });
    const pair: Pair = { client, upstream, queries: [], held: false, pending: Buffer.alloc(0) };
    pairs.add(pair);
    client.on('data', (data: Buffer) => fromClient(pair, data));
    upstream.on('data', (data) => {
      if (!pair.held) client.write(data);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => drop(pair, false));
      socket.on('close', () => drop(pair, false));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });

  return {
    host: '127.0.0.1',
    port: (server.address() as net.AddressInfo).port,
    get connectionCount() {
      return pairs.size;
    },
    holdNext(sql) {
      let onClosed!: () => void;
      const closed = new Promise<void>((resolve) => (onClosed = resolve));
      const held = new Promise<string>((resolve) =>
        holds.push({
          sql,
          onHeld: (query, pair) => {
            pair.client.once('close', onClosed);
            resolve(query);
          },
        }),
      );
      return { held, closed };
    },
    reset(sql) {
      const matching = [...pairs].filter((p) => p.queries.some((q) => sql.test(q)));
      matching.forEach((p) => drop(p, true));
      return matching.length;
    },
    close() {
      for (const pair of [...pairs]) drop(pair, false);
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
