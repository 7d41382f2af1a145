/**
 * Scheduled failover drills: a switchover to a standby, a hold while it serves, and a switchover
 * back, through the same state machine as any switchover, so a drill proves the path a real
 * failover takes (fencing, promotion, DNS) and measures it. The drill's own state lives in
 * status.drill; each leg is an ordinary operation in status.currentOperation and history.
 *
 *   due → Out (switchover to the standby) → Holding (holdSeconds) → Back (switchover back) → report
 *
 * A drill only starts when nothing is wrong: the primary writable, a standby replicating within
 * abortIfLagSecondsAbove, no operation or request in flight, no real failover in its cool-down.
 * A drill that cannot start when due is filed as Aborted with the reason, so a standby that is
 * never proven shows up in the drill metrics and alerts instead of passing silently.
 */
import { Cron } from 'croner';
import type {
  DrillState,
  Drills,
  FailoverPolicySpec,
  FailoverPolicyStatus,
  Operation,
  OperationReport,
} from '../../api/v1alpha1/index.ts';
import type { ConditionInput } from '../../runtime/conditions.ts';
import { type EventInput, eventOf } from '../../runtime/events.ts';
import { timestamp } from '../../runtime/time.ts';
import { inCooldown, standbysOf } from './candidates.ts';
import { type ClusterFacts, type DecideInput, healthyStandby, seconds, writable } from './facts.ts';
import { newOperation } from './operation.ts';

/** A drill due longer ago than this (the operator was not running) is skipped, not started late. */
export const DRILL_START_DEADLINE_MS = 60 * 60_000;

/** The first time the schedule fires after `after`, in the schedule's time zone. */
export function nextDrillAfter(drills: Drills, after: Date): Date | undefined {
  try {
    const cron = new Cron(drills.schedule, { timezone: drills.timeZone, paused: true });
    return cron.nextRun(after) ?? undefined;
  } catch {
    return undefined; // an unknown time zone: drillScheduleProblem says so
  }
}

/**
 * Why the schedule cannot be used, if it cannot: the API server checks the form of both fields,
 * but only a real lookup finds an unknown time zone or a date that never comes (30 February).
 */
export function drillScheduleProblem(drills: Drills, now: Date): string | undefined {
  try {
    const cron = new Cron(drills.schedule, { timezone: drills.timeZone, paused: true });
    if (!cron.nextRun(now)) return `the schedule "${drills.schedule}" never fires: fix spec.drills.schedule`;
    return undefined;
  } catch (err) {
    return `spec.drills cannot be scheduled (${(err as Error).message.split('. ')[0]}): use an IANA time zone such as Europe/Amsterdam and a five-field cron schedule`;
  }
}

/**
 * The next drill time to keep in status: the stored one while it is still an occurrence of the
 * current schedule (so a due drill stays due until handled), else the next one after `now`.
 * None while drills are not configured or suspended.
 */
export function scheduledDrillTime(
  spec: FailoverPolicySpec,
  status: FailoverPolicyStatus,
  now: Date,
): string | undefined {
  const drills = spec.drills;
  if (!drills || drills.suspend) return undefined;
  if (status.nextDrillTime) {
    const stored = new Date(status.nextDrillTime);
    const occurrence = nextDrillAfter(drills, new Date(stored.getTime() - 1000));
    if (occurrence?.getTime() === stored.getTime()) return status.nextDrillTime;
  }
  const next = nextDrillAfter(drills, now);
  return next ? timestamp(next) : undefined;
}

export function drillId(now: Date): string {
  return `drill-${timestamp(now)
    .replace(/[-:TZ.]/g, '')
    .slice(0, 14)}`;
}

/**
 * The report filed for a drill: its timings are those of the switchover to the standby (the
 * path a real failover takes); the reason tells how the drill ended, the way back included.
 */
