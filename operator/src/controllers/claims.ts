/**
 * Whose a ReplicaCluster is. Two policies acting on one cluster would each promote a standby of
 * their own when the primary is lost (two writable primaries behind two DNS names), write one
 * heartbeat row with epochs of their own, and fence each other's primary. So a cluster belongs to
 * one policy among those naming it, which every operator replica, shard and agent works out alike
 * from the objects, without asking each other:
 *
 * 1. a policy that has taken the cluster up: its status names it (a member of its topology, its
 *    active primary, or a side of its operation), written only by a policy the cluster belongs to;
 * 2. then the oldest (creationTimestamp), then by namespace and name.
 *
 * So a policy applied by mistake beside one in production never takes its clusters, and neither
 * does an older policy edited to name a cluster another policy runs, possibly in the middle of an
 * operation: the policy that changed is the one held. A held policy does nothing until it no
 * longer names the cluster, or the owner goes; its status never takes the cluster up meanwhile.
 * A policy is held too when its status still runs a cluster its spec dropped (its active primary,
 * an operation's side) and another policy names that cluster.
 *
 * Limits: a status is rewritten only by a reconcile that acts, so one written before its spec
 * dropped a cluster (while held, or while its spec did not validate) still counts if the spec
 * names it again, and age then decides between the two; two policies each edited to name the
 * other's cluster are both held.
 */

import { objectKey } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube-client.ts';
import { byCodeUnits } from '../runtime/order.ts';

/** When a policy was created, in ms; one without a timestamp counts as the newest. */
function createdMs(policy: KubeObject): number {
  const t = Date.parse(policy.metadata.creationTimestamp ?? '');
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

interface TakenUpStatus {
  activePrimary?: unknown;
  topology?: unknown;
  currentOperation?: { from?: unknown; to?: unknown } | null;
}

/** Whether the policy's status names `cluster`: it has acted on it as its own. */
export function hasTakenUp(policy: KubeObject, cluster: string): boolean {
  const status = policy.status as TakenUpStatus | undefined;
  if (!status) return false;
  if (status.activePrimary === cluster) return true;
  const op = status.currentOperation;
  if (op && (op.from === cluster || op.to === cluster)) return true;
  return (
    Array.isArray(status.topology) &&
    status.topology.some((m) => (m as { cluster?: unknown } | null)?.cluster === cluster)
  );
}

/** Claim order on `cluster`: the one it belongs to first (see above; no locale: the same everywhere). */
export function claimOrder(cluster: string): (a: KubeObject, b: KubeObject) => number {
  return (a, b) => {
    const taken = Number(hasTakenUp(b, cluster)) - Number(hasTakenUp(a, cluster));
    if (taken !== 0) return taken;
    const age = createdMs(a) - createdMs(b);
    if (age !== 0 && !Number.isNaN(age)) return age;
    return byCodeUnits(objectKey(a), objectKey(b));
  };
}

/** The policy `cluster` belongs to among `policies` (those naming it), or undefined for none. */
export function claimantOf<T extends KubeObject>(policies: Iterable<T>, cluster: string): T | undefined {
  const order = claimOrder(cluster);
  let first: T | undefined;
  for (const p of policies) if (!first || order(p, first) < 0) first = p;
  return first;
}

/**
 * The clusters a policy names (primary and standbys), read from its raw spec: a spec that does not
 * validate still claims what it names, so fixing it never takes a cluster from under another.
 */
export function clustersNamed(policy: KubeObject): string[] {
  const spec = policy.spec as { primary?: unknown; standbys?: unknown } | undefined;
  const names = [spec?.primary, ...(Array.isArray(spec?.standbys) ? spec.standbys : [])];
  return [...new Set(names.filter((n): n is string => typeof n === 'string'))];
}

/** Among the policies of one namespace, the one `cluster` belongs to. */
export function claimantNaming<T extends KubeObject>(policies: readonly T[], cluster: string): T | undefined {
  return claimantOf(
    policies.filter((p) => clustersNamed(p).includes(cluster)),
    cluster,
  );
}

/** A cluster a policy names that belongs to another policy. */
export interface ClaimedCluster {
  cluster: string;
  /** The policy it belongs to (same namespace). */
  policy: string;
}

/**
 * The clusters `policy` names that belong to another policy: `policiesOf` gives, for a cluster's
 * name, every policy naming it (this one included).
 */
export function claimedElsewhere(
  policy: KubeObject,
  clusters: readonly string[],
  policiesOf: (cluster: string) => KubeObject[],
): ClaimedCluster[] {
  const key = objectKey(policy);
  return [...new Set(clusters)].flatMap((cluster) => {
    const owner = claimantOf(policiesOf(cluster), cluster);
    return owner && objectKey(owner) !== key ? [{ cluster, policy: owner.metadata.name }] : [];
  });
}
