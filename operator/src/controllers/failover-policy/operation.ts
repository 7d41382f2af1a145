/**
 * The operation record kept in status: what is being done, the step it has reached, and what each
 * finished step learned. Every step is written to status before its side effect runs
 * (write-ahead), so whoever reconciles next, after a crash or a leader change, resumes at that
 * step and re-runs it; each step's side effect checks before it acts, so re-running one that
 * already took effect is harmless.
 *
 *   Failover:   Detected → Fencing → Promoting → RepointingDns → VerifyingDns → Completed
 *   Switchover: Detected → Fencing → CatchingUp → [Demoting] → Promoting → RepointingDns → VerifyingDns → Completed
 *               Fencing or CatchingUp that cannot finish → RollingBack (unfence) → Aborted
 *               Demoting only when an agent runs beside the old primary (`demoted`): it stops it
 *               cleanly once caught up, the target replays past its shutdown checkpoint, and it
 *               restarts as the target's standby; a demotion that cannot finish leaves it fenced
 *   Switchover the provider does itself (`nativeSwitchover`: Aurora global's SwitchoverGlobalCluster
 *   catches up, and demotes the old writer): Detected → Fencing → Promoting → RepointingDns →
 *               VerifyingDns → Completed, where Fencing only marks the old writer with the epoch
 *               (EpochOnly: Aurora refuses the SQL of a read-only fence)
 *   Reprotect:  Detected → Rejoining → CatchingUp → Completed   (a former primary made a standby again)
 *               Rejoining refused (it would discard data, a rewind is impossible) → Aborted
 *   Fence:      Detected → Fencing → Completed          (a database that accepts writes but is not the primary)
 *               Detected or Fencing → Aborted           (it stopped taking writes, the primary was lost,
 *                                                        or the fence was refused)
 *   Any of Promoting, RepointingDns, VerifyingDns → Fencing, when a database other than the new
 *   primary is seen taking writes (it is fenced, and the steps run again; each is idempotent)
 *   Anything that stops before touching a database: Detected → Aborted
 */
import {
  type FailoverPolicyStatus,
  type Operation,
  type OperationReport,
  type StepSeconds,
  TIMELINE_LENGTH,
  type TimelineEntry,
} from '../../api/v1alpha1/index.ts';
import type { FencingMode } from '../../providers/database/port.ts';
import { type BackoffPolicy, backoffDelay } from '../../runtime/backoff.ts';
import { timestamp } from '../../runtime/time.ts';

export type Step = Operation['step'];
export type OperationKind = Operation['kind'];

const steps: Record<OperationKind, Step[]> = {
  Failover: ['Detected', 'Fencing', 'Promoting', 'RepointingDns', 'VerifyingDns', 'Completed'],
  Switchover: [
    'Detected',
    'Fencing',
    'CatchingUp',
    'Demoting',
    'Promoting',
    'RepointingDns',
    'VerifyingDns',
    'Completed',
  ],
  Fence: ['Detected', 'Fencing', 'Completed'],
  Reprotect: ['Detected', 'Rejoining', 'CatchingUp', 'Completed'],
};

/** Whether the operation moves the primary (a new epoch); Fence and Reprotect do not. */
export const promotes = (kind: OperationKind) => kind === 'Failover' || kind === 'Switchover';

export const isTerminal = (step: Step) => step === 'Completed' || step === 'Aborted';

/** Steps before the promotion: the old primary is still the primary (perhaps fenced). */
export const beforePromotion = (step: Step) =>
  step === 'Detected' || step === 'Fencing' || step === 'CatchingUp' || step === 'RollingBack';

/** After Detected a database may already refuse writes: from here on, only forward (or roll back). */
export const hasTouchedDatabases = (step: Step) => step !== 'Detected';

/**
 * How the finished step's operation goes on, as act found it from the world. Not recorded in the
 * operation: only the step after Fencing depends on it, and act finds it again there.
 */
