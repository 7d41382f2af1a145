/**
 * One server under two names: two of a policy's clusters whose probes the same running server
 * answered (DatabaseObservation.server, its postmaster's start time). No primary and standby can
 * be that; a connection names the other cluster's server: the application's DNS name (which the
 * operator itself moves, so the old primary's name reaches the new one after a failover), a
 * copied host, an Aurora cluster endpoint. Acted on, the primary would look like a stray writer
 * beside itself and be fenced, or demoted by a reprotect. Nothing starts on those clusters until
 * the names come apart, and status says why (ClustersResolved=False, reason OneServer).
 *
 * The rule sees a server only through answered probes: after a restart of it, one name may have
 * answered with the new start time while the other's last answer still shows the old one.
 * `notYetApart` covers that moment for the rule it endangers (a stray's fence).
 */
import type { ConditionInput } from '../../runtime/conditions.ts';
import { type ClusterFacts, type DecideInput, policyClusters } from './facts.ts';

/**
 * Clock skew allowed between a database's host and the operator's, for notYetApart. A restart
 * itself puts the old answer before the new start by the shutdown and start-up; a larger margin
 * would only hold a real stray's fence longer after it started (by up to this and an interval).
 */
const START_SKEW_MS = 1_000;

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

/**
 * Two answers from different start times that still cannot tell their servers apart: the one
 * from the older server was read before the newer one started (give or take START_SKEW_MS), so it
 * may be that same server before a restart. The next answer of the older decides.
 */
export function notYetApart(x: ClusterFacts | undefined, y: ClusterFacts | undefined): boolean {
  if (!x?.server || !y?.server || x.server === y.server) return false;
  const [older, newer] = Number(x.server) < Number(y.server) ? [x, y] : [y, x];
  const newerStartMs = Number(newer.server) * 1000;
  return older.observedAt !== undefined && older.observedAt.getTime() < newerStartMs + START_SKEW_MS;
}
