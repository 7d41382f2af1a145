import { describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus, OperationReport } from '../api/v1alpha1/index.ts';
import type { KubeObject } from '../runtime/kube-client.ts';
import { escapeHtml, indexHtml, policyHtml } from './html.ts';
import { StatusPage } from './server.ts';
import { indexView, policyPage } from './view.ts';

const NOW = new Date('2026-12-02T12:00:00Z');
const hostile = '<script>alert(1)</script>"\'&';

function policy(name: string, status: FailoverPolicyStatus): KubeObject {
  return {
    metadata: { name, namespace: 'apps', uid: `uid-${name}` },
    spec: {
      primary: 'region-a',
      standbys: ['region-b'],
      dns: {
        provider: { type: 'Route53', route53: { hostedZoneId: 'Z1' } },
        zone: 'example.com',
        name: 'db.example.com',
      },
      slo: { availabilityTarget: 99.95 },
    },
    status,
  };
}

const failedOver: FailoverPolicyStatus = {
  phase: 'Healthy',
  activePrimary: 'region-b',
  epoch: 3,
  availability: {
    trackedSince: '2026-10-01T00:00:00Z',
    months: [{ month: '2026-12', downSeconds: 42, outages: 1 }],
    days: [{ day: '2026-12-02', downSeconds: 42 }],
    outages: [{ start: '2026-12-02T11:00:00Z', end: '2026-12-02T11:00:42Z', seconds: 42 }],
  },
  history: [
    {
      id: 'failover-e3-1',
      kind: 'Failover',
      trigger: 'Automatic',
      from: 'region-a',
      to: 'region-b',
      epoch: 3,
      result: 'Succeeded',
      startedAt: '2026-12-02T11:00:05Z',
      completedAt: '2026-12-02T11:00:42Z',
      rtoSeconds: 41.5,
      rpoSeconds: 0.4,
      reason: hostile,
      timeline: [
        { at: '2026-12-02T11:00:00Z', event: 'ObserverLostPrimary', detail: hostile },
        { at: '2026-12-02T11:00:42Z', event: 'Completed' },
      ],
    },
  ],
};

describe('the status page', () => {
  it('escapes everything it prints: names, reasons, timeline details', () => {
    expect(escapeHtml(hostile)).toBe('&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;');
    const page = policyHtml(policyPage(policy('orders', failedOver), NOW), NOW.toISOString());
    expect(page).not.toContain('<script>');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toMatch(/<td class="rto">41.5 s<\/td>/);
  });

  it('shows 90 days, the month against its target, and a bounded list of incidents and drills', () => {
    const many: FailoverPolicyStatus = {
      ...failedOver,
      history: Array.from({ length: 20 }, (_, i) => ({
        ...(failedOver.history?.[0] as OperationReport),
        id: `op-${i}`,
      })),
    };
    const view = policyPage(policy('orders', many), NOW);
    expect(view.days).toHaveLength(90);
    expect(view.days.at(-1)).toEqual({ day: '2026-12-02', downSeconds: 42, tracked: true });
    expect(view.incidents).toHaveLength(3);
    expect(view.months[0]).toMatchObject({ month: '2026-12', downSeconds: 42, target: 99.95, met: true });
    const index = indexHtml(indexView([policy('orders', failedOver), policy('billing', {})], NOW));
    expect(index.indexOf('apps/billing')).toBeLessThan(index.indexOf('apps/orders'));
    expect(index).toContain('href="policies/apps/orders"');
  });

  it('renders a page once for a flood of requests, refuses unknown paths, and keeps a bounded cache', () => {
    let lists = 0;
    let now = NOW;
    const objects = [policy('orders', failedOver)];
    const page = new StatusPage(
      {
        policies: () => {
          lists++;
          return objects;
        },
        policy: (ns, name) => objects.find((o) => o.metadata.namespace === ns && o.metadata.name === name),
      },
      { now: () => now },
    );
    for (let i = 0; i < 1000; i++) expect(page.respond('/').status).toBe(200);
    expect(lists).toBe(1);
    now = new Date(NOW.getTime() + 6_000);
    page.respond('/');
    expect(lists).toBe(2);
    expect(page.respond('/policies/apps/orders.json').type).toBe('application/json');
    expect(page.respond('/policies/apps/nope').status).toBe(404);
    expect(page.respond('/policies/apps/%E0%A4%A').status).toBe(404);
    expect(page.respond('/policies/../../etc').status).toBe(404);
    for (let i = 0; i < 500; i++) page.respond(`/junk/${i}`);
    expect((page as unknown as { cache: Map<string, unknown> }).cache.size).toBeLessThanOrEqual(64);
  });
});
