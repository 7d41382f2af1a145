/**
 * The availability ledger (status.availability), kept as uptime SLAs count: a moment is down only
 * when every monitor that counts agrees, here a quorum of observers finding the primary down
 * (status.primaryDownSince); after a failover promotes, it stays down until DNS answers the new
 * primary (the name clients use still named the dead one). Degraded detection (too few fresh
 * observers) counts as up: nobody could say it was down. (An operator restarted mid-outage keeps
 * it open while its own probes count up again: loss.ts.)
 *
 * Pure. Status changes only when an outage starts or ends: the open outage is added on read
 * (monthAvailability), so nothing is written while it lasts.
 */
import type { AvailabilityLedger, FailoverPolicyStatus } from '../../api/v1alpha1/index.ts';
import { byCodeUnits } from '../../runtime/order.ts';
import { timestamp } from '../../runtime/time.ts';

const MONTHS = 13;
const DAYS = 90;
const OUTAGES = 20;
const DAY_MS = 86_400_000;

/** The ledger after this reconcile: an outage opened or closed, or nothing changed. */
export function nextLedger(
  ledger: AvailabilityLedger | undefined,
  status: FailoverPolicyStatus,
  now: Date,
): AvailabilityLedger {
  const current = ledger ?? { trackedSince: timestamp(now) };
  const since = downNow(status, current);
  if (since && !current.downSince) {
    // Never before the ledger began (an operator that starts during an outage knows only from now).
    const start = since < current.trackedSince ? current.trackedSince : since;
    return { ...current, downSince: start };
  }
  if (!since && current.downSince) {
    const { downSince: start, ...rest } = current;
    // Ended by a failover only if one finished during it, not by one from months ago.
    const last = status.history?.[0];
    const failover = last?.kind === 'Failover' && last.completedAt >= start ? last.id : undefined;
    return closeOutage(rest, start, now, failover);
  }
  return current;
}

function downNow(status: FailoverPolicyStatus, ledger: AvailabilityLedger): string | undefined {
  if (status.primaryDownSince) return status.primaryDownSince;
  const op = status.currentOperation;
  const repointing = op?.kind === 'Failover' && (op.step === 'RepointingDns' || op.step === 'VerifyingDns');
  // Only an outage already open stays open through the repointing: a failover of a primary the
  // quorum never found down (a person's, on the operator's own view) does not open one here.
  return repointing ? ledger.downSince : undefined;
}

/** An outage closed: into the recent list, and its seconds into each day and month it spans. */
function closeOutage(
  ledger: AvailabilityLedger,
  start: string,
  now: Date,
  operationId: string | undefined,
): AvailabilityLedger {
  const from = new Date(start);
  const seconds = Math.max(0, (now.getTime() - from.getTime()) / 1000);
  const outage = {
    start,
    end: timestamp(now),
    seconds: round(seconds),
    ...(operationId ? { operationId } : {}),
  };
  const began = monthKey(from);
  const months = addSpans(
    ledger.months ?? [],
    recentSpans(from, now, 'month', MONTHS).map((s) => ({
      key: s.key,
      seconds: s.seconds,
      outages: s.key === began ? 1 : 0,
    })),
  );
  const oldestDay = dayKey(new Date(now.getTime() - (DAYS - 1) * DAY_MS));
  const days = recentSpans(from, now, 'day', DAYS)
    .reduce(
      (list, s) => {
        const at = list.findIndex((d) => d.day === s.key);
        if (at >= 0) list[at] = { day: s.key, downSeconds: round((list[at]?.downSeconds ?? 0) + s.seconds) };
        else list.push({ day: s.key, downSeconds: round(s.seconds) });
        return list;
      },
      [...(ledger.days ?? [])].filter((d) => d.day >= oldestDay),
    )
    .sort((a, b) => byCodeUnits(b.day, a.day))
    .slice(0, DAYS);
  return {
    ...ledger,
    months,
    ...(days.length ? { days } : {}),
    outages: [outage, ...(ledger.outages ?? [])].slice(0, OUTAGES),
  };
}

function addSpans(
  months: NonNullable<AvailabilityLedger['months']>,
  add: { key: string; seconds: number; outages: number }[],
): NonNullable<AvailabilityLedger['months']> {
  const out = [...months];
  for (const a of add) {
    const at = out.findIndex((m) => m.month === a.key);
    if (at >= 0) {
      const m = out[at];
      if (m)
        out[at] = { ...m, downSeconds: round(m.downSeconds + a.seconds), outages: m.outages + a.outages };
    } else out.push({ month: a.key, downSeconds: round(a.seconds), outages: a.outages });
  }
  return out.sort((a, b) => byCodeUnits(b.month, a.month)).slice(0, MONTHS);
}

