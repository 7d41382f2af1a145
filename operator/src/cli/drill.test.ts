/**
 * The drill commands' own logic, without an API server: the request and its patch, what the
 * operator's decide() makes of a request (the dry run, the refusal before writing, the diagnosis
 * of an unanswered one), round trips and isolated drills, how an answer reads, and the history
 * table. The executable against a real API server is
 * tested in test/integration/kubectl-plugin.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type {
  DrillReport,
  DrillRequest,
  DrillState,
  FailoverPolicyStatus,
  Operation,
  ReplicaClusterSpec,
  ReplicaClusterStatus,
} from '../api/v1alpha1/index.ts';
import { replicaClusterSpec } from '../api/v1alpha1/index.ts';
import { ApiError, type FailoverApi, replicaClusterType } from './api.ts';
import {
  describeAnswer,
  describeDrills,
  drillInProgress,
  drillRequestCommand,
  drillRequestId,
  drillRequestPatch,
  drillTable,
  judgeDrillRequest,
  lostOf,
  parseTimeout,
  stopConsequence,
} from './drill.ts';
import type { PolicyView } from './policies.ts';

const NOW = new Date('2026-03-02T10:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

const rawSpec = {
  primary: 'a',
  standbys: ['b'],
  dns: {
    provider: { type: 'Route53', route53: { hostedZoneId: 'Z1' } },
    zone: 'example.com',
    name: 'db.example.com',
  },
  detection: { probeIntervalSeconds: 5, failureThreshold: 3, quorum: 1 },
  promotion: { rpo: { maxLagSeconds: 10, maxLagBytes: 1_000_000 } },
  drills: { suspend: true, holdSeconds: 60, maxDurationSeconds: 600, abortIfLagSecondsAbove: 5 },
};

const agent = (name: string, reportedAgo = 2) => ({
  name: `${name}-agent`,
  reportedAt: ago(reportedAgo),
  dataDirectory: '/var/lib/postgresql/15/main',
  server: 'Primary' as const,
});
const reachable = [
  {
    type: 'Reachable',
    status: 'True' as const,
    reason: 'Connected',
    message: 'ok',
    lastTransitionTime: ago(60),
  },
];
const primary = (withAgent = true): ReplicaClusterStatus => ({
  role: 'Primary',
  epoch: 4,
  lastObservedTime: ago(1),
  consecutiveProbeFailures: 0,
  conditions: reachable,
  ...(withAgent ? { agent: agent('a') } : {}),
});
const standby = (lagSeconds = 0.4, withAgent = true): ReplicaClusterStatus => ({
  role: 'Standby',
  replicationLagSeconds: lagSeconds,
  replicationLagBytes: 1024,
  lagObservedTime: ago(1),
  lastObservedTime: ago(1),
  conditions: reachable,
  ...(withAgent ? { agent: { ...agent('b'), server: 'Standby' as const } } : {}),
});

/** A ReplicaCluster's spec: self-managed, its dnsTarget what a drill record would point at. */
const clusterSpec = (name: string): ReplicaClusterSpec =>
  replicaClusterSpec.parse({
    region: `region-${name}`,
    provider: { type: 'SelfManaged' },
    connection: { host: `${name}.db.internal`, credentialsSecretRef: { name: 'pg' } },
    dnsTarget: `${name}.db.internal`,
  });

/** A policy as the plugin reads it: a primary and a standby, both with a database agent. */
function policy(
  status: FailoverPolicyStatus = {},
  clusters: Record<string, ReplicaClusterStatus> = { a: primary(), b: standby() },
  drills: Record<string, unknown> = {},
): PolicyView {
  return {
    namespace: 'shop',
    name: 'orders',
    object: {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name: 'orders' },
      spec: { ...rawSpec, drills: { ...rawSpec.drills, ...drills } },
    },
    spec: undefined,
    status: { phase: 'Healthy', activePrimary: 'a', epoch: 4, ...status },
    clusters: new Map(Object.entries(clusters)),
    clusterSpecs: new Map(Object.keys(clusters).map((n) => [n, clusterSpec(n)])),
    clusterObjects: new Map(),
  };
}

