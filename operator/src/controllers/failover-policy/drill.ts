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
  OperationReport,
} from '../../api/v1alpha1/index.ts';
import { timestamp } from '../../runtime/time.ts';

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
