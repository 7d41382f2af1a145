/**
 * Detection: is the active primary down? Only on positive evidence from a quorum: enough distinct
 * observers, each with a fresh observation, have failed to reach it for the failure threshold,
 * and they outnumber those that still reach it. One observer losing sight is not an outage.
 */
import type { FailoverPolicySpec, TimelineEntry } from '../../api/v1alpha1/index.ts';
import { refusedTheProber } from '../../providers/errors.ts';
import { byCodeUnits } from '../../runtime/order.ts';
import { seconds, type Vote } from './facts.ts';
import { moment } from './operation.ts';

export interface PrimaryVerdict {
  down: boolean;
  /** The last moment an observer that lost the primary still reached it: alive until then. */
  lastSeenAt?: Date;
  downVotes: number;
  upVotes: number;
  /** Fresh votes that abstain: the primary answered and refused those observers. */
  refusedVotes: number;
  /** Distinct observers with a fresh observation. */
  fresh: number;
  message: string;
}

/** Whether a vote says the primary is down: failed for the threshold, and not just refused this observer. */
export function votesDown(v: Vote, failureThreshold: number): boolean {
  return !v.reachable && v.consecutiveFailures >= failureThreshold && !refusedTheProber(v.failureReason);
}

/**
 * Whether a failed vote abstains: the primary refused this observer, or it had no credentials
 * (refusedTheProber). Its failures run apart from others (ClusterProbes), so one timeout after
 * many refusals is one failure, not a vote past the threshold.
 */
export function abstains(v: Vote): boolean {
  return !v.reachable && refusedTheProber(v.failureReason);
}

/** Observations older than this are ignored. */
export function maxObservationAgeMs(spec: FailoverPolicySpec): number {
  return seconds(spec.detection.observationMaxAgeSeconds ?? spec.detection.probeIntervalSeconds * 3 + 5);
}

/** Each observer's newest vote, without stale ones or ones dated too far in the future. */
export function freshVotes(spec: FailoverPolicySpec, votes: Vote[], now: Date): Vote[] {
  const maxAge = maxObservationAgeMs(spec);
  const newest = new Map<string, Vote>();
  for (const v of votes) {
    const age = now.getTime() - v.observedAt.getTime();
    if (age > maxAge || age < -maxAge) continue;
    const seen = newest.get(v.observer);
    if (!seen || seen.observedAt < v.observedAt) newest.set(v.observer, v);
  }
  return [...newest.values()];
}

/** Counts fresh votes, one per observer (its newest), against the quorum. */
export function judgePrimary(
  spec: FailoverPolicySpec,
  votes: Vote[],
  now: Date,
  primary: string,
): PrimaryVerdict {
  const fresh = freshVotes(spec, votes, now);
  const { quorum, failureThreshold } = spec.detection;
  const downVotes = fresh.filter((v) => votesDown(v, failureThreshold)).length;
  const upVotes = fresh.filter((v) => v.reachable).length;
  const refused = fresh.filter(abstains);
  const down = downVotes >= quorum && downVotes > upVotes;
  // From those who lost it: when the quorum lost sight (a minority that still reaches it, cut off
  // with the primary, says nothing about what the deciders could measure).
  const seen = fresh.flatMap((v) => (votesDown(v, 0) && v.lastSeenAt ? [v.lastSeenAt] : []));
  const lastSeenAt = seen.length ? new Date(Math.max(...seen.map((d) => d.getTime()))) : undefined;
  const message = down
    ? `${downVotes} of ${fresh.length} observers have not reached ${primary} for ${failureThreshold}+ probes (quorum ${quorum})`
    : fresh.length === 0
      ? `no observer has a fresh observation of ${primary}; quorum is ${quorum}`
      : `${upVotes} of ${fresh.length} fresh observers reach ${primary}` +
        (downVotes > 0
          ? `, ${downVotes} ${downVotes === 1 ? 'has' : 'have'} lost it (quorum ${quorum})`
          : '') +
        (refused.length > 0
          ? `; ${refused.length} cannot judge it (${[...new Set(refused.map((v) => v.failureReason))].join(
              ', ',
            )}: refused by it, or nothing to log in with)`
          : '');
  return {
    down,
    downVotes,
    upVotes,
    refusedVotes: refused.length,
    fresh: fresh.length,
    message,
    ...(lastSeenAt ? { lastSeenAt } : {}),
  };
}

/**
 * The observers' side of an outage, for the operation's timeline: when each observer that lost
 * the primary began failing (its first failed probe, counted back from its failures in a row at
 * its probe interval, never before it last reached it), then when the quorum agreed.
 */
export function detectionMoments(
  spec: FailoverPolicySpec,
  votes: Vote[],
  now: Date,
  primary: string,
  quorumSince: string | undefined,
  verdict: string,
): TimelineEntry[] {
  const interval = seconds(spec.detection.probeIntervalSeconds);
  const lost = freshVotes(spec, votes, now).flatMap((v) => {
    if (!votesDown(v, 1)) return [];
    const counted = v.observedAt.getTime() - (v.consecutiveFailures - 1) * interval;
    const first = new Date(Math.max(counted, (v.lastSeenAt?.getTime() ?? 0) + 1));
    const seen = v.lastSeenAt ? `, last reached it at ${v.lastSeenAt.toISOString()}` : '';
    return [
      moment(
        first,
        'ObserverLostPrimary',
        `observer ${v.observer}: first failed probe of ${primary}${seen}; ${v.consecutiveFailures} in a row by ${v.observedAt.toISOString()}`,
      ),
    ];
  });
  // By time, the quorum's moment too: after a restart the new process's own first failure comes
  // after the agreement its predecessor recorded.
  const moments = quorumSince ? [...lost, moment(quorumSince, 'QuorumLostPrimary', verdict)] : lost;
  return moments.sort((a, b) => byCodeUnits(a.at, b.at));
}