export interface StepFacts {
  /**
   * The provider switches over by itself (capabilities.ts `switchesOverNatively`): a Switchover
   * goes from Fencing (a mark only) straight to Promoting, where the provider does the rest.
   */
  nativeSwitchover?: boolean;
}

/** Steps a native switchover leaves to the provider. */
const providerDoes = new Set<Step>(['CatchingUp', 'Demoting']);

export function nextStep(op: Operation, facts: StepFacts = {}): Step {
  if (op.step === 'RollingBack') return 'Aborted';
  const native = op.kind === 'Switchover' && facts.nativeSwitchover === true;
  const all = steps[op.kind];
  const i = all.indexOf(op.step);
  if (i < 0) return op.step;
  const next = all
    .slice(i + 1)
    .find((s) => (s !== 'Demoting' || op.demoted) && !(native && providerDoes.has(s)));
  return next ?? op.step;
}

/** A moment for the timeline. */
export function moment(at: Date | string, event: string, detail?: string): TimelineEntry {
  return {
    at: typeof at === 'string' ? at : timestamp(at),
    event,
    ...(detail ? { detail: detail.slice(0, 512) } : {}),
  };
}

/**
 * The timeline with more moments. When it is full the middle gives way, one moment at a time:
 * how it started and how it ended tell the story (a step retried for an hour is one moment).
 */
export function withMoments(
  timeline: TimelineEntry[] | undefined,
  ...added: TimelineEntry[]
): TimelineEntry[] {
  const next = [...(timeline ?? []), ...added];
  while (next.length > TIMELINE_LENGTH) next.splice(TIMELINE_LENGTH / 2, 1);
  return next;
}

/** The moments of leaving `op`'s step for `step`: the DNS change and its verification, then the step entered. */
function stepMoments(op: Operation, step: Step, now: Date, learned: Partial<Operation>, message?: string) {
  const moments: TimelineEntry[] = [];
  const changed = learned.dnsChangedAt ?? op.dnsChangedAt;
  if (op.step === 'RepointingDns' && changed && step !== 'Fencing')
    moments.push(moment(changed, 'DnsChanged', `the record names ${op.to}, epoch ${op.epoch}`));
  if (op.step === 'VerifyingDns' && step === 'Completed') {
    const missed = learned.message?.startsWith('DNS not verified');
    if (missed) return [...moments, moment(now, 'DnsNotVerified', learned.message), moment(now, step)];
    moments.push(moment(now, 'DnsVerified', 'every authoritative server answers the new primary'));
  }
  moments.push(moment(now, step, message));
  return moments;
}

const withoutAttempts = (op: Operation) => {
  const { attempts: _a, lastError: _e, retryAfter: _r, message: _m, ...rest } = op;
  return rest;
};

/** The step timings' field for each step that takes time. */
const TIMED: Partial<Record<Step, keyof StepSeconds>> = {
  Fencing: 'fencing',
  CatchingUp: 'catchingUp',
  Demoting: 'demoting',
  Promoting: 'promoting',
  RepointingDns: 'repointingDns',
  VerifyingDns: 'verifyingDns',
  Rejoining: 'rejoining',
  RollingBack: 'rollingBack',
};

/** The timings with the step being left counted in (a step entered again adds up). */
function timed(op: Operation, now: Date): Pick<Operation, 'stepSeconds'> {
  const key = TIMED[op.step];
  const spent = secondsBetween(op.stepStartedAt, now);
  if (!key || spent === undefined) return op.stepSeconds ? { stepSeconds: op.stepSeconds } : {};
  const total = Math.round(((op.stepSeconds?.[key] ?? 0) + spent) * 100) / 100;
  return { stepSeconds: { ...op.stepSeconds, [key]: total } };
}

