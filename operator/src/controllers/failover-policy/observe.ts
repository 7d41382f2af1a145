/**
 * observe: gathers what decide needs — the operator's own probe of each cluster, and the fresh
 * votes of every observer on the active primary — without judging any of it.
 *
 * Two sources for cluster facts: the operator uses its in-memory probes (freshest), while a
 * reader outside the operator (the kubectl plugin's dry run) uses what ReplicaCluster status says.
 */
import {
  type AgentReport,
  agentReport,
  type FailoverObservationSpec,
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  type ReplicaClusterSpec,
  type ReplicaClusterStatus,
} from '../../api/v1alpha1/index.ts';
import { parseOnce } from '../../api/validate.ts';
import {
  makesDrillCopies,
  rejoinsAfterSwitchover,
  reprotectsItself,
} from '../../providers/database/capabilities.ts';
import { type AppEndpointsRecord, appHealth } from '../replica-cluster/app-endpoints.ts';
import type { ProbeRecord } from '../replica-cluster/probes.ts';
import type { ClusterFacts, DecideInput, DnsFacts, Vote } from './facts.ts';
import { policyClusters } from './facts.ts';

/** The operator itself counts as one observer, under this name. */
export const OPERATOR_OBSERVER = 'operator';

/** What the application endpoints' last check says, for a cluster that has endpoints. */
function appFacts(
  spec: Pick<ReplicaClusterSpec, 'appEndpoints'> | undefined,
  apps: AppEndpointsRecord | undefined,
): Pick<ClusterFacts, 'appEndpoints' | 'unhealthyAppEndpoints'> {
  if (!spec?.appEndpoints?.length) return {};
  const health = appHealth(apps);
  if (!health || !apps) return { appEndpoints: 'Unknown' };
  const unhealthy = apps.checks.filter((c) => !c.healthy).map((c) => c.name);
  return { appEndpoints: health, ...(unhealthy.length ? { unhealthyAppEndpoints: unhealthy } : {}) };
}

/** What a cluster's provider and agent add to its facts. */
function capabilityFacts(
  spec: Pick<ReplicaClusterSpec, 'provider'> | undefined,
  agent: AgentReport | undefined,
): Pick<ClusterFacts, 'rejoinsAfterSwitchover' | 'reprotectsItself' | 'drillCopiesByProvider' | 'agent'> {
  return {
    ...(spec && rejoinsAfterSwitchover(spec) ? { rejoinsAfterSwitchover: true } : {}),
    ...(spec && reprotectsItself(spec) ? { reprotectsItself: true } : {}),
    // Self-managed clusters are copied by their agent, the others through the provider's API.
    ...(spec && spec.provider.type !== 'SelfManaged' && makesDrillCopies(spec)
      ? { drillCopiesByProvider: true }
      : {}),
    ...(agent ? { agent } : {}),
  };
}

export function factsFromProbe(
  name: string,
  spec: Pick<ReplicaClusterSpec, 'provider' | 'appEndpoints'> | undefined,
  record: ProbeRecord | undefined,
  apps?: AppEndpointsRecord,
  agent?: AgentReport,
): ClusterFacts {
  const exists = spec !== undefined;
  const rejoins = capabilityFacts(spec, agent);
  const app = appFacts(spec, apps);
  if (!record) return { name, exists, reachable: false, role: 'Unknown', unprobed: true, ...rejoins, ...app };
  const obs = record.observation;
  const lag = record.lag;
  return {
    name,
    exists,
    ...rejoins,
    ...app,
    reachable: obs.reachable,
    role: obs.reachable ? obs.role : 'Unknown',
    observedAt: record.at,
    ...(record.lastReachableAt ? { lastReachableAt: record.lastReachableAt } : {}),
    ...(record.server ? { server: record.server.id, serverSince: record.server.since } : {}),
    ...(record.server?.timeline !== undefined ? { serverTimeline: record.server.timeline } : {}),
    ...(obs.reachable && obs.heartbeat ? { heartbeatEpoch: obs.heartbeat.epoch } : {}),
    ...(obs.reachable && obs.heartbeat?.fencedEpoch !== undefined
      ? { fencedEpoch: obs.heartbeat.fencedEpoch }
      : {}),
    ...(obs.reachable && obs.role === 'Standby' && obs.lsn
      ? {
          position: {
            replayLsn: obs.lsn,
            ...(obs.receiveLsn ? { receiveLsn: obs.receiveLsn } : {}),
            ...(obs.timeline !== undefined ? { timeline: obs.timeline } : {}),
          },
        }
      : {}),
    ...(lag ? { lagBytes: lag.bytes, lagObservedAt: lag.at } : {}),
    ...(lag && !Number.isNaN(lag.seconds) ? { lagSeconds: lag.seconds } : {}),
  };
}

