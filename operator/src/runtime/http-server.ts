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
async function exposition(metrics: Metrics, asked: string[]): Promise<string> {
  const { registry } = metrics;
  if (asked.length === 0) return registry.metrics();
  const names = [...new Set(asked)].filter((n) => registry.getSingleMetric(n));
  // prom-client sets some default families from a sibling's collect (the heap's total sets its
  // used): run that sibling first. Only that one: the event-loop lag's collect resets its
  // histogram, which a real scrape would then miss.
  const siblings = new Set(names.flatMap((n) => SET_BY.find(([prefix]) => n.startsWith(prefix))?.[1] ?? []));
  for (const s of siblings) if (!names.includes(s)) await registry.getSingleMetric(s)?.get();
  const text = await Promise.all(names.map((n) => registry.getSingleMetricAsString(n)));
  return `${text.join('\n\n')}\n`;
}

/** Default families and the one whose collect sets them (prom-client's lib/metrics). */
const SET_BY: [prefix: string, collector: string][] = [
  ['nodejs_heap_size_', 'nodejs_heap_size_total_bytes'],
  ['nodejs_external_memory_bytes', 'nodejs_heap_size_total_bytes'],
  ['nodejs_heap_space_size_', 'nodejs_heap_space_size_total_bytes'],
  ['process_cpu_', 'process_cpu_user_seconds_total'],
  ['process_virtual_memory_bytes', 'process_resident_memory_bytes'],
  ['process_heap_bytes', 'process_resident_memory_bytes'],
];

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