/** The operation advanced to its next step, with whatever the finished step learned. */
export function advance(
  op: Operation,
  now: Date,
  learned: Partial<Operation> = {},
  facts: StepFacts = {},
): Operation {
  const step = nextStep(op, facts);
  // Why a switchover rolled back is why it ended: the report says it.
  const why = op.step === 'RollingBack' && op.message ? { message: op.message } : {};
  return {
    ...withoutAttempts(op),
    ...why,
    ...learned,
    ...timed(op, now),
    step,
    stepStartedAt: timestamp(now),
    timeline: withMoments(op.timeline, ...stepMoments(op, step, now, learned, learned.message)),
  };
}

/**
 * The operation moved to `step` (back a step, rolling back, aborting). `message` says why; the
 * reason the operation started (a person's words) is never overwritten.
 */
export function withStep(op: Operation, step: Step, now: Date, message?: string): Operation {
  return {
    ...withoutAttempts(op),
    ...timed(op, now),
    step,
    stepStartedAt: timestamp(now),
    ...(message ? { message: message.slice(0, 1024) } : {}),
    timeline: withMoments(op.timeline, ...stepMoments(op, step, now, {}, message)),
  };
}

/** Backoff between attempts of a failing step: from 1 s, doubling, at most a minute. */
export const STEP_RETRY: BackoffPolicy = { baseMs: 1000, maxMs: 60_000 };

/**
 * Records a failed attempt of the current step: the step stays, and is not run again before
 * `retryAfter`. The backoff lives in status, so no event (an observer's vote, our own status
 * write) and no restart can make a failing step run back to back. A provider that said when to
 * come back (`askedMs`, a throttling answer's Retry-After) is left alone that long, up to the
 * backoff's longest wait: asking sooner only spends more of its rate limit, and a bogus hint must
 * not stall a failover.
 */
export function failedAttempt(
  op: Operation,
  error: string,
  now: Date,
  random: () => number,
  askedMs = 0,
): Operation {
  const attempts = (op.attempts ?? 0) + 1;
  const backoff = backoffDelay(attempts - 1, STEP_RETRY, random);
  const asked = Number.isFinite(askedMs) ? Math.min(askedMs, STEP_RETRY.maxMs) : 0;
  const retryAfter = new Date(now.getTime() + Math.max(backoff, asked));
  // The first failure of a step goes into the timeline; the retries after it are the same story.
  const timeline =
    attempts === 1
      ? withMoments(op.timeline, moment(now, 'StepFailed', `${op.step}: ${error}`))
      : op.timeline;
  return {
    ...op,
    attempts,
    lastError: error.slice(0, 1024),
    retryAfter: timestamp(retryAfter),
    ...(timeline ? { timeline } : {}),
  };
}

/**
 * How the Fencing step fences. A switchover fences read-only, never Shutdown: the fence's catalog
 * changes replicate to the standby about to take over, and a closed database there is more to
 * undo (the promotion's heartbeat lifts a fence the new primary inherited; docs/fencing.md).
 * A switchover the provider does itself only marks the old primary with the epoch: the provider
 * makes it read-only (and Aurora refuses the SQL that would). Everything else honours the
 * policy's mode (read at each attempt: a person may change it to get a stuck fence unstuck).
 */
export function fencingModeFor(op: Operation, policyMode: FencingMode, facts: StepFacts = {}): FencingMode {
  if (op.kind !== 'Switchover') return policyMode;
  return facts.nativeSwitchover ? 'EpochOnly' : 'ReadOnly';
}

/** Milliseconds until a failed step may run again; 0 when it may run now. */
export function backoffLeft(op: Operation, now: Date): number {
  return op.retryAfter ? Math.max(0, new Date(op.retryAfter).getTime() - now.getTime()) : 0;
}

export interface NewOperation {
  kind: OperationKind;
  trigger: Operation['trigger'];
  from: string;
  to: string;
  epoch: number;
  reason: string;
  now: Date;
  extra?: Partial<Operation>;
}

