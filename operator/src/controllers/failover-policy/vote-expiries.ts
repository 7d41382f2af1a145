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
import type { Vote } from './facts.ts';
import { OPERATOR_OBSERVER } from './observe.ts';

/** After the vote's age passes its limit (freshVotes counts it stale only beyond it), with slack. */
const STALE_SLACK_MS = 1_000;
/**
 * A reset's time within this of the one set is left as it is: the same vote's time, worked out
 * from two clocks a moment apart, differs by a fraction of a millisecond each reconcile.
 */
const RESET_TOLERANCE_MS = 50;
/** Between a policy's key and an observer's name in an entry's key (neither holds a newline). */
const SEP = '\n';

export class VoteExpiries {
  private readonly schedule: Schedule;
  private readonly clock: Clock;

  constructor(clock: Clock, onStale: (policyKey: string) => void) {
    this.clock = clock;
    this.schedule = new Schedule((key) => onStale(key.slice(0, key.indexOf(SEP))), 'latest');
  }

  /**
   * An observation listed or written (a refresh too): its policy is woken once its vote is older
   * than `maxAgeMs`, unless a newer write moves that on.
   */
  seen(policyKey: string, observation: FailoverObservationSpec, maxAgeMs: number): void {
    if (observation.observer === OPERATOR_OBSERVER) return; // the operator's vote is its probes'
    const at = this.staleAt(Date.parse(observation.observedAt), maxAgeMs);
    if (at !== undefined) this.schedule.set(this.key(policyKey, observation.observer), at);
  }

  /**
   * The votes a reconcile of the policy read at `now` (its input's time, which freshVotes judged
   * them by), under its spec as it is now: each observer's wake is worked out again, sooner too
   * (a limit made shorter, a wall clock stepped). It also sets one that no write could (the policy
   * was not cached yet when its observations were listed). A vote fresh at `now` that has aged
   * out since (the reconcile waited on the network) wakes the policy at once: that reconcile may
   * have left it quiet.
   */
  reset(policyKey: string, votes: readonly Vote[], maxAgeMs: number, now: Date): void {
    const newest = new Map<string, number>();
    for (const v of votes) {
      if (v.observer === OPERATOR_OBSERVER) continue;
      newest.set(v.observer, Math.max(newest.get(v.observer) ?? 0, v.observedAt.getTime()));
    }
    for (const [observer, observedAt] of newest) {
      const key = this.key(policyKey, observer);
      // Stale when it was read: the policy is not quiet (quiet.ts), and looks every interval.
      if (now.getTime() - observedAt > maxAgeMs) this.schedule.delete(key);
      else
        this.schedule.replace(
          key,
          this.staleAt(observedAt, maxAgeMs) ?? performance.now(),
          RESET_TOLERANCE_MS,
        );
    }
  }

  private key(policyKey: string, observer: string): string {
    return `${policyKey}${SEP}${observer}`;
  }

  /** When (performance.now()) a vote taken at `observedAt` is stale; undefined if it is already. */
  private staleAt(observedAt: number, maxAgeMs: number): number | undefined {
    if (Number.isNaN(observedAt)) return undefined;
    const staleInMs = observedAt + maxAgeMs + STALE_SLACK_MS - this.clock.now().getTime();
    // Stale already: the policy sees it so whenever it next looks.
    return staleInMs > 0 ? performance.now() + staleInMs : undefined;
  }

  /** An observation deleted: its vote no longer counts, fresh or stale. */
  forget(policyKey: string, observer: string): void {
    this.schedule.delete(this.key(policyKey, observer));
  }

  stop(): void {
    this.schedule.clear();
  }
}
