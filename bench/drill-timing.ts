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
 *
 * Then BENCH_ISOLATED_RUNS isolated drills (default 5) on the same stack, under the same load, each
 * requested with mode Isolated: region B copied beside itself and the copy promoted on a spare port,
 * written to through the drill record, then removed. Per drill and as median/min/max: the drill's
 * duration, the copy (time and size), its promotion, its freshness, the drill record's DNS
 * verification, and the canary rows the copy acknowledged; each must be Succeeded and cleaned up,
 * and production must not move (epoch, active primary, history and the record's answer unchanged).
 * BENCH_DRILL_RUNS=0 runs only the isolated drills; BENCH_ISOLATED_RUNS=0 only the round trips.
 */
import type {
  DrillMeasure,
  DrillReport,
  FailoverPolicyStatus,
  IsolatedDrillReport,
} from '../operator/src/api/v1alpha1/index.ts';
import { failoverPolicyType } from '../operator/src/controllers/resources.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { FailoverStack } from '../test/harness/failover-stack.ts';
import { freePort } from '../test/harness/ports.ts';
import { installSignalCleanup } from '../test/harness/processes.ts';
import { waitFor } from '../test/harness/wait.ts';
import { type DnsWriteLoad, WriterSampler } from '../test/harness/writers.ts';
import { median } from './process-stats.ts';

const RUNS = Number(process.env.BENCH_DRILL_RUNS ?? 5);
const ISOLATED_RUNS = Number(process.env.BENCH_ISOLATED_RUNS ?? 5);
const MIN_CANARY_WRITES = 20;
const HOLD_SECONDS = 2;
const WRITES_PER_SECOND = 50;
const say = (s: string) => process.stdout.write(`[bench drill] ${s}\n`);
const figures = (xs: number[]) =>
  xs.length === 0
    ? 'no measurement'
    : `median ${median(xs).toFixed(2)} s, min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}  all: ${xs.map((x) => x.toFixed(2)).join(' ')}`;
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const sizes = (xs: number[]) =>
  xs.length === 0
    ? 'no measurement'
    : `median ${mib(median(xs))} MiB, min ${mib(Math.min(...xs))}, max ${mib(Math.max(...xs))}  all: ${xs.map(mib).join(' ')}`;
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

/** Requests a drill refused before this many times in a row stops the bench. */
const MAX_REJECTIONS = 5;
/** Rejected drill requests, asked again under a new id: run → why. */
const rejections: string[] = [];

/**
 * Requests a drill and waits for its report. The conditions a run waits on come from the last
 * reconcile; the next one judges the request on newer probes, and right after a switchover back
 * it can still see the primary not taking writes. A rejected request is final, so it is asked
 * again under a new id (and counted).
 */
async function requestedDrill(
  s: FailoverStack,
  id: string,
  what: string,
  mode: 'RoundTrip' | 'Isolated',
  timeoutMs: number,
): Promise<{ status: FailoverPolicyStatus; seconds: number; wallAt: number }> {
  for (let attempt = 1; ; attempt++) {
    const requestId = attempt === 1 ? id : `${id}-again-${attempt}`;
    const t = performance.now();
    const wallAt = Date.now();
    await s.requestDrill({ id: requestId, action: 'Run', ...(mode === 'Isolated' ? { mode } : {}) });
    const status = await s.waitForPolicy(
      (st: FailoverPolicyStatus) =>
        (!st.drill && st.drills?.[0]?.requestId === requestId) ||
        (st.lastDrillRequest?.id === requestId && st.lastDrillRequest.outcome === 'Rejected')
          ? st
          : undefined,
      what,
      timeoutMs,
    );
    const seconds = (performance.now() - t) / 1000;
    if (status.drills?.[0]?.requestId === requestId) return { status, seconds, wallAt };
    const why = status.lastDrillRequest?.message ?? 'no reason given';
    rejections.push(`${what}: ${why}`);
    say(`  ${what}: request ${requestId} rejected (${why}); asking again`);
    if (attempt >= MAX_REJECTIONS)
      throw new Error(`${what}: ${attempt} requests rejected in a row, the last: ${why}`);
  }
}

/** One drill on request, from the request to the report in status. */
async function drill(s: FailoverStack, run: number): Promise<DrillFigures> {
  // A drill starts only from a primary with a replicating standby, as the last one left it.
  await s.waitForPolicy(
    (st) => st.conditions?.find((c) => c.type === 'Redundant' && c.status === 'True'),
    'both regions replicating',
  );
  const { status, seconds, wallAt } = await requestedDrill(
    s,
    `bench-drill-${run}`,
    `drill ${run} out and back`,
    'RoundTrip',
    180_000,
  );
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

/** What production looked like; an isolated drill must leave all of it as it was. */
interface Production {
  epoch: number;
  activePrimary: string | undefined;
  /** Operations filed: an isolated drill files none. */
  operations: string;
  /** The policy's record, as the authoritative servers answer it. */
  answer: string;
}

async function production(s: FailoverStack): Promise<Production> {
  const { status } = await s.policy();
  return {
    epoch: status.epoch ?? 0,
    activePrimary: status.activePrimary,
    operations: (status.history ?? []).map((h) => h.id).join(' '),
    answer: (await s.dnsAnswer('A')).join(' '),
  };
}

const describeProduction = (p: Production) =>
  `epoch ${p.epoch}, active primary ${p.activePrimary ?? 'none'}, record ${p.answer || 'unanswered'}, ${p.operations ? p.operations.split(' ').length : 0} operations filed`;

interface IsolatedFigures {
  report: DrillReport;
  isolated: IsolatedDrillReport | undefined;
  /** Wall clock from writing the request to the report in status. */
  seconds: number;
  /** What moved in production during this drill, in words; empty when nothing did. */
  moved: string[];
  /** Production once the report was filed. */
  after: Production;
}

/** One isolated drill on request, from the request to the report in status. */
async function isolatedDrill(s: FailoverStack, run: number, before: Production): Promise<IsolatedFigures> {
  // The copy is taken from a replicating standby, as for a round trip.
  await s.waitForPolicy(
    (st) => st.conditions?.find((c) => c.type === 'Redundant' && c.status === 'True'),
    'both regions replicating',
  );
  const { status, seconds } = await requestedDrill(
    s,
    `bench-isolated-${run}`,
    `isolated drill ${run}`,
    'Isolated',
    300_000,
  );
  const report = status.drills?.[0] as DrillReport;
  const isolated = report.isolated;
  const after = await production(s);
  const moved = (Object.keys(before) as (keyof Production)[]).flatMap((k) =>
    before[k] === after[k] ? [] : [`${k} ${before[k] ?? 'none'} → ${after[k] ?? 'none'}`],
  );
  const i = isolated;
  say(
    `isolated drill ${run} ${report.result}${report.mode === 'Isolated' ? '' : ` (filed as ${report.mode ?? 'RoundTrip'})`}: copy of ${i?.cluster ?? '?'} ${i?.copyBytes === undefined ? '?' : mib(i.copyBytes)} MiB in ${fmt(i?.copySeconds)} s, promoted in ${fmt(i?.promotionSeconds)} s, ${fmt(i?.freshnessSeconds)} s old; ${i?.recordName ?? 'drill record'} verified in ${fmt(i?.dnsVerifySeconds)} s; ${i?.canaryWrites ?? '?'} canary rows; ${i?.cleanedUp ? 'cleaned up' : 'NOT cleaned up'}; drill ${fmt(i?.durationSeconds)} s, request → report ${seconds.toFixed(2)} s${report.result === 'Succeeded' ? '' : ` (${report.reason ?? ''})`}`,
  );
  if (moved.length > 0) say(`  production moved during isolated drill ${run}: ${moved.join('; ')}`);
  return { report, isolated, seconds, moved, after };
}

type IsolatedMeasure =
  | 'durationSeconds'
  | 'copySeconds'
  | 'copyBytes'
  | 'promotionSeconds'
  | 'freshnessSeconds'
  | 'dnsVerifySeconds'
  | 'canaryWrites';

/** The isolated drills' summary lines, and whether every one passed. */
function isolatedSummary(drills: IsolatedFigures[], before: Production, after: Production) {
  const measured = (f: IsolatedMeasure) =>
    drills.flatMap((d) => {
      const x = d.isolated?.[f];
      return x === undefined ? [] : [x];
    });
  const notOk = (what: string, runs: number[]) =>
    runs.length ? ` (NOT ${what}: drill ${runs.join(', ')})` : '';
  const runsWhere = (bad: (d: IsolatedFigures) => boolean) =>
    drills.flatMap((d, i) => (bad(d) ? [i + 1] : []));
  const failed = runsWhere((d) => d.report.result !== 'Succeeded');
  const dirty = runsWhere((d) => d.isolated?.cleanedUp !== true);
  const moved = runsWhere((d) => d.moved.length > 0);
  const canaryRows = measured('canaryWrites');
  const n = drills.length;
  const lines = [
    `  isolated drills of region B (a copy promoted on a spare port, written to through the drill record), ${n} back to back under ${WRITES_PER_SECOND} writes/s through DNS: ${n - failed.length} of ${n} Succeeded${notOk('Succeeded', failed)}, ${n - dirty.length} of ${n} cleaned up${notOk('cleaned up', dirty)}`,
    `    drill, start → copy and record removed: ${figures(measured('durationSeconds'))}`,
    `    drill, request → report filed:          ${figures(drills.map((d) => d.seconds))}`,
    `    copy (pg_basebackup of the standby):    ${figures(measured('copySeconds'))}`,
    `    copy size:                              ${sizes(measured('copyBytes'))}`,
    `    promotion of the copy:                  ${figures(measured('promotionSeconds'))}`,
    `    freshness (heartbeat age in the copy):  ${figures(measured('freshnessSeconds'))}`,
    // The operator reads its clock once per pass: 0 means answered in the pass that wrote the record.
    `    drill record verified (DNS, 0 = in the pass that wrote it): ${figures(measured('dnsVerifySeconds'))}`,
    `    canary rows acknowledged by the copy: ${canaryRows.length ? `min ${Math.min(...canaryRows)}, max ${Math.max(...canaryRows)} (at least ${MIN_CANARY_WRITES} wanted)  all: ${canaryRows.join(' ')}` : 'no measurement'}`,
    `    production ${moved.length ? `MOVED during drill ${moved.join(', ')}` : 'did not move'}: before ${describeProduction(before)}; after ${describeProduction(after)}`,
  ];
  const passed =
    failed.length === 0 &&
    dirty.length === 0 &&
    moved.length === 0 &&
    JSON.stringify(before) === JSON.stringify(after) &&
    canaryRows.length === n &&
    canaryRows.every((r) => r >= MIN_CANARY_WRITES);
  return { lines, passed };
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

  const isolated: IsolatedFigures[] = [];
  let productionBefore: Production | undefined;
  if (ISOLATED_RUNS > 0) {
    // The copy's spare port: free on this host now, as the standby's host would have it free.
    await s.client.mergePatch(failoverPolicyType, s.options.namespace, 'orders', {
      spec: { drills: { isolated: { port: await freePort(), minCanaryWrites: MIN_CANARY_WRITES } } },
    });
    productionBefore = await production(s);
    let last = productionBefore;
    for (let run = 1; run <= ISOLATED_RUNS; run++) {
      const figures = await isolatedDrill(s, run, last);
      isolated.push(figures);
      last = figures.after;
    }
  }

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
  const roundTrips =
    RUNS > 0
      ? [
          `  drills out to region B and back, held ${HOLD_SECONDS} s, ${RUNS} back to back under ${WRITES_PER_SECOND} writes/s through DNS: ${succeeded} of ${RUNS} Succeeded`,
          `    out RTO (canary, last write acknowledged by A → first by B):  ${figures(rto(outs))}`,
          `    back RTO (canary, last write acknowledged by B → first by A): ${figures(rto(backs))}`,
          `    RPO: out ${rpo(outs)}; back ${rpo(backs)} (legs measured by the canary: out ${outs.length}, back ${backs.length} of ${RUNS})`,
          `    DNS verified, out:  ${figures(drills.flatMap((d) => (d.report.dnsVerifySeconds === undefined ? [] : [d.report.dnsVerifySeconds])))}`,
          `    DNS verified, back: ${figures(drills.flatMap((d) => (d.backDnsSeconds === undefined ? [] : [d.backDnsSeconds])))}`,
          `    drill, request → report filed: ${figures(drills.map((d) => d.seconds))}`,
        ]
      : [];
  const isolatedFigures = productionBefore
    ? isolatedSummary(isolated, productionBefore, await production(s))
    : { lines: [], passed: true };
  process.stdout.write(
    [
      '',
      ...roundTrips,
      ...isolatedFigures.lines,
      `    drill requests rejected and asked again: ${rejections.length}${rejections.length ? ` (${rejections.join('; ')})` : ''}`,
      `    application writes lost: ${lost} of ${written.acknowledged.length} acknowledged (${written.failed} attempts failed, not acknowledged); samples with two writable databases: ${sampler.twoWriters} of ${sampler.samples.length}; writable at the end: ${writable.join(', ')}`,
      '',
    ].join('\n'),
  );
  const canaryLost = [...outs, ...backs].reduce((n, l) => n + (l.rpoTransactions ?? 0), 0);
  if (
    succeeded !== RUNS ||
    !isolatedFigures.passed ||
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
