import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from './metrics.js';

export interface MetricsServer {
  /** The address it listens on, e.g. `http://127.0.0.1:9464`. */
  url: string;
  close(): Promise<void>;
}

/** Splits "host:port" (IPv6 hosts in brackets). */
function parseListen(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  return { host: listen.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(listen.slice(at + 1)) };
}

/** Serves GET /metrics (Prometheus text format) and GET /healthz (200 or 503, with the reason) on `listen`. */
export async function startMetricsServer(metrics: Metrics, listen: string, logger: Logger): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('only GET\n');
      return;
    }
    const fail = (err: unknown) => {
      logger.error({ err: (err as Error).message, path: pathname }, 'metrics request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('internal error\n');
    };
    if (pathname === '/metrics') {
      metrics
        .render()
        .then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text))
        .catch(fail);
    } else if (pathname === '/healthz') {
      try {
        const health = metrics.health();
        res.writeHead(health.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${health.ok ? 'ok' : 'unhealthy'}\n${health.lines.join('\n')}\n`);
      } catch (err) {
        fail(err);
      }
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new ConfigError(`metrics.listen: cannot listen on ${listen}: ${err.code ?? err.message}`, {
          cause: err,
          hint: err.code === 'EADDRINUSE' ? 'choose a free port for metrics.listen, or set it to null' : 'check metrics.listen (a loopback address:port)',
        }),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ url: `${url}/metrics` }, 'metrics listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
