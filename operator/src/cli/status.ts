/** `kubectl failover status [POLICY]`: one line per policy, from what the operator wrote in status. */
import type { ReplicaClusterStatus } from '../api/v1alpha1/index.ts';
import type { FailoverApi } from './api.ts';
import { age, seconds, table } from './format.ts';
import { activePrimary, type PolicyView, readPolicies, readPolicy, standbysOf } from './policies.ts';

export interface StatusRow {
  namespace: string;
  name: string;
  primary: string | undefined;
  standbys: { name: string; role?: string; lagSeconds?: number; lagBytes?: number; exists: boolean }[];
  /** Lag of the preferred healthy standby: the policy's figure, else its ReplicaCluster's. */
  lagSeconds: number | undefined;
  phase: string | undefined;
  epoch: number | undefined;
  operation: string | undefined;
  lastDrill: { result: string; completedAt: string; rtoSeconds?: number } | undefined;
  drillsScheduled: boolean;
  problem?: string;
}

const preferredLag = (standbys: StatusRow['standbys']) =>
  standbys.find((s) => s.role === 'Standby' && s.lagSeconds !== undefined)?.lagSeconds;

export function statusRow(p: PolicyView): StatusRow {
  const standbys = standbysOf(p).map((name) => {
    const s: ReplicaClusterStatus | undefined = p.clusters.get(name);
    return {
      name,
      exists: s !== undefined,
      ...(s?.role ? { role: s.role } : {}),
      ...(s?.replicationLagSeconds !== undefined ? { lagSeconds: s.replicationLagSeconds } : {}),
      ...(s?.replicationLagBytes !== undefined ? { lagBytes: s.replicationLagBytes } : {}),
    };
  });
  const op = p.status.currentOperation;
  const running = op && op.step !== 'Completed' && op.step !== 'Aborted' ? op : undefined;
  const request = p.spec?.promotionRequest;
  const pending = request && request.id !== p.status.lastHandledRequestId ? request : undefined;
  const drill = p.status.drills?.[0];
  return {
    namespace: p.namespace,
    name: p.name,
    primary: activePrimary(p),
    standbys,
    lagSeconds: p.status.standbyLagSeconds ?? preferredLag(standbys),
    phase: p.status.phase,
    epoch: p.status.epoch,
    // What is under way, else what a person asked for and the operator has not picked up yet.
    operation: running
      ? `${running.kind} to ${running.to} (${running.step})`
      : pending
        ? `requested: ${pending.kind} to ${pending.target}`
        : undefined,
    lastDrill: drill
      ? {
          result: drill.result,
          completedAt: drill.completedAt,
          ...(drill.rtoSeconds !== undefined ? { rtoSeconds: drill.rtoSeconds } : {}),
        }
      : undefined,
    drillsScheduled: p.spec?.drills !== undefined && p.spec.drills.suspend !== true,
    ...(p.specProblem ? { problem: p.specProblem } : {}),
  };
}

function standbyCell(s: StatusRow['standbys'][number]): string {
  if (!s.exists) return `${s.name} (missing)`;
  if (s.role && s.role !== 'Standby') return `${s.name} (${s.role})`;
  return s.name;
}

function drillCell(row: StatusRow, now: Date): string {
  if (row.lastDrill) {
    const rto = row.lastDrill.rtoSeconds !== undefined ? `, RTO ${seconds(row.lastDrill.rtoSeconds)}` : '';
    return `${row.lastDrill.result} ${age(row.lastDrill.completedAt, now)} ago${rto}`;
  }
  return row.drillsScheduled ? 'never' : 'not scheduled';
}

export function renderStatus(rows: StatusRow[], opts: { allNamespaces: boolean; now: Date }): string {
  const header = [
    ...(opts.allNamespaces ? ['NAMESPACE'] : []),
    'POLICY',
    'PRIMARY',
    'STANDBYS',
    'LAG',
    'PHASE',
    'EPOCH',
    'OPERATION',
    'LAST DRILL',
  ];
  const body = rows.map((r) => [
    ...(opts.allNamespaces ? [r.namespace] : []),
    r.name,
    r.primary ?? '-',
    r.standbys.map(standbyCell).join(',') || '-',
    seconds(r.lagSeconds),
    r.phase ?? (r.problem ? 'InvalidSpec' : 'Pending'),
    r.epoch === undefined ? '-' : String(r.epoch),
    r.operation ?? '-',
    drillCell(r, opts.now),
  ]);
  return table(header, body);
}

export async function statusCommand(
  api: FailoverApi,
  opts: { namespace: string | undefined; policy?: string; output: 'table' | 'json'; now: Date },
): Promise<string> {
  const views = opts.policy
    ? [await readPolicy(api, opts.namespace ?? 'default', opts.policy)]
    : await readPolicies(api, opts.namespace);
  const rows = views.map(statusRow);
  if (opts.output === 'json') return JSON.stringify(rows, null, 2);
  if (rows.length === 0) {
    return opts.namespace
      ? `No FailoverPolicies in namespace ${opts.namespace}.`
      : 'No FailoverPolicies in any namespace.';
  }
  const problems = rows
    .filter((r) => r.problem)
    .map((r) => `\nwarning: ${r.namespace}/${r.name} has a spec the operator cannot read: ${r.problem}`);
  return (
    renderStatus(rows, { allNamespaces: opts.namespace === undefined, now: opts.now }) + problems.join('')
  );
}
