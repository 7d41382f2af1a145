/**
 * Real failovers and switchovers measured from the client's side. With spec.canary.mode Always a
 * canary writer runs continuously through the DNS name; when an operation that moved the primary
 * (not a drill's leg: a drill measures its own, with its own writer) completes, its history entry
 * gets what that writer saw, measured as a drill leg is (measureSwitch): the RTO from the last
 * write the old primary acknowledged to the first the new one did, and the acknowledged rows the
 * new primary lacks (lostWrites).
 *
 * Pure: history, the writer's snapshot and the time in; the entries filled in, their Events, and
 * whether one still waits for the canary out. The canary has CANARY_MEASURE_WAIT_MS after the
 * operation completed to land its first write on the new primary; no reconcile waits for it, a
 * later one fills the entry in.
 */
import type { DrillMeasure, OperationReport } from '../../api/v1alpha1/index.ts';
import { measureSwitch } from '../../providers/canary/measure.ts';
import type { CanarySnapshot } from '../../providers/canary/port.ts';
import { type EventInput, eventOf } from '../../runtime/events.ts';
import { CANARY_MEASURE_WAIT_MS } from './drill.ts';

/**
 * Operations that completed longer ago than this are left as they are: after an upgrade or a
 * change to mode Always, old history is not filled in with "not measured".
 */
export const CLIENT_MEASURE_HORIZON_MS = 10 * 60_000;

/** How soon to look again while an operation waits for the canary's first write on the new primary. */
export const CLIENT_MEASURE_RETRY_MS = 1_000;

export interface ClientMeasures {
  history: OperationReport[] | undefined;
  /** The entries filled in now, for Events and metrics. */
  measured: OperationReport[];
  events: EventInput[];
  /** An entry waits for the canary: look again within CLIENT_MEASURE_RETRY_MS. */
  waiting: boolean;
}

/** Whether a history entry is a real move of the primary not yet measured from the client's side. */
export function wantsClientMeasure(report: OperationReport, now: Date): boolean {
  if (report.client || report.trigger === 'Drill' || report.result !== 'Succeeded') return false;
  if (report.kind !== 'Failover' && report.kind !== 'Switchover') return false;
  const age = now.getTime() - Date.parse(report.completedAt);
  return Number.isFinite(age) && age <= CLIENT_MEASURE_HORIZON_MS;
}

/** Fills in `client` (and lostWrites) on the entries that want it and can have it now. */
export function measureOperations(
  history: OperationReport[] | undefined,
  canary: CanarySnapshot | undefined,
  now: Date,
): ClientMeasures {
  const measured: OperationReport[] = [];
  let waiting = false;
  const next = history?.map((report) => {
    if (!wantsClientMeasure(report, now)) return report;
    const client = measureOperation(report, canary, now);
    if (!client) {
      waiting = true;
      return report;
    }
    const filled: OperationReport = {
      ...report,
      client,
      ...(client.measuredBy === 'Canary' && client.rpoTransactions !== undefined
        ? { lostWrites: client.rpoTransactions }
        : {}),
    };
    measured.push(filled);
    return filled;
  });
  return { history: next, measured, events: measured.map(clientEvent), waiting };
}

/**
 * One operation from the canary's side: the figures once the canary saw both ends of it; after
 * CANARY_MEASURE_WAIT_MS, what it could tell and why not the rest. Undefined: still waiting.
 */
