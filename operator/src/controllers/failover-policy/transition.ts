/**
 * transition: what an operation becomes after its step's side effect, from the outcome act
 * reported. Pure: advance, wait, retry with backoff, roll back or give up are decided here, with
 * the time limits of each step; act only carries a side effect out and says what happened.
 */
import type { FailoverPolicyStatus, Operation } from '../../api/v1alpha1/index.ts';
import { type EventInput, eventOf } from '../../runtime/events.ts';
import { timestamp } from '../../runtime/time.ts';
import { advance, failedAttempt, withStep } from './operation.ts';

/** What a step's side effect did, as act reports it. */
export type StepOutcome =
  /**
   * The step's effect holds now. `detail` says what was done; `learned` goes into the record.
   * `nativeSwitchover`: the provider switches this Switchover over itself (act found it from the
   * clusters' providers), so the step after this one is Promoting (operation.ts `nextStep`).
   */
  | { kind: 'Done'; detail?: string; learned?: Partial<Operation>; nativeSwitchover?: boolean }
  /** Started or under way, not finished (a promotion, a catch-up, DNS answers): look again. */
  | { kind: 'Pending'; detail: string }
  /** It failed. `reason` is a ProviderError reason (Unreachable, Timeout, Rejected, ...). */
  | {
      kind: 'Failed';
      reason: string;
      message: string;
      retryable: boolean;
      /** What the failed step still learned (a reprotect's replacement): kept in the record. */
      learned?: Partial<Operation>;
      /** How long the provider asked to be left alone (Retry-After), if it said. */
      retryAfterMs?: number;
    };

export interface Transition {
  operation: Operation;
  /** Status fields the step settled (the new primary and epoch, the cool-down). */
  settled?: Pick<FailoverPolicyStatus, 'activePrimary' | 'epoch' | 'lastFailoverTime'>;
  events: EventInput[];
  /** Look again this soon. */
  requeueMs: number;
  /** A failed attempt, for Progressing and the error metrics. */
  failure?: { reason: string; message: string };
}

/** How long a switchover waits for the standby to replay what the fenced primary wrote. */
export const CATCH_UP_TIMEOUT_MS = 120_000;
/** Failed attempts to fence the old primary after which a switchover rolls back. */
export const SWITCHOVER_FENCE_ATTEMPTS = 3;
/** How long a rejoined former primary may take to stream and catch up (a re-clone replays a lot). */
export const REPROTECT_CATCH_UP_TIMEOUT_MS = 30 * 60_000;
/** How long to keep asking the authoritative servers before completing with a warning. */
export const DNS_VERIFY_TIMEOUT_MS = 300_000;
/** How soon to look again at something under way. */
export const POLL_MS = 500;
/** A managed provider's promotion takes minutes: ask it less often. */
export const PROMOTION_POLL_MS = 2_000;

export function transition(op: Operation, outcome: StepOutcome, now: Date, random: () => number): Transition {
  switch (outcome.kind) {
    case 'Done':
      return done(op, outcome, now);
    case 'Pending':
      return pending(op, outcome.detail, now);
    case 'Failed':
      return failed(op, outcome, now, random);
  }
}

function done(op: Operation, outcome: Extract<StepOutcome, { kind: 'Done' }>, now: Date): Transition {
  const next = (events: EventInput[] = [], settled?: Transition['settled']): Transition => ({
    operation: advance(op, now, outcome.learned, outcome.nativeSwitchover ? { nativeSwitchover: true } : {}),
    events,
    requeueMs: 0,
    ...(settled ? { settled } : {}),
  });
  const detail = outcome.detail ?? '';
  switch (op.step) {
    case 'Fencing':
      return next([
        op.kind === 'Fence'
          ? eventOf(
              'Warning',
              'StrayPrimaryFenced',
              'Fence',
              `${op.from} accepted writes but ${op.to} is the primary at epoch ${op.epoch}; fenced: ${detail}`,
            )
          : eventOf('Normal', 'PrimaryFenced', 'Fence', `${op.from} fenced: ${detail}`),
      ]);
    case 'Promoting':
      return next(
        [
          eventOf(
            'Normal',
            'StandbyPromoted',
            'Promote',
            `${op.to} is the primary at epoch ${op.epoch}${detail ? ` (${detail})` : ''}`,
          ),
        ],
        {
          activePrimary: op.to,
          epoch: op.epoch,
          // Only a real failover starts the cool-down that holds back the next automatic one.
          ...(op.kind === 'Failover' ? { lastFailoverTime: timestamp(now) } : {}),
        },
      );
    case 'RepointingDns':
      return next([eventOf('Normal', 'DnsRepointed', 'UpdateDns', detail)]);
    case 'Demoting':
      return next([
        outcome.learned?.demoted === false
          ? eventOf('Warning', 'DemotionSkipped', 'Demote', detail)
          : eventOf('Normal', 'PrimaryDemoted', 'Demote', detail),
      ]);
    case 'Rejoining':
      return next([eventOf('Normal', 'FormerPrimaryRejoined', 'Reprotect', detail)]);
    case 'RollingBack':
      return next([
        eventOf('Warning', 'SwitchoverRolledBack', 'Unfence', `${op.from} takes writes again: ${detail}`),
      ]);
    default:
      return next();
  }
}