const run: DrillRequest = { id: 'drill-run-1', action: 'Run' };
const cancel: DrillRequest = { id: 'drill-cancel-1', action: 'Cancel' };
const drill = (leg: DrillState['leg'], over: Partial<DrillState> = {}): DrillState => ({
  id: 'drill-20260302095000',
  from: 'a',
  to: 'b',
  startedAt: ago(600),
  leg,
  ...over,
});
const outbound = (step: Operation['step']): Operation => ({
  id: 'switchover-out',
  kind: 'Switchover',
  trigger: 'Drill',
  from: 'a',
  to: 'b',
  epoch: 5,
  step,
  startedAt: ago(30),
  stepStartedAt: ago(10),
});

describe('the request', () => {
  it('gets a fresh id that is a DNS label, and a patch that carries nothing over from the last', () => {
    expect(drillRequestId('Run', NOW)).toMatch(/^drill-run-20260302-100000-[0-9a-f]{4}$/);
    expect(drillRequestId('Cancel', NOW)).toMatch(/^drill-cancel-20260302-100000-[0-9a-f]{4}$/);
    expect(drillRequestPatch(run)).toEqual({
      id: 'drill-run-1',
      action: 'Run',
      reason: null,
      requestedBy: null,
      mode: null,
    });
    expect(drillRequestPatch({ ...run, mode: 'Isolated' })).toMatchObject({ mode: 'Isolated' });
    expect(drillRequestPatch({ ...run, reason: 'quarterly', requestedBy: 'alice' })).toEqual({
      id: 'drill-run-1',
      action: 'Run',
      reason: 'quarterly',
      requestedBy: 'alice',
      mode: null,
    });
  });

  it('reads --timeout as kubectl does: 30s, 2m, plain seconds, 0 for no wait', () => {
    expect(parseTimeout(undefined, 30_000)).toBe(30_000);
    expect(parseTimeout('45s', 30_000)).toBe(45_000);
    expect(parseTimeout('2m', 30_000)).toBe(120_000);
    expect(parseTimeout('10', 30_000)).toBe(10_000);
    expect(parseTimeout('0', 30_000)).toBe(0);
    expect(parseTimeout('soon', 30_000)).toBeUndefined();
    expect(parseTimeout('-1s', 30_000)).toBeUndefined();
    // Go's durations, as kubectl's flags take them.
    expect(parseTimeout('1m30s', 30_000)).toBe(90_000);
    expect(parseTimeout('1.5h', 30_000)).toBe(5_400_000);
    expect(parseTimeout('500ms', 30_000)).toBe(500);
    expect(parseTimeout('1m30', 30_000)).toBeUndefined();
  });
});

