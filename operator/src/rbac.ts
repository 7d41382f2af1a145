/**
 * The permissions the operator needs, and no more: the one list the Helm chart's roles and the
 * RBAC tests are built from. Each rule names the calls that need it; add a rule here when the
 * operator starts calling something new, and remove it when the last such call goes.
 */
import { GROUP } from './api/v1alpha1/common.ts';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  /**
   * Leases are granted in the release namespace (leader election) unless the rule says they are
   * the policies' primary Leases, granted where policies live; `release`: in the release
   * namespace only.
   */
  scope?: 'policies' | 'release';
  /** Granted only when the chart's value of that name is set (an opt-in). */
  when?: 'watchSecrets';
}

export const operatorRules: PolicyRule[] = [
  // Informers (runtime/informer.ts): a paginated list, then a watch. The operator never changes
  // a spec: people own spec (kubectl failover promote patches it as them, not as the operator).
  { apiGroups: [GROUP], resources: ['failoverpolicies', 'replicaclusters'], verbs: ['list', 'watch'] },
  // writeStatus (controllers/status-writer.ts): a conditional merge patch of the status subresource.
  { apiGroups: [GROUP], resources: ['failoverpolicies/status', 'replicaclusters/status'], verbs: ['patch'] },
  // The observers' votes, through an informer.
  { apiGroups: [GROUP], resources: ['failoverobservations'], verbs: ['list', 'watch'] },
  // ReportFiling (controllers/failover-policy/report-filing.ts): an incident record is created
  // once, never updated; retention lists a policy's records and deletes the oldest.
  { apiGroups: [GROUP], resources: ['failoverreports'], verbs: ['create', 'list', 'delete'] },
  // EventRecorder (runtime/events.ts): create, and patch to fold a repeat into series.count.
  { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  // SecretReader (controllers/credentials.ts): database, DNS and provider credentials named by a
  // resource's secretRefs, always in the resource's own namespace. The chart can scope this to
  // the namespaces of the policies (rbac.secretNamespaces).
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
  // SecretWatches (controllers/secret-watches.ts), with --watch-secrets: Secrets' metadata,
  // listed and watched where they are read, so a Secret is read again only when it changed.
  { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'], when: 'watchSecrets' },
  // Leader election (runtime/leader-election.ts): find, create, replace, and a standby watches the
  // leader's Lease (main.ts); the chart grants it in the release namespace only. Where OwnerReferencesPermissionEnforcement (OpenShift) refuses the
  // Lease's owner reference, the elector goes on without one. Sharding (runtime/shards.ts) lists
  // the election's Leases to count the replicas alive, and deletes the member Leases of replicas
  // gone for ten lease periods.
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    verbs: ['get', 'list', 'watch', 'create', 'update', 'delete'],
  },
  // The Deployment the leader Lease belongs to (--leader-election-owner), for its owner reference.
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'], scope: 'release' },
  // readPrimaryLease (controllers/failover-policy/reconciler.ts): each policy's primary Lease,
  // which only the agent beside the primary writes.
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get'], scope: 'policies' },
];

/** The observer (one per region) reads policies and clusters, probes, and publishes observations. */
export const observerRules: PolicyRule[] = [
  { apiGroups: [GROUP], resources: ['failoverpolicies', 'replicaclusters'], verbs: ['list', 'watch'] },
  // publish (observer/observer.ts): a merge patch of its own observation, a create the first time.
  { apiGroups: [GROUP], resources: ['failoverobservations'], verbs: ['create', 'patch'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get'] },
  { apiGroups: [''], resources: ['secrets'], verbs: ['list', 'watch'], when: 'watchSecrets' },
];

/**
 * The database agent (operator/src/agent/agent.ts), one beside each self-managed PostgreSQL. It
 * polls (no informer, no watch), reads no Secret (the replication password is a local file) and
 * writes nothing but its own ReplicaCluster's `status.agent` and its policy's primary Lease.
 */
export const agentRules: PolicyRule[] = [
  // policy(): the policies of its namespace, to find the one that names its cluster.
  { apiGroups: [GROUP], resources: ['failoverpolicies'], verbs: ['list'] },
  // pass() reads its own ReplicaCluster (the report to resume from); upstream() the primary's, to reach it.
  { apiGroups: [GROUP], resources: ['replicaclusters'], verbs: ['get'] },
  // publish(): a merge patch of status.agent through the status subresource.
  { apiGroups: [GROUP], resources: ['replicaclusters/status'], verbs: ['patch'] },
  // The split-brain guard (agent/guard-adapters.ts): the observers' verdicts on the primary, and
  // the policy's primary Lease, renewed by the agent beside the primary.
  { apiGroups: [GROUP], resources: ['failoverobservations'], verbs: ['list'] },
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    verbs: ['get', 'create', 'update'],
    scope: 'policies',
  },
];
