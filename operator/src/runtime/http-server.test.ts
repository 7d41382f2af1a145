import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startHttpServer, writeExposition } from './http-server.ts';
import { Metrics } from './metrics.ts';

describe('the HTTP endpoint', () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  const start = async (processMetrics = false) => {
    const metrics = new Metrics({ processMetrics });
    metrics.policyReady.set({ namespace: 'ns', policy: 'a' }, 1);
    metrics.epoch.set({ namespace: 'ns', policy: 'a' }, 3);
    const probes = { healthy: () => true, ready: () => ({ ok: true, reasons: [] }) };
    const started = await startHttpServer('127.0.0.1:0', metrics, probes);
    server = started.server;
    return (path: string) => fetch(`http://127.0.0.1:${started.port}${path}`).then((r) => r.text());
  };

  it('serves every family, or only those named with name[]', async () => {
    const get = await start();
    const all = await get('/metrics');
    expect(all).toContain('failover_policy_ready{namespace="ns",policy="a"} 1');
    expect(all).toContain('failover_epoch{namespace="ns",policy="a"} 3');
    const one = await get(
      '/metrics?name[]=failover_policy_ready&name[]=no_such_family&name[]=failover_policy_ready',
    );
    expect(one).toContain('failover_policy_ready{namespace="ns",policy="a"} 1');
    expect(one.match(/# TYPE failover_policy_ready/g)).toHaveLength(1);
    expect(one).not.toContain('failover_epoch');
    expect(await get('/metrics?name[]=no_such_family')).toBe('\n');
  });

  it('writes a full scrape as prom-client formats it, the per-object families line by line in pieces', async () => {
    const metrics = new Metrics({ processMetrics: false });
    // Enough objects for several pieces of a family, and a label value prom-client must escape.
    for (let i = 0; i < 3_000; i++) {
      metrics.policyReady.set({ namespace: 'ns', policy: `policy-${i}` }, i % 2);
      metrics.epoch.set({ namespace: 'ns', policy: `policy-${i}` }, i);
    }
    metrics.policyReady.set({ namespace: 'ns', policy: 'odd"name\\with\nbreaks' }, 1);
    const probes = { healthy: () => true, ready: () => ({ ok: true, reasons: [] }) };
    const started = await startHttpServer('127.0.0.1:0', metrics, probes);
    server = started.server;
    const served = await fetch(`http://127.0.0.1:${started.port}/metrics`).then((r) => r.text());
    expect(served).toContain('failover_policy_ready{namespace="ns",policy="odd\\"name\\\\with\\nbreaks"} 1');
    expect(served.length).toBeGreaterThan(200_000);
    expect(served).toBe(await metrics.registry.metrics());
  });

  it('stops writing a scrape whose scraper went mid-way, and finishes', async () => {
    const metrics = new Metrics({ processMetrics: false });
    for (let i = 0; i < 100_000; i++) metrics.policyReady.set({ namespace: 'ns', policy: `policy-${i}` }, 1);
    let finished = false;
    server = createServer((_req, res) => {
      res.writeHead(200);
      void writeExposition(metrics, res).then(() => {
        finished = true;
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n');
    // Read the first bytes, then go while the server is still writing (its buffer full).
    await new Promise((resolve) => socket.once('data', resolve));
    socket.destroy();
    const deadline = Date.now() + 10_000;
    while (!finished && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(finished).toBe(true);
  });

  it("serves a default metric that a sibling's collect sets, current when asked for alone", async () => {
    const get = await start(true);
    const used = /^nodejs_heap_size_used_bytes (\d+)$/m.exec(
      await get('/metrics?name[]=nodejs_heap_size_used_bytes'),
    );
    expect(Number(used?.[1])).toBeGreaterThan(0);
  });
});
