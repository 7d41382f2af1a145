/**
 * A FailoverPolicy with the ReplicaClusters it names, read and parsed with the operator's own
 * schemas, so the plugin sees defaults and statuses exactly as the operator does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type FailoverObservationSpec,
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  failoverObservationSpec,
  failoverPolicySpec,
  failoverPolicyStatus,
  type ReplicaClusterSpec,
  type ReplicaClusterStatus,
  replicaClusterSpec,
  replicaClusterStatus,
} from '../api/v1alpha1/index.ts';
import type { DecideInput } from '../controllers/failover-policy/facts.ts';
import { factsFromStatus, gatherInput, voteFromStatus } from '../controllers/failover-policy/observe.ts';
import type { KubeObject } from '../runtime/kube-client.ts';
import {
  ApiError,
  type FailoverApi,
  failoverObservationType,
  failoverPolicyType,
  replicaClusterType,
} from './api.ts';

export interface PolicyView {
  namespace: string;
  name: string;
  object: KubeObject;
  /** Undefined when the stored spec does not parse (an object older than a rule). */
  spec: FailoverPolicySpec | undefined;
  specProblem?: string;
  status: FailoverPolicyStatus;
  /** Status of each ReplicaCluster the policy names; undefined for one that does not exist. */
  clusters: Map<string, ReplicaClusterStatus | undefined>;
  /** Spec of each ReplicaCluster the policy names (its provider decides who reprotects it). */
  clusterSpecs: Map<string, ReplicaClusterSpec | undefined>;
  /** Each ReplicaCluster the policy names as stored, for export. */
  clusterObjects: Map<string, KubeObject | undefined>;
}

/** The ReplicaCluster that is primary now: the operator's record, else the spec's starting point. */
export const activePrimary = (p: PolicyView): string | undefined => p.status.activePrimary ?? p.spec?.primary;

/** Every cluster of the policy except the active primary, in order of preference. */
export function standbysOf(p: PolicyView): string[] {
  if (!p.spec) return [];
  const active = activePrimary(p);
  return [p.spec.primary, ...p.spec.standbys].filter((n) => n !== active);
}

function parseStatus<T>(schema: { safeParse(v: unknown): { success: boolean; data?: T } }, raw: unknown): T {
  const parsed = schema.safeParse(raw ?? {});
  return (parsed.success ? parsed.data : schema.safeParse({}).data) as T;
}

export function policyView(object: KubeObject, clusters: KubeObject[]): PolicyView {
  const namespace = object.metadata.namespace ?? 'default';
  const spec = failoverPolicySpec.safeParse(object.spec);
  const names = spec.success ? [spec.data.primary, ...spec.data.standbys] : [];
  const byName = new Map(
    clusters.filter((c) => c.metadata.namespace === namespace).map((c) => [c.metadata.name, c]),
  );
  return {
    namespace,
    name: object.metadata.name,
    object,
    spec: spec.success ? spec.data : undefined,
    ...(spec.success
      ? {}
      : { specProblem: spec.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ') }),
    status: parseStatus<FailoverPolicyStatus>(failoverPolicyStatus, object.status),
    clusters: new Map(
      names.map((n) => {
        const c = byName.get(n);
        return [n, c ? parseStatus<ReplicaClusterStatus>(replicaClusterStatus, c.status) : undefined];
      }),
    ),
    clusterSpecs: new Map(
      names.map((n) => {
        const parsed = replicaClusterSpec.safeParse(byName.get(n)?.spec);
        return [n, parsed.success ? parsed.data : undefined];
      }),
    ),
    clusterObjects: new Map(names.map((n) => [n, byName.get(n)])),
  };
}

/** An object the command was asked about is not there (the API server answered 404). */
export class ObjectNotFound extends Error {}

/** Turns "not found" into a message that names what was looked for and where. */
export function notFound(err: unknown, what: string, namespace: string): never {
  if (err instanceof ApiError && err.status === 404) {
    throw new ObjectNotFound(
      `${what} not found in namespace ${namespace} (kubectl failover status -n ${namespace} lists them)`,
    );
  }
  throw err;
}

export async function readPolicy(api: FailoverApi, namespace: string, name: string): Promise<PolicyView> {
  const object = await api
    .get(failoverPolicyType, namespace, name)
    .catch((err) => notFound(err, `FailoverPolicy ${name}`, namespace));
  const clusters = await api.list(replicaClusterType, namespace);
  return policyView(object, clusters.items);
}

/** Every policy in one namespace, or all namespaces when `namespace` is undefined. */
export async function readPolicies(api: FailoverApi, namespace: string | undefined): Promise<PolicyView[]> {
  const [policies, clusters] = await Promise.all([
    api.list(failoverPolicyType, namespace),
    api.list(replicaClusterType, namespace),
  ]);
  return policies.items
    .map((p) => policyView(p, clusters.items))
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** The observers' latest reports in a namespace; empty (with a warning) when not allowed to read them. */
export async function readObservations(
  api: FailoverApi,
  namespace: string,
  warn: (message: string) => void,
): Promise<FailoverObservationSpec[]> {
  try {
    const list = await api.list(failoverObservationType, namespace);
    return list.items.flatMap((o) => {
      const spec = failoverObservationSpec.safeParse(o.spec);
      return spec.success ? [spec.data] : [];
    });
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      warn(
        `cannot read FailoverObservations in ${namespace} (${err.message}); judging without observers' votes`,
      );
      return [];
    }
    throw err;
  }
}

/**
 * What the operator's decide() is given, from what the plugin read: each cluster's facts from its
 * status (with its spec: its provider says whether it reprotects itself), the operator's vote from
 * the primary's status, the observers' reports, and each cluster's dnsTarget. `spec` is the
 * policy's, with the request the command would write.
 */
export function decideInputOf(
  policy: PolicyView,
  spec: FailoverPolicySpec,
  observations: FailoverObservationSpec[],
  now: Date,
): DecideInput {
  const statusOf = (name: string) => policy.clusters.get(name);
  return gatherInput({
    policyName: policy.name,
    spec,
    status: policy.status,
    facts: (name) => factsFromStatus(name, statusOf(name), policy.clusterSpecs.get(name)),
    operatorVote: (active) => voteFromStatus(statusOf(active)),
    observations,
    now,
    // The value an isolated drill's record points at: the standby's own dnsTarget.
    dnsTargets: Object.fromEntries([...policy.clusterSpecs].map(([name, s]) => [name, s?.dnsTarget])),
  });
}

/**
 * Reads the policy (only it: its status has the answer) until `answered` finds what it waits for
 * in its status (undefined when status does not parse), or `timeoutMs` passes.
 */
export async function pollStatus<T>(
  api: FailoverApi,
  target: { namespace: string; policy: string },
  timeoutMs: number,
  pollMs: number,
  answered: (status: FailoverPolicyStatus | undefined) => T | undefined,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const object = await api
      .get(failoverPolicyType, target.namespace, target.policy)
      .catch((err) => notFound(err, `FailoverPolicy ${target.policy}`, target.namespace));
    const parsed = failoverPolicyStatus.safeParse(object.status ?? {});
    const found = answered(parsed.success ? parsed.data : undefined);
    if (found !== undefined) return found;
    if (Date.now() >= deadline) return undefined;
    await sleep(Math.min(pollMs, Math.max(0, deadline - Date.now())));
  }
}
