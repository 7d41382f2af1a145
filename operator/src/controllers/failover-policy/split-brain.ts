/**
 * The operator's half of split-brain protection (the agent's is agent/split-brain-guard.ts).
 *
 * Which protection each cluster has, said plainly so nobody assumes more (condition
 * SplitBrainProtection): Lease — an agent runs beside it and, as primary, keeps the policy's
 * Lease, fencing its own database when it loses it; DirectFence — only the operator fences it,
 * when it can reach it; EpochOnly — only the epoch in DNS and the new primary's heartbeat marks it.
 *
 * And the wait: a failover whose old primary had a Lease and could not be fenced directly
 * promotes only once (a) the Lease has not been renewed for `duration + margin` by the operator's
 * monotonic clock, and (b) a standby agent the old primary could ask has withheld its vouching,
 * committed to this operation, for as long — unless the old primary's agent reported it fenced
 * itself for this very operation. The agent fences by `duration - margin` after the start of its
 * last successful round, which came before both what the operator saw, so the promotion comes
 * after the fence with both margins to spare.
 */
import { leaseSettings, parseLeaseHolder } from '../../agent/lease-settings.ts';
import { agentAlive } from '../../agent/liveness.ts';
import type { Operation } from '../../api/v1alpha1/index.ts';
import type { ConditionInput } from '../../runtime/conditions.ts';
import { type DecideInput, type LeaseFacts, policyClusters } from './facts.ts';

export type Protection = 'Lease' | 'DirectFence' | 'EpochOnly';

export interface ClusterProtection {
  protection: Protection;
  /** Why not Lease, when it is not (CamelCase). */
  reason: string;
  message: string;
}

/**
 * What a failover must assume of its old primary: a Lease it held (whatever its agent did since,
 * which the operator cannot tell from here) means its agent may be fencing it by that Lease.
 */
export function failoverProtection(input: DecideInput, from: string): Protection {
  const held = parseLeaseHolder(input.lease?.holder);
  if (leaseSettings(input.spec).enabled && held?.cluster === from) return 'Lease';
  return protectionOf(input, from).protection;
}

export function protectionOf(input: DecideInput, cluster: string): ClusterProtection {
  const { spec, status, clusters, now } = input;
  const settings = leaseSettings(spec);
  const fallback: Protection = spec.promotion.fencing === 'EpochOnly' ? 'EpochOnly' : 'DirectFence';
  const without = (reason: string, message: string): ClusterProtection => ({
    protection: fallback,
    reason,
    message: `${cluster}: ${fallback} (${message})`,
  });
  const facts = clusters[cluster];
  const agent = facts?.agent;
  if (!settings.enabled) return without('LeaseDisabled', 'spec.primaryLease.enabled is false');
  if (!agent) return without('NoAgent', 'no database agent reports for it');
  if (!agentAlive(agent, now))
    return without('AgentSilent', `its agent last reported at ${agent.reportedAt}`);
  if (cluster !== status.activePrimary)
    return {
      protection: 'Lease',
      reason: 'Lease',
      message: `${cluster}: Lease (its agent would keep it as primary)`,
    };
  const state = agent.lease?.state;
  if (state !== 'Holding' && state !== 'Failsafe')
    return without('LeaseNotHeld', `its agent does not hold the Lease${state ? ` (${state})` : ''}`);
  // Not renewed for longer than a Lease holds by the time the database was last seen answering
  // (its agent killed, or cut from the control plane only): it cannot be counted on until renewed
  // again. A Lease that stopped with the database (a cut-off region) still counts: its agent is
  // what fences it then.
  const ago = input.lease?.renewedAgoMs;
  const unseenMs = facts?.reachable
    ? 0
    : facts?.lastReachableAt
      ? now.getTime() - facts.lastReachableAt.getTime()
      : Number.POSITIVE_INFINITY;
  if (state === 'Holding' && ago !== undefined && ago - unseenMs > settings.durationMs + settings.marginMs)
    return without('LeaseNotRenewed', 'its agent has stopped renewing the Lease while the database answers');
  return {
    protection: 'Lease',
    reason: 'Lease',
    message: `${cluster}: Lease (${state === 'Failsafe' ? 'failsafe: its standbys vouch for it' : 'renewed'})`,
  };
}

/** The condition people and `kubectl wait` read: True only when the primary is protected by its Lease. */
export function splitBrainCondition(input: DecideInput): ConditionInput | undefined {
  const active = input.status.activePrimary;
  if (!active) return undefined;
  const mine = protectionOf(input, active);
  const others = policyClusters(input.spec)
    .filter((n) => n !== active)
    .map((n) => protectionOf(input, n).message);
  const short = mine.protection === 'Lease' ? shortLeaseNote(input) : undefined;
  return {
    type: 'SplitBrainProtection',
    status: mine.protection === 'Lease' ? 'True' : 'False',
    reason: mine.protection === 'Lease' ? 'Lease' : mine.protection,
    message: [`primary ${mine.message}`, ...(short ? [short] : []), ...others].join('; ').slice(0, 1024),
  };
}

/**
 * Under this, a stall of the control plane while the standbys' agents are slow to vouch fences a
 * healthy primary (safe, but writes stop until its agent unfences it): short detection derives a
 * short Lease (1 s probes: 2 s), and the operator says so rather than leave it to the docs.
 */
