/**
 * Drills against the real stack: a PostgreSQL pair, the control plane, BIND, observers, the
 * operator, and a database agent beside each server, all as processes. A drill goes out to the
 * standby and back through ordinary switchovers (each old primary demoted by its agent into a
 * standby), and is measured by the operator's canary writer from the client's side. Without
 * agents nothing would bring the former primary back, so a due drill is refused and says why.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus } from '../../operator/src/api/v1alpha1/index.ts';
import { failoverPolicyType } from '../../operator/src/controllers/resources.ts';
import {
  type FailoverStack,
  type FailoverStackOptions,
  PRIMARY_ADDRESS,
  RECORD,
  STANDBY_ADDRESS,
} from '../harness/failover-stack.ts';
import { acceptsConnections, freePort } from '../harness/ports.ts';
import { waitFor } from '../harness/wait.ts';
import { type DnsWriteLoad, WriterSampler } from '../harness/writers.ts';
import { ROOMY_LEASE, stackStarter } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;
let sampler: WriterSampler | undefined;
let load: DnsWriteLoad | undefined;

afterEach(async () => {
  await load?.stop();
  load = undefined;
  await sampler?.stop();
  sampler = undefined;
  await stack?.stop();
  stack = undefined;
});

const start = stackStarter('dr', { primaryLease: ROOMY_LEASE });

describe('a scheduled drill', () => {
  it('that could not come back (no agents) is not started: filed as Aborted with the reason, in status, events and metrics', async () => {
    stack = await start();
    await stack.waitUntilHealthy();
    const operator = stack.operator;
    if (!operator) throw new Error('the stack has no operator');
    // Every minute, so one is due within a minute of now.
    await stack.client.mergePatch(failoverPolicyType, stack.options.namespace, 'orders', {
      spec: { drills: { schedule: '* * * * *', holdSeconds: 0, abortIfLagSecondsAbove: 5 } },
    });
    const scheduled = await stack.waitForPolicy((st) => st.nextDrillTime, 'the next drill time in status');
    expect(new Date(scheduled).getUTCSeconds()).toBe(0);
    await waitFor(
      async () =>
        (await operator.metric('failover_drill_next_timestamp_seconds')) ===
        new Date(scheduled).getTime() / 1000,
      { description: 'the next drill time in the metrics' },
    );

    const report = await stack.waitForPolicy((st) => st.drills?.[0], 'the first drill report', 150_000);
    expect(report).toMatchObject({
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'region-a',
      result: 'Aborted',
    });
    expect(report.reason).toMatch(/no database agent reports for region-a .*could not come back/);

    // Nothing moved: same primary, same epoch, no operation, DNS and writes where they were.
    const { status } = await stack.policy();
    expect(status).toMatchObject({ activePrimary: 'region-a', epoch: 0, phase: 'Healthy' });
    expect(status.history ?? []).toEqual([]);
    expect(status.currentOperation).toBeUndefined();
    expect(status.drill).toBeUndefined();
    expect(new Date(status.nextDrillTime ?? 0).getTime()).toBeGreaterThan(new Date(scheduled).getTime());
    expect(await stack.writablePrimaries()).toEqual(['primary']);
    expect(await stack.writeThroughDns()).toBe(PRIMARY_ADDRESS);

    // What the chart's "drill failed" alert reads, and the Warning a person sees in kubectl.
    await waitFor(async () => (await operator.metric('failover_drills_total', { result: 'Aborted' })) >= 1, {
      description: 'the skipped drill counted',
    });
    expect(await operator.metric('failover_drill_last_succeeded')).toBe(0);
    const events = await waitFor(
      async () => {
        const list = await stack?.events();
        return list?.some((e) => e.reason === 'DrillAborted') ? list : undefined;
      },
      { description: 'a DrillAborted event' },
    );
    expect(events.find((e) => e.reason === 'DrillAborted')).toMatchObject({ type: 'Warning' });
  });

  it('is not scheduled while suspended', async () => {
    stack = await start();
    await stack.waitUntilHealthy();
    await stack.client.mergePatch(failoverPolicyType, stack.options.namespace, 'orders', {
      spec: { drills: { schedule: '* * * * *' } },
    });
    await stack.waitForPolicy((st) => st.nextDrillTime, 'the next drill time in status');
    await stack.client.mergePatch(failoverPolicyType, stack.options.namespace, 'orders', {
      spec: { drills: { suspend: true } },
    });
    await stack.waitForPolicy(
      (st) => (st.nextDrillTime === undefined ? st : undefined),
      'no next drill time',
    );
    const operator = stack.operator;
    await waitFor(
      async () => !(await operator?.metrics())?.includes('failover_drill_next_timestamp_seconds{'),
      {
        description: 'the next drill time gone from the metrics',
      },
    );
  });
});

/** A stack with an agent beside each server, and drills on a schedule that never fires here. */
async function drillingStack(
  drills: Record<string, unknown> = {},
  options: Partial<FailoverStackOptions> = {},
): Promise<FailoverStack> {
  const s = await start({ pgSettings: { wal_log_hints: 'on', full_page_writes: 'on' }, ...options });
  await s.waitUntilHealthy();
  await Promise.all([s.startAgent('region-a'), s.startAgent('region-b')]);
  await s.client.mergePatch(failoverPolicyType, s.options.namespace, 'orders', {
    // The record's TTL is 5 s unless options say otherwise; drills lower it to 1 s.
    spec: {
      drills: { schedule: '0 3 1 1 *', holdSeconds: 3, abortIfLagSecondsAbove: 5, ttlSeconds: 1, ...drills },
    },
  });
  await s.waitForAgentReports();
  return s;
}

