/**
 * A quiet policy: nothing under way and nothing wrong that the operator could act on. It is not
 * looked at every probe interval, only when something it decides from changes (a probe verdict
 * that differs, a vote, a spec or cluster change: see the manager and the ReplicaCluster
 * reconciler's policy wake), and besides at most every QUIET_RESYNC_MS, sooner for its next
 * drill, DNS check or the end of a cool-down.
 *
 * A policy that is not quiet keeps the probe interval: a member unreachable, not where it should
 * be or not probed since the last operation ended, a vote that says down or is stale, an
 * operation, a drill, a pause holding something back, a former primary waiting, an automatic
 * failback ahead, an agent (its Lease's renewals are timed by the operator's reads). So
 * time-driven rules with safety in them (detection, hold-downs, backoffs, the Lease wait) never
 * wait for the resync. Nor do what time alone changes in status: an observer's vote going stale
 * (vote-expiries.ts wakes the policy then), an agent's report ageing out, and incident reports left
 * to file or remove (the wait ends then); a standby's lag going unmeasured turns its cluster's own
 * condition, whose write wakes the policy. What can wait, on a quiet policy only: a shown lag
 * that drifts within one wake step, and the monthly availability gauge's turn of the month.
 */

import { agentAlive, REPORT_COUNTS_FOR_MS } from '../../agent/liveness.ts';
import { inCooldown } from './candidates.ts';
import type { Plan } from './decide.ts';
import { NOTHING_TO_DO } from './decide.ts';
import { freshVotes } from './detection.ts';
import type { DnsCheck } from './dns-check.ts';
import { type DecideInput, policyClusters, probedSince, seconds } from './facts.ts';

/**
 * The longest a quiet policy goes without a reconcile; its DNS check (every five minutes) comes
 * about as often. Each look at a quiet policy cost ~0.8 ms of CPU: at 30 s, 2,000 healthy
 * policies spent ~5 % of a core on nothing but looking.
 */
export const QUIET_RESYNC_MS = 300_000;

/**
 * How long a quiet policy may wait for the next reconcile, or undefined when it is not quiet (it
 * then keeps what the plan asked for). Never sooner than the plan asked, never past its next
 * drill, its next DNS check, or when its incident reports' next pass is due (`reportsDueAt`, ms
 * since the epoch: records left to file, a filing's retry, old ones still being removed).
 */
export function quietLookMs(
  input: DecideInput,
  plan: Plan,
  dnsCheck: DnsCheck | undefined,
  reportsDueAt?: number,
): number | undefined {
  const { spec, clusters, now } = input;
  const status = plan.status;
  const active = status.activePrimary;
  if (plan.action.kind !== 'Observe' || plan.why !== NOTHING_TO_DO) return undefined;
  if (!active || status.currentOperation || status.drill || plan.held?.length || plan.reprotectWaiting)
    return undefined;
  // After a failover with automatic failback, the failback waits for a time to pass.
  if (spec.reprotect.failback === 'Automatic' && active !== spec.primary) return undefined;
  // Some rules skip a member until a probe from after the last operation ended (a writer beside
  // the primary, a former primary to reprotect): a probe that says the same as the one before
  // wakes nobody, so the policy stays on the interval until each member has had one.
  const lastEnded = status.history?.[0]?.completedAt;
  for (const name of policyClusters(spec)) {
    const f = clusters[name];
    if (!f?.exists || f.unprobed || !f.reachable || !probedSince(f, lastEnded)) return undefined;
    if (f.appEndpoints !== undefined && f.appEndpoints !== 'Healthy') return undefined;
  }
  if (clusters[active]?.role !== 'Primary') return undefined;
  // The operator times the primary Lease's renewals from its own reads of it (SplitBrainWatch),
  // and a failover's wait for an old primary's Lease counts from them: they stay every interval.
  if (spec.primaryLease.enabled && policyClusters(spec).some((n) => clusters[n]?.agent)) return undefined;
  // Every observer's newest vote fresh and up: a stale one coming back is then seen within an
  // interval, and nothing time does to an up vote can make a verdict down.
  const fresh = freshVotes(spec, input.votes, now);
  if (new Set(input.votes.map((v) => v.observer)).size !== fresh.length) return undefined;
  if (fresh.some((v) => !v.reachable)) return undefined;
  let wait = QUIET_RESYNC_MS;
  // An agent's report ages out (its agent stopped) with no write to wake anyone: look then.
  for (const name of policyClusters(spec)) {
    const report = clusters[name]?.agent;
    if (agentAlive(report, now) && report)
      wait = Math.min(wait, Date.parse(report.reportedAt) + REPORT_COUNTS_FOR_MS + 1_000 - now.getTime());
  }
  // FailoverReady turns True when the cool-down after a failover ends.
  const cooling = inCooldown(spec, status, now);
  if (cooling) wait = Math.min(wait, seconds(spec.promotion.cooldownSeconds) - cooling.sinceMs);
  if (status.nextDrillTime) wait = Math.min(wait, new Date(status.nextDrillTime).getTime() - now.getTime());
  if (dnsCheck) wait = Math.min(wait, dnsCheck.dueAt - now.getTime());
  if (reportsDueAt !== undefined) wait = Math.min(wait, reportsDueAt - now.getTime());
  return Math.max(plan.requeueMs, wait);
}
