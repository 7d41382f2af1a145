/**
 * The record of a primary's loss in status: `primaryDownSince` (when a quorum first found it
 * down; the hold-down counts from it) and `primaryLoss` (which primary at which epoch, when it was
 * last reached, and each standby's lag then). A restarted operator has none of its predecessor's
 * probes: its own failures count from zero, and no lag can be measured against a lost primary.
 * Without the record a restart mid-outage would start the hold-down over and leave the RPO gate
 * with nothing to judge (LagUnknown: no automatic failover at all).
 *
 * Pure.
 */
import type { FailoverPolicyStatus } from '../../api/v1alpha1/index.ts';
import { compareLsn } from '../../providers/database/lsn.ts';
import { timestamp } from '../../runtime/time.ts';
import { standbysOf } from './candidates.ts';
import type { PrimaryVerdict } from './detection.ts';
import { abstains, freshVotes, votesDown } from './detection.ts';
import type { ClusterFacts, DecideInput } from './facts.ts';
import { OPERATOR_OBSERVER } from './observe.ts';

type PrimaryLoss = NonNullable<FailoverPolicyStatus['primaryLoss']>;
type LossFields = Pick<FailoverPolicyStatus, 'primaryDownSince' | 'primaryLoss'>;

/** The recorded loss, if it is of the primary and epoch status holds now. */
export function currentLoss(status: FailoverPolicyStatus): PrimaryLoss | undefined {
  const loss = status.primaryLoss;
  if (!loss || !status.primaryDownSince) return undefined;
  return loss.primary === status.activePrimary && loss.epoch === (status.epoch ?? 0) ? loss : undefined;
}

/** A status whose primary or epoch moved on (a promotion, a discovery) keeps no loss of the old one. */
export function lossFollowsPrimary(status: FailoverPolicyStatus): FailoverPolicyStatus {
  if (!status.primaryLoss || currentLoss(status)) return status;
  const { primaryDownSince: _d, primaryLoss: _l, ...rest } = status;
  return rest;
}

/**
 * The loss fields of this reconcile's status. Recorded when a quorum first finds the primary down;
 * kept while it stays down; started over when an observer of the down quorum reached it after the
 * agreement (a flap: the hold-down asks the quorum to keep agreeing). When the verdict lapses, the
 * record goes, unless nobody has reached the primary since, this process is counting its own
 * failures up from nothing (restarted, or a shard just taken: it never reached the primary, and
 * has not probed it yet or not up to the threshold) and the quorum would agree once they reach
 * it. Its failures then say nothing new, and without the record the hold-down would start over
 * and the lag would be lost for good.
 */
export function lossRecord(input: DecideInput, verdict: PrimaryVerdict | undefined): LossFields {
  const { status } = input;
  if (!verdict || !status.activePrimary) return {};
  if (!status.primaryDownSince) return verdict.down ? newLoss(input, verdict) : {};
  const since = Date.parse(status.primaryDownSince);
  // A status from a version without primaryLoss (or a CRD not upgraded, which prunes it) keeps its
  // primaryDownSince alone, tied to no primary: one from before the last failover is of another.
  const legacy = !status.primaryLoss;
  const promotedSince = status.lastFailoverTime !== undefined && Date.parse(status.lastFailoverTime) >= since;
  const loss = currentLoss(status);
  if (legacy ? promotedSince : !loss) return verdict.down ? newLoss(input, verdict) : {};
  const kept: LossFields = {
    primaryDownSince: status.primaryDownSince,
    ...(loss ? { primaryLoss: loss } : {}),
  };
  const seen = freshVotes(input.spec, input.votes, input.now).filter(
    (v) => votesDown(v, 0) && v.lastSeenAt !== undefined && v.lastSeenAt.getTime() > since,
  );
  if (verdict.down) {
    const threshold = input.spec.detection.failureThreshold;
    return seen.some((v) => votesDown(v, threshold)) ? newLoss(input, verdict) : kept;
  }
  return seen.length === 0 && recounting(input) && downWithOwnVote(input, verdict) ? kept : {};
}

/**
 * The verdict once this process's own failures reach the threshold, as its predecessor's had: a
 * minority that still reaches the primary (an observer cut off with it) does not end the loss.
 */
function downWithOwnVote(input: DecideInput, verdict: PrimaryVerdict): boolean {
  const downVotes = verdict.downVotes + 1;
  return downVotes >= input.spec.detection.quorum && downVotes > verdict.upVotes;
}

