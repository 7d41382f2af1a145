/**
 * The status page server (--status-page-address; off unless given): a read-only HTML page and
 * the same data as JSON, on a port of its own so it can be exposed without /metrics.
 *
 *   GET /                              every policy, one line each
 *   GET /status.json
 *   GET /policies/NAMESPACE/NAME       one policy: state, 90-day bar, months, incidents, drills
 *   GET /policies/NAMESPACE/NAME.json
 *
 * Everything comes from the operator's informer cache: a request makes no API call and does work
 * in proportion to what its page shows. A rendered page is kept a few seconds, so a flood of
 * requests renders it once. Nothing is writable: any other method is refused.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../runtime/clock.ts';
import type { KubeObject } from '../runtime/kube-client.ts';
import { indexHtml, policyHtml } from './html.ts';
import { indexView, policyPage } from './view.ts';

export interface StatusSource {
  policies(): KubeObject[];
  policy(namespace: string, name: string): KubeObject | undefined;
}

/** How long a rendered page is served again before it is rendered anew. */
const FRESH_MS = 5_000;
/** Rendered pages kept at once (the index and the policies looked at last). */
const KEPT = 64;
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

const HEADERS = {
  // No script at all, nothing from elsewhere; the page is only read.
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': `public, max-age=${FRESH_MS / 1000}`,
};

interface Rendered {
  at: number;
  status: number;
  type: string;
  body: string;
}

export class StatusPage {
  private readonly source: StatusSource;
  private readonly clock: Clock;
  private readonly cache = new Map<string, Rendered>();

  constructor(source: StatusSource, clock: Clock) {
    this.source = source;
    this.clock = clock;
  }

  /** The response for a path: rendered, or kept from a few seconds ago. */
  respond(path: string): Rendered {
    const now = this.clock.now();
    const kept = this.cache.get(path);
    if (kept && now.getTime() - kept.at < FRESH_MS) return kept;
    const fresh = { at: now.getTime(), ...this.render(path, now) };
    this.cache.delete(path);
    this.cache.set(path, fresh);
    // Oldest first in insertion order: a bounded cache whatever paths are asked for.
    while (this.cache.size > KEPT) this.cache.delete(this.cache.keys().next().value as string);
    return fresh;
  }

  private render(path: string, now: Date): Omit<Rendered, 'at'> {
    if (path === '/' || path === '/index.html')
      return html(indexHtml(indexView(this.source.policies(), now)));
    if (path === '/status.json') return json(indexView(this.source.policies(), now));
    const m = /^\/policies\/([^/]+)\/([^/]+?)(\.json)?$/.exec(path);
    const [namespace, name] = [m?.[1], m?.[2]].map((s) => (s ? safeDecode(s) : undefined));
    if (!m || !namespace || !name || !NAME.test(namespace) || !NAME.test(name)) return notFound();
    const object = this.source.policy(namespace, name);
    if (!object) return notFound();
    const view = policyPage(object, now);
    return m[3]
      ? json({ generatedAt: now.toISOString(), policy: view })
      : html(policyHtml(view, now.toISOString()));
  }
}

function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

const html = (body: string) => ({ status: 200, type: 'text/html; charset=utf-8', body });
const json = (value: unknown) => ({
  status: 200,
  type: 'application/json',
  body: `${JSON.stringify(value, null, 2)}\n`,
});
const notFound = () => ({ status: 404, type: 'text/plain; charset=utf-8', body: 'not found\n' });

export async function startStatusPage(
  address: string,
  page: StatusPage,
): Promise<{ server: Server; port: number }> {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at) || '0.0.0.0';
  const port = Number(address.slice(at + 1));
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', ...HEADERS }).end();
      return;
    }
    try {
      const path = new URL(req.url ?? '/', 'http://status').pathname;
      const r = page.respond(path);
      res.writeHead(r.status, { 'content-type': r.type, ...HEADERS });
      res.end(req.method === 'HEAD' ? undefined : r.body);
    } catch {
      res.writeHead(500, HEADERS).end();
    }
  });
  // A slow client holds nothing for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}
