/**
 * Wakes a policy when an observer's newest vote on it goes stale (detection.ts `freshVotes`), by
 * this process's clock. A quiet policy (quiet.ts) is otherwise looked at only every few minutes,
 * and an observer's refresh wakes nobody (manager.ts `sameVote`): without this, an observer that
 * stopped would still count as fresh in status for minutes. Each refresh moves its vote's time on,
 * so nothing fires while observers keep writing: one entry per policy and observer, on one timer.
 */

import type { FailoverObservationSpec } from '../../api/v1alpha1/index.ts';
import type { Clock } from '../../runtime/clock.ts';
import { Schedule } from '../../runtime/schedule.ts';
import { OPERATOR_OBSERVER } from './observe.ts';

/** After the vote's age passes its limit (freshVotes counts it stale only beyond it), with slack. */
const STALE_SLACK_MS = 1_000;
/** Between a policy's key and an observer's name in an entry's key (neither holds a newline). */
const SEP = '\n';

export class VoteExpiries {
  private readonly schedule: Schedule;
  private readonly clock: Clock;

  constructor(clock: Clock, onStale: (policyKey: string) => void) {
    this.clock = clock;
    this.schedule = new Schedule((key) => onStale(key.slice(0, key.indexOf(SEP))), 'latest');
  }

  /** An observation listed or written: the policy is woken once its vote is older than `maxAgeMs`. */
  seen(policyKey: string, observation: FailoverObservationSpec, maxAgeMs: number): void {
    if (observation.observer === OPERATOR_OBSERVER) return; // the operator's vote is its probes'
    const observedAt = Date.parse(observation.observedAt);
    if (Number.isNaN(observedAt)) return;
    const staleInMs = observedAt + maxAgeMs + STALE_SLACK_MS - this.clock.now().getTime();
    // Stale already: the policy sees it so whenever it next looks, and its old entry has fired.
    if (staleInMs <= 0) return;
    this.schedule.set(`${policyKey}${SEP}${observation.observer}`, performance.now() + staleInMs);
  }

  /** An observation deleted: its vote no longer counts, fresh or stale. */
  forget(policyKey: string, observer: string): void {
    this.schedule.delete(`${policyKey}${SEP}${observer}`);
  }

  stop(): void {
    this.schedule.clear();
  }
}