const finishedDrill = (s: FailoverStack, id: string, what: string) =>
  s.waitForPolicy(
    (st: FailoverPolicyStatus) => (!st.drill && st.drills?.[0]?.requestId === id ? st.drills[0] : undefined),
    what,
    180_000,
  );

describe('a drill with agents', () => {
  it('goes out and back on request, measured by the canary: RPO 0 of N rows, one writer throughout, nothing lost', async () => {
    stack = await drillingStack();
    const operator = stack.operator;
    sampler = new WriterSampler(stack);
    load = await stack.startDnsWriteLoad(50);
    expect(await stack.dnsTtl()).toBe(5);
    await stack.requestDrill({ id: 'drill-now', action: 'Run' });
    // The TTL is lowered before anything moves, and served so through the hold.
    await stack.waitForPolicy((st) => st.drill?.ttl?.loweredAt, 'the lowered TTL in place');
    expect(await stack.dnsTtl()).toBe(1);
    await stack.waitForPolicy((st) => (st.drill?.leg === 'Holding' ? st.drill : undefined), 'the hold');
    expect(await stack.dnsTtl()).toBe(1);
    const report = await finishedDrill(stack, 'drill-now', 'the drill out and back');
    expect(report.clientTtlSeconds).toBe(1);
    await waitFor(async () => (await stack?.dnsTtl()) === 5 || undefined, {
      description: "the record's own TTL back after the drill",
    });
    expect(report).toMatchObject({
      result: 'Succeeded',
      from: 'region-a',
      to: 'region-b',
      lostWrites: 0,
      epoch: 2,
    });
    expect(report.out).toMatchObject({ measuredBy: 'Canary', rpoTransactions: 0 });
    expect(report.out?.acknowledged).toBeGreaterThan(5);
    expect(report.out?.rtoSeconds).toBeGreaterThan(0);
    expect(report.out?.rtoSeconds).toBeLessThan(30);
    expect(report.back).toMatchObject({ measuredBy: 'Canary', rpoTransactions: 0 });
    expect(report.rtoSeconds).toBe(report.out?.rtoSeconds);
    // The drill's two legs (a reprotect of region B may follow if it showed as not yet streaming).
    const history = ((await stack.policy()).status.history ?? []).filter((h) => h.trigger === 'Drill');
    expect(history.slice(0, 2).map((h) => [h.trigger, h.from, h.to, h.result])).toEqual([
      ['Drill', 'region-b', 'region-a', 'Succeeded'],
      ['Drill', 'region-a', 'region-b', 'Succeeded'],
    ]);
    // The canary's rows are in the database, through the name, on the primary.
    const [rows] = await stack.pair.sql<{ n: string }>(
      'primary',
      'SELECT count(*)::text AS n FROM regionfailover.canary',
    );
    expect(Number(rows?.n)).toBeGreaterThan(10);
    // Home again: region A the only writer, region B its streaming standby.
    await sampler.stop();
    expect(sampler.twoWriters).toBe(0);
    const writes = await load.stop();
    load = undefined;
    expect(writes.acknowledged.length).toBeGreaterThan(50);
    expect(await stack.writablePrimaries()).toEqual(['primary']);
    await waitFor(
      async () =>
        (
          await stack?.pair.sql<{ state: string }>(
            'primary',
            "SELECT state FROM pg_stat_replication WHERE application_name = 'region-b'",
            [],
            'postgres',
          )
        )?.[0]?.state === 'streaming' || undefined,
      { description: 'region B to stream from region A again' },
    );
    expect(await stack.writeThroughDns()).toBe(PRIMARY_ADDRESS);
    await waitFor(
      async () => (await operator?.metric('failover_drills_total', { result: 'Succeeded' })) === 1,
      {
        description: 'the drill counted as succeeded',
      },
    );
    expect(await operator?.metric('failover_drill_rpo_transactions')).toBe(0);
    expect(await operator?.metric('failover_drill_last_succeeded')).toBe(1);
    await stack.eventsWith(['DrillStarted', 'DrillSucceeded']);
    // Its incident records: the drill, with the canary's moments, and each of its switchovers.
    const records = await waitFor(
      async () => {
        const all = await stack?.reports();
        return all && all.length >= 3 ? all : undefined;
      },
      { description: "the drill's FailoverReports" },
    );
    const drill = records.find((r) => r.spec.kind === 'Drill');
    expect(drill?.spec).toMatchObject({ id: report.id, result: 'Succeeded', drill: { lostWrites: 0 } });
    expect(drill?.spec.timeline?.map((m) => m.event)).toEqual(
      expect.arrayContaining(['Started', 'LastWriteOnOldPrimary', 'FirstWriteOnNewPrimary', 'Succeeded']),
    );
    expect(
      records.filter((r) => r.spec.kind === 'Switchover' && r.spec.operation?.trigger === 'Drill'),
    ).toHaveLength(2);
  });

  it('cancelled during the hold, comes home at once; filed as Cancelled', async () => {
    stack = await drillingStack({ holdSeconds: 3600 });
    await stack.requestDrill({ id: 'long', action: 'Run' });
    await stack.waitForPolicy(
      (st) => (st.drill?.leg === 'Holding' ? st.drill : undefined),
      'the hold on region-b',
    );
    expect(await stack.writablePrimaries()).toEqual(['standby']);
    await stack.requestDrill({ id: 'enough', action: 'Cancel', reason: 'release day' });
    const report = await finishedDrill(stack, 'long', 'the cancelled drill to come home');
    expect(report).toMatchObject({ result: 'Cancelled' });
    expect(report.reason).toMatch(/cancelled by request enough \(release day\); back on region-a/);
    expect(await stack.writablePrimaries()).toEqual(['primary']);
  });

  it('holds through probes its primary left unanswered (hung sessions) before going out, then goes out and back', async () => {
    // The record's TTL is 15 s: after lowering it the Starting leg waits that out, and the fault lands there.
    // At debug the operator logs each decision: the test reads the hold from it.
    stack = await drillingStack({}, { ttlSeconds: 15, operatorArgs: ['--log-level=debug'] });
    const s = stack;
    const timeouts = async () =>
      (await s.operator?.metric('failover_probe_failures_total', { reason: 'Timeout' })) ?? 0;
    const before = await timeouts();
    await s.requestDrill({ id: 'hung', action: 'Run' });
    await s.waitForPolicy(
      (st) => st.drill?.ttl?.loweredAt,
      'the lowered TTL in place, the old one being waited out',
    );
    // Every prober's session on region A (the operator's and the observers') hangs until the
    // operator counts a probe Timeout: fewer misses than failureThreshold (3 × 1 s), no verdict.
    const pids = (
      await s.pair.sql<{ pid: number }>(
        'primary',
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'failover-operator'",
        [],
        'postgres',
      )
    ).map((r) => r.pid);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      await waitFor(async () => (await timeouts()) > before || undefined, {
        description: 'the operator to miss a probe of region A',
        timeoutMs: 10_000,
        intervalMs: 50,
      });
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    // The control: the fault came while the drill was starting, and the operator saw it.
    expect((await s.policy()).status.drill?.leg).toBe('Starting');
    await waitFor(
      async () =>
        s.operator
          ?.logEntries()
          .some((e) => e.msg === 'decided' && /region-a failed its last probe/.test(String(e.why))) ||
        undefined,
      { description: 'the drill to hold on the missed probe' },
    );
    const report = await finishedDrill(s, 'hung', 'the drill out and back after the missed probe');
    expect(report, report.reason).toMatchObject({ result: 'Succeeded', from: 'region-a', to: 'region-b' });
    expect(await s.writablePrimaries()).toEqual(['primary']);
  });

  it('aborts when the standby does not catch up in time: nothing moves, nothing is lost', async () => {
    stack = await drillingStack({ abortIfLagSecondsAbove: 2 });
    sampler = new WriterSampler(stack);
    // Region B stops replaying: a fenced primary's last WAL never reaches its data in time.
    await stack.pair.pauseReplay();
    await stack.requestDrill({ id: 'lagging', action: 'Run' });
    const report = await finishedDrill(stack, 'lagging', 'the drill to abort');
    expect(report.result).toBe('Aborted');
    expect(report.reason).toMatch(
      /did not replay up to .* within 2 s|no longer a standby replicating within 2 s/,
    );
    await stack.pair.resumeReplay();
    const { status } = await stack.policy();
    expect(status).toMatchObject({ activePrimary: 'region-a' });
    await sampler.stop();
    expect(sampler.twoWriters).toBe(0);
    // Unfenced again: region A takes writes through the name.
    await waitFor(async () => (await stack?.writablePrimaries())?.join() === 'primary' || undefined, {
      description: 'region A to take writes again',
    });
    expect(await stack.writeThroughDns()).toBe(PRIMARY_ADDRESS);
  });

  it('resumes after the operator is SIGKILLed in each leg: one report for the drill, home again', async () => {
    stack = await drillingStack({ holdSeconds: 5 });
    sampler = new WriterSampler(stack);
    await stack.requestDrill({ id: 'survivor', action: 'Run' });
    for (const leg of ['Out', 'Holding', 'Back'] as const) {
      await stack.waitForPolicy((st) => (st.drill?.leg === leg ? st.drill : undefined), `the ${leg} leg`);
      await stack.operator?.kill();
      await stack.startOperator();
    }
    const report = await finishedDrill(stack, 'survivor', 'the drill to finish after three operator kills');
    expect(report.result).toBe('Succeeded');
    // A leg the canary did not see both ends of (its memory died with the operator) says so.
    for (const leg of [report.out, report.back])
      expect(leg?.measuredBy === 'Canary' || /operator restarted|saw no write/.test(leg?.message ?? '')).toBe(
        true,
      );
    const { status } = await stack.policy();
    expect(status.drills?.filter((d) => d.requestId === 'survivor')).toHaveLength(1);
    expect((status.history ?? []).filter((h) => h.trigger === 'Drill').map((h) => h.result)).toEqual([
      'Succeeded',
      'Succeeded',
    ]);
    await sampler.stop();
    expect(sampler.twoWriters).toBe(0);
    expect(await stack.writablePrimaries()).toEqual(['primary']);
  });

  it('is Interrupted when the standby it switched to is lost during the hold: a real failover takes over', async () => {
    stack = await drillingStack({ holdSeconds: 3600 });
    await stack.requestDrill({ id: 'unlucky', action: 'Run' });
    await stack.waitForPolicy(
      (st) => (st.drill?.leg === 'Holding' ? st.drill : undefined),
      'the hold on region-b',
    );
    // Some way into the hold: region A, demoted by its agent, is a standby whose lag is known
    // (before that, the failover rules rightly refuse: LagUnknown).
    await stack.waitForPolicy(
      (st) => st.conditions?.find((c) => c.type === 'FailoverReady' && c.status === 'True'),
      'region A ready to take over',
    );
    // Region B, now the primary, dies.
    await stack.pair.server('standby').kill();
    const report = await finishedDrill(stack, 'unlucky', 'the drill to be interrupted');
    expect(report.result).toBe('Interrupted');
    expect(report.reason).toMatch(/real failover took over during the drill: region-b → region-a/);
    const { status } = await stack.policy();
    expect(status.activePrimary).toBe('region-a');
    expect(status.history?.find((h) => h.kind === 'Failover')).toMatchObject({
      trigger: 'Automatic',
      to: 'region-a',
      result: 'Succeeded',
    });
    expect(await stack.writablePrimaries()).toEqual(['primary']);
    expect(await stack.writeThroughDns()).toBe(PRIMARY_ADDRESS);
  });
});

