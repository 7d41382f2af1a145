/**
 * A person's promotion request (`spec.promotionRequest`, written by `kubectl failover promote`),
 * acted on once per id: started as an operation, or rejected with the reason. Two verbs, as in the
 * managed databases people know: Switchover (planned, the primary must be up, loses nothing) and
 * Failover (the primary is gone; refused beyond the RPO budget unless data loss is accepted).
 */
import type { Operation } from '../../api/v1alpha1/index.ts';
import { timestamp } from '../../runtime/time.ts';
import { judgeStandby, lagWindowMs } from './candidates.ts';
import type { PrimaryVerdict } from './detection.ts';
import { type DecideInput, healthyStandby, writable } from './facts.ts';
import { newOperation } from './operation.ts';

export type RequestVerdict =
  | { kind: 'Start'; operation: Operation }
  | { kind: 'Reject'; requestId: string; reason: string; message: string };

/** What to do about the request in spec, if there is one not handled yet. */
export function judgeRequest(
  input: DecideInput,
  active: string,
  verdict: PrimaryVerdict,
): RequestVerdict | undefined {
  const { spec, status, clusters, now } = input;
  const request = spec.promotionRequest;
  if (!request || request.id === status.lastHandledRequestId) return undefined;
  const reject = (reason: string, message: string): RequestVerdict => ({
    kind: 'Reject',
    requestId: request.id,
    reason,
    message,
  });
  const target = clusters[request.target];
  if (request.target === active) return reject('AlreadyPrimary', `${request.target} is already the primary`);
  if (!target?.exists) return reject('TargetMissing', `ReplicaCluster ${request.target} does not exist`);
  if (!healthyStandby(target)) {
    return reject(
      'TargetNotStandby',
      `${request.target} is ${target.reachable ? `in role ${target.role}` : 'unreachable'}, not a replicating standby`,
    );
  }
  const start = (fields: Partial<Operation>): RequestVerdict => ({
    kind: 'Start',
    operation: newOperation({
      kind: request.kind,
      trigger: 'Manual',
      from: active,
      to: request.target,
      epoch: (status.epoch ?? 0) + 1,
      reason: request.reason ?? `requested by ${request.requestedBy ?? 'a person'}`,
      now,
      extra: { requestId: request.id, ...fields },
    }),
  });
  const primary = clusters[active];
  if (request.kind === 'Switchover') {
    // A switchover loses nothing: it needs the primary up, to stop its writes and let the standby catch up.
    if (!writable(primary)) {
      return reject(
        'PrimaryUnavailable',
        `a switchover needs the primary ${active} reachable and writable; use kind: Failover for a primary that is gone`,
      );
    }
    return start({});
  }
  if (writable(primary)) {
    return reject(
      'PrimaryAvailable',
      `the primary ${active} is reachable and accepts writes; use kind: Switchover, which loses nothing`,
    );
  }
  // The primary was alive until at least then: lag measured before that says little.
  const lastSeen = verdict.lastSeenAt ?? (primary?.reachable ? now : primary?.lastReachableAt) ?? new Date(0);
  const budgetSpec =
    request.maxLagSeconds === undefined
      ? spec
      : {
          ...spec,
          promotion: {
            ...spec.promotion,
            rpo: {
              ...spec.promotion.rpo,
              maxLagSeconds: request.maxLagSeconds,
              maxLagBytes: Number.MAX_SAFE_INTEGER,
            },
          },
        };
  const judged = judgeStandby(budgetSpec, target, new Date(lastSeen.getTime() - lagWindowMs(spec)));
  if (judged.problem && !request.allowDataLoss) {
    const hint =
      judged.problem.reason === 'LagUnknown'
        ? 'set allowDataLoss: true to promote anyway'
        : 'set allowDataLoss: true to accept the loss';
    return reject(judged.problem.reason, `${judged.problem.message}; ${hint}`);
  }
  return start({
    allowDataLoss: request.allowDataLoss,
    // RTO and RPO are reported as for an automatic failover: from the primary's loss, with the lag then.
    primaryLostAt: timestamp(lastSeen.getTime() > 0 ? lastSeen : now),
    ...(target.lagBytes !== undefined ? { estimatedLossBytes: target.lagBytes } : {}),
    ...(target.lagSeconds !== undefined ? { estimatedLossSeconds: target.lagSeconds } : {}),
  });
}