export function drillReport(
  drill: Pick<DrillState, 'id' | 'from' | 'to' | 'startedAt'>,
  result: OperationReport['result'],
  reason: string,
  status: FailoverPolicyStatus,
  now: Date,
  outbound?: OperationReport,
): OperationReport {
  return {
    id: drill.id,
    kind: 'Switchover',
    trigger: 'Drill',
    from: drill.from,
    to: drill.to,
    epoch: status.epoch ?? 0,
    result,
    startedAt: drill.startedAt,
    completedAt: timestamp(now),
    ...(outbound?.result === 'Succeeded' && outbound.rtoSeconds !== undefined
      ? { rtoSeconds: outbound.rtoSeconds }
      : {}),
    ...(outbound?.result === 'Succeeded' && outbound.rpoSeconds !== undefined
      ? { rpoSeconds: outbound.rpoSeconds }
      : {}),
    ...(outbound?.result === 'Succeeded' && outbound.rpoBytes !== undefined
      ? { rpoBytes: outbound.rpoBytes }
      : {}),
    ...(outbound?.dnsVerifySeconds !== undefined ? { dnsVerifySeconds: outbound.dnsVerifySeconds } : {}),
    reason: reason.slice(0, 1024),
  };
}

/** A finished operation from history, by id. */
export function findReport(
  status: FailoverPolicyStatus,
  id: string | undefined,
): OperationReport | undefined {
  return id ? status.history?.find((r) => r.id === id) : undefined;
}

/** How many drill reports status keeps. */
export const DRILL_HISTORY_LENGTH = 10;

/** What the drill rules want this reconcile: wait (a hold, a restart), or change status. */
export type DrillPlan =
  | { kind: 'Wait'; why: string; requeueMs: number; status: FailoverPolicyStatus }
  | {
      kind: 'Change';
      why: string;
      status: FailoverPolicyStatus;
      events: EventInput[];
      /** A drill leg to start (a switchover), recorded by the caller like any operation. */
      operation?: Operation;
    };

/**
 * Moves a drill in progress to its next leg, or starts one that is due. Only called while the
 * primary is up and nothing else is in flight. Undefined: nothing to do.
 */
export function decideDrill(input: DecideInput, active: string, probeMs: number): DrillPlan | undefined {
  const { spec, status, clusters } = input;
  const drill = status.drill;
  // Right after a restart nothing is probed yet: wait rather than judge a leg or skip a drill.
  const names = [...new Set([active, ...standbysOf(spec, undefined), drill?.from, drill?.to])];
  if (names.some((n) => n !== undefined && clusters[n]?.unprobed))
    return drill ? { kind: 'Wait', why: 'drill: waiting for probes', requeueMs: probeMs, status } : undefined;
  if (drill) return continueDrill(input, drill, active, probeMs);
  return startDueDrill(input, active);
}

/** Ends the drill with a report in status.drills and an Event. */
function endDrill(
  input: DecideInput,
  drill: Pick<DrillState, 'id' | 'from' | 'to' | 'startedAt'>,
  result: OperationReport['result'],
  reason: string,
  extra: Partial<FailoverPolicyStatus> = {},
): DrillPlan {
  const { status, now } = input;
  const report = drillReport(
    drill,
    result,
    reason,
    status,
    now,
    findReport(status, status.drill?.outboundOperationId),
  );
  const { drill: _d, ...rest } = status;
  return {
    kind: 'Change',
    why: `drill ${drill.id} ${result.toLowerCase()}`,
    status: { ...rest, ...extra, drills: [report, ...(status.drills ?? [])].slice(0, DRILL_HISTORY_LENGTH) },
    events: [
      eventOf(
        result === 'Succeeded' ? 'Normal' : 'Warning',
        result === 'Succeeded' ? 'DrillSucceeded' : 'DrillFailed',
        'Drill',
        `drill ${drill.id} ${result.toLowerCase()}: ${reason}`,
      ),
    ],
  };
}