export function measureOperation(
  report: OperationReport,
  canary: CanarySnapshot | undefined,
  now: Date,
): DrillMeasure | undefined {
  const seen = canary ? measureSwitch(aroundOperation(canary, report), report.from, report.to) : undefined;
  const writes = {
    ...(seen?.acknowledged ? { acknowledged: seen.acknowledged } : {}),
    ...(seen?.writesStoppedAt ? { writesStoppedAt: seen.writesStoppedAt } : {}),
    ...(seen?.writesResumedAt ? { writesResumedAt: seen.writesResumedAt } : {}),
  };
  const base = { operationId: report.id };
  if (seen?.rtoSeconds !== undefined && seen.rpoTransactions !== undefined)
    return {
      ...base,
      measuredBy: 'Canary',
      rtoSeconds: seen.rtoSeconds,
      rpoTransactions: seen.rpoTransactions,
      ...writes,
    };
  if (now.getTime() - Date.parse(report.completedAt) < CANARY_MEASURE_WAIT_MS) return undefined;
  // Both ends seen, but the rows missing could not be counted (a privilege, a broken session).
  if (seen?.rtoSeconds !== undefined)
    return {
      ...base,
      measuredBy: 'Canary',
      rtoSeconds: seen.rtoSeconds,
      ...writes,
      message: `the canary could not count which acknowledged rows ${report.to} lacks: no lostWrites`,
    };
  return {
    ...base,
    measuredBy: 'Operator',
    ...writes,
    message: whyNotMeasured(report, canary).slice(0, 512),
  };
}

/**
 * The writer's runs from the last one on the old primary that began before the operation did:
 * a continuous writer has seen earlier moves too, which are not this one. A run whose missing
 * rows were counted over fewer seqs than it acknowledged (it outgrew the writer's memory) says
 * so in `acknowledged`, what lostWrites is out of.
 */
function aroundOperation(canary: CanarySnapshot, report: OperationReport): CanarySnapshot {
  const started = Date.parse(report.startedAt);
  const first = canary.runs.findLastIndex(
    (r) => r.cluster === report.from && Date.parse(r.firstAt) <= started,
  );
  const runs = first < 0 ? [] : canary.runs.slice(first);
  return {
    ...canary,
    runs: runs.map((r) => (r.missingOf !== undefined ? { ...r, acknowledged: r.missingOf } : r)),
  };
}

function whyNotMeasured(report: OperationReport, canary: CanarySnapshot | undefined): string {
  if (!canary)
    return 'no continuous canary writer ran (it could not start: the operator log says why; or mode Always was set after the operation)';
  const lastError = canary.lastError ? ` (last error: ${canary.lastError})` : '';
  if (aroundOperation(canary, report).runs.length === 0)
    return Date.parse(canary.startedAt) > Date.parse(report.startedAt)
      ? `the canary writer started after the ${report.kind.toLowerCase()} did (the operator restarted or took over): it saw no write acknowledged by ${report.from}`
      : `the canary saw no write acknowledged by ${report.from} before the ${report.kind.toLowerCase()}${lastError}`;
  return `the canary landed no write on ${report.to} within ${CANARY_MEASURE_WAIT_MS / 1000} s of the ${report.kind.toLowerCase()} completing${lastError}`;
}

/** The Event for an entry filled in: a switchover that lost acknowledged writes is a Warning. */
function clientEvent(report: OperationReport): EventInput {
  const c = report.client;
  const what = `${report.kind.toLowerCase()} ${report.id} from ${report.from} to ${report.to}`;
  if (!c || c.measuredBy === 'Operator')
    return eventOf(
      'Normal',
      'ClientNotMeasured',
      'Measure',
      `${what}: not measured by the canary: ${c?.message}`,
    );
  const lost =
    c.rpoTransactions === undefined
      ? c.message
      : `${c.rpoTransactions} of ${c.acknowledged ?? 0} writes ${report.from} acknowledged missing on ${report.to}`;
  const figures = `writes stopped for ${c.rtoSeconds} s (last acknowledged ${c.writesStoppedAt}, resumed ${c.writesResumedAt}); ${lost}`;
  if (report.kind === 'Switchover' && (c.rpoTransactions ?? 0) > 0)
    return eventOf(
      'Warning',
      'SwitchoverLostWrites',
      'Measure',
      `${what} lost acknowledged writes, which a switchover must never do: ${figures}`,
    );
  return eventOf('Normal', 'ClientMeasured', 'Measure', `${what}, measured by the canary: ${figures}`);
}
