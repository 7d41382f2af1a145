/**
 * decide: a pure function of the policy, what was observed and the time, returning one plan.
 * Everything that makes a failover safe is here, testable without any I/O:
 *
 * 1. Positive evidence from a quorum: the primary is down only when enough distinct observers,
 *    each with a fresh observation, have failed to reach it for the failure threshold, and they
 *    outnumber those that still reach it. One observer losing sight is not an outage.
 * 2. The RPO budget: an automatic promotion only picks a standby whose last lag, measured just
 *    before the primary was lost, is inside the budget. Anything else needs a person's request.
 * 3. Fence before promote: a promotion never runs while the old primary is seen accepting writes;
 *    a database seen as primary that is not the active one is fenced.
 * 4. Hold-downs: no automatic failover before the hold-down has passed or within the cool-down
 *    after the last one, and never back to a recovered old primary on its own.
 */
import type {
  DrillState,
  Drills,
  FailoverPolicySpec,
  FailoverPolicyStatus,
  Operation,
  OperationReport,
  policyPhase,
} from '../../api/v1alpha1/index.ts';
import type { DatabaseRole } from '../../providers/database/port.ts';
import type { ConditionInput } from '../../runtime/conditions.ts';
import { timestamp } from '../../runtime/time.ts';
import {
  DRILL_START_DEADLINE_MS,
  drillId,
  drillReport,
  drillScheduleProblem,
  findReport,
  scheduledDrillTime,
} from './drill.ts';
import { isTerminal, withStep } from './operation.ts';

type Phase = (typeof policyPhase.options)[number];

/** The operator's own latest view of one cluster (from its ReplicaCluster status). */
export interface ClusterFacts {
  name: string;
  exists: boolean;
  reachable: boolean;
  role: DatabaseRole;
  /** Lag behind the active primary, measured while the primary was reachable. */
  lagBytes?: number;
  lagSeconds?: number;
  lagObservedAt?: Date;
  /** After a switchover away from it, its provider makes it a standby again (see drills). */
  rejoinsAfterSwitchover?: boolean;
  /** Not probed yet (a restarted operator): unreachable means "not known", not "down". */
  unprobed?: boolean;
}

/** One observer's view of the active primary. */
export interface Vote {
  observer: string;
  observedAt: Date;
  reachable: boolean;
  consecutiveFailures: number;
  /** When this observer last reached it: the primary was alive at least until then. */
  lastSeenAt?: Date;
}

export interface DecideInput {
  spec: FailoverPolicySpec;
  status: FailoverPolicyStatus;
  clusters: Record<string, ClusterFacts>;
  votes: Vote[];
  now: Date;
}

export type BlockReason = 'ManualMode' | 'Cooldown' | 'NoHealthyStandby' | 'LagUnknown' | 'LagAboveBudget';

export type Action =
  /** Nothing to do but keep status current; look again after `requeueMs`. */
  | { kind: 'Observe'; requeueMs: number }
  /** Record a new operation (no side effect yet); the next reconcile runs its first step. */
  | { kind: 'StartOperation'; operation: Operation }
  /** Run the side effect of `operation.step`, which is already recorded in status. */
  | { kind: 'RunStep'; operation: Operation }
  /** A promotion request that cannot be honoured: record it as handled, say why. */
  | { kind: 'RejectRequest'; requestId: string; reason: string; message: string }
  /** A database other than the active primary accepts writes: fence it now. */
  | { kind: 'FenceStrayPrimary'; cluster: string; epoch: number };

export interface Plan {
  action: Action;
  /** Status for people, recomputed on every reconcile. */
  phase: Phase;
  conditions: ConditionInput[];
  primaryDownSince: string | undefined;
  standbyLagSeconds: number | undefined;
  /** When the next scheduled drill is due; undefined: none scheduled. */
  nextDrillTime: string | undefined;
  /** The drill in progress after this plan; null ends it; undefined leaves it as it is. */
  drill?: DrillState | null;
  /** A drill that ended (or could not start), to file in status.drills. */
  drillReport?: OperationReport;
}

