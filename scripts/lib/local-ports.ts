import net from 'node:net';

/** The loopback address every spawned redis-server binds to and every port is picked on. */
export const HOST = '127.0.0.1';

const issuedPorts = new Set<number>();

function listenOnPortZero(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: HOST, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** A currently free TCP port on 127.0.0.1 (never the same port twice within this process). */
export async function findFreePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnPortZero();
    if (!issuedPorts.has(port)) {
      issuedPorts.add(port);
      return port;
    }
  }
  throw new Error('findFreePort: could not find a port that was not already handed out');
}