/** Any server running on the standby's address at `port`. */
const acceptsConnectionsAt = (port: number) => acceptsConnections(STANDBY_ADDRESS, port);

/** What BIND answers for a name that may not exist: nothing, whether empty or NXDOMAIN. */
async function answerOrNone(s: FailoverStack, type: 'A' | 'TXT', name: string): Promise<string[]> {
  try {
    return await s.dnsAnswer(type, name);
  } catch (err) {
    if (/NXDOMAIN|no such name|not found/i.test((err as Error).message)) return [];
    throw err;
  }
}

describe('an isolated drill', () => {
  it('proves the standby on a throwaway copy through a drill record; production, its record and writes untouched; copy and record removed', async () => {
    const port = await freePort();
    stack = await drillingStack({ mode: 'Isolated', isolated: { port, minCanaryWrites: 20 } });
    const operator = stack.operator;
    sampler = new WriterSampler(stack);
    load = await stack.startDnsWriteLoad(50);
    const before = (await stack.policy()).status;
    const drillRecord = `drill.${RECORD}`;
    await stack.requestDrill({ id: 'iso-1', action: 'Run' });

    // While the canary writes to the copy: the drill record answers the standby's address, the
    // policy's record still the primary's, with its own TTL.
    const writing = await stack.waitForPolicy(
      (st) => (st.drill?.leg === 'Writing' ? st.drill : undefined),
      'the canary writing to the copy',
      150_000,
    );
    expect(writing.isolated?.port).toBe(port);
    expect(await stack.dnsAnswer('A', drillRecord)).toEqual([STANDBY_ADDRESS]);
    expect(await stack.dnsAnswer('A')).toEqual([PRIMARY_ADDRESS]);
    expect(await stack.dnsTtl()).toBe(5);
    expect(await acceptsConnectionsAt(port)).toBe(true);

    const report = await finishedDrill(stack, 'iso-1', 'the isolated drill report');
    expect(report).toMatchObject({
      mode: 'Isolated',
      result: 'Succeeded',
      from: 'region-a',
      to: 'region-b',
      epoch: before.epoch ?? 0,
      isolated: { cluster: 'region-b', recordName: drillRecord, cleanedUp: true },
    });
    const figures = report.isolated;
    expect(figures?.canaryWrites).toBeGreaterThanOrEqual(20);
    for (const f of [
      'copySeconds',
      'copyBytes',
      'promotionSeconds',
      'freshnessSeconds',
      'dnsVerifySeconds',
    ] as const)
      expect(figures?.[f], f).toBeTypeOf('number');
    expect(figures?.freshnessSeconds).toBeLessThan(30);

    // Nothing in production moved: no operation, same epoch and primary, the record untouched.
    const { status } = await stack.policy();
    expect(status).toMatchObject({ activePrimary: 'region-a', epoch: before.epoch ?? 0 });
    expect(status.history ?? []).toEqual(before.history ?? []);
    expect(await stack.dnsAnswer('A')).toEqual([PRIMARY_ADDRESS]);
    expect(await stack.dnsTtl()).toBe(5);
    await sampler.stop();
    expect(sampler.twoWriters).toBe(0);
    const writes = await load.stop();
    load = undefined;
    expect(writes.acknowledged.length).toBeGreaterThan(20);
    expect(await stack.writablePrimaries()).toEqual(['primary']);
    expect((await stack.clusterStatus('region-b')).role).toBe('Standby');
    // The canary never wrote to production.
    const [rows] = await stack.pair.sql<{ n: string }>(
      'primary',
      "SELECT count(*)::text AS n FROM pg_tables WHERE schemaname = 'regionfailover' AND tablename = 'canary'",
    );
    expect(rows?.n).toBe('0');

    // Removed: the drill record and its ownership TXT, the copy's server and directory.
    expect(await answerOrNone(stack, 'A', drillRecord)).toEqual([]);
    expect(await answerOrNone(stack, 'TXT', `_failover.${drillRecord}`)).toEqual([]);
    expect(await acceptsConnectionsAt(port)).toBe(false);
    const dataDir = stack.pair.standby.dataDir;
    expect(readdirSync(dirname(dataDir)).filter((n) => n.startsWith(`${basename(dataDir)}.drill-`))).toEqual(
      [],
    );

    await waitFor(
      async () => (await operator?.metric('failover_drills_total', { result: 'Succeeded' })) === 1,
      { description: 'the isolated drill counted as succeeded' },
    );
    await stack.eventsWith(['DrillStarted', 'DrillSucceeded']);
  }, 400_000);

  it('resumes after the operator is SIGKILLed while copying, writing and cleaning up: one report, nothing left', async () => {
    const port = await freePort();
    // 60 canary rows: about 6 s of writing, long enough to kill the operator in the middle.
    stack = await drillingStack({ mode: 'Isolated', isolated: { port, minCanaryWrites: 60 } });
    const drillRecord = `drill.${RECORD}`;
    await stack.requestDrill({ id: 'iso-kill', action: 'Run' });
    for (const legs of [['Copying', 'Pointing'], ['Writing']]) {
      await stack.waitForPolicy(
        (st) => (legs.includes(st.drill?.leg ?? '') ? st.drill : undefined),
        `the ${legs.join(' or ')} leg`,
        150_000,
      );
      await stack.operator?.kill();
      await stack.startOperator();
    }
    // Past the writing, once more if the drill is still cleaning up.
    const late = await stack.waitForPolicy(
      (st) =>
        st.drill?.leg === 'Removing' || st.drill?.leg === 'Cleaning' || !st.drill
          ? { leg: st.drill?.leg }
          : undefined,
      'the clean-up (or the end)',
      150_000,
    );
    if (late.leg) {
      await stack.operator?.kill();
      await stack.startOperator();
    }
    const report = await finishedDrill(stack, 'iso-kill', 'the isolated drill after the operator kills');
    expect(report).toMatchObject({ mode: 'Isolated', result: 'Succeeded', isolated: { cleanedUp: true } });
    expect(report.isolated?.canaryWrites).toBeGreaterThanOrEqual(60);
    const { status } = await stack.policy();
    expect(status.drills?.filter((d) => d.requestId === 'iso-kill')).toHaveLength(1);
    expect(status.history ?? []).toEqual([]);
    expect(await answerOrNone(stack, 'A', drillRecord)).toEqual([]);
    expect(await acceptsConnectionsAt(port)).toBe(false);
    const dataDir = stack.pair.standby.dataDir;
    expect(readdirSync(dirname(dataDir)).filter((n) => n.startsWith(`${basename(dataDir)}.drill-`))).toEqual(
      [],
    );
    expect(await stack.writablePrimaries()).toEqual(['primary']);
  }, 400_000);
});
