/**
 * `kubectl failover export POLICY`: the policy and its ReplicaClusters as they are now, for Git,
 * or (--pulumi) the live topology the Pulumi stacks take as their `topology` config value.
 *
 * The manifests are the stored specs, cleaned for Git (no status, no server-set metadata, no
 * one-shot requests), with one change: a ReplicaCluster whose reprotect made a replacement
 * database it does not name yet (RepointNeeded) names the replacement. Re-applying them after a
 * failover, reprotect or failback changes nothing the operator did; the operator never edits a
 * spec itself, so this is how a person or their Git takes the re-point up.
 */
import {
  API_VERSION,
  type DatabaseReplacement,
  type PublishedTopology,
  publishedTopology,
  type ReplicaClusterSpec,
  TOPOLOGY_VERSION,
  type TopologyDatabase,
  type TopologyMember,
} from '../api/v1alpha1/index.ts';
import type { KubeObject } from '../runtime/kube-client.ts';
import { activePrimary, type PolicyView } from './policies.ts';

/** A Kubernetes object as it goes into Git. */
export interface ExportedObject {
  apiVersion: string;
  kind: 'ReplicaCluster' | 'FailoverPolicy';
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: Record<string, unknown>;
}

/** Annotations tools write on their own: not part of what a person keeps in Git. */
const TOOL_ANNOTATIONS =
  /^(kubectl\.kubernetes\.io\/|argocd\.argoproj\.io\/|kustomize\.toolkit\.fluxcd\.io\/)/;

/**
 * The replacement a reprotect of the cluster made that its spec does not name yet, if any: the
 * newest reprotect that made one, unless a later reprotect of the cluster succeeded (it found the
 * spec naming a replica of the primary). The spec is only re-pointed while it still names what
 * the replacement superseded: a spec a person pointed elsewhere since is theirs.
 */
export function pendingReplacement(p: PolicyView, cluster: string): DatabaseReplacement | undefined {
  const spec = p.clusterSpecs.get(cluster);
  if (!spec) return undefined;
  for (const h of p.status.history ?? []) {
    if (h.kind !== 'Reprotect' || h.from !== cluster) continue;
    if (h.result === 'Succeeded' && !h.replacement) return undefined;
    const r = h.replacement;
    if (!r || r.cluster !== cluster) continue;
    const named = identifierOf(spec);
    if (named === replacementIdentifier(r) && spec.connection.host === r.host) return undefined;
    // A DigitalOcean cluster is named by UUID in its spec and by name in the replacement: a spec
    // that names a read-only node names something else than the superseded cluster.
    const stillSuperseded =
      named === r.superseded ||
      (spec.provider.type === 'DigitalOcean' && spec.provider.digitalOcean.replicaName === undefined);
    return stillSuperseded ? r : undefined;
  }
  return undefined;
}

/** The name a spec gives its database in its provider's terms. */
function identifierOf(spec: ReplicaClusterSpec): string | undefined {
  const p = spec.provider;
  switch (p.type) {
    case 'AwsRds':
      return p.awsRds.dbInstanceIdentifier;
    case 'AuroraGlobal':
      return p.auroraGlobal.dbClusterIdentifier;
    case 'DigitalOcean':
      return p.digitalOcean.replicaName ?? p.digitalOcean.databaseId;
    default:
      return undefined;
  }
}

function replacementIdentifier(r: DatabaseReplacement): string | undefined {
  return r.provider.awsRds?.dbInstanceIdentifier ?? r.provider.digitalOcean?.replicaName;
}

/** A stored ReplicaCluster spec re-pointed at a replacement: identifiers, host and port; credentials stay. */
function repointed(spec: Record<string, unknown>, r: DatabaseReplacement): Record<string, unknown> {
  const provider = { ...(spec.provider as Record<string, unknown>) };
  if (r.provider.type === 'AwsRds' && r.provider.awsRds)
    provider.awsRds = { ...(provider.awsRds as object), ...r.provider.awsRds };
  if (r.provider.type === 'DigitalOcean' && r.provider.digitalOcean)
    provider.digitalOcean = { ...(provider.digitalOcean as object), ...r.provider.digitalOcean };
  const connection = spec.connection as Record<string, unknown>;
  const oldHost = connection.host;
  return {
    ...spec,
    provider,
    connection: { ...connection, host: r.host, ...(r.port !== undefined ? { port: r.port } : {}) },
    // A DNS value that was the old database's host follows it; one set apart (a load balancer) stays.
    ...(spec.dnsTarget === oldHost ? { dnsTarget: r.host } : {}),
  };
}

