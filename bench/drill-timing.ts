/**
 * Benchmark: drills out and back, back to back, with every part real (PostgreSQL pair, control
 * plane, BIND, observers, the operator, a database agent beside each server).
 *
 * BENCH_DRILL_RUNS drills (default 5) on one stack, each requested through spec.drillRequest and
 * held 2 s on region B, while an application writes ~50 rows/s through the DNS name and a sampler
 * asks both databases five times a second which takes writes. Per drill and as median/min/max:
 * the canary's RTO out and back (last write the old primary acknowledged → first the new one
 * did), its RPO (acknowledged canary rows missing after each switch), the DNS verification of
 * each leg, and the drill's duration (request → report filed). At the end: the application's
 * acknowledged writes missing on region A, and samples with two writable databases (both must be 0).
 */
import type { DrillMeasure, DrillReport, FailoverPolicyStatus } from '../operator/src/api/v1alpha1/index.ts';
import { failoverPolicyType } from '../operator/src/controllers/resources.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { FailoverStack } from '../test/harness/failover-stack.ts';
import { installSignalCleanup } from '../test/harness/processes.ts';
import { waitFor } from '../test/harness/wait.ts';
import { type DnsWriteLoad, WriterSampler } from '../test/harness/writers.ts';

const RUNS = Number(process.env.BENCH_DRILL_RUNS ?? 5);
const HOLD_SECONDS = 2;
const WRITES_PER_SECOND = 50;
const say = (s: string) => process.stdout.write(`[bench drill] ${s}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const figures = (xs: number[]) =>
  xs.length === 0
    ? 'no measurement'
    : `median ${median(xs).toFixed(2)} s, min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}  all: ${xs.map((x) => x.toFixed(2)).join(' ')}`;
const fmt = (x: number | undefined) => (x === undefined ? '?' : x.toFixed(2));

const cp = await ControlPlane.start({ name: 'bench-drill' });
let stack: FailoverStack | undefined;
let load: DnsWriteLoad | undefined;
let sampler: WriterSampler | undefined;
installSignalCleanup(async () => {
  await load?.stop();
  await sampler?.stop();
  await stack?.stop();
  await cp.stop();
});

interface DrillFigures {
  report: DrillReport;
  /** Wall clock from writing the request to the report in status. */
  seconds: number;
  /** DNS verification of the switchover back, from its history entry. */
  backDnsSeconds: number | undefined;
}

/** A leg's RTO and RPO, only when the canary saw both ends of it. */
const canary = (leg: DrillMeasure | undefined) => (leg?.measuredBy === 'Canary' ? leg : undefined);

/** One drill on request, from the request to the report in status. */
async function drill(s: FailoverStack, run: number): Promise<DrillFigures> {
  // A drill starts only from a primary with a replicating standby, as the last one left it.
  await s.waitForPolicy(
    (st) => st.conditions?.find((c) => c.type === 'Redundant' && c.status === 'True'),
    'both regions replicating',
  );
  const id = `bench-drill-${run}`;
  const t = performance.now();
  const wallAt = Date.now();
  await s.requestDrill({ id, action: 'Run' });
  const status = await s.waitForPolicy(
    (st: FailoverPolicyStatus) => (!st.drill && st.drills?.[0]?.requestId === id ? st : undefined),
    `drill ${run} out and back`,
    180_000,
  );
  const seconds = (performance.now() - t) / 1000;
  // The canary's RTO is a difference of wall-clock times: a clock step during the drill skews it.
  const clockStep = (Date.now() - wallAt) / 1000 - seconds;
  const report = status.drills?.[0] as DrillReport;
  const backDnsSeconds = status.history?.find((h) => h.id === report.back?.operationId)?.dnsVerifySeconds;
  const out = canary(report.out);
  const back = canary(report.back);
  say(
    `drill ${run} ${report.result}: out to ${report.to} RTO ${out ? `${fmt(out.rtoSeconds)} s, RPO ${out.rpoTransactions} of ${out.acknowledged}` : `not measured by the canary (${report.out?.message ?? 'no out leg'})`}; back RTO ${back ? `${fmt(back.rtoSeconds)} s, RPO ${back.rpoTransactions} of ${back.acknowledged}` : `not measured by the canary (${report.back?.message ?? 'no back leg'})`}; DNS verified out ${fmt(report.dnsVerifySeconds)} s, back ${fmt(backDnsSeconds)} s; request → report ${seconds.toFixed(2)} s${report.result === 'Succeeded' ? '' : ` (${report.reason ?? ''})`}`,
  );
  if (Math.abs(clockStep) > 0.5)
    say(
      `  the wall clock moved ${clockStep.toFixed(2)} s against the monotonic one during drill ${run}: its canary RTOs are off by up to that`,
    );
  const longest = Math.max(out?.rtoSeconds ?? 0, back?.rtoSeconds ?? 0);
  if (longest > seconds)
    say(
      `  inconsistent: a leg's RTO (${longest.toFixed(2)} s) exceeds the whole drill (${seconds.toFixed(2)} s); out ${out?.writesStoppedAt} → ${out?.writesResumedAt}, back ${back?.writesStoppedAt} → ${back?.writesResumedAt}`,
    );
  return { report, seconds, backDnsSeconds };
}

