/**
 * Candidates: which standby a failover may promote. The RPO budget is the gate: an automatic
 * promotion only picks a standby whose lag, measured close to the moment the primary was last
 * seen alive, is inside the budget. A figure from long before says nothing about what the standby
 * is missing now, so an old or unknown lag blocks it like a lag above the budget.
 */
import type { FailoverPolicySpec, FailoverPolicyStatus } from '../../api/v1alpha1/index.ts';
import { maxObservationAgeMs } from './detection.ts';
import { type ClusterFacts, healthyStandby, policyClusters, seconds, writable } from './facts.ts';

export type BlockReason =
  | 'Paused'
  | 'ManualMode'
  | 'PrimaryReachable'
  | 'Cooldown'
  | 'NoHealthyStandby'
  | 'LagUnknown'
  | 'LagAboveBudget'
  | 'AppEndpointsUnhealthy';

export interface Candidate {
  facts: ClusterFacts;
  problem?: { reason: BlockReason; message: string };
}

/** The standbys of a policy in order of preference: every cluster but the active primary. */
export function standbysOf(spec: FailoverPolicySpec, active: string | undefined): string[] {
  return policyClusters(spec).filter((n) => n !== active);
}

/**
 * How far before the primary's last sign of life a lag figure may have been measured. A standby's
 * lag is measured against an observation of the primary at most two intervals old, so the last
 * measurement lands within about two intervals of that moment however long detection took (a
 * silent primary makes every probe wait out its deadline).
 */
export function lagWindowMs(spec: FailoverPolicySpec): number {
  return seconds(spec.detection.probeIntervalSeconds * 2) + 5_000;
}

/**
 * When a writable primary was last read, if as recently as a vote must be: what a standby's lag is
 * judged against while nothing is lost (as a loss right now would be judged). Against the clock, a
 * lag measured up to two intervals before a primary read read as unknown between that read and the
 * next whenever the next came a few seconds late. A read older than a vote may be (probes stalled:
 * the lag stops being measured with it) is no anchor: then `now`, and the lag turns unknown.
 */
export function primaryReadAt(spec: FailoverPolicySpec, primary: ClusterFacts | undefined, now: Date): Date {
  const at = writable(primary) ? primary?.lastReachableAt : undefined;
  return at && at < now && now.getTime() - at.getTime() <= maxObservationAgeMs(spec) ? at : now;
}

/** One standby judged against the budget, with a lag measured within the window before `lastSeenAt`. */
export function judgeStandby(spec: FailoverPolicySpec, facts: ClusterFacts, lastSeenAt: Date): Candidate {
  const notBefore = new Date(lastSeenAt.getTime() - lagWindowMs(spec));
  const { name } = facts;
  if (!healthyStandby(facts)) {
    const what = !facts.exists
      ? 'missing'
      : facts.reachable
        ? `in role ${facts.role}`
        : facts.unprobed
          ? 'not probed yet'
          : 'unreachable';
    return { facts, problem: { reason: 'NoHealthyStandby', message: `${name} is ${what}` } };
  }
  const unknown = (message: string): Candidate => ({ facts, problem: { reason: 'LagUnknown', message } });
  if (facts.lagBytes === undefined || !facts.lagObservedAt)
    return unknown(`the lag of ${name} has not been measured`);
  if (facts.lagObservedAt < notBefore)
    return unknown(
      `the lag of ${name} was last measured at ${iso(facts.lagObservedAt)}, more than ${Math.round((lastSeenAt.getTime() - notBefore.getTime()) / 1000)} s before ${iso(lastSeenAt)} (the primary's last sign of life, or now when none is recent)`,
    );
  // Bytes are known but not how old the newest replayed write is: the budget's seconds cannot be checked.
  if (facts.lagSeconds === undefined)
    return unknown(
      `the lag of ${name} in seconds is unknown (${facts.lagBytes} bytes behind at ${iso(facts.lagObservedAt)}): it has not replayed a heartbeat of the primary yet (if this lasts, the operator cannot write its heartbeat on the primary, or reads the standby through another database: see the operator's log)`,
    );
  const budget = spec.promotion.rpo;
  if (facts.lagBytes > budget.maxLagBytes || facts.lagSeconds > budget.maxLagSeconds) {
    return {
      facts,
      problem: {
        reason: 'LagAboveBudget',
        message: `${name} lags ${facts.lagSeconds.toFixed(1)} s / ${facts.lagBytes} bytes; the RPO budget is ${budget.maxLagSeconds} s / ${budget.maxLagBytes} bytes`,
      },
    };
  }
  return { facts };
}

/**
 * The standby to promote, in order of preference: the first without a problem, else the one
 * whose problem says most about why none can be promoted. Undefined: the policy has no standby.
 */
export function chooseStandby(
  spec: FailoverPolicySpec,
  clusters: Record<string, ClusterFacts>,
  active: string,
  primaryLastSeenAt: Date,
): Candidate | undefined {
  const candidates = standbysOf(spec, active).map((name) => {
    const judged = judgeStandby(
      spec,
      clusters[name] ?? { name, exists: false, reachable: false, role: 'Unknown' },
      primaryLastSeenAt,
    );
    return judged.problem ? judged : judgeApplication(spec, judged.facts);
  });
  return (
    candidates.find((c) => !c.problem) ??
    candidates.find((c) => c.problem?.reason === 'LagAboveBudget') ??
    candidates.find((c) => c.problem?.reason === 'LagUnknown') ??
    candidates[0]
  );
}

/**
 * With requireHealthyAppEndpoints, the database may be ready while the application in its
 * region is not: an automatic failover there would move clients to a region that cannot serve
 * them. (A person's failover is not held back: they decide.)
 */
function judgeApplication(spec: FailoverPolicySpec, facts: ClusterFacts): Candidate {
  if (!spec.promotion.requireHealthyAppEndpoints || !facts.appEndpoints || facts.appEndpoints === 'Healthy')
    return { facts };
  const which = facts.unhealthyAppEndpoints?.join(', ') ?? 'not checked yet';
  return {
    facts,
    problem: {
      reason: 'AppEndpointsUnhealthy',
      message: `the application endpoints of ${facts.name} are not healthy (${which})`,
    },
  };
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The cool-down after a real failover, if it still runs: how long ago the failover was. */
export function inCooldown(spec: FailoverPolicySpec, status: FailoverPolicyStatus, now: Date) {
  if (!status.lastFailoverTime) return undefined;
  const since = now.getTime() - new Date(status.lastFailoverTime).getTime();
  return since < seconds(spec.promotion.cooldownSeconds) ? { sinceMs: since } : undefined;
}
