/**
 * What the status page shows, as data (its JSON is this): built from the policies in the
 * operator's cache, never from an API call, so a page costs what it shows and nothing more.
 * Pure. No secret is ever in it: names, regions, figures and what status says.
 */
import {
  type FailoverPolicyStatus,
  failoverPolicySpec,
  failoverPolicyStatus,
  type TimelineEntry,
} from '../api/v1alpha1/index.ts';
import { parseOnce } from '../api/validate.ts';
import {
  dailyDowntime,
  type MonthAvailability,
  monthlyAvailability,
} from '../controllers/failover-policy/availability.ts';
import { drillTimeline, operationTimeline } from '../controllers/failover-policy/reports.ts';
import type { KubeObject } from '../runtime/kube-client.ts';
import { byCodeUnits } from '../runtime/order.ts';

export interface PolicyLine {
  namespace: string;
  name: string;
  phase: string;
  ready?: boolean;
  activePrimary?: string;
  epoch?: number;
  /** Down now, as the quorum counts it. */
  down: boolean;
  month?: MonthAvailability;
  target?: number;
  lastIncident?: { kind: string; result: string; completedAt: string };
  lastDrill?: { result: string; completedAt: string; rtoSeconds?: number };
}

export interface Incident {
  id: string;
  kind: string;
  trigger: string;
  from: string;
  to: string;
  result: string;
  startedAt: string;
  completedAt: string;
  rtoSeconds?: number;
  rpoSeconds?: number;
  rpoBytes?: number;
  lostWrites?: number;
  reason?: string;
  timeline: TimelineEntry[];
}

export interface DrillLine {
  id: string;
  mode: string;
  result: string;
  from: string;
  to: string;
  startedAt: string;
  completedAt: string;
  rtoSeconds?: number;
  rtoBackSeconds?: number;
  lostWrites?: number;
  measuredBy?: string;
  timeline: TimelineEntry[];
}

export interface PolicyPage extends PolicyLine {
  ready?: boolean;
  readyMessage?: string;
  members: { cluster: string; role: string; ready: boolean; lagSeconds?: number; message?: string }[];
  months: MonthAvailability[];
  days: { day: string; downSeconds: number; tracked: boolean }[];
  outages: { start: string; end?: string; seconds: number }[];
  incidents: Incident[];
  drills: DrillLine[];
}

/** Most recent things a page lists: each is bounded whatever the history holds. */
const INCIDENTS = 3;
const DRILLS = 5;
const OUTAGES = 5;
const MONTHS = 3;

function statusOf(object: KubeObject): FailoverPolicyStatus {
  const parsed = parseOnce(failoverPolicyStatus, object.status ?? {});
  return parsed.ok ? (parsed.value as FailoverPolicyStatus) : {};
}

function targetOf(object: KubeObject): number | undefined {
  const parsed = parseOnce(failoverPolicySpec, object.spec);
  return parsed.ok
    ? (parsed.value as { slo?: { availabilityTarget: number } }).slo?.availabilityTarget
    : undefined;
}

export function policyLine(object: KubeObject, now: Date): PolicyLine {
  const status = statusOf(object);
  const target = targetOf(object);
  const month = monthlyAvailability(status.availability, now, target, 1)[0];
  const incident = status.history?.find((r) => r.trigger !== 'Drill');
  const drill = status.drills?.[0];
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  return {
    namespace: object.metadata.namespace ?? 'default',
    name: object.metadata.name,
    phase: status.phase ?? 'Pending',
    ...(ready ? { ready: ready.status === 'True' } : {}),
    ...(status.activePrimary ? { activePrimary: status.activePrimary } : {}),
    ...(status.epoch !== undefined ? { epoch: status.epoch } : {}),
    down: status.availability?.downSince !== undefined,
    ...(month ? { month } : {}),
    ...(target !== undefined ? { target } : {}),
    ...(incident
      ? { lastIncident: { kind: incident.kind, result: incident.result, completedAt: incident.completedAt } }
      : {}),
    ...(drill
      ? {
          lastDrill: {
            result: drill.result,
            completedAt: drill.completedAt,
            ...(drill.rtoSeconds !== undefined ? { rtoSeconds: drill.rtoSeconds } : {}),
          },
        }
      : {}),
  };
}

export function policyPage(object: KubeObject, now: Date): PolicyPage {
  const status = statusOf(object);
  const target = targetOf(object);
  const ledger = status.availability;
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  const open = ledger?.downSince
    ? [
        {
          start: ledger.downSince,
          seconds: Math.max(0, (now.getTime() - Date.parse(ledger.downSince)) / 1000),
        },
      ]
    : [];
  return {
    ...policyLine(object, now),
    ...(ready && ready.status !== 'True' ? { readyMessage: ready.message } : {}),
    members: (status.topology ?? []).map((t) => ({
      cluster: t.cluster,
      role: t.role,
      ready: t.ready,
      ...(t.lagSeconds !== undefined ? { lagSeconds: t.lagSeconds } : {}),
      ...(t.message ? { message: t.message } : {}),
    })),
    months: monthlyAvailability(ledger, now, target, MONTHS),
    days: dailyDowntime(ledger, now),
    outages: [...open, ...(ledger?.outages ?? [])].slice(0, OUTAGES),
    incidents: (status.history ?? [])
      .filter((r) => r.trigger !== 'Drill')
      .slice(0, INCIDENTS)
      .map((r) => ({
        id: r.id,
        kind: r.kind,
        trigger: r.trigger,
        from: r.from,
        to: r.to,
        result: r.result,
        startedAt: r.startedAt,
        completedAt: r.completedAt,
        ...(r.rtoSeconds !== undefined ? { rtoSeconds: r.rtoSeconds } : {}),
        ...(r.rpoSeconds !== undefined ? { rpoSeconds: r.rpoSeconds } : {}),
        ...(r.rpoBytes !== undefined ? { rpoBytes: r.rpoBytes } : {}),
        ...((r.lostWrites ?? r.client?.rpoTransactions) !== undefined
          ? { lostWrites: r.lostWrites ?? r.client?.rpoTransactions }
          : {}),
        ...(r.reason ? { reason: r.reason } : {}),
        timeline: operationTimeline(r),
      })),
    drills: (status.drills ?? []).slice(0, DRILLS).map((d) => ({
      id: d.id,
      mode: d.mode ?? 'RoundTrip',
      result: d.result,
      from: d.from,
      to: d.to,
      startedAt: d.startedAt,
      completedAt: d.completedAt,
      ...(d.rtoSeconds !== undefined ? { rtoSeconds: d.rtoSeconds } : {}),
      ...(d.back?.rtoSeconds !== undefined ? { rtoBackSeconds: d.back.rtoSeconds } : {}),
      ...(d.lostWrites !== undefined ? { lostWrites: d.lostWrites } : {}),
      ...(d.out?.measuredBy ? { measuredBy: d.out.measuredBy } : {}),
      timeline: drillTimeline(d),
    })),
  };
}

/** Every policy, one line each, sorted by namespace and name. */
export function indexView(objects: KubeObject[], now: Date): { generatedAt: string; policies: PolicyLine[] } {
  return {
    generatedAt: now.toISOString(),
    policies: objects
      .map((o) => policyLine(o, now))
      .sort((a, b) => byCodeUnits(a.namespace, b.namespace) || byCodeUnits(a.name, b.name)),
  };
}
