/** The operator's HTTP endpoint: Prometheus metrics and the two Kubernetes probes. */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.ts';
import { writesOwnText } from './series-table.ts';

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
  const names = [...new Set(asked)].filter((n) => registry.getSingleMetric(n));
  // prom-client sets some default families from a sibling's collect (the heap's total sets its
  // used): run that sibling first. Only that one: the event-loop lag's collect resets its
  // histogram, which a real scrape would then miss.
  const siblings = new Set(names.flatMap((n) => SET_BY.find(([prefix]) => n.startsWith(prefix))?.[1] ?? []));
  for (const s of siblings) if (!names.includes(s)) await registry.getSingleMetric(s)?.get();
  const text = await Promise.all(names.map((n) => registry.getSingleMetricAsString(n)));
  return `${text.join('\n\n')}\n`;
}

/**
 * The whole registry, written as it is made: what prom-client's `metrics()` would return, with the
 * per-object tables' families written line by line (series-table.ts) in pieces, each handed to
 * the socket before the next is made, instead of one string of every sample.
 */
export async function writeExposition(metrics: Metrics, res: ServerResponse): Promise<void> {
  const { registry } = metrics;
  const families = registry.getMetricsAsArray();
  // The other families are small; prom-client formats them together, as its metrics() does (so
  // each sees the others' collects exactly as a plain scrape would).
  const formatted = await Promise.all(
    families.map((m) => (writesOwnText(m) ? undefined : registry.getSingleMetricAsString(m.name))),
  );
  for (const [i, family] of families.entries()) {
    const pieces = writesOwnText(family) ? family.text() : [formatted[i] as string];
    let first = i > 0;
    for (const piece of pieces) {
      // The scraper went (its timeout): stop making text nobody reads.
      if (res.destroyed) return;
      await send(res, first ? `\n\n${piece}` : piece);
      first = false;
    }
  }
  await send(res, '\n');
}

/** Writes, and waits for the socket to take it when its buffer is full (or the scraper went). */
function send(res: ServerResponse, text: string): Promise<void> | undefined {
  // A destroyed response takes nothing and will not emit close again: do not wait for it.
  if (res.destroyed || res.write(text)) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
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
        const asked = url.searchParams.getAll('name[]');
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        if (asked.length > 0) res.end(await exposition(metrics, asked));
        else {
          await writeExposition(metrics, res);
          res.end();
        }
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
    })().catch(() => (res.headersSent ? res.destroy() : res.writeHead(500).end()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}