export interface PrimaryVerdict {
  down: boolean;
  /** The last moment any fresh down-voter still reached the primary: when it was lost, at the latest. */
  lastSeenAt?: Date;
  downVotes: number;
  upVotes: number;
  fresh: number;
  message: string;
}

const ms = (s: number) => s * 1000;

/** Observations older than this are ignored. */
export function maxObservationAgeMs(spec: FailoverPolicySpec): number {
  return ms(spec.detection.observationMaxAgeSeconds ?? spec.detection.probeIntervalSeconds * 3 + 5);
}

/** Counts fresh votes, one per observer (its newest), against the quorum. */
export function judgePrimary(
  spec: FailoverPolicySpec,
  votes: Vote[],
  now: Date,
  primary: string,
): PrimaryVerdict {
  const maxAge = maxObservationAgeMs(spec);
  const newest = new Map<string, Vote>();
  for (const v of votes) {
    const age = now.getTime() - v.observedAt.getTime();
    if (age > maxAge || age < -maxAge) continue; // stale, or from a clock far in the future
    const seen = newest.get(v.observer);
    if (!seen || seen.observedAt < v.observedAt) newest.set(v.observer, v);
  }
  const fresh = [...newest.values()];
  const downVotes = fresh.filter(
    (v) => !v.reachable && v.consecutiveFailures >= spec.detection.failureThreshold,
  ).length;
  const upVotes = fresh.filter((v) => v.reachable).length;
  const { quorum, failureThreshold } = spec.detection;
  const down = downVotes >= quorum && downVotes > upVotes;
  const seen = fresh
    .filter((v) => !v.reachable)
    .map((v) => v.lastSeenAt?.getTime())
    .filter((t): t is number => t !== undefined);
  const lastSeenAt = seen.length ? new Date(Math.max(...seen)) : undefined;
  const message = down
    ? `${downVotes} of ${fresh.length} observers have not reached ${primary} for ${failureThreshold}+ probes (quorum ${quorum})`
    : fresh.length < quorum
      ? `only ${fresh.length} fresh observer(s) of ${primary}; quorum is ${quorum}`
      : `${upVotes} of ${fresh.length} observers reach ${primary}`;
  return { down, downVotes, upVotes, fresh: fresh.length, message, ...(lastSeenAt ? { lastSeenAt } : {}) };
}

interface Candidate {
  facts: ClusterFacts;
  problem?: { reason: BlockReason; message: string };
}

/**
 * The best standby to promote for an automatic failover, in order of preference, and the reason
 * a standby is not eligible. Lag must have been measured close to when the primary was lost: a
 * lag figure from long before says nothing about what the standby is missing now.
 */
export function chooseStandby(input: DecideInput, primaryLostAt: Date): Candidate | undefined {
  const { spec, status, clusters } = input;
  const active = status.activePrimary ?? spec.primary;
  const names = [spec.primary, ...spec.standbys].filter((n) => n !== active);
  const budget = spec.promotion.rpo;
  const lagWindowMs =
    ms(spec.detection.probeIntervalSeconds * spec.detection.failureThreshold) +
    maxObservationAgeMs(spec) +
    ms(spec.promotion.holdDownSeconds);
  const candidates: Candidate[] = names.map((name) => {
    const facts = clusters[name] ?? { name, exists: false, reachable: false, role: 'Unknown' as const };
    if (!facts.exists || !facts.reachable || facts.role !== 'Standby') {
      return {
        facts,
        problem: {
          reason: 'NoHealthyStandby',
          message: `${name} is ${facts.exists ? (facts.reachable ? `in role ${facts.role}` : 'unreachable') : 'missing'}`,
        },
      };
    }
    if (
      facts.lagBytes === undefined ||
      facts.lagSeconds === undefined ||
      !facts.lagObservedAt ||
      facts.lagObservedAt.getTime() < primaryLostAt.getTime() - lagWindowMs
    ) {
      return {
        facts,
        problem: {
          reason: 'LagUnknown',
          message: `the lag of ${name} was not measured shortly before the primary was lost`,
        },
      };
    }
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
  });
  return (
    candidates.find((c) => !c.problem) ??
    candidates.find((c) => c.problem?.reason === 'LagAboveBudget') ??
    candidates.find((c) => c.problem?.reason === 'LagUnknown') ??
    candidates[0]
  );
}