export const SHORT_LEASE_FENCE_MS = 5_000;

/** What a Lease that fences sooner than SHORT_LEASE_FENCE_MS risks, and what to do; else undefined. */
export function shortLeaseNote(input: DecideInput): string | undefined {
  const s = leaseSettings(input.spec);
  const fenceMs = s.durationMs - s.marginMs;
  if (!s.enabled || fenceMs >= SHORT_LEASE_FENCE_MS) return undefined;
  return `its agent fences it after only ${fenceMs / 1000} s without confirmation: a control-plane stall that long stops its writes; lengthen spec.primaryLease (docs/split-brain.md)`;
}

export type LeaseGate = { open: true } | { open: false; why: string; retryMs: number };

/** Whether a failover that could only mark its old primary may promote now. */
export function leaseGate(input: DecideInput, op: Operation): LeaseGate {
  if (op.kind !== 'Failover' || op.protection !== 'Lease' || !op.markedOnly) return { open: true };
  const { spec, clusters } = input;
  const s = leaseSettings(spec);
  // Turned off by a person during the outage: their call, the wait is over (docs/split-brain.md).
  if (!s.enabled) return { open: true };
  // The holder's own duration when longer: its agent may still run on the spec from before a change.
  const needMs = Math.max(s.durationMs, input.lease?.durationMs ?? 0) + s.marginMs;
  const own = clusters[op.from]?.agent?.lease;
  if (own?.state === 'SelfFenced' && own.operationId === op.id) return { open: true };
  if (input.lease?.unreadable)
    return {
      open: false,
      why: `the primary Lease could not be read; ${op.to} is not promoted blind`,
      retryMs: 1_000,
    };
  const held = parseLeaseHolder(input.lease?.holder);
  if (held && held.cluster === op.from && held.epoch < op.epoch) {
    const ago = input.lease?.renewedAgoMs ?? 0;
    if (ago < needMs)
      return {
        open: false,
        why: `${op.from}'s Lease was renewed ${(ago / 1000).toFixed(1)} s ago; its agent fences it by ${((s.durationMs - s.marginMs) / 1000).toFixed(1)} s, so ${op.to} is promoted after ${(needMs / 1000).toFixed(1)} s`,
        retryMs: needMs - ago,
      };
  }
  // The standbys whose agents the old primary's could ask instead of renewing: one of them
  // must have stopped answering yes, for this operation, for as long as a Lease holds.
  const peers = policyClusters(spec).filter((n) => n !== op.from && clusters[n]?.agent?.peerAddress);
  if (peers.length === 0) return { open: true };
  let best = -1;
  for (const n of peers) {
    const v = clusters[n]?.agent?.vouch;
    if (!v || v.primary !== op.from || !v.withholding || v.operationId !== op.id) continue;
    best = Math.max(best, clusters[n]?.vouchHeldMs ?? 0);
  }
  if (best >= needMs) return { open: true };
  return {
    open: false,
    why:
      best < 0
        ? `waiting for the agent of ${peers.join(' or ')} to stop vouching for ${op.from} (it withholds once it reads this operation); a standby agent out of touch with the control plane could still be vouching`
        : `a standby agent stopped vouching for ${op.from} ${(best / 1000).toFixed(1)} s ago; ${op.to} is promoted after ${(needMs / 1000).toFixed(1)} s`,
    retryMs: best < 0 ? 500 : needMs - best,
  };
}

/**
 * The operator's own monotonic record of when it first saw each Lease renewal and each agent's
 * vouch standing: durations survive neither a restart (it then waits the whole time again) nor
 * a clock step.
 */
export class SplitBrainWatch {
  private readonly leases = new Map<string, { key: string; at: number }>();
  private readonly vouches = new Map<string, { key: string; at: number }>();
  private readonly mono: () => number;

  constructor(mono: () => number = () => performance.now()) {
    this.mono = mono;
  }

  /** `version`: the Lease's resourceVersion, which every renewal changes (its renewTime might not). */
  lease(
    policyKey: string,
    lease: { holder?: string; version?: string; durationSeconds?: number } | undefined,
  ): LeaseFacts {
    if (!lease?.holder) {
      this.leases.delete(policyKey);
      return {};
    }
    return {
      holder: lease.holder,
      renewedAgoMs: this.since(this.leases, policyKey, `${lease.holder} ${lease.version}`),
      ...(lease.durationSeconds ? { durationMs: lease.durationSeconds * 1000 } : {}),
    };
  }

  vouchHeldMs(
    clusterKey: string,
    vouch: { primary: string; epoch: number; withholding: boolean; since: string } | undefined,
  ): number | undefined {
    if (!vouch) {
      this.vouches.delete(clusterKey);
      return undefined;
    }
    return this.since(
      this.vouches,
      clusterKey,
      `${vouch.primary}@${vouch.epoch} ${vouch.withholding} ${vouch.since}`,
    );
  }

  forget(policyKey: string): void {
    this.leases.delete(policyKey);
  }

  private since(seen: Map<string, { key: string; at: number }>, id: string, key: string): number {
    const now = this.mono();
    const last = seen.get(id);
    if (last?.key === key) return now - last.at;
    seen.set(id, { key, at: now });
    return 0;
  }
}