export function factsFromStatus(
  name: string,
  status: ReplicaClusterStatus | undefined,
  spec?: Pick<ReplicaClusterSpec, 'provider'>,
): ClusterFacts {
  if (!status) return { name, exists: false, reachable: false, role: 'Unknown' };
  const reachable = status.conditions?.find((c) => c.type === 'Reachable')?.status === 'True';
  const unhealthy = status.appEndpoints?.filter((a) => !a.healthy).map((a) => a.name) ?? [];
  return {
    name,
    exists: true,
    ...capabilityFacts(spec, status.agent),
    ...(status.appEndpoints?.length
      ? {
          appEndpoints: unhealthy.length ? 'Unhealthy' : 'Healthy',
          ...(unhealthy.length ? { unhealthyAppEndpoints: unhealthy } : {}),
        }
      : {}),
    reachable,
    role: reachable ? (status.role ?? 'Unknown') : 'Unknown',
    ...(status.lastObservedTime ? { observedAt: new Date(status.lastObservedTime) } : { unprobed: true }),
    ...(status.lastReachableTime ? { lastReachableAt: new Date(status.lastReachableTime) } : {}),
    ...(reachable && status.epoch !== undefined ? { heartbeatEpoch: status.epoch } : {}),
    ...(reachable && status.fencedEpoch !== undefined ? { fencedEpoch: status.fencedEpoch } : {}),
    ...(status.replicationLagBytes !== undefined ? { lagBytes: status.replicationLagBytes } : {}),
    ...(status.replicationLagSeconds !== undefined ? { lagSeconds: status.replicationLagSeconds } : {}),
    ...(status.lagObservedTime ? { lagObservedAt: new Date(status.lagObservedTime) } : {}),
  };
}

export function voteFromProbe(record: ProbeRecord | undefined): Vote[] {
  if (!record) return [];
  return [
    {
      observer: OPERATOR_OBSERVER,
      observedAt: record.at,
      reachable: record.observation.reachable,
      consecutiveFailures: record.consecutiveFailures,
      ...(record.lastReachableAt ? { lastSeenAt: record.lastReachableAt } : {}),
      ...(record.observation.failure ? { failureReason: record.observation.failure.reason } : {}),
    },
  ];
}

export function voteFromStatus(status: ReplicaClusterStatus | undefined): Vote[] {
  if (!status?.lastObservedTime) return [];
  const condition = status.conditions?.find((c) => c.type === 'Reachable');
  const reachable = condition?.status === 'True';
  return [
    {
      observer: OPERATOR_OBSERVER,
      observedAt: new Date(status.lastObservedTime),
      reachable,
      consecutiveFailures: status.consecutiveProbeFailures ?? 0,
      // Reachable=False carries the failure's reason (replica-cluster reconciler).
      ...(!reachable && condition ? { failureReason: condition.reason } : {}),
    },
  ];
}

/** Each observer's view of one cluster, from the FailoverObservation objects of a policy. */
export function votesFromObservations(
  observations: FailoverObservationSpec[],
  policy: string,
  cluster: string,
): Vote[] {
  return observations.flatMap((o) => {
    if (o.policy !== policy || o.observer === OPERATOR_OBSERVER) return [];
    const probe = o.clusters.find((c) => c.name === cluster);
    if (!probe) return [];
    return [
      {
        observer: o.observer,
        observedAt: new Date(o.observedAt),
        reachable: probe.reachable,
        consecutiveFailures: probe.consecutiveFailures,
        ...(probe.lastSuccessTime ? { lastSeenAt: new Date(probe.lastSuccessTime) } : {}),
        ...(probe.failureReason ? { failureReason: probe.failureReason } : {}),
      },
    ];
  });
}

export interface GatherSources {
  policyName: string;
  spec: FailoverPolicySpec;
  status: FailoverPolicyStatus;
  facts: (name: string) => ClusterFacts;
  operatorVote: (activePrimary: string) => Vote[];
  observations: FailoverObservationSpec[];
  now: Date;
  dnsTargets?: Record<string, string | undefined>;
  dnsOwner?: string;
  dns?: DnsFacts;
}

export function gatherInput(src: GatherSources): DecideInput {
  const active = src.status.activePrimary;
  const clusters: Record<string, ClusterFacts> = {};
  for (const name of policyClusters(src.spec)) clusters[name] = src.facts(name);
  return {
    spec: src.spec,
    status: src.status,
    clusters,
    // Votes are about the primary status names; until it is known there is nothing to judge.
    votes: active
      ? [...src.operatorVote(active), ...votesFromObservations(src.observations, src.policyName, active)]
      : [],
    now: src.now,
    ...(src.dnsTargets ? { dnsTargets: src.dnsTargets } : {}),
    ...(src.dnsOwner ? { dnsOwner: src.dnsOwner } : {}),
    ...(src.dns ? { dns: src.dns } : {}),
  };
}

/** The agent report in a ReplicaCluster's status, when it parses. */
export function agentReportOf(object: { [key: string]: unknown } | undefined): AgentReport | undefined {
  const agent = (object?.status as { agent?: unknown } | undefined)?.agent;
  // No agent, the usual case: nothing to parse (a failed parse builds an error every time).
  if (agent === undefined) return undefined;
  const parsed = parseOnce(agentReport, agent);
  return parsed.ok ? parsed.value : undefined;
}
