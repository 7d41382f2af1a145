/**
 * `kubectl failover report POLICY [ID]`: the incident records (FailoverReport objects) of a
 * policy, newest first; with an ID, one record as text or Markdown ready to paste into a
 * postmortem (its timeline, figures and who asked), or as JSON/YAML.
 */
import type { FailoverReportSpec, StepSeconds } from '../api/v1alpha1/index.ts';
import { failoverPolicyType } from '../controllers/resources.ts';
import type { FailoverApi } from './api.ts';
import { bytes, seconds, table, timestamp } from './format.ts';
import { rpo } from './history.ts';
import { notFound } from './policies.ts';

export type ReportFormat = 'text' | 'markdown' | 'json' | 'yaml';
export const REPORT_FORMATS: ReportFormat[] = ['text', 'markdown', 'json', 'yaml'];

interface ReportObject {
  metadata: { name: string; namespace?: string };
  spec: FailoverReportSpec;
}

/** A policy's reports, newest first. */
export async function policyReports(
  api: FailoverApi,
  namespace: string,
  policy: string,
): Promise<ReportObject[]> {
  const object = await api
    .get(failoverPolicyType, namespace, policy)
    .catch((err) => notFound(err, `FailoverPolicy ${policy}`, namespace));
  const list = await api.reports(namespace, object.metadata.uid ?? '');
  return (list.items as unknown as ReportObject[])
    .filter((r) => r.spec?.policy === policy)
    .sort((a, b) => b.spec.completedAt.localeCompare(a.spec.completedAt));
}

const fromTo = (s: FailoverReportSpec) => {
  const o = s.operation ?? s.drill;
  if (o) return `${o.from} → ${o.to}`;
  return s.request?.target ?? '-';
};

function rpoOf(s: FailoverReportSpec): string {
  const o = s.operation ?? s.drill;
  return o ? rpo(o) : '-';
}

export function reportsTable(reports: ReportObject[]): string {
  return table(
    ['ID', 'KIND', 'TRIGGER', 'RESULT', 'FROM → TO', 'RTO', 'RPO', 'COMPLETED'],
    reports.map(({ spec: s }) => [
      s.id,
      s.kind,
      s.operation?.trigger ?? (s.drill ? 'Drill' : 'Manual'),
      s.result,
      fromTo(s),
      seconds((s.operation ?? s.drill)?.rtoSeconds),
      rpoOf(s),
      timestamp(s.completedAt),
    ]),
  );
}

/** The title of a record: "Failover region-a → region-b at epoch 4: Succeeded". */
function title(s: FailoverReportSpec): string {
  if (s.kind === 'Request') {
    const r = s.request;
    const what =
      r?.type === 'Drill' ? `drill request (${r.kind ?? 'Run'})` : `${r?.kind ?? 'promotion'} request`;
    return `Refused ${what} ${s.id}${r?.target ? ` for ${r.target}` : ''}`;
  }
  const o = s.operation ?? s.drill;
  const epoch = s.operation ? ` at epoch ${s.operation.epoch}` : '';
  return `${s.kind} ${o ? `${o.from} → ${o.to}` : ''}${epoch}: ${s.result}`;
}

const STEP_NAMES: Record<keyof StepSeconds, string> = {
  fencing: 'Fencing',
  catchingUp: 'CatchingUp',
  demoting: 'Demoting',
  promoting: 'Promoting',
  repointingDns: 'RepointingDns',
  verifyingDns: 'VerifyingDns',
  rejoining: 'Rejoining',
  rollingBack: 'RollingBack',
};

/** The facts of a record, label and value, in the order a postmortem wants them. */
function facts(s: FailoverReportSpec, namespace: string): [string, string][] {
  const out: [string, string][] = [
    ['Policy', `${namespace}/${s.policy}`],
    ['Kind', s.kind],
    ['Result', s.result],
  ];
  const o = s.operation ?? s.drill;
  if (o) {
    out.push(['Trigger', o.trigger], ['From', o.from], ['To', o.to]);
    if (s.operation) out.push(['Epoch', String(s.operation.epoch)]);
  }
  if (s.startedAt) out.push(['Started', timestamp(s.startedAt)]);
  out.push(['Completed', timestamp(s.completedAt)]);
  if (o?.rtoSeconds !== undefined)
    out.push([
      'RTO',
      `${seconds(o.rtoSeconds)} (until every authoritative DNS server answered the new primary)`,
    ]);
  if (rpoOf(s) !== '-')
    out.push(['RPO', `${rpoOf(s)} (the promoted standby's lag, last measured before the promotion)`]);
  const client = s.operation?.client;
  if (client?.measuredBy === 'Canary')
    out.push([
      'Client side',
      `${seconds(client.rtoSeconds)} without writes, ${client.rpoTransactions ?? '?'} of ${client.acknowledged ?? '?'} acknowledged writes lost (the canary through the DNS name)`,
    ]);
  else if (client)
    out.push(['Client side', `not measured: ${client.message ?? 'the canary could not tell'}`]);
  const d = s.drill;
  if (d?.out) out.push(['Out', drillLeg(d.out)]);
  if (d?.back) out.push(['Back', drillLeg(d.back)]);
  if (o?.lostWrites !== undefined) out.push(['Lost writes', String(o.lostWrites)]);
  if (o?.dnsVerifySeconds !== undefined) out.push(['DNS verified in', seconds(o.dnsVerifySeconds)]);
  if (o?.waitedForLeaseSeconds !== undefined)
    out.push(["Waited for the old primary's Lease", seconds(o.waitedForLeaseSeconds)]);
  if (o?.protection) out.push(['Split-brain protection', o.protection]);
  if (o?.discardedBytes !== undefined)
    out.push([
      'Discarded',
      `${bytes(o.discardedBytes)}${o.discardedTransactions !== undefined ? `, ${o.discardedTransactions} transactions` : ''}`,
    ]);
  const by = s.operation?.requestedBy ?? s.request?.requestedBy;
  const request = s.operation?.requestId ?? s.drill?.requestId ?? s.request?.id;
  if (request) out.push(['Request', request]);
  if (by) out.push(['Requested by', by]);
  const reason = o?.reason ?? s.request?.reason;
  if (reason) out.push(['Reason', reason]);
  if (s.request)
    out.push(['Refused', `${s.request.refusal ? `${s.request.refusal}: ` : ''}${s.request.message}`]);
  if (o?.message) out.push(['Outcome', o.message]);
  return out;
}