describe("what the operator's decide() makes of a request", () => {
  it('starts a drill to the standby when both ends can come back', () => {
    const judged = judgeDrillRequest(policy(), run, [], NOW);
    expect(judged).toMatchObject({ acts: true });
    expect(judged.text).toBe(
      'would start a drill from a out to b: the canary writes through the DNS name, it switches over to b, holds there 60 s and switches back (at most 600 s in all)',
    );
    expect(judged.plan?.status.drill).toMatchObject({
      from: 'a',
      to: 'b',
      leg: 'Starting',
      requestId: 'drill-run-1',
    });
  });

  it('refuses without a way back: no agent beside the primary, or a standby beyond the lag limit', () => {
    const noAgent = judgeDrillRequest(policy({}, { a: primary(false), b: standby() }), run, [], NOW);
    expect(noAgent.acts).toBe(false);
    expect(noAgent.text).toMatch(
      /^would refuse it: no database agent reports for a and its provider does not make/,
    );
    const lagging = judgeDrillRequest(policy({}, { a: primary(), b: standby(12) }), run, [], NOW);
    expect(lagging.acts).toBe(false);
    expect(lagging.text).toBe(
      'would refuse it: no standby replicating within 5 s that can come back after a switchover (b lags 12 s)',
    );
  });

  it('waits while an operation is in progress, refuses a second drill, and ignores an id already handled', () => {
    const busy = judgeDrillRequest(
      policy({ currentOperation: { ...outbound('CatchingUp'), trigger: 'Manual' } }),
      run,
      [],
      NOW,
    );
    expect(busy).toMatchObject({
      acts: false,
      text: 'is busy: a Switchover a → b (epoch 5) is at step CatchingUp; the request is considered when it ends',
    });
    const drilling = judgeDrillRequest(
      policy({ drill: drill('Holding', { from: 'b', to: 'a', returnAfter: ago(-60) }), activePrimary: 'a' }),
      run,
      [],
      NOW,
    );
    // The operator refuses a second drill at once rather than queue it.
    expect(drilling.text).toBe(
      'would refuse it: drill drill-20260302095000 is in progress (Holding); cancel it first, or wait for it to end',
    );
    const handled = judgeDrillRequest(policy({ lastHandledDrillRequestId: 'drill-run-1' }), run, [], NOW);
    expect(handled.text).toBe('would ignore it: request drill-run-1 was already handled (use a new --id)');
  });

  it('accepts a cancel and says what stopping does from where the drill is', () => {
    const now = NOW;
    const holding = judgeDrillRequest(
      policy(
        { activePrimary: 'b', drill: drill('Holding', { startedAt: now.toISOString() }) },
        { a: standby(), b: primary() },
      ),
      cancel,
      [],
      now,
    );
    expect(holding).toMatchObject({
      acts: true,
      text: 'would accept it: drill drill-20260302095000 stops and comes back: it switches back to a at once',
    });
    const catchingUp = judgeDrillRequest(
      policy({
        currentOperation: outbound('CatchingUp'),
        drill: drill('Out', { startedAt: now.toISOString(), outboundOperationId: 'switchover-out' }),
      }),
      cancel,
      [],
      now,
    );
    expect(catchingUp.text).toBe(
      'would accept it: drill drill-20260302095000 stops and comes back: its switchover to b has not promoted: it rolls back, nothing moves',
    );
    expect(catchingUp.plan?.status.currentOperation?.step).toBe('RollingBack');
    const none = judgeDrillRequest(policy(), cancel, [], now);
    expect(none).toMatchObject({ acts: false, text: 'would refuse it: no drill is in progress' });
  });
});

describe("the operator's answer", () => {
  const answer = (
    id: string,
    action: DrillRequest['action'],
    outcome: 'Accepted' | 'Rejected',
    message: string,
  ) => ({
    lastHandledDrillRequestId: id,
    lastDrillRequest: { id, action, outcome, message, time: ago(0) },
  });

  it('names the drill and its standby when accepted, and the reason when refused', () => {
    const accepted = describeAnswer(
      {
        status: {
          ...answer('drill-run-1', 'Run', 'Accepted', 'drill d1: out to b and back'),
          drill: drill('Starting', { id: 'd1', requestId: 'drill-run-1' }),
        },
      },
      run,
    );
    expect(accepted).toEqual({
      ok: true,
      text: 'Accepted: drill d1 started: from a out to b and back (leg Starting).',
    });
    const refused = describeAnswer(
      { status: answer('drill-run-1', 'Run', 'Rejected', 'the primary a does not accept writes') },
      run,
    );
    expect(refused).toEqual({ ok: false, text: 'Rejected: the primary a does not accept writes' });
  });

  it('a drill that already ended is reported with its result', () => {
    const filed: DrillReport = {
      id: 'd1',
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'a',
      to: 'b',
      epoch: 4,
      result: 'Aborted',
      startedAt: ago(20),
      completedAt: ago(1),
      requestId: 'drill-run-1',
      reason: 'the primary moved to c before the switchover; nothing moved',
    };
    expect(
      describeAnswer(
        {
          status: {
            ...answer('drill-run-1', 'Run', 'Accepted', 'drill d1: out to b and back'),
            drills: [filed],
          },
        },
        run,
      ),
    ).toEqual({
      ok: false,
      text: 'Accepted: drill d1 from a to b has already ended: Aborted: the primary moved to c before the switchover; nothing moved',
    });
  });

  it('a cancel that withdrew a run not yet handled has done its work, though no drill was running', () => {
    const status = answer('drill-cancel-1', 'Cancel', 'Rejected', 'no drill is in progress');
    expect(describeAnswer({ status }, cancel, run)).toEqual({
      ok: true,
      text: 'No drill runs: the run request drill-run-1 was withdrawn before the operator acted on it (the operator: no drill is in progress).',
    });
    expect(describeAnswer({ status }, cancel)).toEqual({
      ok: false,
      text: 'Rejected: no drill is in progress',
    });
    const stopping = describeAnswer(
      {
        status: {
          ...answer('drill-cancel-1', 'Cancel', 'Accepted', 'drill d1 stops and comes back'),
          drill: drill('Holding', { id: 'd1' }),
        },
      },
      cancel,
    );
    expect(stopping.text).toBe('Accepted: drill d1 stops and comes back: it switches back to a at once.');
  });
});

