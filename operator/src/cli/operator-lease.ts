/**
 * Whether an operator is watching: its leader Lease (`failover-operator-leader`, in whichever
 * namespace it runs) held and renewed. Status written by an operator that has stopped looks
 * exactly like a healthy one, so `status` says so when nothing holds the Lease, or when its last
 * renewal is older than its duration. Someone who may not list Leases gets no warning rather
 * than a false one.
 */
import { ApiError, type FailoverApi } from './api.ts';

/**
 * The Lease name the chart and the operator's --leader-election-id use by default;
 * $FAILOVER_OPERATOR_LEASE names another (an operator started with another id).
 */
export const operatorLeaseName = (): string =>
  process.env.FAILOVER_OPERATOR_LEASE || 'failover-operator-leader';

export async function operatorLeaseWarning(api: FailoverApi, now: Date): Promise<string | undefined> {
  const name = operatorLeaseName();
  let leases: Awaited<ReturnType<FailoverApi['leasesNamed']>>;
  try {
    leases = await api.leasesNamed(name);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 403 || err.status === 401)) return undefined;
    throw err;
  }
  if (leases.items.length === 0)
    return `no failover-operator leader Lease (${name}) in any namespace: is the operator running? What follows may be stale.`;
  const live = leases.items.filter((l) => {
    const holder = l.spec?.holderIdentity;
    const renewed = l.spec?.renewTime ? new Date(l.spec.renewTime).getTime() : 0;
    return holder && now.getTime() - renewed <= (l.spec?.leaseDurationSeconds ?? 15) * 1000;
  });
  if (live.length > 0) return undefined;
  const where = leases.items.map((l) => {
    const renewed = l.spec?.renewTime;
    const ago = renewed
      ? `${Math.round((now.getTime() - new Date(renewed).getTime()) / 1000)} s ago`
      : 'never';
    return `${l.metadata.namespace}/${l.metadata.name} (holder ${l.spec?.holderIdentity || 'none'}, renewed ${ago})`;
  });
  return `no operator holds its leader Lease: ${where.join(', ')}. Nothing is watching these policies; what follows may be stale.`;
}
