/**
 * Whose a ReplicaCluster is. Two policies acting on one cluster would each promote a standby of
 * their own when the primary is lost (two writable primaries behind two DNS names), write one
 * heartbeat row with epochs of their own, and fence each other's primary. So a cluster is claimed
 * by one policy: the oldest that names it (creationTimestamp, then namespace and name), which
 * every operator replica, shard and agent works out alike without asking each other. A younger
 * policy naming it does nothing until it no longer names it, or the older one goes.
 *
 * By age, not by who acts now: a policy applied by mistake next to one in production never takes
 * its clusters, and nothing a person changes later moves a claim, short of deleting a policy.
 */

import { objectKey } from '../runtime/informer.ts';
import type { KubeObject } from '../runtime/kube-client.ts';

/** When a policy was created, in ms; one without a timestamp counts as the newest. */
function createdMs(policy: KubeObject): number {
  const t = Date.parse(policy.metadata.creationTimestamp ?? '');
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

/** Claim order: the oldest first, then by namespace/name (no locale: the same everywhere). */
export function claimOrder(a: KubeObject, b: KubeObject): number {
  const age = createdMs(a) - createdMs(b);
  if (age !== 0 && !Number.isNaN(age)) return age;
  const ka = objectKey(a);
  const kb = objectKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** The policy a cluster belongs to among those naming it, or undefined when none does. */
export function claimantOf<T extends KubeObject>(policies: Iterable<T>): T | undefined {
  let first: T | undefined;
  for (const p of policies) if (!first || claimOrder(p, first) < 0) first = p;
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
  return claimantOf(policies.filter((p) => clustersNamed(p).includes(cluster)));
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
    const owner = claimantOf(policiesOf(cluster));
    return owner && objectKey(owner) !== key ? [{ cluster, policy: owner.metadata.name }] : [];
  });
}
