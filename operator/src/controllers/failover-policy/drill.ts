/**
 * Failover drills: a switchover to a standby, a hold while it serves, and a switchover back,
 * through the same state machine as any switchover, so a drill proves the path a real failover
 * takes (fencing, promotion, DNS). The drill's own state lives in status.drill; each leg is an
 * ordinary operation in status.currentOperation and history.
 *
 *   due or requested → Starting (the canary writes through the name) → Out (switchover to the
 *   standby) → Holding (holdSeconds) → Back (switchover home) → report
 *
 * Measured from the client's side: while a drill runs, the operator's canary writer inserts
 * numbered rows through the DNS name, and each leg's RTO and RPO are read from what it saw.
 *
 * A drill only starts when nothing is wrong and it can come back: the primary writable, a standby
 * replicating within abortIfLagSecondsAbove, an agent (or a provider) on both that makes a former
 * primary a standby again, no operation in flight, no real failover in its cool-down. A drill
 * that cannot start when due is filed as Aborted with the reason, so a standby that is never
 * proven shows in the drill metrics and alerts instead of passing silently. A drill stops early
 * (judgeDrillStop) on a Cancel request or past maxDurationSeconds, and is Interrupted when a real
 * failover moves the primary.
 */
import { Cron } from 'croner';
import { agentAlive } from '../../agent/liveness.ts';
import type {
  DrillMeasure,
  DrillMode,
  DrillReport,
  DrillState,
  Drills,
  FailoverPolicySpec,
  FailoverPolicyStatus,
  Operation,
  OperationReport,
  StepSeconds,
} from '../../api/v1alpha1/index.ts';
import { measureSwitch } from '../../providers/canary/measure.ts';
import type { ConditionInput } from '../../runtime/conditions.ts';
import { type EventInput, eventOf } from '../../runtime/events.ts';
import { timestamp } from '../../runtime/time.ts';
import { inCooldown, lagWindowMs, primaryReadAt, standbysOf } from './candidates.ts';
import { type ClusterFacts, type DecideInput, healthyStandby, seconds, writable } from './facts.ts';
import {
  continueIsolated,
  type IsolatedDrillAction,
  isolatedDrillPlan,
  stopIsolated,
} from './isolated-drill.ts';
import { newOperation, withStep } from './operation.ts';

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

/** To the millisecond, as operation ids: a skipped due drill and a requested one can share a second. */
export function drillId(now: Date): string {
  return `drill-${now
    .toISOString()
    .replace(/[-:TZ.]/g, '')
    .slice(0, 17)}`;
}

/** A drill's canary warms up this long at most before the switchover starts without it. */
export const CANARY_WARM_UP_MS = 15_000;
/** Canary writes the old primary must acknowledge before the switchover starts: something to lose. */
export const CANARY_WARM_UP_WRITES = 10;
/** How long after a leg the canary may take to land its first write on the new primary. */
export const CANARY_MEASURE_WAIT_MS = 30_000;
/** How long a drill waits for the authoritative servers to serve its lowered TTL before going without. */
export const TTL_LOWER_WAIT_MS = 30_000;
/** How long after the way back the home region may take to show as a replicating standby again. */
export const COME_BACK_WAIT_MS = 60_000;
/**
 * How long past maxDurationSeconds a drill away from home keeps trying to come back (a home
 * region still catching up, a way back rolled back) before it is filed Failed, the primary away.
 */
export const COME_HOME_GRACE_MS = 10 * 60_000;
/** Pause between tries to come home after a way back that rolled back. */
const COME_HOME_RETRY_MS = 5_000;

type DrillResult = DrillReport['result'];

/**
 * The report filed for a drill. Its headline figures are the client side's, the canary's, when
 * it could measure: rtoSeconds is the out leg's, lostWrites the canary rows lost on both legs.
 * The operator's own figures for the switchover to the standby stand in where it could not.
 */
export function drillReport(
  drill: Pick<
    DrillState,
    'id' | 'from' | 'to' | 'startedAt' | 'requestId' | 'out' | 'back' | 'ttl' | 'outboundOperationId' | 'mode'
  >,
  result: DrillResult,
  reason: string,
  status: FailoverPolicyStatus,
  now: Date,
  outbound?: OperationReport,
): DrillReport {
  const succeeded = outbound?.result === 'Succeeded';
  const rto = drill.out?.rtoSeconds ?? (succeeded ? outbound?.rtoSeconds : undefined);
  const lost = lostOf(drill);
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
    ...(rto !== undefined ? { rtoSeconds: rto } : {}),
    ...(succeeded && outbound?.rpoSeconds !== undefined ? { rpoSeconds: outbound.rpoSeconds } : {}),
    ...(succeeded && outbound?.rpoBytes !== undefined ? { rpoBytes: outbound.rpoBytes } : {}),
    ...(lost !== undefined ? { lostWrites: lost } : {}),
    ...(outbound?.dnsVerifySeconds !== undefined ? { dnsVerifySeconds: outbound.dnsVerifySeconds } : {}),
    // The way out's steps: fencing, catch-up, demotion, promotion and DNS times.
    ...(outbound?.stepSeconds ? { stepSeconds: outbound.stepSeconds } : {}),
    ...(drill.requestId ? { requestId: drill.requestId } : {}),
    ...(drill.mode ? { mode: drill.mode } : {}),
    ...(drill.out ? { out: drill.out } : {}),
    ...(drill.back ? { back: drill.back } : {}),
    ...(drill.ttl
      ? { clientTtlSeconds: drill.ttl.loweredAt && !drill.ttl.skipped ? drill.ttl.lowered : drill.ttl.was }
      : {}),
    reason: reason.slice(0, 1024),
  };
}

/** Canary rows lost over the legs the canary measured; undefined when it measured none. */
function lostOf(drill: Pick<DrillState, 'out' | 'back'>): number | undefined {
  const legs = [drill.out?.rpoTransactions, drill.back?.rpoTransactions].filter((n) => n !== undefined);
  return legs.length ? legs.reduce((a, b) => a + b, 0) : undefined;
}

