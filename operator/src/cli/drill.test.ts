/**
 * The drill commands' own logic, without an API server: the request and its patch, what the
 * operator's decide() makes of a request (the dry run and the diagnosis of an unanswered one),
 * how an answer reads, and the history table. The executable against a real API server is
 * tested in test/integration/kubectl-plugin.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type {
  DrillReport,
  DrillRequest,
  DrillState,
  FailoverPolicyStatus,
  Operation,
  ReplicaClusterStatus,
} from '../api/v1alpha1/index.ts';
import { ApiError, type FailoverApi } from './api.ts';
import {
  describeAnswer,
  drillInProgress,
  drillRequestCommand,
  drillRequestId,
  drillRequestPatch,
  drillTable,
  judgeDrillRequest,
  lostOf,
  parseTimeout,
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

/** A policy as the plugin reads it: a primary and a standby, both with a database agent. */
function policy(
  status: FailoverPolicyStatus = {},
  clusters: Record<string, ReplicaClusterStatus> = { a: primary(), b: standby() },
): PolicyView {
  return {
    namespace: 'shop',
    name: 'orders',
    object: {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name: 'orders' },
      spec: rawSpec,
    },
    spec: undefined,
    status: { phase: 'Healthy', activePrimary: 'a', epoch: 4, ...status },
    clusters: new Map(Object.entries(clusters)),
    clusterSpecs: new Map(),
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
    });
    expect(drillRequestPatch({ ...run, reason: 'quarterly', requestedBy: 'alice' })).toEqual({
      id: 'drill-run-1',
      action: 'Run',
      reason: 'quarterly',
      requestedBy: 'alice',
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
    expect(cells(lines[3])?.slice(0, 5)).toEqual([
      'drill-20260215030000',
      'Aborted',
      'a→-',
      '2026-03-01 03:00:00Z',
      '0s',
    ]);
    // A report from before the canary: the operator's RTO, lost writes without a total.
    expect(cells(lines[4])).toEqual([
      'drill-old',
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
