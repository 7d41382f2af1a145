/**
 * The failover and switchover state machine, as pure functions over the operation record kept in
 * status. Every step is written to status before its side effect runs (write-ahead), so whoever
 * reconciles next, after a crash or a leader change, resumes at that step and re-runs it; each
 * step's action checks before it acts, so re-running one that already took effect is harmless.
 *
 *   Failover:   Detected → Fencing → Promoting → RepointingDns → VerifyingDns → Completed
 *   Switchover: Detected → Fencing → CatchingUp → Promoting → RepointingDns → VerifyingDns → Completed
 *   A switchover whose standby cannot catch up: CatchingUp → RollingBack → Aborted
 *   Anything that can stop before touching a database: Detected → Aborted
 */
import type { FailoverPolicyStatus, Operation, OperationReport } from '../../api/v1alpha1/index.ts';
import { type BackoffPolicy, backoffDelay } from '../../runtime/backoff.ts';
import { timestamp } from '../../runtime/time.ts';

export type Step = Operation['step'];

const failoverSteps: Step[] = [
  'Detected',
  'Fencing',
  'Promoting',
  'RepointingDns',
  'VerifyingDns',
  'Completed',
];
const switchoverSteps: Step[] = [
  'Detected',
  'Fencing',
  'CatchingUp',
  'Promoting',
  'RepointingDns',
  'VerifyingDns',
  'Completed',
];

export const isTerminal = (step: Step) => step === 'Completed' || step === 'Aborted';

/** Steps after which the old primary may already refuse writes: from here on, only forward. */
export const hasTouchedDatabases = (step: Step) => step !== 'Detected';

export function nextStep(op: Operation): Step {
  if (op.step === 'RollingBack') return 'Aborted';
  const steps = op.kind === 'Failover' ? failoverSteps : switchoverSteps;
  const i = steps.indexOf(op.step);
  if (i < 0 || i === steps.length - 1) return op.step;
  return steps[i + 1] as Step;
}

/** The operation advanced to its next step, with whatever the finished step learned. */
export function advance(op: Operation, now: Date, learned: Partial<Operation> = {}): Operation {
  const { attempts: _a, lastError: _e, retryAfter: _r, ...rest } = op;
  return { ...rest, ...learned, step: nextStep(op), stepStartedAt: timestamp(now) };
}

export function withStep(op: Operation, step: Step, now: Date, reason?: string): Operation {
  const { attempts: _a, lastError: _e, retryAfter: _r, ...rest } = op;
  return { ...rest, step, stepStartedAt: timestamp(now), ...(reason ? { reason } : {}) };
}

/** Backoff between attempts of a failing step: from 1 s, doubling, at most a minute. */
export const STEP_RETRY: BackoffPolicy = { baseMs: 1000, maxMs: 60_000 };

/**
 * Records a failed attempt of the current step: the step stays, and is not run again before
 * `retryAfter`. The backoff lives in status, so no event (an observer's vote, our own status
 * write) and no restart can make a failing step run back to back.
 */
export function failedAttempt(
  op: Operation,
  error: string,
  now: Date,
  random: () => number = Math.random,
): Operation {
  const attempts = (op.attempts ?? 0) + 1;
  const retryAfter = new Date(now.getTime() + backoffDelay(attempts - 1, STEP_RETRY, random));
  return { ...op, attempts, lastError: error.slice(0, 1024), retryAfter: timestamp(retryAfter) };
}

const seconds = (from: string | undefined, to: Date) =>
  from ? Math.max(0, Math.round((to.getTime() - new Date(from).getTime()) / 10) / 100) : undefined;

/** The report kept in history once an operation ends. */
export function reportOf(op: Operation, now: Date, result: OperationReport['result']): OperationReport {
  const verified = op.dnsChangedAt ? seconds(op.dnsChangedAt, now) : undefined;
  return {
    id: op.id,
    kind: op.kind,
    trigger: op.trigger,
    from: op.from,
    to: op.to,
    epoch: op.epoch,
    result,
    startedAt: op.startedAt,
    completedAt: timestamp(now),
    ...(result === 'Succeeded' ? { rtoSeconds: seconds(op.primaryLostAt ?? op.startedAt, now) } : {}),
    ...(result === 'Succeeded' && op.estimatedLossSeconds !== undefined
      ? { rpoSeconds: op.estimatedLossSeconds }
      : {}),
    ...(result === 'Succeeded' && op.estimatedLossBytes !== undefined
      ? { rpoBytes: op.estimatedLossBytes }
      : {}),
    ...(verified !== undefined ? { dnsVerifySeconds: verified } : {}),
    ...(op.reason ? { reason: op.reason } : {}),
  };
}

/**
 * Status once an operation has ended: the report goes to the front of the bounded history and the
 * operation record is cleared. Promotion results (active primary, epoch) were already recorded when
 * the Promoting step finished.
 */
export function finish(status: FailoverPolicyStatus, op: Operation, now: Date): FailoverPolicyStatus {
  const result = op.step === 'Completed' ? 'Succeeded' : 'Aborted';
  const { currentOperation: _c, primaryDownSince: _p, ...rest } = status;
  return {
    ...rest,
    history: [reportOf(op, now, result), ...(status.history ?? [])].slice(0, 20),
    ...(op.requestId ? { lastHandledRequestId: op.requestId } : {}),
  };
}