function continueDrill(input: DecideInput, drill: DrillState, active: string, probeMs: number): DrillPlan {
  const { spec, status, now } = input;
  const outbound = findReport(status, drill.outboundOperationId);
  const hold = (state: DrillState, requeueMs: number): DrillPlan => ({
    kind: 'Wait',
    why: `drill ${drill.id}: holding on ${drill.to}`,
    requeueMs: Math.max(10, Math.min(probeMs, requeueMs)),
    status: { ...status, drill: state },
  });
  if (drill.leg === 'Out') {
    if (outbound?.result === 'Succeeded' && active === drill.to) {
      const returnAfter = timestamp(new Date(now.getTime() + seconds(spec.drills?.holdSeconds ?? 0)));
      return hold({ ...drill, leg: 'Holding', returnAfter }, probeMs);
    }
    const why = outbound?.message ?? outbound?.reason ?? 'unknown';
    return endDrill(input, drill, 'Aborted', `the switchover to ${drill.to} did not complete: ${why}`);
  }
  if (drill.leg === 'Back') {
    const back = findReport(status, drill.backOperationId);
    if (back?.result === 'Succeeded' && active === drill.from) {
      return endDrill(
        input,
        drill,
        'Succeeded',
        `switched over to ${drill.to} (RTO ${outbound?.rtoSeconds ?? '?'} s, ${outbound?.rpoBytes ?? '?'} bytes lost) and back to ${drill.from} (RTO ${back?.rtoSeconds ?? '?'} s)`,
      );
    }
    const why = back?.message ?? back?.reason ?? 'unknown';
    return endDrill(
      input,
      drill,
      'Failed',
      `the switchover back to ${drill.from} did not complete (${why}); ${active} stays the primary`,
    );
  }
  return holdOrReturn(input, drill, active, hold);
}

/** Holding: serving from the standby until the hold is over, then switching back. */
function holdOrReturn(
  input: DecideInput,
  drill: DrillState,
  active: string,
  hold: (state: DrillState, requeueMs: number) => DrillPlan,
): DrillPlan {
  const { spec, clusters, now } = input;
  if (active !== drill.to)
    return endDrill(input, drill, 'Aborted', `interrupted: the primary moved to ${active} during the drill`);
  const maxMs = seconds(spec.drills?.maxDurationSeconds ?? 0);
  const startedAt = new Date(drill.startedAt).getTime();
  const returnAt = Math.min(new Date(drill.returnAfter ?? drill.startedAt).getTime(), startedAt + maxMs);
  if (now.getTime() < returnAt) return hold(drill, returnAt - now.getTime());
  const home = clusters[drill.from];
  if (writable(clusters[active]) && healthyStandby(home)) {
    const operation = drillLeg(input, active, drill.from, `drill ${drill.id}: back to ${drill.from}`);
    return {
      kind: 'Change',
      why: `drill ${drill.id}: switching back`,
      status: { ...input.status, drill: { ...drill, leg: 'Back', backOperationId: operation.id } },
      events: [],
      operation,
    };
  }
  // Without spec.drills (removed mid-drill) the drill is over at once.
  const problem = !writable(clusters[active])
    ? `${active} does not accept writes`
    : `${drill.from} is ${home?.reachable ? `in role ${home.role}` : 'unreachable'}, not a replicating standby`;
  if (now.getTime() - startedAt > maxMs)
    return endDrill(
      input,
      drill,
      'Failed',
      `could not switch back to ${drill.from} within maxDurationSeconds: ${problem}; ${active} stays the primary`,
    );
  return hold(drill, seconds(spec.detection.probeIntervalSeconds));
}

function drillLeg(input: DecideInput, from: string, to: string, reason: string): Operation {
  return newOperation({
    kind: 'Switchover',
    trigger: 'Drill',
    from,
    to,
    epoch: (input.status.epoch ?? 0) + 1,
    reason,
    now: input.now,
  });
}