function operationId(kind: Operation['kind'], epoch: number, now: Date): string {
  return `${kind.toLowerCase()}-e${epoch}-${timestamp(now)
    .replace(/[-:TZ]/g, '')
    .slice(0, 14)}`;
}

function newOperation(
  input: DecideInput,
  fields: Pick<Operation, 'kind' | 'trigger' | 'to'> & Partial<Operation>,
): Operation {
  const { status, spec, now } = input;
  const epoch = (status.epoch ?? 0) + 1;
  return {
    id: operationId(fields.kind, epoch, now),
    from: status.activePrimary ?? spec.primary,
    epoch,
    step: 'Detected',
    startedAt: timestamp(now),
    stepStartedAt: timestamp(now),
    ...fields,
  };
}

const writable = (f: ClusterFacts | undefined) => f?.reachable === true && f.role === 'Primary';

/** What to do about a person's promotion request. */
function handleRequest(input: DecideInput): Action | undefined {
  const { spec, status, clusters, now } = input;
  const request = spec.promotionRequest;
  if (!request || request.id === status.lastHandledRequestId) return undefined;
  const reject = (reason: string, message: string): Action => ({
    kind: 'RejectRequest',
    requestId: request.id,
    reason,
    message,
  });
  const active = status.activePrimary ?? spec.primary;
  const target = clusters[request.target];
  if (request.target === active) return reject('AlreadyPrimary', `${request.target} is already the primary`);
  if (!target?.exists) return reject('TargetMissing', `ReplicaCluster ${request.target} does not exist`);
  if (!target.reachable || target.role !== 'Standby') {
    return reject(
      'TargetNotStandby',
      `${request.target} is ${target.reachable ? `in role ${target.role}` : 'unreachable'}, not a replicating standby`,
    );
  }
  if (request.kind === 'Switchover') {
    // A switchover loses nothing: it needs the primary up, to stop its writes and let the standby catch up.
    if (!writable(clusters[active])) {
      return reject(
        'PrimaryUnavailable',
        `a switchover needs the primary ${active} reachable; use kind: Failover for a primary that is gone`,
      );
    }
    return {
      kind: 'StartOperation',
      operation: newOperation(input, {
        kind: 'Switchover',
        trigger: 'Manual',
        to: request.target,
        requestId: request.id,
        reason: request.reason ?? `requested by ${request.requestedBy ?? 'a person'}`,
      }),
    };
  }
  if (writable(clusters[active])) {
    return reject(
      'PrimaryAvailable',
      `the primary ${active} is reachable and accepts writes; use kind: Switchover, which loses nothing`,
    );
  }
  const limit = request.maxLagSeconds ?? spec.promotion.rpo.maxLagSeconds;
  const lag = target.lagSeconds;
  if (!request.allowDataLoss) {
    if (lag === undefined || target.lagBytes === undefined) {
      return reject(
        'LagUnknown',
        `the lag of ${request.target} is unknown; set allowDataLoss: true to promote anyway`,
      );
    }
    if (
      lag > limit ||
      (request.maxLagSeconds === undefined && target.lagBytes > spec.promotion.rpo.maxLagBytes)
    ) {
      return reject(
        'LagAboveBudget',
        `${request.target} lags ${lag.toFixed(1)} s / ${target.lagBytes} bytes, more than the ${limit} s budget; set allowDataLoss: true to accept the loss`,
      );
    }
  }
  void now;
  return {
    kind: 'StartOperation',
    operation: newOperation(input, {
      kind: 'Failover',
      trigger: 'Manual',
      to: request.target,
      requestId: request.id,
      allowDataLoss: request.allowDataLoss,
      reason: request.reason ?? `requested by ${request.requestedBy ?? 'a person'}`,
    }),
  };
}

