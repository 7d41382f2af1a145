/**
 * Benchmark: the evidence (issue 18). A year of weekly drills run through the operator's own
 * functions (each drill's two switchovers step by step, filed as the reconciler files them):
 * how big status stays and how much the FailoverReport objects take. Then 500 policies with that
 * history behind the status page, served over HTTP: how long the index and a policy's page take.
 *
 *   make bench            (all benchmarks)
 *   BENCH_POLICIES=500 node bench/evidence.ts
 */
import type { DrillReport, FailoverPolicyStatus } from '../operator/src/api/v1alpha1/index.ts';
import { failoverPolicySpec } from '../operator/src/api/v1alpha1/index.ts';
import { nextLedger } from '../operator/src/controllers/failover-policy/availability.ts';
import { advance, finish, newOperation } from '../operator/src/controllers/failover-policy/operation.ts';
import {
  markReported,
  reportObject,
  reportsToFile,
} from '../operator/src/controllers/failover-policy/reports.ts';
import type { KubeObject } from '../operator/src/runtime/kube-client.ts';
import { StatusPage, startStatusPage } from '../operator/src/status-page/server.ts';

const POLICIES = Number(process.env.BENCH_POLICIES ?? 500);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const say = (s: string) => process.stdout.write(`[bench evidence] ${s}\n`);
const WEEK = 7 * 86_400_000;
const start = new Date('2026-01-05T06:00:00Z');

const spec = failoverPolicySpec.parse({
  primary: 'region-a',
  standbys: ['region-b'],
  dns: {
    provider: { type: 'Route53', route53: { hostedZoneId: 'Z1' } },
    zone: 'example.com',
    name: 'db.example.com',
  },
  drills: { schedule: '0 6 * * 1' },
  canary: { mode: 'Always' },
  slo: { availabilityTarget: 99.95 },
});

/** One switchover leg, step by step as the reconciler advances it, ended at `at + 4 s`. */
function leg(
  status: FailoverPolicyStatus,
  from: string,
  to: string,
  epoch: number,
  at: Date,
): FailoverPolicyStatus {
  const t = (s: number) => new Date(at.getTime() + s * 1000);
  let op = newOperation({ kind: 'Switchover', trigger: 'Drill', from, to, epoch, reason: 'drill', now: at });
  for (let s = 1; s <= 6; s++)
    op = advance(op, t(s * 0.6), s === 5 ? { dnsChangedAt: t(3).toISOString() } : {});
  return finish({ ...status, activePrimary: to, epoch }, op, t(4));
}

/** A year of Monday drills on one policy, filed as they finish; returns status and the objects made. */
function yearOfDrills(): { status: FailoverPolicyStatus; reports: KubeObject[] } {
  let status: FailoverPolicyStatus = { activePrimary: 'region-a', epoch: 0 };
  status = { ...status, availability: nextLedger(undefined, status, start) };
  const policy: KubeObject = { metadata: { name: 'orders', namespace: 'apps', uid: 'uid-orders' } };
  const reports: KubeObject[] = [];
  for (let w = 0; w < 52; w++) {
    const at = new Date(start.getTime() + w * WEEK);
    const epoch = status.epoch ?? 0;
    status = leg(status, 'region-a', 'region-b', epoch + 1, at);
    status = leg(status, 'region-b', 'region-a', epoch + 2, new Date(at.getTime() + 300_000));
    const drill: DrillReport = {
      id: `drill-${at.toISOString().replace(/\D/g, '').slice(0, 14)}`,
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'region-a',
      to: 'region-b',
      epoch: epoch + 2,
      result: 'Succeeded',
      startedAt: at.toISOString(),
      completedAt: new Date(at.getTime() + 305_000).toISOString(),
      rtoSeconds: 2.4,
      lostWrites: 0,
      out: {
        operationId: status.history?.[1]?.id ?? '',
        measuredBy: 'Canary',
        rtoSeconds: 2.4,
        rpoTransactions: 0,
        acknowledged: 40,
        writesStoppedAt: new Date(at.getTime() + 1000).toISOString(),
        writesResumedAt: new Date(at.getTime() + 3400).toISOString(),
      },
    };
    status = { ...status, drills: [drill, ...(status.drills ?? [])].slice(0, 10) };
    const files = reportsToFile('orders', spec, status, new Date(at.getTime() + 600_000));
    reports.push(...files.map((f) => reportObject(policy, f)));
    status = markReported(status, files);
  }
  // A real outage, for the ledger.
  const down = new Date(start.getTime() + 200 * 86_400_000);
  status = {
    ...status,
    availability: nextLedger(status.availability, { ...status, primaryDownSince: down.toISOString() }, down),
  };
  status = {
    ...status,
    availability: nextLedger(status.availability, status, new Date(down.getTime() + 42_000)),
  };
  return { status, reports };
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const { status, reports } = yearOfDrills();
const statusBytes = JSON.stringify(status).length;
const reportBytes = reports.map((r) => JSON.stringify(r).length);
const total = reportBytes.reduce((a, b) => a + b, 0);
say(
  `a year of weekly drills (52 drills, 104 switchovers): status ${kib(statusBytes)} (history ${status.history?.length}, drills ${status.drills?.length}, timelines kept for ${status.history?.filter((r) => r.timeline).length}); ${reports.length} FailoverReport objects, ${kib(total)} in all (${kib(total / reports.length)} each on average, largest ${kib(Math.max(...reportBytes))}), within spec.reports.keep (${spec.reports.keep})`,
);

// 500 policies behind the status page, each with that year.
const policies: KubeObject[] = Array.from({ length: POLICIES }, (_, i) => ({
  metadata: { name: `policy-${String(i).padStart(4, '0')}`, namespace: `team-${i % 20}`, uid: `uid-${i}` },
  spec,
  status: { ...status, phase: 'Healthy' },
}));
const byKey = new Map(policies.map((p) => [`${p.metadata.namespace}/${p.metadata.name}`, p]));
let now = new Date(start.getTime() + 360 * 86_400_000);
const page = new StatusPage(
  { policies: () => policies, policy: (ns, name) => byKey.get(`${ns}/${name}`) },
  { now: () => now },
);
const { server, port } = await startStatusPage('127.0.0.1:0', page);

async function timed(path: string, fresh: boolean): Promise<{ ms: number; bytes: number }> {
  // A fresh render each time unless asked for the cached one: the clock moves past the 5 s.
  if (fresh) now = new Date(now.getTime() + 6_000);
  const t = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const body = await res.text();
  return { ms: performance.now() - t, bytes: body.length };
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)] ?? 0;
for (const [what, path] of [
  ['index (every policy)', '/'],
  ['index JSON', '/status.json'],
  ['one policy', '/policies/team-7/policy-0007'],
  ['one policy JSON', '/policies/team-7/policy-0007.json'],
] as const) {
  const renders = [];
  for (let i = 0; i < Math.max(20, REQUESTS / 10); i++) renders.push(await timed(path, true));
  const cached = [];
  for (let i = 0; i < REQUESTS; i++) cached.push(await timed(path, false));
  say(
    `${what}, ${POLICIES} policies: rendered p50 ${pct(
      renders.map((r) => r.ms),
      0.5,
    ).toFixed(1)} ms, p99 ${pct(
      renders.map((r) => r.ms),
      0.99,
    ).toFixed(1)} ms; served again from the 5 s cache p50 ${pct(
      cached.map((r) => r.ms),
      0.5,
    ).toFixed(2)} ms; ${kib(renders[0]?.bytes ?? 0)}`,
  );
}
server.close();
