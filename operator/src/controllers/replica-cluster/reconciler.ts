/**
 * The ReplicaCluster reconciler: probes the database at its policy's interval and records role,
 * health, lag and conditions. Probing is the reconcile itself: it returns `requeueAfter(interval)`,
 * so nothing sleeps and a restarted operator simply probes again.
 *
 * Status is written when something a person cares about changes (role, health, a condition, lag
 * moving noticeably) or every five minutes otherwise: the operator decides from its in-memory probes, and
 * writing every probe of every cluster would load the API server for nothing.
 */
import { isDeepStrictEqual } from 'node:util';
import {
  failoverPolicySpec,
  failoverPolicyStatus,
  type ReplicaClusterSpec,
  type ReplicaClusterStatus,
  replicaClusterSpec,
  replicaClusterStatus,
} from '../../api/v1alpha1/index.ts';
import { parseOnce } from '../../api/validate.ts';
import { type ConditionInput, changedConditions, setCondition } from '../../runtime/conditions.ts';
import { type EventInput, eventOf } from '../../runtime/events.ts';
import { keyParts, objectKey } from '../../runtime/informer.ts';
import type { KubeObject } from '../../runtime/kube-client.ts';
import { settledWithin } from '../../runtime/promises.ts';
import { done, type ReconcileResult, requeueAfter } from '../../runtime/reconcile.ts';
import { timestamp } from '../../runtime/time.ts';
import type { OperatorContext } from '../context.ts';
import { readOwnStatus, readSpec } from '../read-object.ts';
import { replicaClusterType } from '../resources.ts';
import { writeStatus } from '../status-writer.ts';
import { type AppEndpointsRecord, appCheckTimeoutMs } from './app-endpoints.ts';
import { lagStepBytes, lagStepSeconds } from './lag.ts';
import type { ProbeRecord } from './probes.ts';

// Status is for people; decisions use the in-memory probes. A cluster that is not Healthy has its
// figures (failures in a row, lag) rewritten every few minutes for whoever watches it recover; a
// Healthy one's status changes only when what it says does, so a healthy fleet costs the API
// server nothing between changes (the operator's Lease and metrics show it is alive).
const UNHEALTHY_REFRESH_MS = 5 * 60_000;
const DEFAULT_INTERVAL_S = 5;
/**
 * How long a reconcile waits for its probe. A database that answers, or refuses, does so well
 * within it; a silent one (a lost region drops packets) is first judged at the probe's deadline,
 * a whole interval on. Waited for, it held a worker that long, and with more silent clusters than
 * workers every other cluster's probe queued behind them: 2,000 silent clusters on 16 workers
 * would take 10 minutes to get through once. Past this wait the reconcile returns, and the verdict
 * brings the cluster back.
 */
export const PROBE_WAIT_MS = 200;
/**
 * A cluster whose last probe took longer than this is not waited for at all. A database in another
 * region answers a round trip later (tens to hundreds of milliseconds), and waited for, each probe
 * held a worker that long: at a 100 ms round trip the 16 workers probed ~155 clusters a second,
 * where 1,000 clusters at a 5 s interval need 200 (`bench/probe-cost.ts`, BENCH_PROBE_RTT_MS).
 * Such a probe's verdict wakes its cluster, as a late one does; a nearby database (a millisecond
 * or two) is still summarized in the reconcile that probed it, without a second one.
 */
export const QUICK_PROBE_MS = 20;

/** How long a reconcile waits for the probe it starts, from how long the cluster's last one took. */
export function probeWaitMs(last: ProbeRecord | undefined): number {
  if (!last) return PROBE_WAIT_MS;
  return last.observation.durationMs <= QUICK_PROBE_MS ? PROBE_WAIT_MS : 0;
}

interface PolicyView {
  name: string;
  intervalSeconds: number;
  /** As the policy's status records it; undefined until the operator has learned it. */
  activePrimary: string | undefined;
  epoch: number;
  rpo: { maxLagSeconds: number; maxLagBytes: number };
}

/**
 * The policy this cluster belongs to (the first of policiesOf: claims.ts), as far as probing needs
 * it. Never a younger policy naming it too: its epoch in the heartbeat row would be another's.
 */
