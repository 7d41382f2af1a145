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

/**
 * The whole registry, or only the named families with `?name[]=` as the Prometheus Python client
 * allows: a tool that watches one gauge need not make the operator format every policy's series.
 */
async function exposition(metrics: Metrics, names: string[]): Promise<string> {
  const { registry } = metrics;
  if (names.length === 0) return registry.metrics();
  // prom-client's default metrics set some families from a sibling's collect (the heap's total sets
  // its used): collect them all first, which is cheap, so a family asked for alone is current.
  await Promise.all(
    registry
      .getMetricsAsArray()
      .filter((m) => m.name.startsWith('nodejs_') || m.name.startsWith('process_'))
      .map((m) => registry.getSingleMetric(m.name)?.get()),
  );
  const families = names.filter((n) => registry.getSingleMetric(n));
  const text = await Promise.all(families.map((n) => registry.getSingleMetricAsString(n)));
  return `${text.join('\n\n')}\n`;
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
      const url = new URL(req.url ?? '/', 'http://operator');
      if (url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(await exposition(metrics, url.searchParams.getAll('name[]')));
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
