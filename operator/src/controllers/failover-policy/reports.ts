/**
 * Incident records: one FailoverReport object per finished operation, drill and refused request,
 * made from status once its record there is final, then marked `reported` in status (its timeline
 * dropped there: the object holds it). Pure: what to file, the objects, what status becomes, and
 * which old reports retention removes. The reconciler does the API calls (fileReports).
 *
 * Filing is idempotent: a report whose object already exists (a status write lost after the
 * create) is filed. Objects are named by policy and id, so the same record always lands on the
 * same name, and nothing ever updates one.
 */
import { createHash } from 'node:crypto';
import {
  API_VERSION,
  type DrillReport,
  type FailoverPolicySpec,
  type FailoverPolicyStatus,
  type FailoverReportSpec,
  type OperationReport,
  type RefusedRequest,
  type ReportRetention,
  type TimelineEntry,
} from '../../api/v1alpha1/index.ts';
import type { KubeObject } from '../../runtime/kube-client.ts';
import { byCodeUnits } from '../../runtime/order.ts';
import { moment, withMoments } from './operation.ts';

export const POLICY_UID_LABEL = 'regionfailover.io/policy-uid';
export const POLICY_LABEL = 'regionfailover.io/policy';
export const REPORT_KIND_LABEL = 'regionfailover.io/report-kind';

/**
 * How long a move waits for the continuous canary's client-side figures before it is filed
 * without them (operation-canary.ts fills them within about 30 s, or says it could not).
 */
export const CLIENT_MEASURE_WAIT_MS = 120_000;

/** A record to file: where it comes from in status, and the object's spec. */
export interface ReportToFile {
  source: 'history' | 'drills' | 'lastRequest' | 'lastDrillRequest';
  id: string;
  name: string;
  spec: FailoverReportSpec;
}

/** The object name for a policy's record: readable where it can be, always a valid, stable name. */
export function reportName(policy: string, id: string): string {
  const wanted = `${policy}-${id}`;
  const clean = wanted
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  if (clean === wanted && clean.length <= 253) return clean;
  const hash = createHash('sha256').update(wanted).digest('hex').slice(0, 10);
  return `${clean.slice(0, 241).replace(/[^a-z0-9]+$/, '')}-${hash}`;
}

/** Whether a history entry waits for the continuous canary's figures before it is filed. */
function awaitsClientMeasure(spec: FailoverPolicySpec, r: OperationReport, now: Date): boolean {
  if (spec.canary?.mode !== 'Always' || r.client) return false;
  if (r.trigger === 'Drill' || r.result !== 'Succeeded') return false;
  if (r.kind !== 'Failover' && r.kind !== 'Switchover') return false;
  return now.getTime() - new Date(r.completedAt).getTime() < CLIENT_MEASURE_WAIT_MS;
}

/** An operation's timeline with what the continuous canary saw of it, in time order. */
export function operationTimeline(r: OperationReport): TimelineEntry[] {
  const moments = [...(r.timeline ?? [])];
  const c = r.client;
  if (c?.measuredBy === 'Canary') {
    if (c.writesStoppedAt)
      moments.push(
        moment(c.writesStoppedAt, 'LastWriteOnOldPrimary', `the last canary write ${r.from} acknowledged`),
      );
    if (c.writesResumedAt)
      moments.push(
        moment(c.writesResumedAt, 'FirstWriteOnNewPrimary', `the first canary write ${r.to} acknowledged`),
      );
  }
  return sortedMoments(moments);
}

function sortedMoments(moments: TimelineEntry[]): TimelineEntry[] {
  // Stable: moments of the same instant keep the order they were recorded in.
  return withMoments(
    undefined,
    ...moments
      .map((m, i) => ({ m, i }))
      .sort((a, b) => byCodeUnits(a.m.at, b.m.at) || a.i - b.i)
      .map((x) => x.m),
  );
}