/** Past maxDurationSeconds and the grace to come home after it. */
function pastGrace(input: DecideInput, drill: DrillState): boolean {
  const maxMs = seconds(input.spec.drills?.maxDurationSeconds ?? 0);
  return input.now.getTime() - new Date(drill.startedAt).getTime() > maxMs + COME_HOME_GRACE_MS;
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
    }
  /** An isolated drill's record to write or delete; act folds the outcome into status.drill. */
  | { kind: 'Act'; why: string; status: FailoverPolicyStatus; action: IsolatedDrillAction };

/**
 * A cluster comes back as a standby after a switchover away from it when its provider does that
 * (Aurora global's native switchover) or when a database agent beside it demotes it.
 */
export function canComeBack(f: ClusterFacts | undefined, now: Date): boolean {
  return !!f && (f.rejoinsAfterSwitchover === true || agentAlive(f.agent, now));
}

/**
 * Moves a drill in progress to its next leg, or starts one that is due or requested. Only called
 * while the primary is up and nothing else is in flight. Undefined: nothing to do.
 */
export function decideDrill(
  input: DecideInput,
  active: string,
  probeMs: number,
  primaryDown = false,
): DrillPlan | undefined {
  const { spec, status, clusters } = input;
  const drill = status.drill;
  if (primaryDown && drill?.mode !== 'Isolated') return undefined;
  // Right after a restart nothing is probed yet: wait rather than judge a leg or skip a drill.
  const names = [...new Set([active, ...standbysOf(spec, undefined), drill?.from, drill?.to])];
  if (names.some((n) => n !== undefined && clusters[n]?.unprobed))
    return drill ? { kind: 'Wait', why: 'drill: waiting for probes', requeueMs: probeMs, status } : undefined;
  if (drill?.mode === 'Isolated') return continueIsolatedDrill(input, drill, primaryDown);
  if (drill) return continueDrill(input, drill, active, probeMs);
  return startRequestedDrill(input, active) ?? startDueDrill(input, active);
}

function continueIsolatedDrill(input: DecideInput, drill: DrillState, primaryDown: boolean): DrillPlan {
  const { status } = input;
  const step = continueIsolated(input, drill, primaryDown);
  switch (step.kind) {
    case 'Wait':
      return {
        kind: 'Wait',
        why: step.why,
        requeueMs: step.requeueMs,
        status: step.drill ? { ...status, drill: step.drill } : status,
      };
    case 'Change':
      return { kind: 'Change', why: step.why, status: { ...status, drill: step.drill }, events: [] };
    case 'Act':
      return { kind: 'Act', why: step.why, status, action: step.action };
    case 'End': {
      const ended = endDrill(input, drill, step.verdict.result, step.verdict.reason);
      if (ended.kind !== 'Change') return ended;
      const [report, ...rest] = ended.status.drills ?? [];
      return {
        ...ended,
        status: { ...ended.status, drills: report ? [{ ...report, isolated: step.report }, ...rest] : rest },
      };
    }
  }
}

/**
 * A round-trip drill still in its Starting leg, ended Aborted with `reason` (nothing moved yet):
 * for the failover rules when the primary is down. Undefined for any other drill.
 */
export function abortStartingDrill(
  input: DecideInput,
  status: FailoverPolicyStatus,
  reason: string,
): { status: FailoverPolicyStatus; events: EventInput[] } | undefined {
  const drill = status.drill;
  if (!drill || drill.mode === 'Isolated' || drill.leg !== 'Starting') return undefined;
  const ended = endDrill({ ...input, status }, drill, 'Aborted', reason);
  return ended.kind === 'Change' ? { status: ended.status, events: ended.events } : undefined;
}

/** Ends the drill with a report in status.drills and an Event. */
function endDrill(
  input: DecideInput,
  drill: Pick<
    DrillState,
    'id' | 'from' | 'to' | 'startedAt' | 'requestId' | 'out' | 'back' | 'ttl' | 'outboundOperationId' | 'mode'
  >,
  result: DrillResult,
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
  // Switched without a TTL of its own: clients could hold the record's.
  if (drill.outboundOperationId && report.clientTtlSeconds === undefined)
    report.clientTtlSeconds = input.spec.dns.ttlSeconds;
  const { drill: _d, ...rest } = status;
  return {
    kind: 'Change',
    why: `drill ${drill.id} ${result.toLowerCase()}`,
    status: { ...rest, ...extra, drills: [report, ...(status.drills ?? [])].slice(0, DRILL_HISTORY_LENGTH) },
    events: [
      eventOf(
        result === 'Succeeded' ? 'Normal' : 'Warning',
        `Drill${result}`,
        'Drill',
        `drill ${drill.id} ${result.toLowerCase()}: ${reason}`,
      ),
    ],
  };
}

function continueDrill(input: DecideInput, drill: DrillState, active: string, probeMs: number): DrillPlan {
  const { spec, status, now } = input;
  const hold = (state: DrillState, requeueMs: number, why = `drill ${drill.id}: holding on ${drill.to}`) => ({
    kind: 'Wait' as const,
    why,
    requeueMs: Math.max(10, Math.min(probeMs, requeueMs)),
    status: { ...status, drill: state },
  });
  if (drill.leg === 'Starting') return goOut(input, drill, active, hold);
  const outbound = findReport(status, drill.outboundOperationId);
  if (drill.leg === 'Out') {
    if (outbound?.result === 'Succeeded' && active === drill.to) {
      const measured = drill.out ?? measureLeg(input, outbound, drill.from, drill.to);
      if (!measured) return hold(drill, 500, `drill ${drill.id}: waiting for the canary on ${drill.to}`);
      const holdMs = drill.stop ? 0 : seconds(spec.drills?.holdSeconds ?? 0);
      const returnAfter = timestamp(new Date(now.getTime() + holdMs));
      return {
        kind: 'Change',
        why: `drill ${drill.id}: on ${drill.to}, measured`,
        status: { ...status, drill: { ...drill, leg: 'Holding', returnAfter, out: measured } },
        events: [],
      };
    }
    const why = outbound?.message ?? outbound?.reason ?? 'unknown';
    const result: DrillResult = drill.stop?.result ?? (active === drill.from ? 'Aborted' : 'Interrupted');
    return endDrill(
      input,
      drill,
      result,
      `${drill.stop ? `${drill.stop.reason}; ` : ''}the switchover to ${drill.to} did not complete (${why}); ${active} is the primary`,
    );
  }
  if (drill.leg === 'Back') return comeHome(input, drill, active, outbound, hold);
  return holdOrReturn(input, drill, active, hold);
}

