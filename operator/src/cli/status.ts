/** `kubectl failover status [POLICY]`: one line per policy, from what the operator wrote in status. */
import type { FailoverPolicyStatus, ReplicaClusterStatus } from '../api/v1alpha1/index.ts';
import { type FailoverApi, failoverPolicyType } from './api.ts';
import { age, seconds, table } from './format.ts';
import type { PolicyShard } from './operator-lease.ts';
import { activePrimary, type PolicyView, readPolicies, readPolicy, standbysOf } from './policies.ts';

export interface StatusRow {
  namespace: string;
  name: string;
  primary: string | undefined;
  standbys: {
    name: string;
    role?: string;
    lagSeconds?: number;
    lagBytes?: number;
    exists: boolean;
    /** The operator's topology says it is a former primary, not a standby of the primary yet. */
    formerPrimary?: boolean;
    /** Whether a database agent reports for it (present only when one has reported). */
    agent?: boolean;
  }[];
  /** Lag of the preferred healthy standby: the policy's figure, else its ReplicaCluster's. */
  lagSeconds: number | undefined;
  phase: string | undefined;
  epoch: number | undefined;
  operation: string | undefined;
  lastDrill:
    | { result: string; completedAt: string; rtoSeconds?: number; mode?: 'RoundTrip' | 'Isolated' }
    | undefined;
  drillsScheduled: boolean;
  /** Whether every standby replicates from the primary (the Redundant condition), and if not why. */
  redundant?: { status: string; reason: string; message?: string };
  /** What became of the last request (a refused reprotect says why here). */
  lastRequest?: FailoverPolicyStatus['lastRequest'];
  topology?: FailoverPolicyStatus['topology'];
  /** What keeps a cut-off primary from writing (the SplitBrainProtection condition's reason). */
  protection?: string;
  problem?: string;
  /** With a sharded operator: the policy's shard and the replica reconciling it. */
  shard?: PolicyShard;
}

const preferredLag = (standbys: StatusRow['standbys']) =>
  standbys.find((s) => s.role === 'Standby' && s.lagSeconds !== undefined)?.lagSeconds;

