/**
 * What decide reads: the policy, its status, and what observe gathered from the world. Plain data,
 * no I/O: every decision is a function of these and the time.
 */

import type { AgentReport, FailoverPolicySpec, FailoverPolicyStatus } from '../../api/v1alpha1/index.ts';
import type { CanarySnapshot } from '../../providers/canary/port.ts';
import type { DatabaseRole } from '../../providers/database/port.ts';

/** The operator's own latest view of one cluster (its in-memory probe, or ReplicaCluster status). */
export interface ClusterFacts {
  name: string;
  exists: boolean;
  reachable: boolean;
  role: DatabaseRole;
  /** When that view was taken; a fact older than a step it is compared with says nothing about it. */
  observedAt?: Date;
  /** When a probe last reached it. */
  lastReachableAt?: Date;
  /**
   * Which running server last answered its probes, where SQL tells, and since when by the
   * operator's clock (kept through failed probes; see one-server.ts).
   */
  server?: string;
  serverSince?: Date;
  /** The timeline that server last answered on (a primary's or a standby's). */
  serverTimeline?: number;
  /** The failover epoch in its heartbeat row: the epoch it was primary at (a standby: as replayed). */
  heartbeatEpoch?: number;
  /** Set while an operation of this epoch has fenced or marked it (its heartbeat row's mark). */
  fencedEpoch?: number;
  /** A standby's WAL positions (replayed, received) and timeline, as last probed. */
  position?: { replayLsn: string; receiveLsn?: string; timeline?: number };
  /** Lag behind the active primary, measured while the primary was reachable. */
  lagBytes?: number;
  lagSeconds?: number;
  lagObservedAt?: Date;
  /**
   * Its application endpoints as last checked: all healthy, some not, configured but not checked
   * yet (Unknown); undefined when it has none.
   */
  appEndpoints?: 'Healthy' | 'Unhealthy' | 'Unknown';
  /** The endpoints that did not answer healthy. */
  unhealthyAppEndpoints?: string[];
  /** After a switchover away from it, its provider makes it a standby again (see drills). */
  rejoinsAfterSwitchover?: boolean;
  /** Not probed yet (a restarted operator): unreachable means "not known", not "down". */
  unprobed?: boolean;
  /** Its provider can bring it back as a replica itself (a managed service's reprotect). */
  reprotectsItself?: boolean;
  /** Its provider's API makes an isolated drill's copy of it (RDS), not an agent. */
  drillCopiesByProvider?: boolean;
  /** What the database agent beside it last reported (self-managed PostgreSQL with an agent). */
  agent?: AgentReport;
  /**
   * How long, by the operator's monotonic clock, it has seen that agent's current vouch standing
   * (the same `since`): withholding counts from when the operator saw it, not from the agent's clock.
   */
  vouchHeldMs?: number;
}

/** The policy's primary Lease as the operator saw it (coordination.k8s.io/v1). */
export interface LeaseFacts {
  /** `cluster@epoch`; undefined when there is no Lease. */
  holder?: string;
  /** Since the operator first saw its current renewal, by its monotonic clock. */
  renewedAgoMs?: number;
  /** The duration its holder renews it for (the agent's own settings, which may predate a spec change). */
  durationMs?: number;
  /** The read failed: nothing is known, and nothing may be assumed expired. */
  unreadable?: boolean;
}

/** One observer's view of the active primary. */
export interface Vote {
  observer: string;
  observedAt: Date;
  reachable: boolean;
  consecutiveFailures: number;
  /** When this observer last reached it: the primary was alive at least until then. */
  lastSeenAt?: Date;
  /** Why the last probe failed (a ProviderError reason), when it did. */
  failureReason?: string;
}

/** The policy's DNS record as the provider's API last showed it. */
export interface DnsFacts {
  readAt: Date;
  /** The record's value; undefined when there is no record. */
  value?: string;
  /** From the ownership TXT record beside it. */
  owner?: string;
  epoch?: number;
  /** The record's TTL, where the provider reports it. */
  ttl?: number;
  /** The read failed: nothing above is known. */
  error?: { reason: string; message: string };
  /** Kept from an earlier reconcile for discovery, not read in this one: never judged as a check. */
  kept?: boolean;
}

export interface DecideInput {
  spec: FailoverPolicySpec;
  status: FailoverPolicyStatus;
  clusters: Record<string, ClusterFacts>;
  votes: Vote[];
  now: Date;
  /** The value the record holds when each cluster is primary (its dnsTarget). */
  dnsTargets?: Record<string, string | undefined>;
  /** The owner this operator writes into the ownership TXT record. */
  dnsOwner?: string;
  /** The primary Lease, when any agent could hold it. */
  lease?: LeaseFacts;
  /** The record as read in this reconcile; undefined when it was not read. */
  dns?: DnsFacts;
  /** What the drill's canary writer has seen so far, while one runs. */
  canary?: CanarySnapshot;
  /**
   * Status was never written for this object (no observedGeneration): a policy created, created
   * again (re-applied from Git after a delete), or its status cleared. Requests already in spec
   * then may have been acted on by a status that is gone.
   */
  statusNew?: boolean;
}

/** Every cluster of the policy, the spec's primary first. */
export const policyClusters = (spec: FailoverPolicySpec): string[] => [spec.primary, ...spec.standbys];

/** Reachable and accepting writes. */
export const writable = (f: ClusterFacts | undefined): boolean =>
  f?.reachable === true && f.role === 'Primary';

/** A replicating standby that could be promoted. */
export const healthyStandby = (f: ClusterFacts | undefined): boolean =>
  f?.exists === true && f.reachable && f.role === 'Standby';

export const seconds = (n: number) => n * 1000;

/**
 * Whether `f` was probed after `at` (an operation's end): a probe from before may predate what
 * that operation did (its fence, its unfence, a rejoin). No `at`: any probe counts.
 */
export const probedSince = (f: ClusterFacts | undefined, at: string | undefined): boolean =>
  at === undefined || (f?.observedAt !== undefined && f.observedAt > new Date(at));