export function policyView(ctx: OperatorContext, clusterKey: string): PolicyView | undefined {
  const policy = ctx.policiesOf(clusterKey)[0];
  const spec = policy && parseOnce(failoverPolicySpec, policy.spec);
  if (!policy || !spec?.ok) return undefined;
  const status = parseOnce(failoverPolicyStatus, policy.status ?? {});
  // Never spec.primary: after a failover it names a former primary, and writing the heartbeat
  // there or measuring lag against it would be wrong. Until the policy has learned who is
  // primary (discovery), nothing is measured against anyone.
  return {
    name: policy.metadata.name,
    intervalSeconds: spec.value.detection.probeIntervalSeconds,
    activePrimary: status.ok ? status.value.activePrimary : undefined,
    epoch: (status.ok ? status.value.epoch : undefined) ?? 0,
    rpo: spec.value.promotion.rpo,
  };
}

/** The reconcile, and what drops its memory of a cluster probed elsewhere now (another shard's). */
export type ReplicaClusterReconciler = ((key: string) => Promise<ReconcileResult>) & {
  forget(key: string): void;
};

export function reconcileReplicaCluster(ctx: OperatorContext): ReplicaClusterReconciler {
  /**
   * Probes that settled after their reconcile stopped waiting (probeWaitMs): the reconcile they
   * wake summarizes this verdict instead of probing again, which for work that takes most of an
   * interval (an application endpoint that hangs to its timeout) would start a new wait each time
   * and never write status.
   */
  const late = new Map<string, LateOutcome>();
  /** What each cluster's policies last saw of it (whatPoliciesSee), to wake them on a change. */
  const policyViews = new Map<string, string>();
  const reconcile = async (key: string): Promise<ReconcileResult> => {
    const object = ctx.clusters.get(key);
    // Taken whatever happens next, so an entry never outlives one more look at its cluster.
    const stored = late.get(key);
    late.delete(key);
    if (!object) {
      policyViews.delete(key);
      await ctx.probes.forget(key);
      ctx.appChecks.forget(key);
      // Its series go with it: a stale `failover_cluster_up 0` would alert for ever.
      const { namespace, name } = keyParts(key);
      ctx.metrics.clusterSeries.forget({ namespace, cluster: name });
      return done();
    }
    const now = ctx.clock.now();
    const generation = object.metadata.generation;
    const previous = readOwnStatus(ctx.events, replicaClusterStatus, object);
    const spec = readSpec(replicaClusterSpec, object);
    if (!spec.ok) {
      const status: ReplicaClusterStatus = {
        ...previous,
        observedGeneration: generation,
        conditions: setCondition(
          previous.conditions,
          { type: 'SpecValid', status: 'False', reason: 'InvalidSpec', message: spec.message },
          generation,
          now,
        ),
      };
      announce(ctx, object, previous, status);
      await writeStatus(
        ctx.client,
        replicaClusterType,
        object,
        object.status as ReplicaClusterStatus | undefined,
        withAgentReport(object, status),
        ctx.clusters,
      );
      return done();
    }

    const namespace = object.metadata.namespace ?? 'default';
    const policy = policyView(ctx, key);
    const interval = policy?.intervalSeconds ?? DEFAULT_INTERVAL_S;
    // Only the verdict of this very object and spec, taken within the interval (within two when
    // a backlog delayed its wake and no probe came after it): not one from before a shard went
    // away and came back, a spec change, or a cluster made again by that name.
    const age = stored ? now.getTime() - stored.at.getTime() : Number.POSITIVE_INFINITY;
    const newest = ctx.probes.latest(key);
    const settled =
      stored &&
      stored.uid === object.metadata.uid &&
      stored.generation === generation &&
      (age < interval * 1000 || (age < interval * 2000 && (!newest || newest.at <= stored.outcome.record.at)))
        ? stored.outcome
        : undefined;
    // A cluster woken by a verdict too late to use is waited for again: not waiting, during a
    // longer backlog it would probe and be woken for ever.
    const waitMs = stored ? PROBE_WAIT_MS : probeWaitMs(newest);
    const probing = settled ? Promise.resolve(settled) : probeCluster(ctx, object, spec.spec, policy, now);
    const probed = await settledWithin(probing, waitMs);
    if (!probed) {
      const wake = () => ctx.enqueueCluster(key);
      void probing.then((outcome) => {
        late.set(key, { outcome, uid: object.metadata.uid, generation, at: ctx.clock.now() });
        wake();
      }, wake);
      return requeueAfter(interval * 1000);
    }
    // The record as kept since (a standby's lag is measured again when its primary is read).
    const kept = ctx.probes.latest(key);
    const record = kept && kept.at >= probed.record.at ? kept : probed.record;
    const { apps } = probed;

    const status = withAppEndpoints(
      summarize(previous, record, spec.spec, policy, generation, now),
      apps,
      generation,
      now,
    );
    // The policies are looked at again when what they decide from changed (failover-policy/quiet.ts).
    const seen = whatPoliciesSee(record, apps, budgetsOf(ctx, key));
    if (policyViews.get(key) !== seen) {
      policyViews.set(key, seen);
      ctx.enqueuePolicies(key);
    }
    exportMetrics(ctx, namespace, policy?.name ?? '', spec.spec.region, object.metadata.name, record, status);
    announce(ctx, object, previous, status);
    const why = whyWrite(previous, status, now, interval, policy?.rpo, record.lag?.walBytesPerSecond);
    if (why) {
      ctx.log.debug({ cluster: key, why }, 'writing status');
      await writeStatus(
        ctx.client,
        replicaClusterType,
        object,
        object.status as ReplicaClusterStatus | undefined,
        withAgentReport(object, status),
        ctx.clusters,
      );
    }
    return requeueAfter(interval * 1000);
  };
  return Object.assign(reconcile, {
    forget(key: string) {
      late.delete(key);
      policyViews.delete(key);
    },
  });
}

