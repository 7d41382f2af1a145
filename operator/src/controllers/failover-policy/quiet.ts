/**
 * A quiet policy: nothing under way and nothing wrong that the operator could act on. It is not
 * looked at every probe interval, only when something it decides from changes (a probe verdict
 * that differs, a vote, a spec or cluster change: see the manager and the ReplicaCluster
 * reconciler's policy wake), and besides at most every QUIET_RESYNC_MS for what only time changes:
 * a vote growing stale, the drill schedule, the DNS record's check, and with an agent, at most
 * every Lease duration, for its renewals.
 *
 * A policy that is not quiet keeps the probe interval: a member unreachable or not where it should
 * be, a vote that says down or is stale, an operation, a drill, a pause holding something back, a
 * former primary waiting, an automatic failback ahead. So time-driven rules with safety in them
 * (detection, hold-downs, backoffs) never wait for the resync; in a quiet policy a vote going
 * stale only lowers the up votes, and no vote is down.
 */

import { leaseSettings } from '../../agent/lease-settings.ts';
import type { Plan } from './decide.ts';
import { NOTHING_TO_DO } from './decide.ts';
import { freshVotes } from './detection.ts';
import type { DnsCheck } from './dns-check.ts';
import { type DecideInput, policyClusters } from './facts.ts';

/** The longest a quiet policy goes without a reconcile. */
export const QUIET_RESYNC_MS = 30_000;

/**
 * How long a quiet policy may wait for the next reconcile, or undefined when it is not quiet (it
 * then keeps what the plan asked for). Never sooner than the plan asked, never past its next
 * drill or its next DNS check.
 */
export function quietLookMs(
  input: DecideInput,
  plan: Plan,
  dnsCheck: DnsCheck | undefined,
): number | undefined {
  const { spec, clusters, now } = input;
  const status = plan.status;
  const active = status.activePrimary;
  if (plan.action.kind !== 'Observe' || plan.why !== NOTHING_TO_DO) return undefined;
  if (!active || status.currentOperation || status.drill || plan.held?.length || plan.reprotectWaiting)
    return undefined;
  // After a failover with automatic failback, the failback waits for a time to pass.
  if (spec.reprotect.failback === 'Automatic' && active !== spec.primary) return undefined;
  for (const name of policyClusters(spec)) {
    const f = clusters[name];
    if (!f?.exists || f.unprobed || !f.reachable) return undefined;
    if (f.appEndpoints !== undefined && f.appEndpoints !== 'Healthy') return undefined;
  }
  if (clusters[active]?.role !== 'Primary') return undefined;
  if (input.lease?.unreadable) return undefined;
  // Every observer's newest vote fresh and up: a stale one coming back is then seen within an
  // interval, and nothing time does to an up vote can make a verdict down.
  const fresh = freshVotes(spec, input.votes, now);
  if (new Set(input.votes.map((v) => v.observer)).size !== fresh.length) return undefined;
  if (fresh.some((v) => !v.reachable)) return undefined;
  let wait = QUIET_RESYNC_MS;
  // An agent that stops renewing the primary Lease is said (SplitBrainProtection) within a Lease's
  // duration more, as a renewal is no event here. (Its reports, every 10 s, wake the policy too.)
  if (spec.primaryLease.enabled && policyClusters(spec).some((n) => clusters[n]?.agent))
    wait = Math.min(wait, leaseSettings(spec).durationMs);
  if (status.nextDrillTime) wait = Math.min(wait, new Date(status.nextDrillTime).getTime() - now.getTime());
  if (dnsCheck) wait = Math.min(wait, dnsCheck.dueAt - now.getTime());
  return Math.max(plan.requeueMs, wait);
}
