/**
 * A person's promotion request (`spec.promotionRequest`, written by `kubectl failover promote`),
 * acted on once per id: started as an operation, or rejected with the reason. Two verbs, as in the
 * managed databases people know: Switchover (planned, the primary must be up, loses nothing) and
 * Failover (the primary is gone; refused beyond the RPO budget unless data loss is accepted).
 */

import { discardedOf } from '../../agent/divergence.ts';
import type { Operation } from '../../api/v1alpha1/index.ts';
import { timestamp } from '../../runtime/time.ts';
import { judgeStandby } from './candidates.ts';
import { detectionMoments, type PrimaryVerdict } from './detection.ts';
import { type ClusterFacts, type DecideInput, healthyStandby, seconds, writable } from './facts.ts';
import { primaryLastSeen, withLagAtLoss } from './loss.ts';
import { newOperation } from './operation.ts';
import { describeDivergence, discardsData, isProtected, readiness } from './reprotect.ts';

export type RequestVerdict =
  | { kind: 'Start'; operation: Operation }
  | { kind: 'Reject'; requestId: string; reason: string; message: string };

type PromotionRequest = NonNullable<DecideInput['spec']['promotionRequest']>;

interface Judging {
  input: DecideInput;
  request: PromotionRequest;
  active: string;
  verdict: PrimaryVerdict;
}

const reject = (j: Judging, reason: string, message: string): RequestVerdict => ({
  kind: 'Reject',
  requestId: j.request.id,
  reason,
  message,
});

const start = (j: Judging, fields: Partial<Operation>): RequestVerdict => ({
  kind: 'Start',
  operation: newOperation({
    kind: j.request.kind === 'Failover' ? 'Failover' : 'Switchover',
    trigger: 'Manual',
    from: j.active,
    to: j.request.target,
    epoch: (j.input.status.epoch ?? 0) + 1,
    reason: j.request.reason ?? `requested by ${j.request.requestedBy ?? 'a person'}`,
    now: j.input.now,
    extra: {
      requestId: j.request.id,
      ...(j.request.requestedBy ? { requestedBy: j.request.requestedBy } : {}),
      ...fields,
    },
  }),
});

/** What to do about the request in spec, if there is one not handled yet. */
export function judgeRequest(
  input: DecideInput,
  active: string,
  verdict: PrimaryVerdict,
): RequestVerdict | undefined {
  const request = input.spec.promotionRequest;
  if (!request || request.id === input.status.lastHandledRequestId) return undefined;
  const j: Judging = { input, request, active, verdict };
  const target = input.clusters[request.target];
  if (request.target === active)
    return reject(j, 'AlreadyPrimary', `${request.target} is already the primary`);
  if (!target?.exists) return reject(j, 'TargetMissing', `ReplicaCluster ${request.target} does not exist`);
  if (request.kind === 'Reprotect') return judgeReprotectRequest(j, target);
  if (!healthyStandby(target)) {
    return reject(
      j,
      'TargetNotStandby',
      `${request.target} is ${target.reachable ? `in role ${target.role}` : 'unreachable'}, not a replicating standby`,
    );
  }
  if (request.kind === 'Failover' && predatesOutage(j)) return undefined;
  return request.kind === 'Switchover' ? judgeSwitchover(j) : judgeFailover(j, target);
}

/**
 * The operator's own view of a primary that a quorum has lost may be older than the outage: its
 * last probe answered before the loss, the next has not. Judged on it, a failover request for a
 * primary that is gone would be refused as "accepts writes"; the request waits for a probe taken
 * after the operator first saw the quorum's verdict (one probe interval, or a probe's timeout).
 */
function predatesOutage(j: Judging): boolean {
  const primary = j.input.clusters[j.active];
  if (!j.verdict.down || !writable(primary)) return false;
  const observed = primary?.observedAt?.getTime() ?? 0;
  const lost = j.input.status.conditions?.find((c) => c.type === 'PrimaryAvailable' && c.status === 'False');
  // Not recorded yet: this reconcile records it, and the next judges against it.
  if (!lost) return true;
  // Conditions keep whole seconds: the outage was seen before the end of that second. A view
  // that stays older than that for long (30 s, or two probe intervals) is stale for another
  // reason: judge on it then.
  const seen = Date.parse(lost.lastTransitionTime) + 1000;
  const wait = Math.max(STALE_VIEW_WAIT_MS, 2 * seconds(j.input.spec.detection.probeIntervalSeconds));
  return observed < seen && j.input.now.getTime() - seen < wait;
}

/** At least; two probe intervals where they are longer (a probe times out after one). */
const STALE_VIEW_WAIT_MS = 30_000;