function cleanMetadata(object: KubeObject): ExportedObject['metadata'] {
  const m = object.metadata as KubeObject['metadata'] & {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  const annotations = Object.fromEntries(
    Object.entries(m.annotations ?? {}).filter(([k]) => !TOOL_ANNOTATIONS.test(k)),
  );
  return {
    name: m.name,
    namespace: m.namespace ?? 'default',
    ...(m.labels && Object.keys(m.labels).length ? { labels: m.labels } : {}),
    ...(Object.keys(annotations).length ? { annotations } : {}),
  };
}

/** The ReplicaClusters (pending re-points applied), then the policy, as they belong in Git. */
export function exportManifests(p: PolicyView): ExportedObject[] {
  const clusters: ExportedObject[] = [];
  for (const [name, object] of p.clusterObjects) {
    if (!object) throw new Error(`ReplicaCluster ${name} (named by FailoverPolicy ${p.name}) does not exist`);
    const r = pendingReplacement(p, name);
    const spec = (object.spec ?? {}) as Record<string, unknown>;
    clusters.push({
      apiVersion: API_VERSION,
      kind: 'ReplicaCluster',
      metadata: cleanMetadata(object),
      spec: r ? repointed(spec, r) : spec,
    });
  }
  // Requests are one-shot and carry ids already acted on, and maintenance mode is a moment's
  // toggle (kubectl failover pause): Git must hold neither, or every sync would replay them.
  const {
    promotionRequest: _p,
    drillRequest: _d,
    paused: _paused,
    pauseReason: _reason,
    ...policySpec
  } = (p.object.spec ?? {}) as Record<string, unknown>;
  return [
    ...clusters,
    { apiVersion: API_VERSION, kind: 'FailoverPolicy', metadata: cleanMetadata(p.object), spec: policySpec },
  ];
}

/** The database a member names, in its provider's terms. */
function databaseOf(
  spec: ReplicaClusterSpec,
  databaseId: string | undefined,
  promoted: boolean,
): TopologyDatabase {
  const p = spec.provider;
  // RDS and Aurora: the identifier the spec names; self-managed: its host.
  if (p.type !== 'DigitalOcean') return { name: identifierOf(spec) ?? spec.connection.host };
  if (p.digitalOcean.replicaName === undefined) return { id: p.digitalOcean.databaseId };
  if (!databaseId && promoted)
    // Promoted (it was primary), but the operator has not reported the cluster it became: a
    // stack that took it for a node would plan a new node of the old primary. Wait for it.
    throw new Error(
      `the operator has not reported which DigitalOcean cluster the promoted node ${p.digitalOcean.replicaName} became (status.databaseId); export again once it has observed it`,
    );
  // A node named by its parent: a cluster of its own once promoted (status.databaseId says which).
  return {
    name: p.digitalOcean.replicaName,
    parentId: p.digitalOcean.databaseId,
    ...(databaseId ? { id: databaseId } : {}),
  };
}

/** Whether a member has been the primary: its role now, or a promotion to it in history. */
function wasPromoted(p: PolicyView, name: string, role: TopologyMember['role']): boolean {
  if (role === 'Primary' || role === 'FormerPrimary') return true;
  return (p.status.history ?? []).some(
    (h) => (h.kind === 'Failover' || h.kind === 'Switchover') && h.to === name && h.result === 'Succeeded',
  );
}

/** The live topology, for infrastructure code (`--pulumi`). */
export function exportTopology(p: PolicyView): PublishedTopology {
  const primary = activePrimary(p);
  if (!primary || !p.spec)
    throw new Error(`FailoverPolicy ${p.name} has no primary yet (${p.specProblem ?? 'not reconciled'})`);
  const roles = new Map((p.status.topology ?? []).map((t) => [t.cluster, t.role]));
  const members: TopologyMember[] = [];
  for (const name of [primary, ...[p.spec.primary, ...p.spec.standbys].filter((n) => n !== primary)]) {
    const spec = p.clusterSpecs.get(name);
    if (!spec)
      throw new Error(
        p.clusterObjects.get(name)
          ? `ReplicaCluster ${name} has a spec the operator's schema refuses: fix it first (kubectl get replicacluster ${name} -o yaml)`
          : `ReplicaCluster ${name} (named by FailoverPolicy ${p.name}) does not exist`,
      );
    const r = pendingReplacement(p, name);
    const role = roles.get(name) ?? (name === primary ? 'Primary' : 'Unknown');
    const newest = (p.status.history ?? []).find((h) => h.kind === 'Reprotect' && h.from === name);
    const base: Omit<TopologyMember, 'database' | 'host'> = {
      cluster: name,
      region: spec.region,
      provider: spec.provider.type,
      role,
    };
    if (r) {
      members.push({
        ...base,
        database: r.provider.awsRds
          ? { name: r.provider.awsRds.dbInstanceIdentifier }
          : { name: r.provider.digitalOcean?.replicaName, parentId: r.provider.digitalOcean?.databaseId },
        host: r.host,
        replaces: r.superseded,
        repointPending: true,
      });
      continue;
    }
    members.push({
      ...base,
      database: databaseOf(spec, p.clusters.get(name)?.databaseId, wasPromoted(p, name, role)),
      host: spec.connection.host,
      // Re-pointed already: still say what it replaced, while history remembers.
      ...(newest?.replacement && newest.replacement.cluster === name
        ? { replaces: newest.replacement.superseded }
        : {}),
    });
  }
  // Every database a reprotect replaced that history remembers, but for those in use again.
  const inUse = new Set(members.map((m) => m.database.name));
  const superseded = new Map<string, { region: string; name: string }>();
  for (const h of p.status.history ?? []) {
    const r = h.replacement;
    const region = r && p.clusterSpecs.get(r.cluster)?.region;
    if (r && region && !inUse.has(r.superseded)) superseded.set(r.superseded, { region, name: r.superseded });
  }
  return publishedTopology.parse({
    version: TOPOLOGY_VERSION,
    policy: p.name,
    namespace: p.namespace,
    epoch: p.status.epoch ?? 0,
    activePrimary: primary,
    members,
    superseded: [...superseded.values()],
  });
}