/** What a policy judges a standby's lag against. */
export interface LagBudget {
  intervalSeconds: number;
  rpo: { maxLagSeconds: number; maxLagBytes: number };
}

function budgetsOf(ctx: OperatorContext, clusterKey: string): LagBudget[] {
  return ctx.policiesOf(clusterKey).flatMap((policy) => {
    const spec = parseOnce(failoverPolicySpec, policy.spec);
    if (!spec.ok) return [];
    return [{ intervalSeconds: spec.value.detection.probeIntervalSeconds, rpo: spec.value.promotion.rpo }];
  });
}

/**
 * What the policies naming a cluster decide from in its probe's verdict (failover-policy/observe.ts
 * factsFromProbe, the operator's vote), as a string that changes when any of it does. Left out is
 * what moves with every probe while nothing happens: times, WAL positions, and small moves of the
 * lag. The lag is kept as the side of each policy's RPO budget it is on (and whether its seconds
 * are known), and in steps of half the smallest step a policy's status shows it by (shownLag).
 */
export function whatPoliciesSee(
  record: ProbeRecord,
  apps: AppEndpointsRecord | undefined,
  budgets: LagBudget[],
): string {
  const o = record.observation;
  const lag = record.lag;
  const step = Math.min(...budgets.map((b) => lagStepSeconds(b.intervalSeconds)));
  const secondsKnown = lag !== undefined && !Number.isNaN(lag.seconds);
  return JSON.stringify([
    o.reachable,
    o.role,
    record.server?.id,
    o.failure?.reason,
    record.consecutiveFailures,
    o.timeline,
    o.heartbeat?.epoch,
    o.heartbeat?.fencedEpoch,
    lag === undefined
      ? undefined
      : [
          secondsKnown,
          secondsKnown && Number.isFinite(step) ? Math.floor(lag.seconds / (step / 2)) : undefined,
          budgets.map((b) => [
            secondsKnown ? Math.sign(lag.seconds - b.rpo.maxLagSeconds) : undefined,
            Math.sign(lag.bytes - b.rpo.maxLagBytes),
          ]),
        ],
    apps?.checks.map((c) => [c.name, c.healthy]),
  ]);
}

type ProbeOutcome = { record: ProbeRecord; apps: AppEndpointsRecord | undefined };
/** A probe's outcome that came after its reconcile returned, and what it was taken of. */
type LateOutcome = {
  outcome: ProbeOutcome;
  uid: string | undefined;
  generation: number | undefined;
  at: Date;
};