export function decide(input: DecideInput): Plan {
  const { spec, status, clusters, now } = input;
  const active = status.activePrimary ?? spec.primary;
  const verdict = judgePrimary(spec, input.votes, now, active);
  const primaryDownSince = verdict.down ? (status.primaryDownSince ?? timestamp(now)) : undefined;
  const standbyLagSeconds = [spec.primary, ...spec.standbys]
    .filter((n) => n !== active)
    .map((n) => clusters[n])
    .find((f) => f?.reachable && f.role === 'Standby')?.lagSeconds;
  const conditions: ConditionInput[] = [
    verdict.down
      ? { type: 'PrimaryAvailable', status: 'False', reason: 'QuorumLostPrimary', message: verdict.message }
      : verdict.fresh < spec.detection.quorum && verdict.upVotes === 0
        ? { type: 'PrimaryAvailable', status: 'Unknown', reason: 'TooFewObservers', message: verdict.message }
        : { type: 'PrimaryAvailable', status: 'True', reason: 'Reachable', message: verdict.message },
  ];
  const nextDrillTime = scheduledDrillTime(spec, status, now);
  if (spec.drills) conditions.push(drillsCondition(spec.drills, nextDrillTime, now));
  const plan = (action: Action, phase: Phase, extra: ConditionInput[] = []): Plan => ({
    action,
    phase,
    conditions: [...conditions, ...extra],
    primaryDownSince,
    standbyLagSeconds,
    nextDrillTime,
  });
  const notBlocked: ConditionInput = {
    type: 'FailoverBlocked',
    status: 'False',
    reason: 'NotBlocked',
    message: 'nothing stands in the way of a failover',
  };

  // 1. An operation in progress runs to its end, one step per reconcile.
  const op = status.currentOperation;
  if (op) {
    const phase: Phase =
      op.trigger === 'Drill' ? 'Drilling' : op.kind === 'Switchover' ? 'SwitchingOver' : 'FailingOver';
    // An ended operation is filed into history by act.
    if (isTerminal(op.step)) return plan({ kind: 'RunStep', operation: op }, phase);
    // Fence before promote, checked again right before promoting: the old primary may have come back.
    if (op.step === 'Promoting' && writable(clusters[op.from])) {
      return plan(
        {
          kind: 'RunStep',
          operation: withStep(
            op,
            'Fencing',
            now,
            `${op.from} accepts writes again; fencing it before promoting`,
          ),
        },
        phase,
      );
    }
    // A switchover needs its primary. One lost by quorum before the standby was promoted stands
    // down, so the failover rules can act: fencing, catching up to or unfencing a primary that is
    // gone would be retried for ever, holding back the failover that is now needed.
    const beforePromotion = ['Detected', 'Fencing', 'CatchingUp', 'RollingBack'].includes(op.step);
    if (op.kind === 'Switchover' && beforePromotion && verdict.down) {
      return plan(
        {
          kind: 'RunStep',
          operation: withStep(
            op,
            'Aborted',
            now,
            `${op.from} was lost (${verdict.message}) before ${op.to} was promoted`,
          ),
        },
        'Degraded',
      );
    }
    // An automatic failover that has not touched a database yet stands down if the primary is
    // back — on positive evidence, not for want of it (a restarted operator has no probes yet).
    const primaryBack = writable(clusters[op.from]) || verdict.upVotes >= spec.detection.quorum;
    if (op.step === 'Detected' && op.trigger === 'Automatic' && primaryBack) {
      return plan(
        {
          kind: 'RunStep',
          operation: withStep(
            op,
            'Aborted',
            now,
            `${op.from} is reachable again before anything was changed`,
          ),
        },
        phase,
      );
    }
    return plan({ kind: 'RunStep', operation: op }, phase);
  }

  // 2. Never two primaries: anything else that accepts writes is fenced.
  for (const name of [spec.primary, ...spec.standbys]) {
    if (name !== active && writable(clusters[name])) {
      return plan({ kind: 'FenceStrayPrimary', cluster: name, epoch: status.epoch ?? 0 }, 'Degraded', [
        {
          type: 'FailoverBlocked',
          status: 'False',
          reason: 'NotBlocked',
          message: `fencing ${name}, which accepts writes but is not the primary`,
        },
      ]);
    }
  }

  // 3. A person's request, acted on once.
  const requested = handleRequest(input);
  if (requested)
    return plan(
      requested,
      requested.kind === 'StartOperation'
        ? requested.operation.kind === 'Switchover'
          ? 'SwitchingOver'
          : 'FailingOver'
        : 'Healthy',
      [notBlocked],
    );

  const probeMs = ms(spec.detection.probeIntervalSeconds);
  if (!verdict.down) {
    const healthyStandby = standbyLagSeconds !== undefined;
    const observe = plan({ kind: 'Observe', requeueMs: probeMs }, healthyStandby ? 'Healthy' : 'Degraded', [
      notBlocked,
    ]);
    return decideDrill(input, observe) ?? observe;
  }

  // 4. The primary is down by quorum. Fail over automatically only inside every limit.
  const downSince = new Date(primaryDownSince ?? timestamp(now));
  const blocked = (reason: BlockReason, message: string) =>
    plan({ kind: 'Observe', requeueMs: probeMs }, 'Blocked', [
      { type: 'FailoverBlocked', status: 'True', reason, message },
    ]);
  if (spec.promotion.mode === 'Manual') {
    return blocked(
      'ManualMode',
      `the primary is down and promotion.mode is Manual: request a promotion (kubectl failover promote)`,
    );
  }
  const heldFor = now.getTime() - downSince.getTime();
  if (heldFor < ms(spec.promotion.holdDownSeconds)) {
    return plan(
      { kind: 'Observe', requeueMs: Math.min(probeMs, ms(spec.promotion.holdDownSeconds) - heldFor) },
      'Degraded',
      [
        {
          type: 'FailoverBlocked',
          status: 'False',
          reason: 'HoldDown',
          message: `waiting out the ${spec.promotion.holdDownSeconds} s hold-down`,
        },
      ],
    );
  }
  if (status.lastFailoverTime) {
    const since = now.getTime() - new Date(status.lastFailoverTime).getTime();
    if (since < ms(spec.promotion.cooldownSeconds)) {
      return blocked(
        'Cooldown',
        `the last failover was ${Math.round(since / 1000)} s ago; the cool-down is ${spec.promotion.cooldownSeconds} s`,
      );
    }
  }
  const candidate = chooseStandby(input, downSince);
  if (!candidate) return blocked('NoHealthyStandby', 'the policy has no standby');
  if (candidate.problem) return blocked(candidate.problem.reason, candidate.problem.message);
  return plan(
    {
      kind: 'StartOperation',
      operation: newOperation(input, {
        kind: 'Failover',
        trigger: 'Automatic',
        to: candidate.facts.name,
        // RTO counts from when the primary was last seen alive, not from when the quorum agreed.
        primaryLostAt: timestamp(
          verdict.lastSeenAt && verdict.lastSeenAt < downSince ? verdict.lastSeenAt : downSince,
        ),
        estimatedLossBytes: candidate.facts.lagBytes,
        estimatedLossSeconds: candidate.facts.lagSeconds,
        reason: verdict.message,
      }),
    },
    'FailingOver',
    [notBlocked],
  );
}

