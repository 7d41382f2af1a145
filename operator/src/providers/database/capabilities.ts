/** What a database provider can do beyond the port, for decisions that depend on it. */
import type { ReplicaClusterSpec } from '../../api/v1alpha1/index.ts';

/**
 * Whether, after this operator switches over away from a cluster, its provider makes it a
 * replicating standby of the new primary by itself, so that a drill can switch back. None does
 * yet: a self-managed server comes back through the database agent beside it (drill.ts
 * `canComeBack` checks for a live one), a promoted RDS or DigitalOcean replica needs a reprotect;
 * Aurora Global Database would rejoin by itself, but this operator's switchover cannot fence an
 * Aurora writer read-only (Aurora refuses ALTER SYSTEM), so it does not run drills there either
 * until the switchover uses Aurora's own. A provider that can is added here.
 */
export function rejoinsAfterSwitchover(spec: Pick<ReplicaClusterSpec, 'provider'>): boolean {
  void spec;
  return false;
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
