/** The operator's HTTP endpoint: Prometheus metrics and the two Kubernetes probes. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';

export interface ProbeState {
  /** Liveness: the process can serve and is not wedged. */
  healthy(): boolean;
  /** Readiness: caches are synced; reasons when not. */
  ready(): { ok: boolean; reasons: string[] };
}

export async function startHttpServer(
  address: string,
  metrics: Metrics,
  probes: ProbeState,
): Promise<{ server: Server; port: number }> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')) || '0.0.0.0',
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(await metrics.registry.metrics());
      } else if (req.url === '/healthz') {
        const ok = probes.healthy();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ok ? 'ok\n' : 'unhealthy\n');
      } else if (req.url === '/readyz') {
        const { ok, reasons } = probes.ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ok ? 'ok\n' : `not ready: ${reasons.join('; ')}\n`);
      } else {
        res.writeHead(404).end();
      }
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}