/** One probe of the database, and of its application endpoints beside it (same interval floor). */
async function probeCluster(
  ctx: OperatorContext,
  object: KubeObject,
  spec: ReplicaClusterSpec,
  policy: PolicyView | undefined,
  now: Date,
): Promise<ProbeOutcome> {
  const key = objectKey(object);
  const namespace = object.metadata.namespace ?? 'default';
  const interval = policy?.intervalSeconds ?? DEFAULT_INTERVAL_S;
  const isActivePrimary = policy?.activePrimary === object.metadata.name;
  const lastApps = ctx.appChecks.latest(key);
  const appsDue = !lastApps || now.getTime() - lastApps.at.getTime() >= interval * 800;
  const probe = ctx.probes.probe({
    key,
    namespace,
    spec,
    activePrimaryKey: policy?.activePrimary
      ? objectKey({ metadata: { name: policy.activePrimary, namespace } })
      : undefined,
    ...(isActivePrimary && policy ? { heartbeatEpoch: policy.epoch } : {}),
    primaryMaxAgeMs: interval * 2000 + 1000,
    // 80 % of the interval: timers are not exact, but extra reconciles must not probe early.
    minIntervalMs: interval * 800,
    // Unanswered by the end of the interval: a failure (a silent database is not a slow one).
    timeoutMs: interval * 1000,
  });
  // No endpoints, and no record of any (the usual case): nothing to check beside the probe.
  if (!lastApps && !spec.appEndpoints?.length) return { record: await probe, apps: undefined };
  const [record, apps] = await Promise.all([
    probe,
    appsDue ? ctx.appChecks.check(key, spec.appEndpoints, appCheckTimeoutMs(interval)) : lastApps,
  ]);
  return { record, apps };
}

/** The status for one probe, keeping what the probe could not see (last lag, last reachable). */
export function summarize(
  previous: ReplicaClusterStatus,
  record: ProbeRecord,
  spec: ReplicaClusterSpec,
  policy: PolicyView | undefined,
  generation: number | undefined,
  now: Date,
): ReplicaClusterStatus {
  const obs = record.observation;
  const role = obs.reachable ? obs.role : 'Unknown';
  const interval = policy?.intervalSeconds ?? DEFAULT_INTERVAL_S;
  const lag = record.lag;
  const lagFresh = lag !== undefined && now.getTime() - lag.at.getTime() <= interval * 3000;
  const lagSeconds = lag && !Number.isNaN(lag.seconds) ? Math.round(lag.seconds * 100) / 100 : undefined;

  const conditions: ConditionInput[] = [
    { type: 'SpecValid', status: 'True', reason: 'Valid', message: 'spec is valid' },
    reachableCondition(obs, spec),
    replicatingCondition(obs, role, interval),
  ];
  if (role === 'Standby' && policy)
    conditions.push(
      lagCondition(policy, lagFresh && lag ? { bytes: lag.bytes, seconds: lagSeconds } : undefined),
    );
  const replicating = conditions.find((c) => c.type === 'Replicating')?.status === 'True';
  const withinBudget = conditions.find((c) => c.type === 'LagWithinBudget')?.status !== 'False';
  const health = !obs.reachable ? 'Unreachable' : replicating && withinBudget ? 'Healthy' : 'Degraded';

  let list = previous.conditions;
  for (const c of conditions) list = setCondition(list, c, generation, now);
  const status: ReplicaClusterStatus = {
    observedGeneration: generation,
    role,
    health,
    lastObservedTime: timestamp(now),
    consecutiveProbeFailures: record.consecutiveFailures,
    conditions: list,
  };
  if (record.lastReachableAt) status.lastReachableTime = timestamp(record.lastReachableAt);
  if (obs.timeline !== undefined) status.timeline = obs.timeline;
  else if (previous.timeline !== undefined) status.timeline = previous.timeline;
  if (obs.lsn) status.lsn = obs.lsn;
  // Kept while the API cannot be asked, but only under the spec it was learned for.
  const knownId =
    obs.databaseId ?? (previous.observedGeneration === generation ? previous.databaseId : undefined);
  if (knownId) status.databaseId = knownId;
  if (obs.heartbeat) status.epoch = obs.heartbeat.epoch;
  if (obs.heartbeat?.fencedEpoch !== undefined) status.fencedEpoch = obs.heartbeat.fencedEpoch;
  if (role === 'Standby' && lag) {
    status.replicationLagBytes = lag.bytes;
    if (lagSeconds !== undefined) status.replicationLagSeconds = lagSeconds;
    status.lagObservedTime = timestamp(lag.at);
  } else if (role === 'Primary') {
    status.replicationLagBytes = 0;
    status.replicationLagSeconds = 0;
  }
  return status;
}

