/** `kubectl failover history POLICY`: the operation in progress, past promotions and drills, with RTO and RPO. */
import type { OperationReport } from '../api/v1alpha1/index.ts';
import type { FailoverApi } from './api.ts';
import { age, bytes, seconds, table, timestamp } from './format.ts';
import { activePrimary, readPolicy } from './policies.ts';

function rpo(r: OperationReport): string {
  if (r.rpoSeconds === undefined && r.rpoBytes === undefined) return '-';
  return [
    r.rpoSeconds !== undefined ? seconds(r.rpoSeconds) : undefined,
    r.rpoBytes !== undefined ? bytes(r.rpoBytes) : undefined,
  ]
    .filter(Boolean)
    .join('/');
}

function reports(list: OperationReport[], drills: boolean): string {
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
    ...(drills ? ['LOST WRITES', 'DNS VERIFIED IN'] : []),
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
      ...(drills
        ? [r.lostWrites === undefined ? '-' : String(r.lostWrites), seconds(r.dnsVerifySeconds)]
        : []),
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
    out.push(
      '',
      `In progress: ${op.kind} (${op.trigger}) ${op.from} → ${op.to}, epoch ${op.epoch}, step ${op.step} for ${age(op.stepStartedAt, opts.now)}, started ${age(op.startedAt, opts.now)} ago${op.reason ? `: ${op.reason}` : ''}`,
    );
    if (op.lastError)
      out.push(`  last error: ${op.lastError}${op.attempts ? ` (attempt ${op.attempts})` : ''}`);
  }
  out.push('', 'Failovers and switchovers, newest first:');
  out.push(status.history?.length ? reports(status.history, false) : '  none yet');
  out.push('', 'Drills, newest first:');
  if (status.drills?.length) out.push(reports(status.drills, true));
  else if (p.spec?.drills) {
    out.push(
      `  none yet (schedule "${p.spec.drills.schedule}" in ${p.spec.drills.timeZone}${p.spec.drills.suspend ? ', suspended' : ''})`,
    );
  } else out.push('  none: the policy schedules no drills (spec.drills)');
  if (status.nextDrillTime) out.push('', `Next drill: ${timestamp(status.nextDrillTime)}`);
  return out.join('\n');
}
