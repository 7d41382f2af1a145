/**
 * `kubectl failover history POLICY`: the operation in progress, past promotions and reprotects
 * (with what a reprotect discarded), and drills, with RTO and RPO (the drills table is
 * `kubectl failover drill history`'s).
 */
import type { OperationReport } from '../api/v1alpha1/index.ts';
import type { FailoverApi } from './api.ts';
import { describeDrills } from './drill.ts';
import { age, bytes, seconds, table, timestamp } from './format.ts';
import { activePrimary, readPolicy } from './policies.ts';

/** The promoted standby's lag when promoted: 1.5s/4KiB. */
export function rpo(r: Pick<OperationReport, 'rpoSeconds' | 'rpoBytes'>): string {
  if (r.rpoSeconds === undefined && r.rpoBytes === undefined) return '-';
  return [
    r.rpoSeconds !== undefined ? seconds(r.rpoSeconds) : undefined,
    r.rpoBytes !== undefined ? bytes(r.rpoBytes) : undefined,
  ]
    .filter(Boolean)
    .join('/');
}

/** What a reprotect discarded: 4KiB, 3 txs. */
function discarded(r: OperationReport): string {
  if (r.discardedBytes === undefined && r.discardedTransactions === undefined) return '-';
  return [
    r.discardedBytes !== undefined ? bytes(r.discardedBytes) : undefined,
    r.discardedTransactions !== undefined ? `${r.discardedTransactions} txs` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
}

/** What the continuous canary saw of an operation (spec.canary.mode: Always): 3.6s, 0 of 20 lost. */
function client(r: OperationReport): string {
  const c = r.client;
  if (!c) return '-';
  if (c.measuredBy !== 'Canary') return 'not measured';
  const lost = r.lostWrites ?? c.rpoTransactions;
  return `${seconds(c.rtoSeconds)}, ${lost ?? '?'} of ${c.acknowledged ?? '?'} lost`;
}

export function operationsTable(list: OperationReport[]): string {
  // Only where a reprotect discarded something: the column is noise otherwise.
  const discards = list.some((r) => discarded(r) !== '-');
  // Only with the continuous canary (spec.canary.mode: Always): the client's side of each move.
  const measured = list.some((r) => r.client);
  const header = [
    'COMPLETED',
    'KIND',
    'TRIGGER',
    'FROM',
    'TO',
    'EPOCH',
    'RESULT',
    'RTO',
    'RPO',
    ...(measured ? ['CLIENT'] : []),
    ...(discards ? ['DISCARDED'] : []),
    'REASON',
  ];
  return table(
    header,
    list.map((r) => [
      timestamp(r.completedAt),
      r.kind,
      r.trigger,
      r.from,
      r.to,
      String(r.epoch),
      r.result,
      seconds(r.rtoSeconds),
      rpo(r),
      ...(measured ? [client(r)] : []),
      ...(discards ? [discarded(r)] : []),
      r.reason ?? '',
    ]),
  );
}

export async function historyCommand(
  api: FailoverApi,
  opts: { namespace: string; policy: string; output: 'table' | 'json'; now: Date },
): Promise<string> {
  const p = await readPolicy(api, opts.namespace, opts.policy);
  const { status } = p;
  if (opts.output === 'json') {
    return JSON.stringify(
      {
        namespace: p.namespace,
        name: p.name,
        activePrimary: activePrimary(p),
        epoch: status.epoch,
        currentOperation: status.currentOperation,
        history: status.history ?? [],
        drill: status.drill,
        drills: status.drills ?? [],
        nextDrillTime: status.nextDrillTime,
      },
      null,
      2,
    );
  }
  const out: string[] = [
    `FailoverPolicy ${p.namespace}/${p.name}: primary ${activePrimary(p) ?? '-'}, epoch ${status.epoch ?? '-'}, phase ${status.phase ?? 'Pending'}`,
  ];
  const op = status.currentOperation;
  if (op && op.step !== 'Completed' && op.step !== 'Aborted') {
    const what =
      op.kind === 'Reprotect'
        ? `Reprotect (${op.trigger}) of ${op.from} as a standby of ${op.to}`
        : `${op.kind} (${op.trigger}) ${op.from} → ${op.to}`;
    out.push(
      '',
      `In progress: ${what}, epoch ${op.epoch}, step ${op.step} for ${age(op.stepStartedAt, opts.now)}, started ${age(op.startedAt, opts.now)} ago${op.reason ? `: ${op.reason}` : ''}`,
    );
    if (op.discarded) {
      const d = op.discarded;
      out.push(
        `  discards: ${bytes(d.bytes)} of WAL after the fork at ${d.forkLsn ?? '?'} (to ${d.endLsn ?? '?'}), ${d.transactions ?? 'an unknown number of'} committed transaction(s)`,
      );
    }
    if (op.lastError)
      out.push(`  last error: ${op.lastError}${op.attempts ? ` (attempt ${op.attempts})` : ''}`);
  }
  out.push('', 'Failovers, switchovers and reprotects, newest first:');
  out.push(status.history?.length ? operationsTable(status.history) : '  none yet');
  out.push('', 'Drills, newest first:', ...describeDrills(p, opts.now));
  return out.join('\n');
}
