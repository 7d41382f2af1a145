/**
 * One server under two names: two of a policy's clusters whose probes the same running server
 * answered (DatabaseObservation.server, its postmaster's start time). No primary and standby can
 * be that; a connection names the other cluster's server: the application's DNS name (which the
 * operator itself moves, so the old primary's name reaches the new one after a failover), a
 * copied host, an Aurora cluster endpoint. Acted on, the primary would look like a stray writer
 * beside itself and be fenced, or demoted by a reprotect. Nothing starts on those clusters until
 * the names come apart, and status says why (ClustersResolved=False, reason OneServer).
 *
 * The rule sees a server only through answered probes: from a restart of it until both names
 * have answered again, the two start times differ. The servers are told apart by probes alone,
 * so a restart between two probes can hide the pair for that long.
 */
import type { ConditionInput } from '../../runtime/conditions.ts';
import { type DecideInput, policyClusters } from './facts.ts';

export interface OneServer {
  /** Each group: the clusters one server answered for, in the policy's order. */
  groups: string[][];
  message: string;
}

export function oneServerNamedTwice(input: Pick<DecideInput, 'spec' | 'clusters'>): OneServer | undefined {
  const byServer = new Map<string, string[]>();
  for (const name of policyClusters(input.spec)) {
    const f = input.clusters[name];
    if (!f?.reachable || !f.server) continue;
    byServer.set(f.server, [...(byServer.get(f.server) ?? []), name]);
  }
  const groups = [...byServer.values()].filter((names) => names.length > 1);
  if (!groups.length) return undefined;
  const said = groups.map((g) => `${g.join(' and ')} are one server (its probes answer from one postmaster)`);
  return {
    groups,
    message: `${said.join('; ')}: a ReplicaCluster's connection names another's server (the application's DNS name, say, which moves with the primary). Nothing is fenced, promoted or demoted on them until each names its own server`,
  };
}

/** ClustersResolved: every ReplicaCluster found (`resolved`), and no server named twice. */
export function clustersResolvedWith(
  resolved: ConditionInput,
  oneServer: OneServer | undefined,
): ConditionInput {
  if (!oneServer || resolved.status !== 'True') return resolved;
  return { type: 'ClustersResolved', status: 'False', reason: 'OneServer', message: oneServer.message };
}
