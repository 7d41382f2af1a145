/** What a database provider can do beyond the port, for decisions that depend on it. */
import type { ReplicaClusterSpec } from '../../api/v1alpha1/index.ts';

/** A ReplicaCluster's provider block, as the spec or act's ports (ProviderSpec) hold it. */
type ProviderBlock = { type: string } & Record<string, unknown>;

/**
 * Whether, after this operator switches over away from a cluster, its provider makes it a
 * replicating standby of the new primary by itself, so that a drill can switch back. Aurora
 * Global Database does: the switchover is Aurora's own SwitchoverGlobalCluster
 * (`switchesOverNatively`), which makes the old writer a secondary of the new one. A self-managed
 * server comes back through the database agent beside it instead (drill.ts `canComeBack` checks
 * for a live one), and a promoted RDS or DigitalOcean replica needs a reprotect.
 */
export function rejoinsAfterSwitchover(spec: Pick<ReplicaClusterSpec, 'provider'>): boolean {
  return spec.provider.type === 'AuroraGlobal';
}

/**
 * Whether a switchover from `from` to `to` is the provider's own: both are members of one Aurora
 * global cluster, and SwitchoverGlobalCluster waits for the secondary to catch up, loses nothing,
 * and makes the old writer a read-only secondary. Such a switchover's Fencing only marks the old
 * writer with the epoch (Aurora refuses ALTER SYSTEM, so a writer cannot be fenced read-only by
 * SQL), and it skips CatchingUp and Demoting: the Promoting step asks Aurora for the rest.
 */
export function switchesOverNatively(
  from: ProviderBlock | undefined,
  to: ProviderBlock | undefined,
): boolean {
  const globalOf = (p: ProviderBlock | undefined) =>
    p?.type === 'AuroraGlobal'
      ? (p.auroraGlobal as { globalClusterIdentifier?: unknown } | undefined)?.globalClusterIdentifier
      : undefined;
  const global = globalOf(from);
  // Aurora matches global cluster identifiers without regard to case.
  return (
    typeof global === 'string' &&
    typeof globalOf(to) === 'string' &&
    global.toLowerCase() === String(globalOf(to)).toLowerCase()
  );
}

/**
 * Whether the provider itself brings a former primary back as a replica (reprotect): RDS and
 * DigitalOcean create a new replica in its region, Aurora global rejoins the old cluster. A
 * self-managed PostgreSQL needs its agent instead (operator/src/agent).
 */
export function reprotectsItself(spec: Pick<ReplicaClusterSpec, 'provider'>): boolean {
  return spec.provider.type !== 'SelfManaged';
}

/**
 * Whether an isolated drill can get a throwaway promoted copy of this standby (DatabaseProvider
 * drillCopy). Self-managed PostgreSQL: its database agent copies the standby beside it. RDS: a
 * read replica of the standby instance, promoted and deleted through the API (PostgreSQL 14.1 or
 * later: older versions refuse a replica of a replica). Aurora global: the read-replica calls do
 * not apply to a secondary cluster, and the ways to copy one (a clone, or detaching it from the
 * global database) are not built. DigitalOcean: a read-only node can be promoted, but nodes are
 * only made of the primary cluster, not of the standby node, so a copy would not prove what the
 * standby holds.
 */
export function makesDrillCopies(spec: Pick<ReplicaClusterSpec, 'provider'>): boolean {
  return spec.provider.type === 'SelfManaged' || spec.provider.type === 'AwsRds';
}
