/**
 * Whether an operator is watching: its leader Lease held and renewed. Status written by an
 * operator that has stopped looks exactly like a healthy one, so `status` says so when the Lease
 * is held by no one, or its last renewal is older than its duration. The operator labels its
 * Lease (LEADER_LEASE_LABEL), whatever the Helm release calls it; the plugin finds it by that
 * label in any namespace. Where it cannot tell (no such Lease: leader election off, or an operator
 * that has not run yet; no right to list Leases; an error), it says nothing rather than guess.
 */
import { LEADER_LEASE_LABEL, type Lease, WATCH_NAMESPACE_LABEL } from '../runtime/leader-election.ts';
import { ELECTION_LABEL, electionLabelValue, SHARD_LABEL, SHARDS_LABEL, shardOf } from '../runtime/shards.ts';
import type { FailoverApi } from './api.ts';

/** The operator's Leases: its leader Lease, or with --shards, one per shard. */
export interface OperatorLeases {
  leader: Lease[];
  shards: Lease[];
}

/** Held, and renewed within its duration by the API server's clock as this machine reads it. */
const held = (l: Lease, now: Date) => {
  const renewed = l.spec?.renewTime ? new Date(l.spec.renewTime).getTime() : 0;
  return (
    Boolean(l.spec?.holderIdentity) && now.getTime() - renewed <= (l.spec?.leaseDurationSeconds ?? 15) * 1000
  );
};

/** Reads them; undefined where it cannot (no right to list Leases, an error). */
export async function readOperatorLeases(api: FailoverApi): Promise<OperatorLeases | undefined> {
  // $FAILOVER_OPERATOR_LEASE_SELECTOR: another selector (tests, or several operators side by side).
  const selector = process.env.FAILOVER_OPERATOR_LEASE_SELECTOR || `${LEADER_LEASE_LABEL}=operator`;
  const shardSelector = process.env.FAILOVER_OPERATOR_SHARD_LEASE_SELECTOR || `${LEADER_LEASE_LABEL}=shard`;
  try {
    const [leader, shards] = await Promise.all([
      api.leasesLabelled(selector),
      api.leasesLabelled(shardSelector),
    ]);
    return { leader: leader.items, shards: shards.items };
  } catch {
    return undefined;
  }
}

/**
 * Only the Leases of operators that watch `namespace` (undefined: every namespace is shown, so
 * every operator counts). The scope is an operator's, not a Lease's: one election's Leases (its
 * namespace and election label) go together, scoped by whichever of them carries the label, so a
 * rollout whose old replicas' Leases have none yet, or that changes the watched namespace, is not
 * split into a partial layout. An election none of whose Leases is labelled (an operator from
 * before the label) may watch anything.
 */
export function watching(leases: OperatorLeases | undefined, namespace: string | undefined) {
  if (!leases || namespace === undefined) return leases;
  // The leader Lease is named by the election id that its shard and member Leases carry as a label.
  const election = (l: Lease) =>
    `${l.metadata.namespace}|${l.metadata.labels?.[ELECTION_LABEL] ?? electionLabelValue(l.metadata.name)}`;
  const scopes = new Map<string, Set<string>>();
  for (const l of [...leases.leader, ...leases.shards]) {
    const scope = l.metadata.labels?.[WATCH_NAMESPACE_LABEL];
    if (scope === undefined) continue;
    const key = election(l);
    scopes.set(key, (scopes.get(key) ?? new Set()).add(scope));
  }
  const watches = (l: Lease) => {
    const scope = scopes.get(election(l));
    return !scope || scope.has('') || scope.has(namespace);
  };
  return { leader: leases.leader.filter(watches), shards: leases.shards.filter(watches) };
}

/** Where a policy is reconciled when the operator is sharded. */
export interface PolicyShard {
  index: number;
  of: number;
  /** The replica holding the shard's Lease, if one holds it and renews it. */
  holder?: string;
}

/**
 * The shard layout in force: the one (namespace, election, count) most of whose Leases are held;
 * undefined when the operator is not sharded, or its shard Leases are all given up.
 */
export function shardLayout(leases: OperatorLeases | undefined, now: Date) {
  // One layout per (namespace, election, count): several operators, or a rollout's old Leases.
  const groups = new Map<string, { count: number; leases: Lease[] }>();
  for (const l of leases?.shards ?? []) {
    const count = Number(l.metadata.labels?.[SHARDS_LABEL]);
    if (!Number.isInteger(count) || count < 1) continue;
    const key = `${l.metadata.namespace}|${l.metadata.labels?.[ELECTION_LABEL]}|${count}`;
    const group = groups.get(key) ?? { count, leases: [] };
    group.leases.push(l);
    groups.set(key, group);
  }
  const liveCount = (ls: Lease[]) => ls.filter((l) => held(l, now)).length;
  const [best] = [...groups.values()].sort((a, b) => liveCount(b.leases) - liveCount(a.leases));
  // Shard Leases no one holds any more (back to one leader) are no layout in force.
  if (!best || liveCount(best.leases) === 0) return undefined;
  const { count, leases: shardLeases } = best;
  const leaseOf = (i: number) => shardLeases.find((l) => l.metadata.labels?.[SHARD_LABEL] === String(i));
  return {
    count,
    shardOf: (namespace: string, name: string): PolicyShard => {
      const index = shardOf(`${namespace}/${name}`, count);
      const lease = leaseOf(index);
      const holder = lease && held(lease, now) ? lease.spec?.holderIdentity : undefined;
      return { index, of: count, ...(holder ? { holder } : {}) };
    },
    /** Shards whose Lease no replica holds. */
    unheld: () =>
      Array.from({ length: count }, (_, i) => i).filter((i) => {
        const lease = leaseOf(i);
        return !lease || !held(lease, now);
      }),
  };
}

/** What to warn of, from the Leases already read (undefined: they could not be: say nothing). */
export function operatorLeaseWarning(all: OperatorLeases | undefined, now: Date): string | undefined {
  const layout = shardLayout(all, now);
  if (layout) {
    const unheld = layout.unheld();
    if (unheld.length === 0) return undefined;
    return `no operator replica holds shard ${unheld.join(', ')} of ${layout.count}: the policies in ${unheld.length > 1 ? 'them' : 'it'} (SHARD column) are not watched; what follows for them may be stale.`;
  }
  const leases = all?.leader;
  if (!leases || leases.length === 0) return undefined;
  if (leases.some((l) => held(l, now))) return undefined;
  const where = leases.map((l) => {
    const renewed = l.spec?.renewTime;
    const ago = renewed
      ? `${Math.round((now.getTime() - new Date(renewed).getTime()) / 1000)} s ago`
      : 'never';
    return `${l.metadata.namespace}/${l.metadata.name} (holder ${l.spec?.holderIdentity || 'none'}, renewed ${ago})`;
  });
  return `no operator holds its leader Lease: ${where.join(', ')}. Nothing is watching these policies; what follows may be stale.`;
}