/** A drill's timeline: its start, each leg's client-side moments, its end. Its legs have reports of their own. */
export function drillTimeline(d: DrillReport): TimelineEntry[] {
  const moments: TimelineEntry[] = [moment(d.startedAt, 'Started', d.reason)];
  const leg = (name: string, m: DrillReport['out'], from: string, to: string) => {
    if (!m) return;
    if (m.writesStoppedAt)
      moments.push(
        moment(
          m.writesStoppedAt,
          'LastWriteOnOldPrimary',
          `${name}: the last canary write ${from} acknowledged`,
        ),
      );
    if (m.writesResumedAt)
      moments.push(
        moment(
          m.writesResumedAt,
          'FirstWriteOnNewPrimary',
          `${name}: the first canary write ${to} acknowledged (operation ${m.operationId})`,
        ),
      );
    if (m.message) moments.push(moment(d.completedAt, 'NotMeasured', `${name}: ${m.message}`));
  };
  leg('out', d.out, d.from, d.to);
  leg('back', d.back, d.to, d.from);
  moments.push(moment(d.completedAt, d.result, d.message));
  return sortedMoments(moments);
}

const withoutTimeline = <T extends { timeline?: unknown; reported?: unknown }>(r: T) => {
  const { timeline: _t, reported: _r, ...rest } = r;
  return rest;
};

/** The records in status not filed yet, as the objects to make. */
export function reportsToFile(
  policy: string,
  spec: FailoverPolicySpec,
  status: FailoverPolicyStatus,
  now: Date,
): ReportToFile[] {
  const out: ReportToFile[] = [];
  for (const r of status.history ?? []) {
    if (r.reported || awaitsClientMeasure(spec, r, now)) continue;
    out.push({
      source: 'history',
      id: r.id,
      name: reportName(policy, r.id),
      spec: {
        policy,
        kind: r.kind,
        id: r.id,
        result: r.result,
        startedAt: r.startedAt,
        completedAt: r.completedAt,
        operation: withoutTimeline(r),
        timeline: operationTimeline(r),
      },
    });
  }
  for (const d of status.drills ?? []) {
    if (d.reported) continue;
    out.push({
      source: 'drills',
      id: d.id,
      name: reportName(policy, d.id),
      spec: {
        policy,
        kind: 'Drill',
        id: d.id,
        result: d.result,
        startedAt: d.startedAt,
        completedAt: d.completedAt,
        drill: withoutTimeline(d),
        timeline: drillTimeline(d),
      },
    });
  }
  const promotion = status.lastRequest;
  if (promotion?.outcome === 'Rejected' && !promotion.reported) {
    const asked = spec.promotionRequest?.id === promotion.id ? spec.promotionRequest : undefined;
    out.push(
      refused(policy, 'lastRequest', promotion, {
        id: promotion.id,
        type: 'Promotion',
        ...(asked ? { kind: asked.kind, target: asked.target } : {}),
        ...(asked?.requestedBy ? { requestedBy: asked.requestedBy } : {}),
        ...(asked?.reason ? { reason: asked.reason } : {}),
        refusal: promotion.reason,
        message: promotion.message,
      }),
    );
  }
  const drill = status.lastDrillRequest;
  if (drill?.outcome === 'Rejected' && !drill.reported) {
    const asked = spec.drillRequest?.id === drill.id ? spec.drillRequest : undefined;
    out.push(
      refused(policy, 'lastDrillRequest', drill, {
        id: drill.id,
        type: 'Drill',
        kind: drill.action,
        ...(asked?.requestedBy ? { requestedBy: asked.requestedBy } : {}),
        ...(asked?.reason ? { reason: asked.reason } : {}),
        message: drill.message,
      }),
    );
  }
  return out;
}

/**
 * How many of the newest operations keep their timeline in status once filed: the status page
 * shows them from the operator's cache (no API call per page); the objects hold every one.
 */
export const TIMELINES_IN_STATUS = 3;