export function statusRow(p: PolicyView): StatusRow {
  const standbys = standbysOf(p).map((name) => {
    const s: ReplicaClusterStatus | undefined = p.clusters.get(name);
    const member = p.status.topology?.find((t) => t.cluster === name);
    return {
      name,
      exists: s !== undefined,
      ...(member?.role === 'FormerPrimary' ? { formerPrimary: true } : {}),
      ...(member?.agent !== undefined ? { agent: member.agent } : {}),
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
  const inProgress = p.status.drill;
  const redundant = p.status.conditions?.find((c) => c.type === 'Redundant');
  const protection = p.status.conditions?.find((c) => c.type === 'SplitBrainProtection')?.reason;
  return {
    namespace: p.namespace,
    name: p.name,
    primary: activePrimary(p),
    standbys,
    lagSeconds: p.status.standbyLagSeconds ?? preferredLag(standbys),
    phase: p.status.phase,
    epoch: p.status.epoch,
    // What is under way, else what a person asked for and the operator has not picked up yet,
    // else a drill between its switchovers (or an isolated one, which switches nothing over).
    operation: running
      ? running.kind === 'Reprotect'
        ? `Reprotect of ${running.from} (${running.step})`
        : `${running.kind} to ${running.to} (${running.step})`
      : pending
        ? `requested: ${pending.kind} ${pending.kind === 'Reprotect' ? 'of' : 'to'} ${pending.target}`
        : inProgress
          ? inProgress.mode === 'Isolated'
            ? `Isolated drill of ${inProgress.to} (${inProgress.leg})`
            : `Drill to ${inProgress.to} (${inProgress.leg})`
          : undefined,
    lastDrill: drill
      ? {
          result: drill.result,
          completedAt: drill.completedAt,
          ...(drill.rtoSeconds !== undefined ? { rtoSeconds: drill.rtoSeconds } : {}),
          ...(drill.mode ? { mode: drill.mode } : {}),
        }
      : undefined,
    drillsScheduled: p.spec?.drills !== undefined && p.spec.drills.suspend !== true,
    ...(redundant
      ? {
          redundant: {
            status: redundant.status,
            reason: redundant.reason,
            ...(redundant.message ? { message: redundant.message } : {}),
          },
        }
      : {}),
    ...(p.status.lastRequest ? { lastRequest: p.status.lastRequest } : {}),
    ...(p.status.topology ? { topology: p.status.topology } : {}),
    ...(protection ? { protection } : {}),
    ...(p.specProblem ? { problem: p.specProblem } : {}),
  };
}

function standbyCell(s: StatusRow['standbys'][number]): string {
  if (!s.exists) return `${s.name} (missing)`;
  // The operator's word first: a former primary (fenced, stopped, or back as a writer) needs a reprotect.
  if (s.formerPrimary) return `${s.name} (FormerPrimary)`;
  if (s.role && s.role !== 'Standby') return `${s.name} (${s.role})`;
  return s.name;
}

function drillCell(row: StatusRow, now: Date): string {
  if (row.lastDrill) {
    const rto = row.lastDrill.rtoSeconds !== undefined ? `, RTO ${seconds(row.lastDrill.rtoSeconds)}` : '';
    // An isolated drill moved nothing: it has no RTO, and says what it was.
    const isolated = row.lastDrill.mode === 'Isolated' ? ' (isolated)' : '';
    return `${row.lastDrill.result}${isolated} ${age(row.lastDrill.completedAt, now)} ago${rto}`;
  }
  return row.drillsScheduled ? 'never' : 'not scheduled';
}

function shardCell(shard: PolicyShard | undefined): string {
  if (!shard) return '-';
  return `${shard.index}/${shard.of} ${shard.holder ?? '(no holder)'}`;
}

export function renderStatus(
  rows: StatusRow[],
  opts: { allNamespaces: boolean; now: Date; wide?: boolean },
): string {
  const header = [
    ...(opts.allNamespaces ? ['NAMESPACE'] : []),
    'POLICY',
    'PRIMARY',
    'STANDBYS',
    'LAG',
    'PHASE',
    'EPOCH',
    'PROTECTION',
    'OPERATION',
    'LAST DRILL',
    // A sharded operator: which shard, and which replica holds it.
    ...(rows.some((r) => r.shard) ? ['SHARD'] : []),
    // -o wide: whether a second region is there to fail over to, and the last request's outcome.
    ...(opts.wide ? ['REDUNDANT', 'LAST REQUEST'] : []),
  ];
  const body = rows.map((r) => [
    ...(opts.allNamespaces ? [r.namespace] : []),
    r.name,
    r.primary ?? '-',
    r.standbys.map(standbyCell).join(',') || '-',
    seconds(r.lagSeconds),
    r.phase ?? (r.problem ? 'InvalidSpec' : 'Pending'),
    r.epoch === undefined ? '-' : String(r.epoch),
    r.protection ?? '-',
    r.operation ?? '-',
    drillCell(r, opts.now),
    ...(rows.some((x) => x.shard) ? [shardCell(r.shard)] : []),
    ...(opts.wide
      ? [
          r.redundant ? (r.redundant.status === 'True' ? 'True' : `False (${r.redundant.reason})`) : '-',
          r.lastRequest ? `${r.lastRequest.id}: ${r.lastRequest.outcome}` : '-',
        ]
      : []),
  ]);
  return table(header, body);
}

export async function statusCommand(
  api: FailoverApi,
  opts: {
    namespace: string | undefined;
    policy?: string;
    output: 'table' | 'json';
    now: Date;
    wide?: boolean;
    /** With a sharded operator: each policy's shard (shardLayout). */
    shardOf?: (namespace: string, name: string) => PolicyShard;
  },
): Promise<string> {
  const views = opts.policy
    ? [await readPolicy(api, opts.namespace ?? 'default', opts.policy)]
    : await readPolicies(api, opts.namespace);
  const shardOf = opts.shardOf;
  const rows = views.map((v) => {
    const row = statusRow(v);
    return shardOf ? { ...row, shard: shardOf(row.namespace, row.name) } : row;
  });
  if (opts.output === 'json') return JSON.stringify(rows, null, 2);
  if (rows.length === 0) return noPolicies(opts.namespace);
  const problems = rows
    .filter((r) => r.problem)
    .map((r) => `\nwarning: ${r.namespace}/${r.name} has a spec the operator cannot read: ${r.problem}`);
  return (
    renderStatus(rows, {
      allNamespaces: opts.namespace === undefined,
      now: opts.now,
      wide: opts.wide === true,
    }) + problems.join('')
  );
}

/** What status says, on stderr as kubectl's "No resources found", when there is nothing to show. */
export function noPolicies(namespace: string | undefined): string {
  return namespace
    ? `No FailoverPolicies in namespace ${namespace}.`
    : 'No FailoverPolicies in any namespace.';
}

/** A policy as `kubectl get -o name` names it: kind.group/name. */
const RESOURCE_NAME = `${failoverPolicyType.kind.toLowerCase()}.${failoverPolicyType.group}`;

/**
 * status -o name: one `failoverpolicy.regionfailover.io/NAME` line per policy of status's JSON
 * rows, as kubectl prints them (no namespace, even with -A); with `since`, the rows that changed
 * or went, as `kubectl get -w -o name` prints a deletion.
 */
export function policyNames(json: string, since?: string): string {
  type Row = { name: string; namespace: string };
  const rows = (text: string) => JSON.parse(text) as Row[];
  const earlier = since?.startsWith('[') ? rows(since) : [];
  const now = rows(json);
  const before = new Set(earlier.map((r) => JSON.stringify(r)));
  const id = (r: Row) => `${r.namespace}/${r.name}`;
  const present = new Set(now.map(id));
  return [...now.filter((r) => !before.has(JSON.stringify(r))), ...earlier.filter((r) => !present.has(id(r)))]
    .map((r) => `${RESOURCE_NAME}/${r.name}`)
    .join('\n');
}