function reachableCondition(obs: ProbeRecord['observation'], spec: ReplicaClusterSpec): ConditionInput {
  return obs.reachable
    ? {
        type: 'Reachable',
        status: 'True',
        reason: 'Connected',
        message: `${spec.connection.host}:${spec.connection.port} answered as ${obs.role}`,
      }
    : {
        type: 'Reachable',
        status: 'False',
        reason: obs.failure?.reason ?? 'Unreachable',
        message: obs.failure?.message ?? 'no answer',
      };
}

function replicatingCondition(
  obs: ProbeRecord['observation'],
  role: string,
  intervalSeconds: number,
): ConditionInput {
  if (!obs.reachable)
    return {
      type: 'Replicating',
      status: 'Unknown',
      reason: 'Unreachable',
      message: 'the database cannot be reached',
    };
  if (role === 'Standby') return standbyReplicating(obs, intervalSeconds);
  if (role !== 'Primary')
    return { type: 'Replicating', status: 'False', reason: role, message: `the database is in role ${role}` };
  // The operator's own writes do not wait (postgres-sql.ts COMMIT_LOCALLY); its clients' do.
  if (obs.commitsWaitFor !== undefined)
    return {
      type: 'Replicating',
      status: 'False',
      reason: 'SynchronousStandbyMissing',
      message: `commits wait for a synchronous standby (synchronous_standby_names = '${obs.commitsWaitFor}') and none is connected as one: clients' commits hang until one is, or the setting changes`,
    };
  const streaming = (obs.replicas ?? []).filter((r) => r.state === 'streaming').length;
  return streaming > 0
    ? {
        type: 'Replicating',
        status: 'True',
        reason: 'StandbysStreaming',
        message: `${streaming} standby connection(s) streaming`,
      }
    : {
        type: 'Replicating',
        status: 'False',
        reason: 'NoStandbyStreaming',
        message: 'no standby is streaming from this primary',
      };
}

/**
 * LagWithinBudget for a standby. Messages carry no live figures (they are in
 * status.replicationLag*): a message that changed with every probe would be an Event per probe.
 */
function lagCondition(
  policy: PolicyView,
  lag: { bytes: number; seconds: number | undefined } | undefined,
): ConditionInput {
  const budget = `the RPO budget of ${policy.rpo.maxLagSeconds} s / ${policy.rpo.maxLagBytes} bytes`;
  if (!policy.activePrimary || !lag)
    return {
      type: 'LagWithinBudget',
      status: 'Unknown',
      reason: 'PrimaryNotObserved',
      message: policy.activePrimary
        ? `lag needs a fresh observation of the primary ${policy.activePrimary}`
        : 'the policy has not learned which cluster is primary yet',
    };
  const within =
    lag.bytes <= policy.rpo.maxLagBytes &&
    (lag.seconds === undefined || lag.seconds <= policy.rpo.maxLagSeconds);
  return within
    ? {
        type: 'LagWithinBudget',
        status: 'True',
        reason: 'WithinBudget',
        message: `behind ${policy.activePrimary} by less than ${budget}`,
      }
    : {
        type: 'LagWithinBudget',
        status: 'False',
        reason: 'AboveBudget',
        message: `behind ${policy.activePrimary} by more than ${budget}`,
      };
}

/**
 * Replicating for a standby: replay not paused, and WAL still arriving. A receiver that stopped
 * streaming, or has heard nothing from the primary for a while (the operator's heartbeat makes
 * the primary write every probe interval), means the standby falls further behind every second,
 * whatever its last replayed position says.
 */
function standbyReplicating(obs: ProbeRecord['observation'], intervalSeconds: number): ConditionInput {
  if (obs.replayPaused)
    return {
      type: 'Replicating',
      status: 'False',
      reason: 'ReplayPaused',
      message: 'WAL replay is paused on this standby',
    };
  const receiver = obs.walReceiver;
  if (receiver && !receiver.streaming)
    return {
      type: 'Replicating',
      status: 'False',
      reason: 'NotStreaming',
      message: 'no WAL receiver is streaming from the primary',
    };
  const stalledAfter = Math.max(3 * intervalSeconds + 10, 30);
  if (receiver?.lastMessageAgeSeconds !== undefined && receiver.lastMessageAgeSeconds > stalledAfter)
    return {
      type: 'Replicating',
      status: 'False',
      reason: 'ReceiptStalled',
      message: `the WAL receiver has heard nothing from the primary for more than ${stalledAfter} s`,
    };
  return { type: 'Replicating', status: 'True', reason: 'Streaming', message: 'receiving and replaying WAL' };
}

