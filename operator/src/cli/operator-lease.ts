/**
 * Whether an operator is watching: its leader Lease held and renewed. Status written by an
 * operator that has stopped looks exactly like a healthy one, so `status` says so when the Lease
 * is held by no one, or its last renewal is older than its duration. The operator labels its
 * Lease (LEADER_LEASE_LABEL), whatever the Helm release calls it; the plugin finds it by that
 * label in any namespace. Where it cannot tell (no such Lease: leader election off, or an operator
 * that has not run yet; no right to list Leases; an error), it says nothing rather than guess.
 */
import { LEADER_LEASE_LABEL } from '../runtime/leader-election.ts';
import type { FailoverApi } from './api.ts';

export async function operatorLeaseWarning(api: FailoverApi, now: Date): Promise<string | undefined> {
  // $FAILOVER_OPERATOR_LEASE_SELECTOR: another selector (tests, or several operators side by side).
  const selector = process.env.FAILOVER_OPERATOR_LEASE_SELECTOR || `${LEADER_LEASE_LABEL}=operator`;
  const leases = await api.leasesLabelled(selector).catch(() => undefined);
  if (!leases || leases.items.length === 0) return undefined;
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