/** Starting: the canary writes through the name first, so the switch has something to lose. */
function goOut(
  input: DecideInput,
  drill: DrillState,
  active: string,
  hold: (state: DrillState, requeueMs: number, why?: string) => DrillPlan,
): DrillPlan {
  const { spec, clusters, now } = input;
  if (drill.stop) return endDrill(input, drill, drill.stop.result, `${drill.stop.reason}; nothing moved`);
  const target = clusters[drill.to];
  // One failed probe is not yet a fact (a busy moment, a lost packet, a restart), and nothing has moved:
  // the drill holds while the silence is shorter than detection's (brieflySilent). A primary really gone
  // is the failover rules' (decide runs them before the drill's); one silent longer aborts below.
  const silent = [clusters[active], target].find((f) => brieflySilent(input, f));
  if (silent && active === drill.from && !spec.paused)
    return hold(
      drill,
      seconds(spec.detection.probeIntervalSeconds),
      `drill ${drill.id}: ${silent.name} failed its last probe; going out once it answers`,
    );
  const blocked = spec.paused
    ? `the policy was paused (spec.paused${spec.pauseReason ? `: ${spec.pauseReason}` : ''}) before it went out`
    : active !== drill.from
      ? `the primary moved to ${active}`
      : !writable(clusters[active])
        ? `the primary ${active} does not accept writes`
        : undefined;
  const agentGone = !canComeBack(target, now) || !canComeBack(clusters[active], now);
  // A lag not measured lately (its probes slow for a moment) is waited for as long as detection
  // would, not taken for a standby that fell behind.
  const { probeIntervalSeconds, failureThreshold } = spec.detection;
  const waitedMs = now.getTime() - new Date(drill.startedAt).getTime();
  if (
    !blocked &&
    !agentGone &&
    drillTarget(input, target) &&
    !lagRecent(input, active, target) &&
    waitedMs < seconds(probeIntervalSeconds * (failureThreshold + 2)) + CANARY_WARM_UP_MS
  )
    return hold(
      drill,
      seconds(probeIntervalSeconds),
      `drill ${drill.id}: waiting for a lag of ${drill.to} measured since ${active} was last read`,
    );
  const notReady = notReadyToSwitch(input, active, target, drill.to);
  const problem =
    blocked ??
    (notReady !== undefined
      ? `${drill.to} is no longer a standby replicating within ${spec.drills?.abortIfLagSecondsAbove ?? 0} s (${notReady})`
      : agentGone
        ? 'a database agent stopped reporting'
        : undefined);
  if (problem) return endDrill(input, drill, 'Aborted', `${problem} before the switchover; nothing moved`);
  const ttl = lowerTtl(input, drill);
  if (ttl.kind === 'Change') return ttl;
  if (ttl.kind === 'Wait') return hold(ttl.drill, ttl.requeueMs, ttl.why);
  const written = canaryRunOn(input, drill.id, drill.from)?.acknowledged ?? 0;
  if (written < CANARY_WARM_UP_WRITES && waitedMs < CANARY_WARM_UP_MS)
    return hold(
      drill,
      200,
      `drill ${drill.id}: the canary writes through the name first (${written} so far)`,
    );
  const operation = drillLeg(input, drill.from, drill.to, `drill ${drill.id}: out to ${drill.to}`, {
    maxCatchUpSeconds: Math.max(1, spec.drills?.abortIfLagSecondsAbove ?? 0),
    ...legTtl(drill),
  });
  return {
    kind: 'Change',
    why: `drill ${drill.id}: switching over to ${drill.to}`,
    status: { ...input.status, drill: { ...drill, leg: 'Out', outboundOperationId: operation.id } },
    events: [],
    operation,
  };
}

/** The TTL a drill's switchover writes the record with: the lowered one once it is in place. */
function legTtl(drill: DrillState): Partial<Operation> {
  return drill.ttl?.loweredAt && !drill.ttl.skipped ? { dnsTtlSeconds: drill.ttl.lowered } : {};
}

/**
 * Before the switchover the record's TTL is lowered (by keepDnsOnPrimary's repair, which wants
 * the drill's TTL while it runs) and then the old TTL is waited out, so resolvers drop the
 * answers they cached before: clients then follow the switch within the lowered TTL. A TTL that
 * does not show in time (a provider that refuses it) is skipped, and the report says so.
 */
