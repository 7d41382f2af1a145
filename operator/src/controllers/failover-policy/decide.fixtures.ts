/**
 * Fixtures for the decision tests: a policy of three clusters (a primary `a`, standbys `b` and
 * `c`), facts and votes at a fixed time, and `evaluate`, which runs decide and summary the way the
 * reconciler does (without a side effect) so tests read the status people would see.
 */
import {
  type FailoverPolicyStatus,
  failoverPolicySpec,
  type Operation,
  type OperationReport,
} from '../../api/v1alpha1/index.ts';
import { setCondition } from '../../runtime/conditions.ts';
import { decide, type Plan } from './decide.ts';
import type { ClusterFacts, DecideInput, Vote } from './facts.ts';
import { clustersResolvedWith } from './one-server.ts';
import { readyCondition, type Summary, summarize } from './summary.ts';

export const NOW = new Date('2026-03-02T10:00:00Z');
export const ago = (s: number) => new Date(NOW.getTime() - s * 1000);

export const baseSpec = {
  primary: 'a',
  standbys: ['b', 'c'],
  dns: {
    provider: { type: 'Route53', route53: { hostedZoneId: 'Z1' } },
    zone: 'example.com',
    name: 'db.example.com',
  },
  detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 2 },
  promotion: { rpo: { maxLagSeconds: 10, maxLagBytes: 1_000_000 }, cooldownSeconds: 600 },
};
export const spec = (over: Record<string, unknown> = {}) =>
  failoverPolicySpec.parse({ ...baseSpec, ...over });

export const primaryUp = (name = 'a', epoch = 4): ClusterFacts => ({
  name,
  exists: true,
  reachable: true,
  role: 'Primary',
  observedAt: ago(0.5),
  lastReachableAt: ago(0.5),
  heartbeatEpoch: epoch,
});
export const gone = (name = 'a', lastSeenAgo = 5): ClusterFacts => ({
  name,
  exists: true,
  reachable: false,
  role: 'Unknown',
  observedAt: ago(0.5),
  lastReachableAt: ago(lastSeenAgo),
});
export const standby = (
  name: string,
  lagSeconds = 1,
  lagBytes = 1000,
  measuredAgo = 4,
  epoch = 4,
): ClusterFacts => ({
  name,
  exists: true,
  reachable: true,
  role: 'Standby',
  observedAt: ago(0.5),
  lastReachableAt: ago(0.5),
  heartbeatEpoch: epoch,
  lagSeconds,
  lagBytes,
  lagObservedAt: ago(measuredAgo),
});
/** A cluster this process has not probed yet (as just after a restart). */
export const unprobed = (name: string): ClusterFacts => ({
  name,
  exists: true,
  reachable: false,
  role: 'Unknown',
  unprobed: true,
});
export const fenced = (name: string, epoch = 4): ClusterFacts => ({
  ...primaryUp(name, epoch),
  role: 'Fenced',
});

export const down = (observer: string, failures = 3, ageSeconds = 1, lastSeenAgo?: number): Vote => ({
  observer,
  observedAt: ago(ageSeconds),
  reachable: false,
  consecutiveFailures: failures,
  ...(lastSeenAgo !== undefined ? { lastSeenAt: ago(lastSeenAgo) } : {}),
});
export const up = (observer: string, ageSeconds = 1): Vote => ({
  observer,
  observedAt: ago(ageSeconds),
  reachable: true,
  consecutiveFailures: 0,
  lastSeenAt: ago(ageSeconds),
});

export const DNS_TARGETS = { a: 'a.db.internal', b: 'b.db.internal', c: 'c.db.internal' };
export const OWNER = 'ns/orders';

export type DecideInputLike = DecideInput;

export type InputOver = Partial<DecideInput> & { specOver?: Record<string, unknown> };

export function input(over: InputOver = {}): DecideInput {
  const { specOver, ...rest } = over;
  return {
    spec: spec(specOver),
    status: { activePrimary: 'a', epoch: 4 },
    clusters: { a: primaryUp(), b: standby('b'), c: standby('c') },
    votes: [up('operator'), up('region-b'), up('region-c')],
    now: NOW,
    dnsTargets: DNS_TARGETS,
    dnsOwner: OWNER,
    ...rest,
  };
}

export const outage = (over: InputOver = {}) =>
  input({
    clusters: { a: gone(), b: standby('b'), c: standby('c') },
    votes: [down('operator'), down('region-b'), down('region-c')],
    ...over,
  });

export const inProgress = (step: Operation['step'], over: Partial<Operation> = {}): Operation => ({
  id: 'failover-e5-x',
  kind: 'Failover',
  trigger: 'Automatic',
  from: 'a',
  to: 'b',
  epoch: 5,
  step,
  startedAt: ago(10).toISOString(),
  stepStartedAt: ago(5).toISOString(),
  ...over,
});

/** A finished operation as status.history records it: a failover of `a` to `b` that ended 1 s ago. */
export const finished = (over: Partial<OperationReport> = {}): OperationReport => ({
  id: 'failover-e5-x',
  kind: 'Failover',
  trigger: 'Automatic',
  from: 'a',
  to: 'b',
  epoch: 5,
  result: 'Succeeded',
  startedAt: ago(30).toISOString(),
  completedAt: ago(1).toISOString(),
  ...over,
});

export interface Evaluation {
  plan: Plan;
  summary: Summary;
  /** The status the reconciler would write (no side effect run). */
  status: FailoverPolicyStatus;
  condition(type: string): { status: string; reason: string; message: string } | undefined;
  /** The operation this plan started, if it started one. */
  started: Operation | undefined;
}

export function evaluate(i: DecideInput): Evaluation {
  const plan = decide(i);
  const summary = summarize(i, plan, plan.status, { ...(plan.dnsReady ? { dnsReady: plan.dnsReady } : {}) });
  let conditions = plan.status.conditions;
  // What the reconciler adds itself: the spec parsed, the clusters exist (and are distinct servers).
  conditions = setCondition(
    conditions,
    { type: 'SpecValid', status: 'True', reason: 'Valid', message: '' },
    1,
    i.now,
  );
  conditions = setCondition(
    conditions,
    clustersResolvedWith(
      { type: 'ClustersResolved', status: 'True', reason: 'AllFound', message: '' },
      plan.oneServer,
    ),
    1,
    i.now,
  );
  for (const c of summary.conditions) conditions = setCondition(conditions, c, 1, i.now);
  conditions = setCondition(conditions, readyCondition(conditions ?? [], plan.status), 1, i.now);
  const status = { ...plan.status, phase: summary.phase, conditions };
  const before = i.status.currentOperation;
  const after = plan.status.currentOperation;
  return {
    plan,
    summary,
    status,
    condition: (type) => conditions?.find((c) => c.type === type),
    started: after && after.id !== before?.id ? after : undefined,
  };
}