describe('drill history', () => {
  const report = (over: Partial<DrillReport>): DrillReport => ({
    id: 'drill-20260301030000',
    kind: 'Switchover',
    trigger: 'Drill',
    from: 'a',
    to: 'b',
    epoch: 6,
    result: 'Succeeded',
    startedAt: '2026-03-01T03:00:00Z',
    completedAt: '2026-03-01T03:05:42Z',
    ...over,
  });
  const measured = {
    out: {
      operationId: 'o1',
      measuredBy: 'Canary' as const,
      rtoSeconds: 1.4,
      rpoTransactions: 0,
      acknowledged: 212,
    },
    back: {
      operationId: 'o2',
      measuredBy: 'Canary' as const,
      rtoSeconds: 1.2,
      rpoTransactions: 0,
      acknowledged: 140,
    },
  };

  it('counts lost canary rows (both legs) of those the old primary acknowledged before the switch out', () => {
    expect(lostOf({ lostWrites: 0, ...measured })).toBe('0 of 212');
    expect(lostOf({ lostWrites: 3, out: measured.out })).toBe('3 of 212');
    expect(
      lostOf({
        lostWrites: 0,
        out: { operationId: 'o1', measuredBy: 'Canary', rtoSeconds: 1, rpoTransactions: 0 },
      }),
    ).toBe('0');
    expect(lostOf({})).toBe('-');
  });

  it('prints a row per drill: who measured each RTO, RPO in canary rows, DNS, the reason cut short', () => {
    const lines = drillTable([
      report({
        ...measured,
        rtoSeconds: 1.4,
        lostWrites: 0,
        dnsVerifySeconds: 0.2,
        reason:
          'out to b: RTO 1.4 s, RPO 0 of 212 canary rows; back: RTO 1.2 s, RPO 0; DNS verified in 0.2 s',
      }),
      report({
        id: 'drill-20260222030000',
        result: 'Cancelled',
        completedAt: '2026-03-01T03:01:05Z',
        out: { operationId: 'o3', measuredBy: 'Operator', rtoSeconds: 12.3, message: 'no canary writer ran' },
        rtoSeconds: 12.3,
        reason: 'cancelled by request drill-cancel-1',
      }),
      report({
        id: 'drill-20260215030000',
        result: 'Aborted',
        to: 'a',
        completedAt: '2026-03-01T03:00:00Z',
        reason: 'skipped: the primary a does not accept writes',
      }),
      report({ id: 'drill-old', rtoSeconds: 9, lostWrites: 0, dnsVerifySeconds: 4.1 }),
    ]).split('\n');
    const cells = (line: string | undefined) => line?.split(/\s{2,}/);
    expect(cells(lines[0])).toEqual([
      'ID',
      'MODE',
      'RESULT',
      'FROM→TO',
      'STARTED',
      'DURATION',
      'RTO OUT',
      'RTO BACK',
      'RPO',
      'DNS',
      'REASON',
    ]);
    expect(cells(lines[1])).toEqual([
      'drill-20260301030000',
      'RoundTrip',
      'Succeeded',
      'a→b',
      '2026-03-01 03:00:00Z',
      '5m42s',
      '1.4s (canary)',
      '1.2s (canary)',
      '0 of 212',
      '0.2s',
      'out to b: RTO 1.4 s, RPO 0 of 212 canary rows; back: RTO 1.…',
    ]);
    expect(cells(lines[2])).toEqual([
      'drill-20260222030000',
      'RoundTrip',
      'Cancelled',
      'a→b',
      '2026-03-01 03:00:00Z',
      '1m5s',
      '12.3s (operator)',
      '-',
      '-',
      '-',
      'cancelled by request drill-cancel-1',
    ]);
    // Skipped before it chose a standby: filed with to = from.
    expect(cells(lines[3])?.slice(0, 6)).toEqual([
      'drill-20260215030000',
      '-',
      'Aborted',
      'a→-',
      '2026-03-01 03:00:00Z',
      '0s',
    ]);
    // A report from before the canary: the operator's RTO, lost writes without a total.
    expect(cells(lines[4])).toEqual([
      'drill-old',
      'RoundTrip',
      'Succeeded',
      'a→b',
      '2026-03-01 03:00:00Z',
      '5m42s',
      '9s',
      '-',
      '0',
      '4.1s',
    ]);
  });

  it('describes the drill in progress: its leg, since when, its switchover step, a stop', () => {
    const now = NOW;
    expect(drillInProgress({}, now)).toBeUndefined();
    const out = drillInProgress(
      {
        currentOperation: outbound('CatchingUp'),
        drill: drill('Out', { outboundOperationId: 'switchover-out', requestId: 'drill-run-1' }),
      },
      now,
    );
    expect(out).toBe(
      'In progress: drill drill-20260302095000 a→b, leg Out for 30s, switchover at step CatchingUp (started 10m ago, on request drill-run-1)',
    );
    const holding = drillInProgress(
      {
        history: [{ ...outbound('Completed'), result: 'Succeeded', completedAt: ago(90) }],
        drill: drill('Holding', { outboundOperationId: 'switchover-out', returnAfter: ago(-210) }),
      },
      now,
    );
    expect(holding).toBe(
      'In progress: drill drill-20260302095000 a→b, leg Holding for 90s, switches back at 2026-03-02 10:03:30Z (started 10m ago)',
    );
    const stopping = drillInProgress(
      {
        drill: drill('Holding', {
          stop: { result: 'Cancelled', reason: 'cancelled by request x', at: ago(1) },
        }),
      },
      now,
    );
    expect(stopping).toMatch(/; stopping \(Cancelled\): cancelled by request x$/);
  });
});