function lowerTtl(
  input: DecideInput,
  drill: DrillState,
):
  | { kind: 'Ready' }
  | { kind: 'Wait'; drill: DrillState; requeueMs: number; why: string }
  | Extract<DrillPlan, { kind: 'Change' }> {
  const { spec, status, now } = input;
  const lowered = spec.drills?.ttlSeconds;
  const was = spec.dns.ttlSeconds;
  const change = (next: DrillState, why: string): Extract<DrillPlan, { kind: 'Change' }> => ({
    kind: 'Change',
    why,
    status: { ...status, drill: next },
    events: [],
  });
  if (!drill.ttl) {
    if (lowered === undefined || lowered >= was) return { kind: 'Ready' };
    return change({ ...drill, ttl: { lowered, was } }, `drill ${drill.id}: lowering the TTL to ${lowered} s`);
  }
  const ttl = drill.ttl;
  if (ttl.skipped) return { kind: 'Ready' };
  if (!ttl.loweredAt) {
    if (input.dns?.ttl === ttl.lowered && !input.dns.error)
      return change(
        { ...drill, ttl: { ...ttl, loweredAt: timestamp(now) } },
        `drill ${drill.id}: the record serves TTL ${ttl.lowered} s`,
      );
    if (now.getTime() - new Date(drill.startedAt).getTime() > TTL_LOWER_WAIT_MS) {
      const why = input.dns?.error?.message ?? `the record still has TTL ${input.dns?.ttl ?? '?'} s`;
      return change(
        {
          ...drill,
          ttl: { ...ttl, skipped: `not lowered within ${TTL_LOWER_WAIT_MS / 1000} s: ${why}`.slice(0, 512) },
        },
        `drill ${drill.id}: going on without a lowered TTL`,
      );
    }
    return {
      kind: 'Wait',
      drill,
      requeueMs: 1000,
      why: `drill ${drill.id}: waiting for TTL ${ttl.lowered} s on the record`,
    };
  }
  const cachedUntil = new Date(ttl.loweredAt).getTime() + ttl.was * 1000;
  if (now.getTime() < cachedUntil)
    return {
      kind: 'Wait',
      drill,
      requeueMs: cachedUntil - now.getTime(),
      why: `drill ${drill.id}: waiting out the old TTL (${ttl.was} s) so resolvers hold the lowered one`,
    };
  return { kind: 'Ready' };
}

/** Whether decide needs the DNS record read in this reconcile for the drill (its TTL). */
export function drillNeedsDns(status: FailoverPolicyStatus): boolean {
  const ttl = status.drill?.ttl;
  return status.drill?.leg === 'Starting' && !!ttl && !ttl.loweredAt && !ttl.skipped;
}

/** The canary's run of writes on `cluster` in this drill, the newest. */
function canaryRunOn(input: DecideInput, drillId: string, cluster: string) {
  const canary = input.canary;
  if (canary?.drillId !== drillId) return undefined;
  return [...canary.runs].reverse().find((r) => r.cluster === cluster);
}

/**
 * A leg measured from the client's side when the canary saw both ends of it; else, once the
 * canary has had CANARY_MEASURE_WAIT_MS to land a write on the new primary, the operator's own
 * figures with the reason. Undefined: still waiting for the canary.
 */
function measureLeg(
  input: DecideInput,
  leg: OperationReport,
  from: string,
  to: string,
): DrillMeasure | undefined {
  const drillId = input.status.drill?.id ?? '';
  const seen = input.canary?.drillId === drillId ? measureSwitch(input.canary, from, to) : undefined;
  if (seen?.rtoSeconds !== undefined && seen.rpoTransactions !== undefined)
    return {
      operationId: leg.id,
      measuredBy: 'Canary',
      rtoSeconds: seen.rtoSeconds,
      rpoTransactions: seen.rpoTransactions,
      acknowledged: seen.acknowledged,
      ...(seen.writesStoppedAt ? { writesStoppedAt: seen.writesStoppedAt } : {}),
      ...(seen.writesResumedAt ? { writesResumedAt: seen.writesResumedAt } : {}),
    };
  if (input.now.getTime() - new Date(leg.completedAt).getTime() < CANARY_MEASURE_WAIT_MS) return undefined;
  // Both ends seen, but the rows missing could not be counted (a privilege, a broken session): the
  // client-side RTO stands, without an RPO.
  if (seen?.rtoSeconds !== undefined)
    return {
      operationId: leg.id,
      measuredBy: 'Canary',
      rtoSeconds: seen.rtoSeconds,
      acknowledged: seen.acknowledged,
      ...(seen.writesStoppedAt ? { writesStoppedAt: seen.writesStoppedAt } : {}),
      ...(seen.writesResumedAt ? { writesResumedAt: seen.writesResumedAt } : {}),
      message: `the canary could not count which acknowledged rows ${to} lacks: no RPO for this leg`,
    };
  const why = !input.canary
    ? 'no canary writer ran (the operator restarted, or could not reach the database through the name)'
    : input.canary.drillId !== drillId
      ? 'the canary writer belongs to another drill'
      : !canaryRunOn(input, drillId, from)
        ? `the canary saw no write acknowledged by ${from} (the operator restarted during the leg?)`
        : `the canary landed no write on ${to} within ${CANARY_MEASURE_WAIT_MS / 1000} s`;
  return {
    operationId: leg.id,
    measuredBy: 'Operator',
    ...(leg.rtoSeconds !== undefined ? { rtoSeconds: leg.rtoSeconds } : {}),
    message: why.slice(0, 512),
  };
}