export function newOperation(o: NewOperation): Operation {
  // To the millisecond: two operations started within one second (a refusal, then a request) differ.
  const stamp = o.now
    .toISOString()
    .replace(/[-:TZ.]/g, '')
    .slice(0, 17);
  return {
    id: `${o.kind.toLowerCase()}-e${o.epoch}-${stamp}${o.kind === 'Fence' || o.kind === 'Reprotect' ? `-${o.from}` : ''}`.slice(
      0,
      128,
    ),
    kind: o.kind,
    trigger: o.trigger,
    from: o.from,
    to: o.to,
    epoch: o.epoch,
    step: 'Detected',
    startedAt: timestamp(o.now),
    stepStartedAt: timestamp(o.now),
    reason: o.reason.slice(0, 1024),
    ...o.extra,
    // What led to it (the observers losing the primary), then its start.
    timeline: withMoments(o.extra?.timeline, moment(o.now, 'Started', o.reason)),
  };
}

const secondsBetween = (from: string | undefined, to: Date) =>
  from ? Math.max(0, Math.round((to.getTime() - new Date(from).getTime()) / 10) / 100) : undefined;

/** The report kept in history once an operation ends. */
export function reportOf(op: Operation, now: Date): OperationReport {
  const succeeded = op.step === 'Completed';
  const moved = promotes(op.kind);
  const verified = op.dnsChangedAt ? secondsBetween(op.dnsChangedAt, now) : undefined;
  return {
    id: op.id,
    kind: op.kind,
    trigger: op.trigger,
    from: op.from,
    to: op.to,
    epoch: op.epoch,
    result: succeeded ? 'Succeeded' : 'Aborted',
    startedAt: op.startedAt,
    completedAt: timestamp(now),
    ...(succeeded && moved ? { rtoSeconds: secondsBetween(op.primaryLostAt ?? op.startedAt, now) } : {}),
    ...(succeeded && moved && op.estimatedLossSeconds !== undefined
      ? { rpoSeconds: op.estimatedLossSeconds }
      : {}),
    ...(succeeded && moved && op.estimatedLossBytes !== undefined ? { rpoBytes: op.estimatedLossBytes } : {}),
    ...(verified !== undefined ? { dnsVerifySeconds: verified } : {}),
    ...(op.stepSeconds ? { stepSeconds: op.stepSeconds } : {}),
    ...(op.waitedForLeaseSeconds !== undefined ? { waitedForLeaseSeconds: op.waitedForLeaseSeconds } : {}),
    ...(op.protection ? { protection: op.protection } : {}),
    ...(succeeded && op.kind === 'Reprotect' && op.discarded
      ? {
          discardedBytes: op.discarded.bytes,
          ...(op.discarded.transactions !== undefined
            ? { discardedTransactions: op.discarded.transactions }
            : {}),
        }
      : {}),
    ...(op.replacement ? { replacement: op.replacement } : {}),
    ...(op.requestId ? { requestId: op.requestId } : {}),
    ...(op.requestedBy ? { requestedBy: op.requestedBy } : {}),
    ...(op.reason ? { reason: op.reason } : {}),
    ...(op.message ? { message: op.message } : {}),
    ...(op.timeline ? { timeline: op.timeline } : {}),
  };
}

/** How many reports history keeps. */
export const HISTORY_LENGTH = 20;

/**
 * Status once an operation has ended: the report goes to the front of the bounded history and the
 * operation record is cleared. Promotion results (active primary, epoch) were recorded when the
 * Promoting step finished.
 */
export function finish(status: FailoverPolicyStatus, op: Operation, now: Date): FailoverPolicyStatus {
  const { currentOperation: _c, ...rest } = status;
  return {
    ...rest,
    history: [reportOf(op, now), ...(status.history ?? [])].slice(0, HISTORY_LENGTH),
    ...(op.requestId ? { lastHandledRequestId: op.requestId } : {}),
  };
}