/**
 * The application endpoints' last check in status, with the AppEndpointsHealthy condition; an
 * unhealthy application makes the cluster Degraded.
 */
function withAppEndpoints(
  status: ReplicaClusterStatus,
  apps: AppEndpointsRecord | undefined,
  generation: number | undefined,
  now: Date,
): ReplicaClusterStatus {
  if (!apps) {
    const { appEndpoints: _a, ...rest } = status;
    return { ...rest, conditions: (rest.conditions ?? []).filter((c) => c.type !== 'AppEndpointsHealthy') };
  }
  const failing = apps.checks.filter((c) => !c.healthy);
  const condition: ConditionInput = failing.length
    ? {
        type: 'AppEndpointsHealthy',
        status: 'False',
        reason: failing[0]?.reason ?? 'Unhealthy',
        message: `not healthy: ${failing.map((c) => c.name).join(', ')}`,
      }
    : {
        type: 'AppEndpointsHealthy',
        status: 'True',
        reason: 'Healthy',
        message: 'every application endpoint answers 2xx or 3xx',
      };
  return {
    ...status,
    ...(failing.length && status.health === 'Healthy' ? { health: 'Degraded' as const } : {}),
    appEndpoints: apps.checks.map((c) => ({
      name: c.name,
      healthy: c.healthy,
      ...(c.statusCode !== undefined ? { statusCode: c.statusCode } : {}),
      ...(c.reason ? { reason: c.reason } : {}),
    })),
    conditions: setCondition(status.conditions, condition, generation, now),
  };
}

/**
 * Whether a probe's status is worth a write. status.agent is not the operator's: it is read with
 * the rest (`previous`), never in what a probe computes (`next`), and a write carries it as it is.
 */
export function worthWriting(
  previous: ReplicaClusterStatus,
  next: ReplicaClusterStatus,
  now: Date,
  intervalSeconds: number,
  rpo?: PolicyView['rpo'],
  walBytesPerSecond?: number,
): boolean {
  return whyWrite(previous, next, now, intervalSeconds, rpo, walBytesPerSecond) !== undefined;
}

/**
 * What makes a probe's status worth a write, for the debug log; undefined when nothing does.
 * walBytesPerSecond: how fast the primary wrote when the lag was measured (lagStepBytes).
 */
export function whyWrite(
  previous: ReplicaClusterStatus,
  next: ReplicaClusterStatus,
  now: Date,
  intervalSeconds: number,
  rpo?: PolicyView['rpo'],
  walBytesPerSecond?: number,
): string | undefined {
  const strip = (s: ReplicaClusterStatus) => {
    const {
      lastObservedTime: _o,
      lastReachableTime: _r,
      lagObservedTime: _l,
      lsn: _n,
      replicationLagBytes: _b,
      replicationLagSeconds: _s,
      consecutiveProbeFailures: _f,
      agent: _a,
      ...rest
    } = s;
    return {
      ...rest,
      conditions: (rest.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason })),
    };
  };
  const [before, after] = [strip(previous), strip(next)];
  if (!isDeepStrictEqual(before, after)) {
    const fields = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
      (k) =>
        !isDeepStrictEqual((before as Record<string, unknown>)[k], (after as Record<string, unknown>)[k]),
    );
    return `changed: ${fields.join(', ')}`;
  }
  if (!previous.lastObservedTime) return 'first probe';
  if (
    next.health !== 'Healthy' &&
    now.getTime() - new Date(previous.lastObservedTime).getTime() >= UNHEALTHY_REFRESH_MS
  )
    return `not Healthy: figures refreshed every ${UNHEALTHY_REFRESH_MS / 60_000} min`;
  // A lag that becomes known (or unknown) is news, even when its value is 0.
  const known = (st: ReplicaClusterStatus) =>
    `${st.replicationLagBytes === undefined}/${st.replicationLagSeconds === undefined}`;
  if (known(previous) !== known(next)) return 'lag known or unknown';
  // A figure that crossed the budget is news even when LagWithinBudget already said so for the other measure.
  const beyond = (st: ReplicaClusterStatus) =>
    rpo
      ? `${(st.replicationLagBytes ?? 0) > rpo.maxLagBytes}/${(st.replicationLagSeconds ?? 0) > rpo.maxLagSeconds}`
      : '';
  if (beyond(previous) !== beyond(next)) return 'lag crossed the RPO budget';
  const bytes = Math.abs((next.replicationLagBytes ?? 0) - (previous.replicationLagBytes ?? 0));
  const secs = Math.abs((next.replicationLagSeconds ?? 0) - (previous.replicationLagSeconds ?? 0));
  // A growing failure count alone is not worth a write per probe: Reachable=False already says it.
  // Moves within the measure's resolution are not news (lagStepSeconds: the heartbeats';
  // lagStepBytes: the budget's step, or what the primary writes in 1.5 intervals); a crossing of
  // the budget changes LagWithinBudget, which is written above.
  if (bytes >= lagStepBytes(rpo?.maxLagBytes, (walBytesPerSecond ?? 0) * intervalSeconds))
    return `lag moved ${bytes} bytes`;
  if (secs >= lagStepSeconds(intervalSeconds)) return `lag moved ${secs} s`;
  return undefined;
}

