/** What a database provider can do beyond the port, for decisions that depend on it. */
import type { ReplicaClusterSpec } from '../../api/v1alpha1/index.ts';

/**
 * Whether the provider itself makes a former primary a replicating standby of the new one after
 * a switchover, so that a drill can switch back. Aurora Global Database does; a promoted RDS or
 * DigitalOcean read replica and a self-managed server need the old primary rebuilt as a replica
 * first (outside the operator), so a drill there could go out but not come back.
 */
export function rejoinsAfterSwitchover(spec: Pick<ReplicaClusterSpec, 'provider'>): boolean {
  return spec.provider.type === 'AuroraGlobal';
}