/** A due drill starts when nothing is wrong; one that cannot start is filed with the reason. */
function startDueDrill(input: DecideInput, active: string): DrillPlan | undefined {
  const { spec, status, now } = input;
  const drills = spec.drills;
  if (!drills || drills.suspend || !status.nextDrillTime) return undefined;
  const due = new Date(status.nextDrillTime);
  if (now < due) return undefined;
  const starting = { id: drillId(now), from: active, to: active, startedAt: timestamp(now) };
  const next = nextAfter(spec, status, now);
  const nextDrill = next ? { nextDrillTime: next } : {};
  const skip = (reason: string): DrillPlan => {
    const ended = endDrill(input, starting, 'Aborted', `skipped: ${reason}`);
    const { nextDrillTime: _n, ...rest } = ended.status;
    return { ...ended, status: { ...rest, ...nextDrill } };
  };
  const problem = drillStartProblem(input, active, due);
  if (problem) return skip(problem);
  const target = standbysOf(spec, active)
    .map((n) => input.clusters[n])
    .find((f) => drillTarget(input, f));
  if (!target)
    return skip(
      `no standby replicating within ${drills.abortIfLagSecondsAbove} s (${standbySummary(input, active)})`,
    );
  const operation = drillLeg(
    input,
    active,
    target.name,
    `drill ${starting.id}: scheduled at ${status.nextDrillTime}`,
  );
  const { nextDrillTime: _n, ...rest } = status;
  return {
    kind: 'Change',
    why: `drill ${starting.id} starting`,
    status: {
      ...rest,
      ...nextDrill,
      drill: { ...starting, to: target.name, leg: 'Out', outboundOperationId: operation.id },
    },
    events: [],
    operation,
  };
}

/** Why a due drill must not start now, if it must not. */
function drillStartProblem(input: DecideInput, active: string, due: Date): string | undefined {
  const { spec, status, clusters, now } = input;
  if (now.getTime() - due.getTime() > DRILL_START_DEADLINE_MS)
    return `it was due at ${status.nextDrillTime}, more than an hour ago (was the operator running?)`;
  if (!writable(clusters[active])) return `the primary ${active} does not accept writes`;
  if (!clusters[active]?.rejoinsAfterSwitchover)
    return `${active}'s provider does not make a former primary a standby again after a switchover, so the drill could not switch back (see "Drills" in the README)`;
  const cooling = inCooldown(spec, status, now);
  if (cooling)
    return `a failover ended ${Math.round(cooling.sinceMs / 1000)} s ago, within the ${spec.promotion.cooldownSeconds} s cool-down`;
  return undefined;
}

function drillTarget(input: DecideInput, f: ClusterFacts | undefined): f is ClusterFacts {
  const drills = input.spec.drills;
  return (
    healthyStandby(f) &&
    f?.lagSeconds !== undefined &&
    f.lagSeconds <= (drills?.abortIfLagSecondsAbove ?? 0) &&
    (f.lagBytes ?? 0) <= input.spec.promotion.rpo.maxLagBytes
  );
}

function standbySummary(input: DecideInput, active: string): string {
  const seen = standbysOf(input.spec, active)
    .map((n) => input.clusters[n] ?? { name: n, exists: false, reachable: false, role: 'Unknown' as const })
    .map((f) =>
      !f.exists
        ? `${f.name} is missing`
        : !healthyStandby(f)
          ? `${f.name} is ${f.reachable ? `in role ${f.role}` : 'unreachable'}`
          : `${f.name} lags ${f.lagSeconds === undefined ? 'an unknown time' : `${f.lagSeconds} s`}`,
    );
  return seen.join('; ') || 'none';
}

/** The occurrence after `now`, ignoring the one stored (it is being handled now). */
function nextAfter(spec: FailoverPolicySpec, status: FailoverPolicyStatus, now: Date): string | undefined {
  const { nextDrillTime: _n, ...rest } = status;
  return scheduledDrillTime(spec, rest, now);
}

/** DrillsScheduled: whether drills will run, for a policy that has spec.drills. */
export function drillsCondition(
  drills: Drills,
  nextDrillTime: string | undefined,
  now: Date,
): ConditionInput {
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