try {
  stack = await FailoverStack.start({
    name: 'bdr',
    kubeConfig: cp.kubeConfig(),
    kubeconfigPath: cp.kubeconfigPath,
    namespace: 'bench-drill',
    // The agents demote each old primary into a standby; pg_rewind needs these if one must rejoin.
    pgSettings: { wal_log_hints: 'on', full_page_writes: 'on' },
  });
  const s = stack;
  await s.waitUntilHealthy();
  await Promise.all([s.startAgent('region-a'), s.startAgent('region-b')]);
  // On request only: a schedule that does not fire during the bench.
  await s.client.mergePatch(failoverPolicyType, s.options.namespace, 'orders', {
    spec: { drills: { schedule: '0 3 1 1 *', holdSeconds: HOLD_SECONDS, abortIfLagSecondsAbove: 5 } },
  });
  await s.waitForAgentReports();
  sampler = new WriterSampler(s);
  load = await s.startDnsWriteLoad(WRITES_PER_SECOND);
  const writes = load;
  await waitFor(() => writes.acknowledged.length > WRITES_PER_SECOND || undefined, {
    description: `${WRITES_PER_SECOND} acknowledged application writes`,
  });

  const drills: DrillFigures[] = [];
  for (let run = 1; run <= RUNS; run++) drills.push(await drill(s, run));

  // The last drill must have left writes flowing through the name to region A.
  const after = writes.acknowledged.length;
  await waitFor(() => writes.acknowledged.length > after + WRITES_PER_SECOND || undefined, {
    description: 'application writes through DNS after the last drill',
  });
  const written = await writes.stop();
  load = undefined;
  await sampler.stop();
  const lost = await writes.missingOn('primary');
  const writable = await s.writablePrimaries();

  const outs = drills.map((d) => canary(d.report.out)).filter((l) => l !== undefined);
  const backs = drills.map((d) => canary(d.report.back)).filter((l) => l !== undefined);
  const rto = (legs: DrillMeasure[]) =>
    legs.flatMap((l) => (l.rtoSeconds === undefined ? [] : [l.rtoSeconds]));
  const rpo = (legs: DrillMeasure[]) =>
    `${legs.reduce((n, l) => n + (l.rpoTransactions ?? 0), 0)} of ${legs.reduce((n, l) => n + (l.acknowledged ?? 0), 0)} canary rows lost`;
  const succeeded = drills.filter((d) => d.report.result === 'Succeeded').length;
  process.stdout.write(
    [
      '',
      `  drills out to region B and back, held ${HOLD_SECONDS} s, ${RUNS} back to back under ${WRITES_PER_SECOND} writes/s through DNS: ${succeeded} of ${RUNS} Succeeded`,
      `    out RTO (canary, last write acknowledged by A → first by B):  ${figures(rto(outs))}`,
      `    back RTO (canary, last write acknowledged by B → first by A): ${figures(rto(backs))}`,
      `    RPO: out ${rpo(outs)}; back ${rpo(backs)} (legs measured by the canary: out ${outs.length}, back ${backs.length} of ${RUNS})`,
      `    DNS verified, out:  ${figures(drills.flatMap((d) => (d.report.dnsVerifySeconds === undefined ? [] : [d.report.dnsVerifySeconds])))}`,
      `    DNS verified, back: ${figures(drills.flatMap((d) => (d.backDnsSeconds === undefined ? [] : [d.backDnsSeconds])))}`,
      `    drill, request → report filed: ${figures(drills.map((d) => d.seconds))}`,
      `    application writes lost: ${lost} of ${written.acknowledged.length} acknowledged (${written.failed} attempts failed, not acknowledged); samples with two writable databases: ${sampler.twoWriters} of ${sampler.samples.length}; writable at the end: ${writable.join(', ')}`,
      '',
    ].join('\n'),
  );
  const canaryLost = [...outs, ...backs].reduce((n, l) => n + (l.rpoTransactions ?? 0), 0);
  if (
    succeeded !== RUNS ||
    lost > 0 ||
    canaryLost > 0 ||
    sampler.twoWriters > 0 ||
    writable.join() !== 'primary'
  )
    process.exitCode = 1;
} finally {
  await load?.stop();
  await sampler?.stop();
  await stack?.stop();
  await cp.stop();
}