function drillLeg(m: NonNullable<FailoverReportSpec['drill']>['out']): string {
  if (!m) return '-';
  return `${seconds(m.rtoSeconds)} RTO, ${m.rpoTransactions ?? '?'} rows lost (measured by ${m.measuredBy}; operation ${m.operationId})`;
}

/** A moment to the millisecond: 2026-12-02 03:05:13.174Z (a timeline's steps are often within a second). */
const instant = (at: string) => new Date(at).toISOString().replace('T', ' ');

/** Seconds from the first moment, for reading a timeline at a glance: +0.0s, +12.4s. */
function offsets(s: FailoverReportSpec): (at: string) => string {
  const first = Math.min(
    ...[s.startedAt, ...(s.timeline ?? []).map((m) => m.at)]
      .filter((t): t is string => !!t)
      .map((t) => Date.parse(t)),
  );
  return (at) => `+${((Date.parse(at) - first) / 1000).toFixed(1)}s`;
}

function steps(s: FailoverReportSpec): [string, string][] {
  const st = s.operation?.stepSeconds;
  if (!st) return [];
  return (Object.keys(STEP_NAMES) as (keyof StepSeconds)[])
    .filter((k) => st[k] !== undefined)
    .map((k) => [STEP_NAMES[k], seconds(st[k])]);
}

export function reportText(s: FailoverReportSpec, namespace: string): string {
  const f = facts(s, namespace);
  const width = Math.max(...f.map(([k]) => k.length));
  const lines = [title(s), '', ...f.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`)];
  const st = steps(s);
  if (st.length) lines.push('', 'Steps:', table(['STEP', 'TIME'], st));
  const tl = s.timeline ?? [];
  if (tl.length) {
    const plus = offsets(s);
    lines.push(
      '',
      'Timeline:',
      table(
        ['TIME (UTC)', 'T', 'EVENT', 'DETAIL'],
        tl.map((m) => [instant(m.at), plus(m.at), m.event, m.detail ?? '']),
      ),
    );
  }
  return lines.join('\n');
}

/** A Markdown table cell: one line, pipes escaped. */
const cell = (v: string) =>
  v
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');

export function reportMarkdown(s: FailoverReportSpec, namespace: string): string {
  const lines = [
    `# ${cell(title(s))}`,
    '',
    '| | |',
    '|---|---|',
    ...facts(s, namespace).map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`),
  ];
  const st = steps(s);
  if (st.length)
    lines.push('', '## Steps', '', '| Step | Time |', '|---|---|', ...st.map(([k, v]) => `| ${k} | ${v} |`));
  const tl = s.timeline ?? [];
  if (tl.length) {
    const plus = offsets(s);
    lines.push(
      '',
      '## Timeline',
      '',
      '| Time (UTC) | T | Event | Detail |',
      '|---|---|---|---|',
      ...tl.map((m) => `| ${instant(m.at)} | ${plus(m.at)} | ${cell(m.event)} | ${cell(m.detail ?? '')} |`),
    );
  }
  return lines.join('\n');
}

export async function reportCommand(
  api: FailoverApi,
  opts: { namespace: string; policy: string; id?: string; output: ReportFormat },
): Promise<string | object> {
  const reports = await policyReports(api, opts.namespace, opts.policy);
  if (!opts.id) {
    if (opts.output === 'json' || opts.output === 'yaml')
      return { apiVersion: 'v1', kind: 'List', items: reports };
    if (reports.length === 0) return `No reports found for FailoverPolicy ${opts.namespace}/${opts.policy}.`;
    return reportsTable(reports);
  }
  const found = reports.find((r) => r.spec.id === opts.id || r.metadata.name === opts.id);
  if (!found)
    throw new Error(
      `no report ${opts.id} for FailoverPolicy ${opts.namespace}/${opts.policy}: kubectl failover report ${opts.policy} lists them`,
    );
  if (opts.output === 'json' || opts.output === 'yaml') return found;
  return opts.output === 'markdown'
    ? reportMarkdown(found.spec, opts.namespace)
    : reportText(found.spec, opts.namespace);
}