/** Back: done once home is the primary and the drill's standby replicates again, measured. */
function comeHome(
  input: DecideInput,
  drill: DrillState,
  active: string,
  outbound: OperationReport | undefined,
  hold: (state: DrillState, requeueMs: number, why?: string) => DrillPlan,
): DrillPlan {
  const { status, clusters, now } = input;
  const back = findReport(status, drill.backOperationId);
  if (back?.result !== 'Succeeded' || active !== drill.from) {
    const why = back?.message ?? back?.reason ?? 'unknown';
    // Rolled back, nothing moved: still on the drill's standby, which serves. Try again, for a while.
    if (active === drill.to && !pastGrace(input, drill)) {
      const { backOperationId: _b, ...rest } = drill;
      return {
        kind: 'Change',
        why: `drill ${drill.id}: the way back did not complete (${why}); trying again`,
        status: {
          ...status,
          drill: {
            ...rest,
            leg: 'Holding',
            returnAfter: timestamp(new Date(now.getTime() + COME_HOME_RETRY_MS)),
          },
        },
        events: [
          eventOf(
            'Warning',
            'DrillBackRetried',
            'Drill',
            `drill ${drill.id}: the way back to ${drill.from} did not complete (${why}); trying again`,
          ),
        ],
      };
    }
    return endDrill(
      input,
      drill,
      active === drill.from || active === drill.to ? 'Failed' : 'Interrupted',
      `the switchover back to ${drill.from} did not complete (${why}); ${active} stays the primary`,
    );
  }
  const measured = drill.back ?? measureLeg(input, back, drill.to, drill.from);
  if (!measured) return hold(drill, 500, `drill ${drill.id}: waiting for the canary on ${drill.from}`);
  const settled = { ...drill, back: measured };
  const sinceBack = now.getTime() - new Date(back.completedAt).getTime();
  if (!healthyStandby(clusters[drill.to]) && sinceBack < COME_BACK_WAIT_MS)
    return hold(settled, 1000, `drill ${drill.id}: waiting for ${drill.to} to replicate again`);
  const out = settled.out;
  const lost = lostOf(settled) ?? 0;
  const figures = `out to ${drill.to}: RTO ${fmt(out?.rtoSeconds ?? outbound?.rtoSeconds)} s${out?.measuredBy === 'Canary' ? `, RPO ${out.rpoTransactions} of ${out.acknowledged ?? '?'} canary rows` : ' (operator-measured)'}; back: RTO ${fmt(measured.rtoSeconds)} s${measured.measuredBy === 'Canary' ? `, RPO ${measured.rpoTransactions}` : ''}; DNS verified in ${fmt(outbound?.dnsVerifySeconds)} s${stepsStory(outbound?.stepSeconds)}`;
  if (lost > 0)
    return endDrill(
      input,
      settled,
      'Failed',
      `${lost} acknowledged canary row(s) lost in a switchover: ${figures}`,
    );
  if (!healthyStandby(clusters[drill.to]))
    return endDrill(
      input,
      settled,
      'Failed',
      `back on ${drill.from}, but ${drill.to} is not a replicating standby ${COME_BACK_WAIT_MS / 1000} s later: ${figures}`,
    );
  if (drill.stop)
    return endDrill(
      input,
      settled,
      drill.stop.result,
      `${drill.stop.reason}; back on ${drill.from}: ${figures}`,
    );
  return endDrill(input, settled, 'Succeeded', figures);
}

const fmt = (n: number | undefined) => (n === undefined ? '?' : String(Math.round(n * 1000) / 1000));

/** The way out's step times, for the report's words: "; out: fenced 0.2 s, caught up 0.4 s, …". */
function stepsStory(steps: StepSeconds | undefined): string {
  if (!steps) return '';
  const said = [
    steps.fencing !== undefined ? `fenced ${fmt(steps.fencing)} s` : '',
    steps.catchingUp !== undefined ? `caught up ${fmt(steps.catchingUp)} s` : '',
    steps.demoting !== undefined ? `demoted ${fmt(steps.demoting)} s` : '',
    steps.promoting !== undefined ? `promoted ${fmt(steps.promoting)} s` : '',
  ].filter(Boolean);
  return said.length ? `; out: ${said.join(', ')}` : '';
}