/** Queues the Events of a status change (written after the reconcile, never waited for). */
function announce(
  ctx: OperatorContext,
  object: KubeObject,
  previous: ReplicaClusterStatus,
  next: ReplicaClusterStatus,
): void {
  const news: EventInput[] = [];
  for (const c of changedConditions(previous.conditions, next.conditions ?? [])) {
    const before = previous.conditions?.find((p) => p.type === c.type);
    if (!before && c.status === 'True') continue; // first observation of a healthy state is not news
    news.push({
      type: c.status === 'True' ? 'Normal' : 'Warning',
      reason: `${c.type}${c.status === 'True' ? '' : c.status === 'False' ? 'Lost' : 'Unknown'}`.replace(
        /^SpecValidLost$/,
        'InvalidSpec',
      ),
      action: 'Probe',
      note: `${c.reason}: ${c.message}`,
    });
  }
  const [first] = news;
  // A new cluster's first findings are one Event, not one per condition.
  if (!previous.conditions?.length && first && news.length > 1)
    void ctx.events.record(
      object,
      eventOf(first.type, first.reason, 'Probe', news.map((e) => `${e.reason} ${e.note}`).join('; ')),
    );
  else for (const e of news) void ctx.events.record(object, e);
  if (previous.role && next.role && previous.role !== next.role && next.role !== 'Unknown') {
    void ctx.events.record(object, {
      type: 'Normal',
      reason: 'RoleChanged',
      action: 'Probe',
      note: `role changed from ${previous.role} to ${next.role}`,
    });
  }
}

function exportMetrics(
  ctx: OperatorContext,
  namespace: string,
  policy: string,
  region: string,
  cluster: string,
  record: ProbeRecord,
  status: ReplicaClusterStatus,
): void {
  const labels = { namespace, policy, region, cluster };
  ctx.metrics.clusterUp.set(labels, record.observation.reachable ? 1 : 0);
  // Lag series exist only for a standby: a stale 0 for a former standby (now primary, fenced or
  // gone) would read as "perfectly in sync".
  if (status.role === 'Standby' && status.replicationLagBytes !== undefined) {
    ctx.metrics.replicationLagBytes.set(labels, status.replicationLagBytes);
    if (status.replicationLagSeconds !== undefined)
      ctx.metrics.replicationLagSeconds.set(labels, status.replicationLagSeconds);
    else ctx.metrics.replicationLagSeconds.remove(labels);
  } else {
    ctx.metrics.replicationLagBytes.remove(labels);
    ctx.metrics.replicationLagSeconds.remove(labels);
  }
}

/** status.agent is the database agent's to write: the operator's status writes keep it as it is. */
function withAgentReport(object: KubeObject, status: ReplicaClusterStatus): ReplicaClusterStatus {
  const agent = (object.status as { agent?: ReplicaClusterStatus['agent'] } | undefined)?.agent;
  return agent ? { ...status, agent } : status;
}