const round = (s: number) => Math.round(s * 1000) / 1000;
export const monthKey = (d: Date) => d.toISOString().slice(0, 7);
export const dayKey = (d: Date) => d.toISOString().slice(0, 10);

/** The UTC start of the month or day after the one `d` is in. */
function nextBoundary(d: Date, unit: 'day' | 'month'): Date {
  return unit === 'day'
    ? new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1))
    : new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));
}

/** The UTC start of the day or month `back` units before the one `d` is in. */
function unitStart(d: Date, unit: 'day' | 'month', back: number): Date {
  return unit === 'day'
    ? new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - back))
    : new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 1));
}

/** The spans of [from, to) in the last `keep` days or months up to `to`: what a ledger keeps of it. */
export function recentSpans(
  from: Date,
  to: Date,
  unit: 'day' | 'month',
  keep: number,
): { key: string; seconds: number }[] {
  const oldest = unitStart(to, unit, keep - 1);
  return spans(from < oldest ? oldest : from, to, unit);
}

/** [from, to) cut at UTC day or month boundaries: the seconds in each. */
export function spans(from: Date, to: Date, unit: 'day' | 'month'): { key: string; seconds: number }[] {
  const out: { key: string; seconds: number }[] = [];
  let at = from;
  // Bounded: an outage longer than the ledger keeps is cut to what it keeps.
  for (let i = 0; at < to && i < (unit === 'day' ? DAYS + 1 : MONTHS + 1); i++) {
    const end = new Date(Math.min(nextBoundary(at, unit).getTime(), to.getTime()));
    out.push({
      key: unit === 'day' ? dayKey(at) : monthKey(at),
      seconds: (end.getTime() - at.getTime()) / 1000,
    });
    at = end;
  }
  return out;
}

export interface MonthAvailability {
  month: string;
  downSeconds: number;
  outages: number;
  /** Seconds of the month the ledger covers (up to now for this month). */
  trackedSeconds: number;
  /** 100 × (1 − down / tracked); undefined before anything was tracked. */
  percent?: number;
  /** The SLO target, and whether the month meets it. */
  target?: number;
  met?: boolean;
}

/** The last `count` months as of `now`, the open outage counted in; newest first. */
export function monthlyAvailability(
  ledger: AvailabilityLedger | undefined,
  now: Date,
  target: number | undefined,
  count = MONTHS,
): MonthAvailability[] {
  if (!ledger) return [];
  const tracked = new Date(ledger.trackedSince);
  const open = ledger.downSince ? recentSpans(new Date(ledger.downSince), now, 'month', count) : [];
  const openBegan = ledger.downSince ? monthKey(new Date(ledger.downSince)) : undefined;
  const out: MonthAvailability[] = [];
  let start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  for (let i = 0; i < count; i++) {
    const end = nextBoundary(start, 'month');
    const from = Math.max(start.getTime(), tracked.getTime());
    const to = Math.min(end.getTime(), now.getTime());
    if (to <= from) break;
    const key = monthKey(start);
    const kept = ledger.months?.find((m) => m.month === key);
    const openSeconds = open.find((s) => s.key === key)?.seconds ?? 0;
    const down = (kept?.downSeconds ?? 0) + openSeconds;
    const trackedSeconds = (to - from) / 1000;
    const percent = 100 * Math.max(0, 1 - down / trackedSeconds);
    out.push({
      month: key,
      downSeconds: round(down),
      outages: (kept?.outages ?? 0) + (openBegan === key ? 1 : 0),
      trackedSeconds: round(trackedSeconds),
      percent,
      ...(target !== undefined ? { target, met: percent >= target } : {}),
    });
    start = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() - 1, 1));
  }
  return out;
}

/** Downtime per day for the last `count` days, oldest first (the status page's bar), the open outage in. */
export function dailyDowntime(
  ledger: AvailabilityLedger | undefined,
  now: Date,
  count = DAYS,
): { day: string; downSeconds: number; tracked: boolean }[] {
  const open = ledger?.downSince ? recentSpans(new Date(ledger.downSince), now, 'day', count) : [];
  const trackedFrom = ledger ? dayKey(new Date(ledger.trackedSince)) : undefined;
  const out = [];
  for (let i = count - 1; i >= 0; i--) {
    const day = dayKey(new Date(now.getTime() - i * DAY_MS));
    const kept = ledger?.days?.find((d) => d.day === day)?.downSeconds ?? 0;
    const openSeconds = open.find((s) => s.key === day)?.seconds ?? 0;
    out.push({
      day,
      downSeconds: round(kept + openSeconds),
      tracked: trackedFrom !== undefined && day >= trackedFrom,
    });
  }
  return out;
}