/** Holding: serving from the standby until the hold is over (or the drill stopped), then back. */
function holdOrReturn(
  input: DecideInput,
  drill: DrillState,
  active: string,
  hold: (state: DrillState, requeueMs: number) => DrillPlan,
): DrillPlan {
  const { spec, clusters, now } = input;
  if (active !== drill.to)
    return endDrill(
      input,
      drill,
      'Interrupted',
      `the primary moved to ${active} during the drill: a real failover took over`,
    );
  const maxMs = seconds(spec.drills?.maxDurationSeconds ?? 0);
  const startedAt = new Date(drill.startedAt).getTime();
  const returnAt = drill.stop
    ? now.getTime()
    : Math.min(new Date(drill.returnAfter ?? drill.startedAt).getTime(), startedAt + maxMs);
  if (now.getTime() < returnAt) return hold(drill, returnAt - now.getTime());
  const home = clusters[drill.from];
  // Home must be caught up as the way out required: the way back fences the serving primary
  // until home has its last WAL, and that wait is bounded the same way.
  const ready = spec.drills
    ? notReadyToSwitch(input, active, home, drill.from) === undefined
    : healthyStandby(home);
  if (writable(clusters[active]) && ready) {
    const operation = drillLeg(input, active, drill.from, `drill ${drill.id}: back to ${drill.from}`, {
      ...legTtl(drill),
      ...(spec.drills ? { maxCatchUpSeconds: Math.max(1, spec.drills.abortIfLagSecondsAbove) } : {}),
    });
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
    : ((spec.drills ? notReadyToSwitch(input, active, home, drill.from) : undefined) ??
      describeStandby(home ?? { name: drill.from, exists: false, reachable: false, role: 'Unknown' }));
  if (!spec.drills || pastGrace(input, drill))
    return endDrill(
      input,
      drill,
      'Failed',
      `could not switch back to ${drill.from} within maxDurationSeconds${spec.drills ? ` and ${COME_HOME_GRACE_MS / 60_000} min more` : ''}: ${problem}; ${active} stays the primary`,
    );
  return hold(drill, seconds(spec.detection.probeIntervalSeconds));
}

function drillLeg(
  input: DecideInput,
  from: string,
  to: string,
  reason: string,
  extra?: Partial<Operation>,
): Operation {
  return newOperation({
    kind: 'Switchover',
    trigger: 'Drill',
    from,
    to,
    epoch: (input.status.epoch ?? 0) + 1,
    reason,
    now: input.now,
    ...(extra ? { extra } : {}),
  });
}

type Chosen = { target: ClusterFacts; isolated?: DrillState['isolated'] } | { problem: string };

/** The standby a drill would go to (or copy) now, or why there is none (or why no drill may start). */
function drillPlan(input: DecideInput, active: string, mode: DrillMode): Chosen {
  const { spec, status, clusters, now } = input;
  if (spec.paused)
    return {
      problem: `the policy is paused (spec.paused${spec.pauseReason ? `: ${spec.pauseReason}` : ''}): no drill starts until it is resumed`,
    };
  if (!writable(clusters[active])) return { problem: `the primary ${active} does not accept writes` };
  if (mode === 'Isolated') {
    const chosen = isolatedDrillPlan(input, active, (f) => drillTarget(input, f));
    return chosen;
  }
  if (!canComeBack(clusters[active], now))
    return {
      problem: `no database agent reports for ${active} and its provider does not make a former primary a standby again after a switchover, so the drill could not come back (run the agent beside it: docs/agent.md)`,
    };
  const cooling = inCooldown(spec, status, now);
  if (cooling)
    return {
      problem: `a failover ended ${Math.round(cooling.sinceMs / 1000)} s ago, within the ${spec.promotion.cooldownSeconds} s cool-down`,
    };
  const target = standbysOf(spec, active)
    .map((n) => clusters[n])
    .find((f) => drillTarget(input, f) && canComeBack(f, now));
  if (!target)
    return {
      problem: `no standby replicating within ${spec.drills?.abortIfLagSecondsAbove ?? 0} s that can come back after a switchover (${standbySummary(input, active)})`,
    };
  return { target };
}

function starting(
  input: DecideInput,
  active: string,
  chosen: Exclude<Chosen, { problem: string }>,
  requestId?: string,
): DrillState {
  return {
    id: drillId(input.now),
    from: active,
    to: chosen.target.name,
    startedAt: timestamp(input.now),
    ...(chosen.isolated
      ? { mode: 'Isolated' as const, leg: 'Copying' as const, isolated: chosen.isolated }
      : { leg: 'Starting' as const }),
    ...(requestId ? { requestId } : {}),
  };
}

/** What a starting drill will do, for its Event. */
function drillStory(drill: DrillState): string {
  if (drill.isolated?.copiedBy === 'Provider')
    return `isolated: a read replica of ${drill.to} made and promoted by its provider, written to through ${drill.isolated.recordName}; nothing in production moves`;
  return drill.isolated
    ? `isolated: a copy of ${drill.to} promoted on port ${drill.isolated.port}, written to through ${drill.isolated.recordName}; nothing in production moves`
    : `out to ${drill.to} and back`;
}

/** A due drill starts when nothing is wrong; one that cannot start is filed with the reason. */
function startDueDrill(input: DecideInput, active: string): DrillPlan | undefined {
  const { spec, status, now } = input;
  const drills = spec.drills;
  if (!drills || drills.suspend || !status.nextDrillTime) return undefined;
  const due = new Date(status.nextDrillTime);
  if (now < due) return undefined;
  const next = nextAfter(spec, status, now);
  const nextDrill = next ? { nextDrillTime: next } : {};
  const skip = (reason: string): DrillPlan => {
    const skipped = {
      id: drillId(now),
      from: active,
      to: active,
      startedAt: timestamp(now),
      ...(drills.mode === 'Isolated' ? { mode: drills.mode } : {}),
    };
    const ended = endDrill(input, skipped, 'Aborted', `skipped: ${reason}`);
    const { nextDrillTime: _n, ...rest } = ended.status;
    return { ...ended, status: { ...rest, ...nextDrill } };
  };
  if (now.getTime() - due.getTime() > DRILL_START_DEADLINE_MS)
    return skip(`it was due at ${status.nextDrillTime}, more than an hour ago (was the operator running?)`);
  const chosen = drillPlan(input, active, drills.mode);
  if ('problem' in chosen) return skip(chosen.problem);
  const { nextDrillTime: _n, ...rest } = status;
  const drill = starting(input, active, chosen);
  return {
    kind: 'Change',
    why: `drill ${drill.id} starting`,
    status: { ...rest, ...nextDrill, drill },
    events: [
      eventOf(
        'Normal',
        'DrillStarted',
        'Drill',
        `drill ${drill.id}: scheduled at ${status.nextDrillTime}, ${drillStory(drill)}`,
      ),
    ],
  };
}

/** A person's drillRequest to run one now: started, or refused with the reason, once per id. */
function startRequestedDrill(input: DecideInput, active: string): DrillPlan | undefined {
  const { spec, status, now } = input;
  const request = spec.drillRequest;
  if (request?.action !== 'Run' || request.id === status.lastHandledDrillRequestId) return undefined;
  const chosen: Chosen = spec.drills
    ? drillPlan(input, active, request.mode ?? spec.drills.mode)
    : {
        problem:
          'spec.drills is not set: a drill needs its limits (abortIfLagSecondsAbove, maxDurationSeconds)',
      };
  const answered = (outcome: 'Accepted' | 'Rejected', message: string) => ({
    lastHandledDrillRequestId: request.id,
    lastDrillRequest: {
      id: request.id,
      action: request.action,
      outcome,
      message: message.slice(0, 1024),
      time: timestamp(now),
    },
  });
  if ('problem' in chosen)
    return {
      kind: 'Change',
      why: `drill request ${request.id} refused`,
      status: { ...status, ...answered('Rejected', chosen.problem) },
      events: [
        eventOf('Warning', 'DrillRequestRejected', 'Drill', `drill request ${request.id}: ${chosen.problem}`),
      ],
    };
  const drill = starting(input, active, chosen, request.id);
  return {
    kind: 'Change',
    why: `drill ${drill.id} starting on request ${request.id}`,
    status: { ...status, ...answered('Accepted', `drill ${drill.id}: ${drillStory(drill)}`), drill },
    events: [
      eventOf(
        'Normal',
        'DrillStarted',
        'Drill',
        `drill ${drill.id}: requested${request.requestedBy ? ` by ${request.requestedBy}` : ''}${request.reason ? ` (${request.reason})` : ''}, ${drillStory(drill)}`,
      ),
    ],
  };
}

/**
 * A drill asked to stop (a Cancel request, or past maxDurationSeconds) stops before anything else
 * runs: its switchover out, still fencing or catching up, rolls back; one past that completes and
 * is switched back at once. The way back is never stopped. A real failover during the drill files
 * it Interrupted; a Run while it runs, and a Cancel with no drill, are answered here.
 */
export function judgeDrillStop(
  input: DecideInput,
): { why: string; status: FailoverPolicyStatus; events: EventInput[] } | undefined {
  const { spec, status, now } = input;
  const drill = status.drill;
  const request = spec.drillRequest;
  const cancel =
    request?.action === 'Cancel' && request.id !== status.lastHandledDrillRequestId ? request : undefined;
  const answered = (outcome: 'Accepted' | 'Rejected', message: string) =>
    cancel
      ? {
          lastHandledDrillRequestId: cancel.id,
          lastDrillRequest: {
            id: cancel.id,
            action: cancel.action,
            outcome,
            message: message.slice(0, 1024),
            time: timestamp(now),
          },
        }
      : {};
  // A real failover (or a person's switchover, accepted while the drill holds) during the drill
  // ends it at once, whatever runs next (a reprotect of the region it lost may take minutes): the
  // drill proved nothing more, and says why.
  const failover = drill
    ? status.history?.find(
        (h) =>
          (h.kind === 'Failover' ||
            (h.kind === 'Switchover' && h.trigger === 'Manual' && h.from === drill.to)) &&
          h.trigger !== 'Drill' &&
          h.result === 'Succeeded' &&
          h.startedAt >= drill.startedAt,
      )
    : undefined;
  const tookOver = failover?.kind === 'Switchover' ? "a person's switchover" : 'a real failover';
  // A Run while a drill runs is answered now, not queued behind it.
  const run =
    request?.action === 'Run' && request.id !== status.lastHandledDrillRequestId ? request : undefined;
  if (drill && run) {
    const message = `drill ${drill.id} is in progress (${drill.leg}); cancel it first, or wait for it to end`;
    return {
      why: `drill request ${run.id} refused: ${message}`,
      status: {
        ...status,
        lastHandledDrillRequestId: run.id,
        lastDrillRequest: { id: run.id, action: 'Run', outcome: 'Rejected', message, time: timestamp(now) },
      },
      events: [eventOf('Warning', 'DrillRequestRejected', 'Drill', `drill request ${run.id}: ${message}`)],
    };
  }
  if (drill?.mode === 'Isolated') {
    // Nothing in production moved: any early end only removes the record and the copy.
    const stopping = drill.isolated?.verdict;
    const max = spec.drills?.maxDurationSeconds;
    const over = max !== undefined && now.getTime() - new Date(drill.startedAt).getTime() > seconds(max);
    const verdict: { result: DrillResult; reason: string } | undefined = stopping
      ? undefined
      : failover
        ? {
            result: 'Interrupted',
            reason: `${tookOver} took over during the drill: ${failover.from} → ${failover.to} (${failover.id})`,
          }
        : cancel
          ? {
              result: 'Cancelled',
              reason: `cancelled by request ${cancel.id}${cancel.requestedBy ? ` of ${cancel.requestedBy}` : ''}${cancel.reason ? ` (${cancel.reason})` : ''}`,
            }
          : over
            ? { result: 'Aborted', reason: `still running after maxDurationSeconds (${max ?? 0} s)` }
            : undefined;
    if (!verdict) {
      if (!cancel) return undefined;
      const message = `drill ${drill.id} is already stopping`;
      return {
        why: `drill cancel ${cancel.id}: ${message}`,
        status: { ...status, ...answered('Accepted', message) },
        events: [],
      };
    }
    return {
      why: `drill ${drill.id}: ${verdict.reason}`,
      status: {
        ...status,
        ...answered('Accepted', `drill ${drill.id} stops: the record and the copy are removed`),
        drill: stopIsolated(drill, { ...verdict, reason: verdict.reason.slice(0, 1024) }),
      },
      events: [
        eventOf(
          'Warning',
          'DrillStopping',
          'Drill',
          `drill ${drill.id}: ${verdict.reason}; removing the drill record and the copy`,
        ),
      ],
    };
  }
  if (drill && failover) {
    const ended = endDrill(
      input,
      drill,
      'Interrupted',
      `${tookOver} took over during the drill: ${failover.from} → ${failover.to} (${failover.id})${failover.reason ? `: ${failover.reason}` : ''}`,
    );
    return { why: ended.why, status: ended.status, events: ended.kind === 'Change' ? ended.events : [] };
  }
  if (!drill || drill.stop || drill.leg === 'Back') {
    if (!cancel) return undefined;
    const message = !drill
      ? 'no drill is in progress'
      : drill.stop
        ? `drill ${drill.id} is already stopping`
        : `drill ${drill.id} is already on its way back`;
    return {
      why: `drill cancel ${cancel.id}: ${message}`,
      status: { ...status, ...answered(drill ? 'Accepted' : 'Rejected', message) },
      events: [],
    };
  }
  // Without spec.drills (removed mid-drill) holdOrReturn ends it: no limit to stop at here.
  const max = spec.drills?.maxDurationSeconds;
  const over = max !== undefined && now.getTime() - new Date(drill.startedAt).getTime() > seconds(max);
  if (!cancel && !over) return undefined;
  const stop = cancel
    ? {
        result: 'Cancelled' as const,
        reason: `cancelled by request ${cancel.id}${cancel.requestedBy ? ` of ${cancel.requestedBy}` : ''}${cancel.reason ? ` (${cancel.reason})` : ''}`,
      }
    : {
        result: 'Aborted' as const,
        reason: `still running after maxDurationSeconds (${max ?? 0} s)`,
      };
  const op = status.currentOperation;
  let currentOperation = op;
  if (op && op.id === drill.outboundOperationId) {
    if (op.step === 'Detected') currentOperation = withStep(op, 'Aborted', now, `drill ${stop.reason}`);
    else if (op.step === 'Fencing' || op.step === 'CatchingUp')
      currentOperation = withStep(
        op,
        'RollingBack',
        now,
        `drill ${stop.reason}: rolling back, nothing moved`,
      );
  }
  return {
    why: `drill ${drill.id}: ${stop.reason}`,
    status: {
      ...status,
      ...answered('Accepted', `drill ${drill.id} stops and comes back`),
      ...(currentOperation ? { currentOperation } : {}),
      drill: { ...drill, stop: { ...stop, at: timestamp(now) } },
    },
    events: [eventOf('Warning', 'DrillStopping', 'Drill', `drill ${drill.id}: ${stop.reason}; coming back`)],
  };
}

/**
 * Unreachable now, but the last answer came within the failures detection counts (failureThreshold
 * intervals), plus the interval the first one took to reach its deadline and one for a busy
 * machine: lastReachableAt is when that answered probe began.
 */
function brieflySilent(input: DecideInput, f: ClusterFacts | undefined): f is ClusterFacts {
  if (!f?.exists || f.reachable || !f.lastReachableAt) return false;
  const { probeIntervalSeconds, failureThreshold } = input.spec.detection;
  const windowMs = seconds(probeIntervalSeconds * (failureThreshold + 2));
  return input.now.getTime() - f.lastReachableAt.getTime() < windowMs;
}

/** A standby a drill may go to: replicating, within the drill's lag limit and the RPO budget's bytes. */
function drillTarget(input: DecideInput, f: ClusterFacts | undefined): f is ClusterFacts {
  const drills = input.spec.drills;
  return (
    healthyStandby(f) &&
    f?.lagSeconds !== undefined &&
    f.lagSeconds <= (drills?.abortIfLagSecondsAbove ?? 0) &&
    (f.lagBytes ?? 0) <= input.spec.promotion.rpo.maxLagBytes
  );
}

/**
 * When a leg switches over, the target's lag must also be measured close to the primary's last
 * read (as a failover's candidates are, lagWindowMs): a figure from before its probes stalled
 * says nothing about it now. Only there: the plugin's preflight judges a drill from statuses,
 * whose times a quiet cluster does not refresh (its lag is written when it moves).
 */
function lagRecent(input: DecideInput, active: string, f: ClusterFacts): boolean {
  const anchor = primaryReadAt(input.spec, input.clusters[active], input.now);
  return (
    f.lagObservedAt !== undefined && anchor.getTime() - f.lagObservedAt.getTime() <= lagWindowMs(input.spec)
  );
}

function standbySummary(input: DecideInput, active: string): string {
  const seen = standbysOf(input.spec, active).map((n) =>
    describeStandby(input.clusters[n] ?? { name: n, exists: false, reachable: false, role: 'Unknown' }),
  );
  return seen.join('; ') || 'none';
}

/** What keeps a standby from being a drill's target, or its lag if nothing does. */
function describeStandby(f: ClusterFacts): string {
  if (!f.exists) return `${f.name} is missing`;
  if (!healthyStandby(f))
    return `${f.name} is ${f.reachable ? `in role ${f.role}` : 'unreachable'}, not a replicating standby`;
  return `${f.name} lags ${f.lagSeconds === undefined ? 'an unknown time' : `${f.lagSeconds} s`}`;
}

/** Why a leg's target cannot be switched to now, if it cannot (drillTarget, lagRecent). */
function notReadyToSwitch(input: DecideInput, active: string, f: ClusterFacts | undefined, name: string) {
  if (!drillTarget(input, f))
    return `${describeStandby(f ?? { name, exists: false, reachable: false, role: 'Unknown' })}, not within ${input.spec.drills?.abortIfLagSecondsAbove ?? 0} s`;
  if (!lagRecent(input, active, f))
    return `the lag of ${name} was last measured ${f.lagObservedAt ? `at ${timestamp(f.lagObservedAt)}` : 'never'}, too long before ${active} was last read`;
  return undefined;
}

/** The occurrence after `now`, ignoring the one stored (it is being handled now). */
function nextAfter(spec: FailoverPolicySpec, status: FailoverPolicyStatus, now: Date): string | undefined {
  const { nextDrillTime: _n, ...rest } = status;
  return scheduledDrillTime(spec, rest, now);
}

/**
 * Standbys an isolated drill could never copy: managed by a provider that makes no drill copies
 * (a self-managed standby is copied by its agent; RDS by its API).
 */
export function uncopyableStandbys(input: Pick<DecideInput, 'spec' | 'clusters'>): string[] {
  const standbys = input.spec.standbys.map((n) => input.clusters[n]).filter((f) => f?.exists);
  const never = standbys
    .filter((f) => f?.reprotectsItself && !f.drillCopiesByProvider)
    .map((f) => f?.name ?? '');
  // Refused only when no standby at all can be copied: one that can is the drill's.
  return never.length === standbys.length ? never : [];
}

/** DrillsScheduled: whether drills will run, for a policy that has spec.drills. */
export function drillsCondition(
  drills: Drills,
  nextDrillTime: string | undefined,
  now: Date,
  uncopyable: string[] = [],
): ConditionInput {
  if (drills.suspend)
    return {
      type: 'DrillsScheduled',
      status: 'False',
      reason: 'Suspended',
      message: 'spec.drills.suspend is true',
    };
  const problem = drillScheduleProblem(drills, now);
  if (drills.mode === 'Isolated' && uncopyable.length)
    return {
      type: 'DrillsScheduled',
      status: 'False',
      reason: 'IsolatedUnsupported',
      message: `isolated drills need a copy of a standby, which the provider of ${uncopyable.join(', ')} cannot make (Aurora global, DigitalOcean): use mode RoundTrip there`,
    };
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