/** The record of a refused promotion or drill request; each kind of request has names of its own. */
function refused(
  policy: string,
  source: 'lastRequest' | 'lastDrillRequest',
  outcome: { id: string; time: string; message: string },
  request: RefusedRequest,
): ReportToFile {
  const prefix = source === 'lastRequest' ? 'promotion-request' : 'drill-request';
  return {
    source,
    id: outcome.id,
    name: reportName(policy, `${prefix}-${outcome.id}`),
    spec: {
      policy,
      kind: 'Request',
      id: outcome.id,
      result: 'Rejected',
      completedAt: outcome.time,
      request,
      timeline: [moment(outcome.time, 'Rejected', outcome.message)],
    },
  };
}

/** Status with these records marked filed; timelines stay only on the newest few operations. */
export function markReported(status: FailoverPolicyStatus, filed: ReportToFile[]): FailoverPolicyStatus {
  if (filed.length === 0) return status;
  const is = (source: ReportToFile['source'], id: string) =>
    filed.some((f) => f.source === source && f.id === id);
  // The newest few operations keep theirs, counted as the status page counts them: a drill's
  // switchovers are shown through their drill, so theirs go once filed.
  let shown = 0;
  const history = status.history?.map((r) => {
    const kept = r.trigger !== 'Drill' && shown++ < TIMELINES_IN_STATUS;
    const reported = r.reported || is('history', r.id);
    if (!reported) return r;
    return kept ? { ...r, reported: true } : { ...withoutTimeline(r), reported: true };
  });
  return {
    ...status,
    ...(history ? { history } : {}),
    ...(status.drills
      ? {
          drills: status.drills.map((d) =>
            is('drills', d.id) ? { ...withoutTimeline(d), reported: true } : d,
          ),
        }
      : {}),
    ...(status.lastRequest && is('lastRequest', status.lastRequest.id)
      ? { lastRequest: { ...status.lastRequest, reported: true } }
      : {}),
    ...(status.lastDrillRequest && is('lastDrillRequest', status.lastDrillRequest.id)
      ? { lastDrillRequest: { ...status.lastDrillRequest, reported: true } }
      : {}),
  };
}

/** The object for a record: labelled for its policy (by uid: a name may be too long for a label). */
export function reportObject(policy: KubeObject, file: ReportToFile): KubeObject {
  const name = policy.metadata.name;
  return {
    apiVersion: API_VERSION,
    kind: 'FailoverReport',
    metadata: {
      name: file.name,
      namespace: policy.metadata.namespace,
      labels: {
        [POLICY_UID_LABEL]: policy.metadata.uid ?? '',
        ...(name.length <= 63 ? { [POLICY_LABEL]: name } : {}),
        [REPORT_KIND_LABEL]: file.spec.kind,
      },
      // Deleted with its policy by the garbage collector.
      ownerReferences: [{ apiVersion: API_VERSION, kind: 'FailoverPolicy', name, uid: policy.metadata.uid }],
    },
    spec: file.spec,
  };
}

export interface FiledReport {
  name: string;
  /** spec.completedAt, or the object's creation when that is missing. */
  completedAt: string;
}

/** The reports retention removes: beyond `keep` (oldest first), and older than maxAgeDays. */
export function reportsToPrune(reports: FiledReport[], retention: ReportRetention, now: Date): string[] {
  const oldest = now.getTime() - retention.maxAgeDays * 86_400_000;
  const newestFirst = [...reports].sort(
    (a, b) => byCodeUnits(b.completedAt, a.completedAt) || byCodeUnits(a.name, b.name),
  );
  return newestFirst
    .filter((r, i) => i >= retention.keep || new Date(r.completedAt).getTime() < oldest)
    .map((r) => r.name);
}

/** How often retention looks at a policy's reports when nothing new was filed. */
export const PRUNE_INTERVAL_MS = 24 * 3_600_000;