function pending(op: Operation, detail: string, now: Date): Transition {
  const elapsed = now.getTime() - new Date(op.stepStartedAt).getTime();
  const wait = (requeueMs = POLL_MS): Transition => ({
    operation: { ...op, message: detail.slice(0, 1024) },
    events: [],
    requeueMs,
  });
  // A drill's way out gives up sooner: a standby that lags is what a drill must not switch to.
  const catchUpMs = op.maxCatchUpSeconds !== undefined ? op.maxCatchUpSeconds * 1000 : CATCH_UP_TIMEOUT_MS;
  if (op.step === 'CatchingUp' && op.kind === 'Switchover' && elapsed > catchUpMs) {
    return {
      operation: withStep(
        op,
        'RollingBack',
        now,
        `${op.to} did not replay up to ${op.fencedLsn} within ${catchUpMs / 1000} s (${detail})`,
      ),
      events: [],
      requeueMs: 0,
    };
  }
  if (op.kind === 'Reprotect' && op.step === 'CatchingUp' && elapsed > REPROTECT_CATCH_UP_TIMEOUT_MS) {
    const message = `${op.from} did not catch up with ${op.to} within ${REPROTECT_CATCH_UP_TIMEOUT_MS / 60_000} min: ${detail}`;
    return {
      operation: withStep(op, 'Aborted', now, message),
      events: [eventOf('Warning', 'ReprotectFailed', 'Reprotect', message)],
      requeueMs: 0,
    };
  }
  if (op.step === 'VerifyingDns' && elapsed > DNS_VERIFY_TIMEOUT_MS) {
    const message = `DNS not verified within ${DNS_VERIFY_TIMEOUT_MS / 1000} s: ${detail}`;
    return {
      operation: advance(op, now, { message: message.slice(0, 1024) }),
      events: [
        eventOf('Warning', 'DnsNotVerified', 'VerifyDns', `authoritative servers still disagree: ${detail}`),
      ],
      requeueMs: 0,
    };
  }
  return wait(op.step === 'Promoting' || op.step === 'Rejoining' ? PROMOTION_POLL_MS : POLL_MS);
}

function failed(
  op: Operation,
  outcome: Extract<StepOutcome, { kind: 'Failed' }>,
  now: Date,
  random: () => number,
): Transition {
  const { reason, message } = outcome;
  // A primary that is gone cannot be fenced; for a failover that is the expected case. It is
  // marked instead by the new epoch: in the DNS TXT record and in the new primary's heartbeat.
  if (op.step === 'Fencing' && op.kind === 'Failover' && (reason === 'Unreachable' || reason === 'Timeout')) {
    // The strays it fenced all the same (act.ts), when it had any.
    const strays = outcome.learned?.fenceDetail ? `; ${outcome.learned.fenceDetail}` : '';
    const detail = `${op.from} unreachable (${reason}); marked by epoch ${op.epoch} in DNS and the new primary heartbeat${strays}`;
    return {
      operation: advance(op, now, { fenceDetail: detail.slice(0, 1024), markedOnly: true }),
      events: [eventOf('Warning', 'PrimaryNotFenced', 'Fence', detail)],
      requeueMs: 0,
    };
  }
  // A switchover needs the old primary read-only first. A role or a managed service that refuses
  // that would fail here for ever: after a few attempts (at once when retrying cannot help) the
  // switchover rolls back (unfencing is a no-op where nothing was fenced).
  const attempts = (op.attempts ?? 0) + 1;
  if (
    op.step === 'Fencing' &&
    op.kind === 'Switchover' &&
    (!outcome.retryable || attempts >= SWITCHOVER_FENCE_ATTEMPTS)
  ) {
    const why = `could not fence ${op.from} read-only (${attempts} attempt(s)): ${message}`;
    return {
      operation: withStep(op, 'RollingBack', now, why),
      events: [eventOf('Warning', 'FencingFailed', 'Fence', why)],
      requeueMs: 0,
      failure: { reason, message },
    };
  }
  // A stray that refuses to be fenced (a missing privilege, a provider that cannot) would hold every
  // other decision back for ever: the Fence ends, says why, and is tried again much later.
  if (op.kind === 'Fence' && !outcome.retryable) {
    const why = `could not fence ${op.from}: ${message}`;
    return {
      operation: withStep(op, 'Aborted', now, why),
      events: [eventOf('Warning', 'FencingFailed', 'Fence', why)],
      requeueMs: 0,
      failure: { reason, message },
    };
  }
  // A rejoin the agent refused (it would discard data, a rewind is impossible): retrying changes
  // nothing until a person does something; the reason goes into history and an Event.
  if (op.kind === 'Reprotect' && !outcome.retryable) {
    const why = `could not rejoin ${op.from}: ${message}`;
    return {
      operation: withStep({ ...op, ...outcome.learned }, 'Aborted', now, why),
      events: [eventOf('Warning', 'ReprotectFailed', 'Reprotect', why)],
      requeueMs: 0,
      failure: { reason, message },
    };
  }
  // Everything else is retried with backoff: past Detected a database may already have changed,
  // and giving up half way would leave less than either end.
  const next = failedAttempt(op, `${reason}: ${message}`, now, random, outcome.retryAfterMs);
  return {
    operation: next,
    events:
      attempts === 1
        ? [eventOf('Warning', `${op.step}Failed`, op.step, `${op.kind} ${op.id}: ${message}`)]
        : [],
    requeueMs: Math.max(10, new Date(next.retryAfter ?? now).getTime() - now.getTime()),
    failure: { reason, message },
  };
}
