/**
 * One server under two names: two of a policy's clusters whose probes the same running server
 * answers (DatabaseObservation.server, its postmaster's start time, kept through failed probes).
 * No primary and standby can be that; a connection names the other cluster's server: the
 * application's DNS name (which the operator itself moves, so the old primary's name reaches the
 * new primary after a failover), a copied host, an Aurora cluster endpoint. The rules would take
 * that server for a writer beside itself and fence it, or demote it as a former primary.
 *
 * So (decide.ts): a writer is fenced only once it is known to be another server than the primary
 * (`apartFrom`), by the stray rule and by an operation's own strays; an operation whose source and
 * target turn out to be one server runs no step that acts on its source; and ClustersResolved says
 * which clusters are one server (reason OneServer) until each names its own. (Nothing else can
 * start between two names of one server: a switchover, failover, reprotect or failback needs its
 * target or source to be a standby, and the other name shows the primary's role.)
 */
import type { Operation } from '../../api/v1alpha1/index.ts';
import type { ConditionInput } from '../../runtime/conditions.ts';
import type { ClusterFacts, DecideInput } from './facts.ts';
import { policyClusters } from './facts.ts';

export interface OneServer {
  /**
   * Each group: the clusters one server answered for, in the policy's order (none when the
   * verdict is status's, kept until the probes tell again: oneServerUntilAnswered).
   */
  groups: string[][];
  message: string;
}

export function oneServerNamedTwice(input: Pick<DecideInput, 'spec' | 'clusters'>): OneServer | undefined {
  const byServer = new Map<string, string[]>();
  for (const name of policyClusters(input.spec)) {
    const server = input.clusters[name]?.server;
    if (server) byServer.set(server, [...(byServer.get(server) ?? []), name]);
  }
  const groups = [...byServer.values()].filter((names) => names.length > 1);
  if (!groups.length) return undefined;
  const said = groups.map(
    (g) => `${g.join(' and ')} are one server (their probes answer from one postmaster)`,
  );
  return {
    groups,
    message: `${said.join('; ')}: a ReplicaCluster's connection names another's server (the application's DNS name, say, which moves with the primary). Nothing is fenced as a second writer beside the primary until each names its own server`,
  };
}

/**
 * What status last said of one server under two names, kept while a cluster of the policy cannot
 * tell its server yet: not probed since this operator started, or not answering since (a server
 * is known only from answers). Without it a restart turned ClustersResolved True, and False again
 * once both names answered; with it the verdict changes only on what the probes show.
 */
export function oneServerUntilAnswered(
  input: Pick<DecideInput, 'spec' | 'clusters' | 'status'>,
): OneServer | undefined {
  const said = input.status.conditions?.find((c) => c.type === 'ClustersResolved');
  if (said?.reason !== 'OneServer') return undefined;
  // Only the clusters it named, and only those still in the policy: another cluster down, or one
  // taken out of the policy to mend it, keeps nothing.
  const inPolicy = new Set(policyClusters(input.spec));
  const groups = namedGroups(said.message).map((g) => g.filter((name) => inPolicy.has(name)));
  const untold = groups.some(
    (g) =>
      g.length > 1 &&
      g.some((name) => {
        const f = input.clusters[name];
        return f?.unprobed || (f?.server === undefined && !f?.reachable);
      }),
  );
  return untold ? { groups: [], message: said.message } : undefined;
}

/** The groups a OneServer message names (oneServerNamedTwice writes "a and b are one server"). */
function namedGroups(message: string): string[][] {
  return [...message.matchAll(/([a-z0-9][-a-z0-9.]*(?: and [a-z0-9][-a-z0-9.]*)+) are one server/g)].map(
    (m) => (m[1] ?? '').split(' and '),
  );
}

/** Both answered from the same running server (as far as their last answers tell). */
export function sameServer(x: ClusterFacts | undefined, y: ClusterFacts | undefined): boolean {
  return x?.server !== undefined && x.server === y?.server;
}

/**
 * Two answers from different start times that cannot tell their servers apart yet: one name's
 * last answer came before the other first answered from its server, so it may be that same
 * server before a restart (the name showing the old start has not answered since). Both times
 * are the operator's clock. The next answer decides.
 */
export function notYetApart(x: ClusterFacts | undefined, y: ClusterFacts | undefined): boolean {
  if (!x?.server || !y?.server || x.server === y.server) return false;
  const before = (a: ClusterFacts, b: ClusterFacts) =>
    a.lastReachableAt !== undefined && b.serverSince !== undefined && a.lastReachableAt < b.serverSince;
  return before(x, y) || before(y, x);
}

/**
 * What a writer is to `primary`: another server (`Apart`: fencing it cannot fence the primary),
 * the primary's own under another name (`Same`), or not known yet (`Undecided`: one of the two
 * has not answered since this operator started or since its connection changed, or
 * notYetApart). Where neither tells a server (a provider that cannot), a writer is another, as
 * before. Two more facts decide for `Apart` without the primary answering again, so that a real
 * stray is not left writing because this operator cannot reach the primary: another timeline
 * (one server keeps its timeline while it stays primary; a returning old primary, or a standby
 * promoted by hand, has another), and a question open for longer than detection takes
 * (failureThreshold intervals and two more, as a drill's brief silence), counted from the later
 * of the two servers' first answers.
 */
export function serverOf(
  input: Pick<DecideInput, 'spec' | 'now'>,
  primary: ClusterFacts | undefined,
  writer: ClusterFacts | undefined,
): 'Apart' | 'Same' | 'Undecided' {
  if (!writer?.server) return primary?.server ? 'Undecided' : 'Apart';
  if (primary?.server === writer.server) return 'Same';
  const timelines = primary?.serverTimeline !== undefined && writer.serverTimeline !== undefined;
  if (timelines && primary?.serverTimeline !== writer.serverTimeline) return 'Apart';
  if (primary?.server && !notYetApart(primary, writer)) return 'Apart';
  const { probeIntervalSeconds, failureThreshold } = input.spec.detection;
  const windowMs = probeIntervalSeconds * (failureThreshold + 2) * 1000;
  // Unresolved since the later of the two first answers from these servers.
  const since = Math.max(
    writer.serverSince?.getTime() ?? input.now.getTime(),
    primary?.serverSince?.getTime() ?? 0,
  );
  return input.now.getTime() - since > windowMs ? 'Apart' : 'Undecided';
}

/** A writer known to be another server than the primary (serverOf). */
export const apartFrom = (
  input: Pick<DecideInput, 'spec' | 'now'>,
  primary: ClusterFacts | undefined,
  writer: ClusterFacts | undefined,
): boolean => serverOf(input, primary, writer) === 'Apart';

/** An operation whose source and target are one server: its steps on the source would hit the target. */
export function onOneServer(
  input: Pick<DecideInput, 'clusters'>,
  op: Pick<Operation, 'from' | 'to'>,
): boolean {
  return sameServer(input.clusters[op.from], input.clusters[op.to]);
}

/** ClustersResolved: every ReplicaCluster found (`resolved`), and no server named twice. */
export function clustersResolvedWith(
  resolved: ConditionInput,
  oneServer: OneServer | undefined,
): ConditionInput {
  if (!oneServer || resolved.status !== 'True') return resolved;
  return { type: 'ClustersResolved', status: 'False', reason: 'OneServer', message: oneServer.message };
}
