import * as net from 'node:net';

/**
 * Returns a TCP port that was free on 127.0.0.1 a moment ago. There is a small
 * race until the caller binds it; the server starters retry on "address in use".
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (err) => reject(new Error(`freePort: could not bind 127.0.0.1:0 (${err.message}); is the loopback interface up?`)));
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}
