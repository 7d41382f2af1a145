/** Everything a reconciler needs, passed explicitly: no globals. */
import type { DnsReadBudgets } from '../providers/dns/read-budget.ts';
import type { Clock } from '../runtime/clock.ts';
import type { EventRecorder } from '../runtime/events.ts';
import type { Informer } from '../runtime/informer.ts';
import type { KubeClient, KubeObject } from '../runtime/kube-client.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Metrics } from '../runtime/metrics.ts';
import type { CanaryWriters } from './failover-policy/canaries.ts';
import type { SplitBrainWatch } from './failover-policy/split-brain.ts';
import type { VoteExpiries } from './failover-policy/vote-expiries.ts';
import type { AppEndpointChecks } from './replica-cluster/app-endpoints.ts';
import type { ClusterProbes } from './replica-cluster/probes.ts';

export interface OperatorContext {
  client: KubeClient;
  clock: Clock;
  /** Randomness (backoff jitter), injected like the clock. */
  random: () => number;
  log: Logger;
  metrics: Metrics;
  events: EventRecorder;
  policies: Informer<KubeObject>;
  clusters: Informer<KubeObject>;
  /** FailoverObservation objects written by observers in each region. */
  observations: Informer<KubeObject>;
  /** The FailoverObservations about a policy (by policy key), from that cache, without a scan. */
  observationsOf(policyKey: string): KubeObject[];
  /** When each observer's vote on each policy goes stale: the policy is woken then. */
  voteExpiries: VoteExpiries;
  /** The operator's own probes of every cluster, in memory. */
  probes: ClusterProbes;
  /** The operator's own checks of every cluster's application endpoints, in memory. */
  appChecks: AppEndpointChecks;
  /** The drills' canary writers, one per policy while its drill runs. */
  canaries: CanaryWriters;
  /** When the operator first saw each Lease renewal and vouch standing (its monotonic clock). */
  splitBrain: SplitBrainWatch;
  /** What each DNS provider's credentials or server may still be asked, for reads that can wait. */
  dnsReads: DnsReadBudgets;
  /** This operator process (its pod), as it names itself in leases and Events. */
  identity: string;
  /** The policies that name a cluster (by cluster key), the one it belongs to first (claims.ts). */
  policiesOf(clusterKey: string): KubeObject[];
  /** Reconciles a ReplicaCluster again soon (a probe's verdict that came after its reconcile returned). */
  enqueueCluster(clusterKey: string): void;
  /** Reconciles the policies that name a cluster soon (what they decide from in its probe changed). */
  enqueuePolicies(clusterKey: string): void;
}