/**
 * 5. Drills (see drill.ts), only while the primary is not down and nothing else is in flight:
 * move a drill in progress to its next leg, or start one that is due. `observe` is the plan when
 * there is nothing to do; undefined means just that.
 */
function decideDrill(input: DecideInput, observe: Plan): Plan | undefined {
  const { spec, status, clusters, now } = input;
  const active = status.activePrimary ?? spec.primary;
  const drills = spec.drills;
  const drill = status.drill;
  const probeMs = ms(spec.detection.probeIntervalSeconds);
  const outbound = () => findReport(status, drill?.outboundOperationId);
  const switchoverTo = (to: string, reason: string, state: DrillState): Plan => ({
    ...observe,
    action: {
      kind: 'StartOperation',
      operation: newOperation(input, { kind: 'Switchover', trigger: 'Drill', to, reason }),
    },
    phase: 'Drilling',
    drill: state,
  });
  const holding = (state: DrillState, requeueMs: number): Plan => ({
    ...observe,
    action: { kind: 'Observe', requeueMs: Math.max(10, Math.min(probeMs, requeueMs)) },
    phase: 'Drilling',
    ...(state !== drill ? { drill: state } : {}),
  });

  // Right after a restart nothing is probed yet: wait rather than judge a leg or skip a drill.
  const names = [...new Set([active, spec.primary, ...spec.standbys, drill?.from, drill?.to])];
  if (names.some((n) => n !== undefined && clusters[n]?.unprobed))
    return drill ? holding(drill, probeMs) : undefined;

  if (drill) {
    const end = (result: OperationReport['result'], reason: string): Plan => ({
      ...observe,
      drill: null,
      drillReport: drillReport(drill, result, reason, status, now, outbound()),
    });
    if (drill.leg === 'Out') {
      if (outbound()?.result === 'Succeeded' && active === drill.to) {
        const returnAfter = new Date(now.getTime() + ms(drills?.holdSeconds ?? 0));
        return holding({ ...drill, leg: 'Holding', returnAfter: timestamp(returnAfter) }, probeMs);
      }
      return end(
        'Aborted',
        `the switchover to ${drill.to} did not complete: ${outbound()?.reason ?? 'unknown'}`,
      );
    }
    if (drill.leg === 'Back') {
      const back = findReport(status, drill.backOperationId);
      if (back?.result === 'Succeeded' && active === drill.from) {
        const o = outbound();
        return end(
          'Succeeded',
          `switched over to ${drill.to} (RTO ${o?.rtoSeconds ?? '?'} s, ${o?.rpoBytes ?? '?'} bytes lost) and back to ${drill.from} (RTO ${back?.rtoSeconds ?? '?'} s)`,
        );
      }
      return end(
        'Failed',
        `the switchover back to ${drill.from} did not complete (${back?.reason ?? 'unknown'}); ${active} stays the primary`,
      );
    }
    // Holding: serving from the standby until the hold is over.
    if (active !== drill.to) {
      return end('Aborted', `interrupted: the primary moved to ${active} during the drill`);
    }
    const returnAt = Math.min(
      new Date(drill.returnAfter ?? drill.startedAt).getTime(),
      new Date(drill.startedAt).getTime() + ms(drills?.maxDurationSeconds ?? 0),
    );
    if (now.getTime() < returnAt) return holding(drill, returnAt - now.getTime());
    const home = clusters[drill.from];
    if (writable(clusters[active]) && home?.reachable && home.role === 'Standby') {
      const back = switchoverTo(drill.from, `drill ${drill.id}: back to ${drill.from}`, drill);
      const operation = (back.action as { operation: Operation }).operation;
      return { ...back, drill: { ...drill, leg: 'Back', backOperationId: operation.id } };
    }
    // Without spec.drills (removed mid-drill) the drill is over at once.
    const overdue = now.getTime() - new Date(drill.startedAt).getTime() > ms(drills?.maxDurationSeconds ?? 0);
    const problem = !writable(clusters[active])
      ? `${active} does not accept writes`
      : `${drill.from} is ${home?.reachable ? `in role ${home.role}` : 'unreachable'}, not a replicating standby`;
    if (overdue) {
      return end(
        'Failed',
        `could not switch back to ${drill.from} within maxDurationSeconds: ${problem}; ${active} stays the primary`,
      );
    }
    return holding(drill, probeMs);
  }

  // No drill in progress: start one if it is due.
  if (!drills || drills.suspend || !observe.nextDrillTime) return undefined;
  const due = new Date(observe.nextDrillTime);
  if (now < due) return undefined;
  const starting: DrillState = {
    id: drillId(now),
    from: active,
    to: active,
    startedAt: timestamp(now),
    leg: 'Out',
    outboundOperationId: '',
  };
  const skip = (reason: string): Plan => ({
    ...observe,
    drill: null,
    drillReport: drillReport(starting, 'Aborted', `skipped: ${reason}`, status, now),
    nextDrillTime: nextAfter(spec, status, now),
  });
  if (now.getTime() - due.getTime() > DRILL_START_DEADLINE_MS)
    return skip(`it was due at ${observe.nextDrillTime}, more than an hour ago (was the operator running?)`);
  if (!writable(clusters[active])) return skip(`the primary ${active} does not accept writes`);
  if (!clusters[active]?.rejoinsAfterSwitchover)
    return skip(
      `${active}'s provider does not make a former primary a standby again after a switchover, so the drill could not switch back (see "Drills" in the README)`,
    );
  if (status.lastFailoverTime) {
    const since = now.getTime() - new Date(status.lastFailoverTime).getTime();
    if (since < ms(spec.promotion.cooldownSeconds))
      return skip(
        `a failover ended ${Math.round(since / 1000)} s ago, within the ${spec.promotion.cooldownSeconds} s cool-down`,
      );
  }
  const standbys = [spec.primary, ...spec.standbys].filter((n) => n !== active).map((n) => clusters[n]);
  const target = standbys.find(
    (f) =>
      f?.reachable &&
      f.role === 'Standby' &&
      f.lagSeconds !== undefined &&
      f.lagSeconds <= drills.abortIfLagSecondsAbove &&
      (f.lagBytes ?? 0) <= spec.promotion.rpo.maxLagBytes,
  );
  if (!target) {
    const seen = standbys
      .map((f) =>
        !f
          ? 'a standby is missing'
          : !f.reachable || f.role !== 'Standby'
            ? `${f.name} is ${f.reachable ? `in role ${f.role}` : 'unreachable'}`
            : `${f.name} lags ${f.lagSeconds === undefined ? 'an unknown time' : `${f.lagSeconds} s`}`,
      )
      .join('; ');
    return skip(`no standby replicating within ${drills.abortIfLagSecondsAbove} s (${seen || 'none'})`);
  }
  const plan = switchoverTo(
    target.name,
    `drill ${starting.id}: scheduled at ${observe.nextDrillTime}`,
    starting,
  );
  const operation = (plan.action as { operation: Operation }).operation;
  return {
    ...plan,
    drill: { ...starting, to: target.name, outboundOperationId: operation.id },
    nextDrillTime: nextAfter(spec, status, now),
  };
}

/** The occurrence after `now`, ignoring the one stored (it is being handled now). */
function nextAfter(spec: FailoverPolicySpec, status: FailoverPolicyStatus, now: Date): string | undefined {
  const { nextDrillTime: _n, ...rest } = status;
  return scheduledDrillTime(spec, rest, now);
}

/** DrillsScheduled: whether drills will run, for a policy that has spec.drills. */
function drillsCondition(drills: Drills, nextDrillTime: string | undefined, now: Date): ConditionInput {
  if (drills.suspend)
    return {
      type: 'DrillsScheduled',
      status: 'False',
      reason: 'Suspended',
      message: 'spec.drills.suspend is true',
    };
  const problem = drillScheduleProblem(drills, now);
  if (problem || !nextDrillTime)
    return {
      type: 'DrillsScheduled',
      status: 'False',
      reason: 'InvalidSchedule',
      message: problem ?? 'no next drill time',
    };
  return {
    type: 'DrillsScheduled',
    status: 'True',
    reason: 'Scheduled',
    message: `drills run on "${drills.schedule}" in ${drills.timeZone}`,
  };
}