/** This process has never reached the active primary, and its own failures are below the threshold. */
function recounting(input: DecideInput): boolean {
  const primary = input.clusters[input.status.activePrimary ?? ''];
  if (!primary?.exists || primary.lastReachableAt) return false;
  if (primary.unprobed) return true;
  const own = input.votes.find((v) => v.observer === OPERATOR_OBSERVER);
  // Refused, it abstains: it would not count down however many more probes it made.
  return (
    own !== undefined &&
    !own.reachable &&
    !abstains(own) &&
    own.consecutiveFailures < input.spec.detection.failureThreshold
  );
}

function newLoss(input: DecideInput, verdict: PrimaryVerdict): LossFields {
  const { status, spec, clusters, now } = input;
  const active = status.activePrimary;
  if (!active) return {};
  const standbyLag = standbysOf(spec, active).flatMap((cluster) => {
    const f = clusters[cluster];
    if (f?.lagBytes === undefined || !f.lagObservedAt) return [];
    return [
      {
        cluster,
        bytes: f.lagBytes,
        ...(f.lagSeconds !== undefined ? { seconds: f.lagSeconds } : {}),
        measuredAt: timestamp(f.lagObservedAt),
        ...(f.position ? positionFields(f.position) : {}),
      },
    ];
  });
  return {
    primaryDownSince: timestamp(now),
    primaryLoss: {
      primary: active,
      epoch: status.epoch ?? 0,
      ...(verdict.lastSeenAt ? { lastSeenAt: timestamp(verdict.lastSeenAt) } : {}),
      standbyLag,
    },
  };
}

/**
 * When the primary was last reached: the latest of this reconcile's votes, the record (a restarted
 * process has no vote that ever reached it) and this process's own probe.
 */
export function primaryLastSeen(
  verdict: PrimaryVerdict,
  status: FailoverPolicyStatus,
  primary?: ClusterFacts,
): Date | undefined {
  const recorded = currentLoss(status)?.lastSeenAt;
  const dates = [verdict.lastSeenAt, recorded ? new Date(recorded) : undefined, primary?.lastReachableAt];
  return dates.reduce<Date | undefined>((a, d) => (d && (!a || d > a) ? d : a), undefined);
}

/**
 * The clusters' facts with each standby's lag as recorded at the loss, where this process measured
 * none as recent. Only for judging a failover: a standby cut off from its primary can only replay
 * what it already received, so what it lacked then bounds what it lacks now, provided it is the
 * same standby: replayed at least as far, on the same timeline (one rebuilt or re-pointed since
 * is not, and its lag stays unknown).
 */
export function withLagAtLoss(
  clusters: Record<string, ClusterFacts>,
  status: FailoverPolicyStatus,
): Record<string, ClusterFacts> {
  const recorded = currentLoss(status)?.standbyLag;
  if (!recorded?.length) return clusters;
  const merged = { ...clusters };
  for (const r of recorded) {
    const f = merged[r.cluster];
    const measuredAt = new Date(r.measuredAt);
    if (!f || (f.lagObservedAt && f.lagObservedAt >= measuredAt) || !samePlace(f, r)) continue;
    const { lagSeconds: _s, ...rest } = f;
    merged[r.cluster] = {
      ...rest,
      lagBytes: r.bytes,
      ...(r.seconds !== undefined ? { lagSeconds: r.seconds } : {}),
      lagObservedAt: measuredAt,
    };
  }
  return merged;
}

function positionFields(p: NonNullable<ClusterFacts['position']>) {
  return {
    lsn: p.replayLsn,
    ...(p.receiveLsn ? { receiveLsn: p.receiveLsn } : {}),
    ...(p.timeline !== undefined ? { timeline: p.timeline } : {}),
  };
}

/**
 * The same standby, having received nothing since: on the recorded timeline, replayed at least as
 * far, received no further, and replayed nothing it had not received then. (A primary that came
 * back unseen and streamed more, WAL restored from an archive it kept writing to, or a standby
 * rebuilt or re-pointed since, fails this, and its lag stays unknown.)
 */
function samePlace(f: ClusterFacts, r: PrimaryLoss['standbyLag'][number]): boolean {
  const now = f.position;
  if (!now?.receiveLsn || now.timeline === undefined) return false;
  if (!r.lsn || !r.receiveLsn || r.timeline !== now.timeline) return false;
  try {
    return (
      compareLsn(now.replayLsn, r.lsn) >= 0 &&
      compareLsn(now.receiveLsn, r.receiveLsn) <= 0 &&
      compareLsn(now.replayLsn, r.receiveLsn) <= 0
    );
  } catch {
    return false;
  }
}