/** A switchover loses nothing: it needs the primary up, to stop its writes and let the standby catch up. */
function judgeSwitchover(j: Judging): RequestVerdict {
  // A round-trip drill moves the primary itself. While it holds on its standby a person may move
  // the primary on (the drill is then Interrupted, and does not switch back); in its other legs a
  // switchover would race the drill's own, so it waits. A failover pre-empts it in any leg.
  const drill = j.input.status.drill;
  if (drill && drill.mode !== 'Isolated' && drill.leg !== 'Holding')
    return reject(
      j,
      'DrillInProgress',
      `drill ${drill.id} is in its ${drill.leg} leg: ask again while it holds, cancel it (kubectl failover drill cancel), or wait for it to end`,
    );
  if (!writable(j.input.clusters[j.active])) {
    return reject(
      j,
      'PrimaryUnavailable',
      `a switchover needs the primary ${j.active} reachable and writable; use kind: Failover for a primary that is gone`,
    );
  }
  return start(j, {});
}

/** A failover is for a primary that is gone, and stays inside the budget unless loss is accepted. */
function judgeFailover(j: Judging, target: ClusterFacts): RequestVerdict {
  const { spec, clusters, now } = j.input;
  const primary = clusters[j.active];
  if (writable(primary)) {
    return reject(
      j,
      'PrimaryAvailable',
      `the primary ${j.active} is reachable and accepts writes; use kind: Switchover, which loses nothing`,
    );
  }
  // The operator's own path may be the one that is cut: a quorum of observers that still reach the
  // primary it cannot see is positive evidence it is alive, and a failover now would leave two
  // writers. (One the operator sees fenced is reachable but takes no writes: that is no reason.)
  if (!primary?.reachable && j.verdict.upVotes >= spec.detection.quorum) {
    return reject(
      j,
      'PrimaryAvailable',
      `${j.verdict.message}: the primary ${j.active} is not gone; use kind: Switchover, or fix the operator's path to it`,
    );
  }
  // The primary was alive until at least then: lag measured before that says little. One this
  // process cannot reach may have been lost before it started: status recorded when.
  const lastSeen =
    (primary?.reachable
      ? (j.verdict.lastSeenAt ?? now)
      : primaryLastSeen(j.verdict, j.input.status, primary)) ?? new Date(0);
  const measured = withLagAtLoss({ [target.name]: target }, j.input.status)[target.name] ?? target;
  const judged = judgeStandby(requestBudget(spec, j.request), measured, lastSeen);
  if (judged.problem && !j.request.allowDataLoss) {
    const hint =
      judged.problem.reason === 'LagUnknown'
        ? 'set allowDataLoss: true to promote anyway'
        : 'set allowDataLoss: true to accept the loss';
    return reject(j, judged.problem.reason, `${judged.problem.message}; ${hint}`);
  }
  return start(j, {
    allowDataLoss: j.request.allowDataLoss,
    // RTO and RPO are reported as for an automatic failover: from the primary's loss, with the lag then.
    primaryLostAt: timestamp(lastSeen.getTime() > 0 ? lastSeen : now),
    timeline: detectionMoments(
      spec,
      j.input.votes,
      now,
      j.active,
      j.input.status.primaryDownSince,
      j.verdict.message,
    ),
    ...(measured.lagBytes !== undefined ? { estimatedLossBytes: measured.lagBytes } : {}),
    ...(measured.lagSeconds !== undefined ? { estimatedLossSeconds: measured.lagSeconds } : {}),
  });
}

/** The request's own limit in seconds replaces the policy's budget (bytes then do not apply). */
function requestBudget(spec: DecideInput['spec'], request: PromotionRequest): DecideInput['spec'] {
  if (request.maxLagSeconds === undefined) return spec;
  const rpo = {
    ...spec.promotion.rpo,
    maxLagSeconds: request.maxLagSeconds,
    maxLagBytes: Number.MAX_SAFE_INTEGER,
  };
  return { ...spec, promotion: { ...spec.promotion, rpo } };
}

/**
 * Reprotect on request: the person may accept discarding what the former primary wrote after the
 * fork (allowDataLoss), which the agent's assessment shows; without it, a rejoin that would
 * discard committed transactions is refused here, before anything is stopped.
 */
function judgeReprotectRequest(j: Judging, target: ClusterFacts): RequestVerdict {
  const { input, request, active } = j;
  if (isProtected(target, active))
    return reject(j, 'AlreadyProtected', `${request.target} is already a replicating standby of ${active}`);
  const ready = readiness(target, active, input.now);
  if (!ready.ok) return reject(j, ready.reason, ready.message);
  const d = ready.divergence;
  if (d && discardsData(d) && !request.allowDataLoss)
    return reject(
      j,
      'WouldDiscard',
      `${request.target}: ${describeDivergence(d)}; set allowDataLoss: true to discard it`,
    );
  const discarded = discardedOf(d);
  return {
    kind: 'Start',
    operation: newOperation({
      kind: 'Reprotect',
      trigger: 'Manual',
      from: request.target,
      to: active,
      epoch: input.status.epoch ?? 0,
      reason: request.reason ?? `requested by ${request.requestedBy ?? 'a person'}`,
      now: input.now,
      extra: {
        requestId: request.id,
        ...(request.requestedBy ? { requestedBy: request.requestedBy } : {}),
        ...(request.allowDataLoss ? { allowDataLoss: true } : {}),
        ...(discarded ? { discarded } : {}),
      },
    }),
  };
}