describe('writing a request while the operator writes status', () => {
  it('reads the policy again and retries a patch that met a conflicting write (409), a few times', async () => {
    let version = 10;
    const sent: unknown[] = [];
    const api = {
      get: async () => ({
        apiVersion: 'regionfailover.io/v1alpha1',
        kind: 'FailoverPolicy',
        metadata: { name: 'orders', namespace: 'shop', resourceVersion: String(version++) },
        spec: rawSpec,
        status: { phase: 'Drilling', activePrimary: 'b', epoch: 5, drill: drill('Holding') },
      }),
      list: async () => ({ items: [] }),
      whoAmI: async () => 'ana',
      patchPolicy: async (_ns: string, _name: string, patch: unknown) => {
        sent.push(patch);
        if (sent.length < 3) throw new ApiError(409, 'Conflict', 'the object has been modified');
      },
    } as unknown as FailoverApi;
    const opts = {
      namespace: 'shop',
      policy: 'orders',
      action: 'Cancel' as const,
      replace: false,
      dryRun: false,
      timeoutMs: 0,
      now: NOW,
      warn: () => undefined,
    };
    const result = await drillRequestCommand(api, opts);
    expect(result.exitCode).toBe(0);
    expect(
      sent.map((p) => (p as { metadata: { resourceVersion: string } }).metadata.resourceVersion),
    ).toEqual(['10', '11', '12']);
    // Five conflicts in a row: it gives up and says to run it again.
    const stubborn = {
      ...api,
      get: api.get,
      list: api.list,
      whoAmI: api.whoAmI,
      patchPolicy: async () => {
        throw new ApiError(409, 'Conflict', 'the object has been modified');
      },
    } as unknown as FailoverApi;
    await expect(drillRequestCommand(stubborn, opts)).rejects.toThrow(/run the command again/);
  });
});

describe('isolated drills', () => {
  const isolatedRun: DrillRequest = { ...run, mode: 'Isolated' };
  /** An isolated drill of b, in `leg`; the copy on the default port, the default drill record. */
  const copying = (leg: DrillState['leg'], isolated: Partial<NonNullable<DrillState['isolated']>> = {}) =>
    drill(leg, {
      id: 'd1',
      mode: 'Isolated',
      requestId: 'drill-run-1',
      isolated: { recordName: 'drill.db.example.com', port: 5433, value: 'b.db.internal', ...isolated },
    });

  it('--mode Isolated is judged as such: a copy of the standby, the agent beside it, nothing in production moves', () => {
    // The primary needs no agent: nothing switches over, so nothing has to come back.
    const judged = judgeDrillRequest(policy({}, { a: primary(false), b: standby() }), isolatedRun, [], NOW);
    expect(judged.acts).toBe(true);
    expect(judged.text).toBe(
      'would start an isolated drill of b: the agent beside b copies it and promotes the copy on port 5433, the canary writes 20 rows to it through drill.db.example.com, then the record and the copy are removed; nothing in production moves (at most 600 s)',
    );
    expect(judged.plan?.status.drill).toMatchObject({
      mode: 'Isolated',
      leg: 'Copying',
      to: 'b',
      isolated: { recordName: 'drill.db.example.com', port: 5433, value: 'b.db.internal' },
    });
    // The policy's own mode when the request names none; a request's RoundTrip overrides it.
    const byPolicy = judgeDrillRequest(
      policy({}, undefined, { mode: 'Isolated', isolated: { port: 6543, minCanaryWrites: 5 } }),
      run,
      [],
      NOW,
    );
    expect(byPolicy.text).toMatch(
      /^would start an isolated drill of b: .* on port 6543, the canary writes 5 rows/,
    );
    const roundTrip = judgeDrillRequest(
      policy({}, undefined, { mode: 'Isolated' }),
      { ...run, mode: 'RoundTrip' },
      [],
      NOW,
    );
    expect(roundTrip.text).toMatch(/^would start a drill from a out to b:/);
  });

  it('is refused without an agent beside the standby, with the operator message as the refusal', () => {
    const judged = judgeDrillRequest(
      policy({}, { a: primary(), b: standby(0.4, false) }),
      isolatedRun,
      [],
      NOW,
    );
    expect(judged.acts).toBe(false);
    expect(judged.refusal).toMatch(/^no standby to copy: no database agent reports for b/);
    expect(judged.text).toBe(`would refuse it: ${judged.refusal}`);
  });

  /** An API with the policy and its ReplicaClusters, recording patches. */
  function apiOf(p: PolicyView) {
    const sent: unknown[] = [];
    const api = {
      get: async () => ({
        ...p.object,
        metadata: { name: 'orders', namespace: 'shop', resourceVersion: '7' },
        status: p.status,
      }),
      list: async (type: unknown) => ({
        items:
          type === replicaClusterType
            ? [...p.clusters].map(([name, status]) => ({
                apiVersion: 'regionfailover.io/v1alpha1',
                kind: 'ReplicaCluster',
                metadata: { name, namespace: 'shop' },
                spec: p.clusterSpecs.get(name),
                status,
              }))
            : [],
      }),
      whoAmI: async () => 'ana',
      patchPolicy: async (_ns: string, _name: string, patch: unknown) => {
        sent.push(patch);
      },
    } as unknown as FailoverApi;
    return { api, sent };
  }
  const request = {
    namespace: 'shop',
    policy: 'orders',
    action: 'Run' as const,
    replace: false,
    dryRun: false,
    timeoutMs: 0,
    now: NOW,
    warn: () => undefined,
  };

  it('a run the operator would refuse is refused before anything is written, round trip or isolated', async () => {
    const noCopier = apiOf(policy({}, { a: primary(), b: standby(0.4, false) }));
    await expect(drillRequestCommand(noCopier.api, { ...request, mode: 'Isolated' })).rejects.toThrow(
      /^the operator would refuse this isolated drill: no standby to copy: no database agent reports for b.*\. Nothing was recorded; kubectl failover drill run orders -n shop --mode Isolated --dry-run shows what it decides from\.$/,
    );
    const noWayBack = apiOf(policy({}, { a: primary(false), b: standby() }));
    await expect(drillRequestCommand(noWayBack.api, request)).rejects.toThrow(
      /^the operator would refuse this drill: no database agent reports for a and its provider does not make/,
    );
    expect([...noCopier.sent, ...noWayBack.sent]).toEqual([]);
    // The same stack copies b: the request is written with its mode.
    const fine = apiOf(policy({}, { a: primary(false), b: standby() }));
    const result = await drillRequestCommand(fine.api, { ...request, mode: 'Isolated', id: 'iso-1' });
    expect(result.exitCode).toBe(0);
    expect(result.output).toContain('Requested: run an isolated drill of shop/orders now (request iso-1).');
    expect(fine.sent).toEqual([
      {
        metadata: { resourceVersion: '7' },
        spec: {
          drillRequest: { id: 'iso-1', action: 'Run', mode: 'Isolated', reason: null, requestedBy: 'ana' },
        },
      },
    ]);
  });

  it('the answer names the copy, its port and the drill record, not a way out and back', () => {
    const status = {
      lastHandledDrillRequestId: 'drill-run-1',
      lastDrillRequest: {
        id: 'drill-run-1',
        action: 'Run' as const,
        outcome: 'Accepted' as const,
        message: 'drill d1: isolated: …',
        time: ago(0),
      },
    };
    expect(describeAnswer({ status: { ...status, drill: copying('Copying') } }, isolatedRun)).toEqual({
      ok: true,
      text: 'Accepted: isolated drill d1 started: a copy of b on port 5433, written to through drill.db.example.com; nothing in production moves (leg Copying).',
    });
    const filed: DrillReport = {
      id: 'd1',
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'a',
      to: 'b',
      epoch: 4,
      result: 'Failed',
      startedAt: ago(20),
      completedAt: ago(1),
      requestId: 'drill-run-1',
      mode: 'Isolated',
      reason: 'the agent could not make the copy: no space left on device',
    };
    expect(describeAnswer({ status: { ...status, drills: [filed] } }, isolatedRun)).toEqual({
      ok: false,
      text: 'Accepted: isolated drill d1 of b has already ended: Failed: the agent could not make the copy: no space left on device',
    });
  });

  it('cancel says what stopping does from each leg: the record and the copy are removed, nothing in production moved', () => {
    const none = {};
    expect(stopConsequence(copying('Copying'), none)).toBe(
      'nothing in production moved; the agent beside b deletes the copy of b it is making (no record was written yet)',
    );
    expect(stopConsequence(copying('Pointing'), none)).toBe(
      'nothing in production moved; drill.db.example.com is deleted, then the copy of b',
    );
    expect(stopConsequence(copying('Removing'), none)).toBe(
      'it is already deleting drill.db.example.com; the copy of b goes next',
    );
    expect(stopConsequence(copying('Cleaning'), none)).toBe('it is already removing the copy of b');
    // With the operator's own rules: a cancel while the canary writes to the copy.
    const writing = copying('Writing', { writingSince: ago(3), canaryWrites: 4 });
    const judged = judgeDrillRequest(policy({ drill: writing, phase: 'Drilling' }), cancel, [], NOW);
    expect(judged).toMatchObject({
      acts: true,
      text: 'would accept it: drill d1 stops: the record and the copy are removed: nothing in production moved; the canary stops, drill.db.example.com is deleted, then the copy of b',
    });
    expect(judged.plan?.status.drill).toMatchObject({
      leg: 'Removing',
      isolated: { verdict: { result: 'Cancelled' } },
    });
    // A second isolated run while one is in progress is refused before writing, naming it.
    const busy = apiOf(policy({ drill: writing }));
    return expect(drillRequestCommand(busy.api, { ...request, mode: 'Isolated' })).rejects.toThrow(
      'isolated drill d1 is in progress (leg Writing, a copy of b on port 5433): wait for it',
    );
  });

  it('history: the leg, since when, what it is at; the verdict once decided', () => {
    const spec = { drills: { isolated: { minCanaryWrites: 20 } } } as PolicyView['spec'];
    const line = (d: DrillState) => drillInProgress({ drill: d }, NOW, spec);
    expect(line(copying('Writing', { writingSince: ago(3), canaryWrites: 12 }))).toBe(
      'In progress: isolated drill d1, a copy of b on port 5433 through drill.db.example.com, leg Writing for 3s, 12 of 20 canary rows (started 10m ago, on request drill-run-1)',
    );
    expect(line(copying('Copying'))).toMatch(/, leg Copying for 10m \(started 10m ago/);
    expect(
      line(copying('Pointing', { copyReadyAt: ago(8), pointedAt: ago(7), problem: 'SERVFAIL' })),
    ).toMatch(
      /, leg Pointing for 8s, written 7s ago, not answered yet by the authoritative servers, retrying: SERVFAIL \(/,
    );
    // Status does not time when Removing began: no "for".
    expect(
      line(copying('Removing', { verdict: { result: 'Cancelled', reason: 'cancelled by request x' } })),
    ).toMatch(
      /, leg Removing \(started 10m ago, on request drill-run-1\); verdict Cancelled: cancelled by request x$/,
    );
    expect(line(copying('Cleaning', { removedAt: ago(2), cleaningSince: ago(2) }))).toMatch(
      /, leg Cleaning for 2s \(/,
    );
  });

  it('the table: a MODE column, and the copy figures in the columns that fit (COPY only when a copy ran)', () => {
    const base = {
      kind: 'Switchover' as const,
      trigger: 'Drill' as const,
      from: 'a',
      to: 'b',
      epoch: 4,
      startedAt: '2026-03-01T03:00:00Z',
      completedAt: '2026-03-01T03:01:12Z',
    };
    const lines = drillTable([
      {
        ...base,
        id: 'd3',
        result: 'Succeeded',
        mode: 'Isolated',
        isolated: {
          cluster: 'b',
          recordName: 'drill.db.example.com',
          durationSeconds: 72,
          cleanedUp: true,
          copySeconds: 41.2,
          copyBytes: 52_428_800,
          promotionSeconds: 0.84,
          freshnessSeconds: 0.31,
          dnsVerifySeconds: 0.2,
          canaryWrites: 20,
        },
        reason: 'a copy of b became a primary and took 20 canary rows through drill.db.example.com',
      },
      {
        ...base,
        id: 'd2',
        result: 'Failed',
        mode: 'Isolated',
        isolated: {
          cluster: 'b',
          recordName: 'drill.db.example.com',
          durationSeconds: 200,
          cleanedUp: false,
        },
        reason: 'the agent beside b stopped reporting',
      },
      { ...base, id: 'd1', result: 'Succeeded', rtoSeconds: 1.4, lostWrites: 0, dnsVerifySeconds: 0.3 },
    ]).split('\n');
    const cells = (line: string | undefined) => line?.split(/\s{2,}/);
    expect(cells(lines[0])).toEqual([
      'ID',
      'MODE',
      'RESULT',
      'FROM→TO',
      'STARTED',
      'DURATION',
      'RTO OUT',
      'RTO BACK',
      'RPO',
      'DNS',
      'COPY',
      'REASON',
    ]);
    expect(cells(lines[1])).toEqual([
      'd3',
      'Isolated',
      'Succeeded',
      'copy of b',
      '2026-03-01 03:00:00Z',
      '1m12s',
      '0.8s (promotion)',
      '-',
      '0.3s old',
      '0.2s',
      '20 rows, cleaned up',
      'a copy of b became a primary and took 20 canary rows throug…',
    ]);
    expect(cells(lines[2])).toEqual([
      'd2',
      'Isolated',
      'Failed',
      'copy of b',
      '2026-03-01 03:00:00Z',
      '1m12s',
      '-',
      '-',
      '-',
      '-',
      '0 rows, NOT cleaned up',
      'the agent beside b stopped reporting',
    ]);
    expect(cells(lines[3])).toEqual([
      'd1',
      'RoundTrip',
      'Succeeded',
      'a→b',
      '2026-03-01 03:00:00Z',
      '1m12s',
      '1.4s',
      '-',
      '0',
      '0.3s',
      '-',
    ]);
  });

  it('describeDrills (history and drill history) carry the isolated drill in progress', () => {
    const p = policy({ drill: copying('Writing', { writingSince: ago(3), canaryWrites: 2 }) });
    const lines = describeDrills({ spec: undefined, status: p.status }, NOW);
    expect(lines[0]).toMatch(/^In progress: isolated drill d1, .* leg Writing for 3s, 2 canary rows \(/);
  });
});
