/**
 * decide: a pure function of the policy, what was observed and the time, returning one plan.
 * A short list of guarded steps, in order; the first that has something to do returns its plan,
 * with the reason, and nothing after it runs (CloudNativePG's inner reconcile is the model):
 *
 * 1. the primary is known: learned from the world (heartbeat epochs, DNS), never assumed from spec;
 * 2. a drill asked to stop stops (cancelled, too long); an operation in flight goes on, one step per
 *    reconcile, or stands down when its ground is gone;
 * 3. never two primaries: a database other than the primary that accepts writes is fenced;
 * 4. a person's request is started or rejected, once per id;
 * 5. a primary down by quorum is failed over, automatically only inside every limit;
 * 6. the DNS record is kept on the primary between operations;
 * 7. a former primary that is back is made a standby again (reprotect), when that discards nothing
 *    or the policy allows it;
 * 8. with failback: Automatic, the original primary gets its role back by a switchover;
 * 9. a drill moves on, or one that is due or requested starts.
 *
 * A plan is the status to write next and at most one side effect (`RunStep`, `RepairDns`); the
 * conditions people read are derived from the result in summary.ts.
 *
 * While spec.paused is set (maintenance), the automatic rules (5, 6, 7, 8 and a drill's start)
 * are still judged, but what they would start is only reported (`held`); an operation in flight
 * goes on, unless it is automatic and has changed nothing yet (a drill still in its Starting leg
 * ends). A person's request runs. Safety is never paused: a stray writer is fenced (3), a fence
 * an operation left behind is undone (5b), and the record's TTL is put back after a drill.
 */

import { agentAlive } from '../../agent/liveness.ts';
import type { FailoverPolicyStatus, Operation } from '../../api/v1alpha1/index.ts';
import type { ConditionInput } from '../../runtime/conditions.ts';
import { type EventInput, eventOf } from '../../runtime/events.ts';
import { timestamp } from '../../runtime/time.ts';
import { lagStepSeconds } from '../replica-cluster/lag.ts';
import {
  type BlockReason,
  chooseStandby,
  inCooldown,
  judgeStandby,
  primaryReadAt,
  standbysOf,
} from './candidates.ts';
import { detectionMoments, judgePrimary, maxObservationAgeMs, type PrimaryVerdict } from './detection.ts';
import { type Discovery, discoverPrimary, newerEpochs } from './discovery.ts';
import { judgeDns } from './dns-check.ts';
import { abortStartingDrill, decideDrill, judgeDrillStop, scheduledDrillTime } from './drill.ts';
import {
  type ClusterFacts,
  type DecideInput,
  healthyStandby,
  policyClusters,
  probedSince,
  seconds,
  writable,
} from './facts.ts';
import type { IsolatedDrillAction } from './isolated-drill.ts';
import { lossRecord, primaryLastSeen, withLagAtLoss } from './loss.ts';
import {
  apartFrom,
  type OneServer,
  oneServerNamedTwice,
  oneServerUntilAnswered,
  onOneServer,
  sameServer,
  serverOf,
} from './one-server.ts';
import {
  backoffLeft,
  beforePromotion,
  finish,
  isTerminal,
  newOperation,
  promotes,
  withStep,
} from './operation.ts';
import { isProtected, judgeReprotect, strayBesideReprotect } from './reprotect.ts';
import { judgeRequest } from './requests.ts';
import { failoverProtection, leaseGate } from './split-brain.ts';

export type Action =
  /** Nothing to do but keep status current. */
  | { kind: 'Observe' }
  /** Write `plan.status`; no side effect (an operation started, a step moved, a request rejected). */
  | { kind: 'Record' }
  /** Run the side effect of `operation.step`, which status already records (write-ahead). */
  | { kind: 'RunStep'; operation: Operation }
  /** Put the DNS record back on the primary (compare-and-swap on the value last read). */
  | { kind: 'RepairDns'; expected: string | undefined; value: string; epoch: number; ttl: number }
  /** An isolated drill's record written and verified, or deleted; a provider's copy made or deleted. */
  | IsolatedDrillAction;

export interface Plan {
  action: Action;
  /** Which guarded step chose this, and why: for logs and tests. */
  why: string;
  /** The status to write (before a side effect's result is folded in). */
  status: FailoverPolicyStatus;
  events: EventInput[];
  requeueMs: number;
  verdict: PrimaryVerdict | undefined;
  /** The primary is down and an automatic failover cannot start: why. */
  blocked?: { reason: BlockReason; message: string };
  /** The primary is down, and the hold-down is being waited out. */
  holdingDown?: string;
  /** Discovery ran and did not settle who is primary. */
  undiscovered?: Extract<Discovery, { kind: 'Unknown' }>;
  /** What this reconcile learned about the DNS record, when it did. */
  dnsReady?: ConditionInput;
  /** A former primary that is not a standby again yet, and why it waits. */
  reprotectWaiting?: { cluster: string; reason: string; message: string };
  /** spec.paused: what the automatic rules would have started, held back by the pause. */
  held?: string[];
  /** Clusters one server answers for under two names, for ClustersResolved (one-server.ts). */
  oneServer?: OneServer;
}

interface Context {
  input: DecideInput;
  /** Status with this reconcile's bookkeeping (down-since, lag, next drill). */
  base: FailoverPolicyStatus;
  active: string | undefined;
  verdict: PrimaryVerdict | undefined;
  probeMs: number;
  /** What paused automatic rules would have done (filled as the guards run). */
  held: string[];
}

type Guard = (c: Context) => Plan | undefined;

const plan = (c: Context, why: string, over: Partial<Plan> = {}): Plan => ({
  action: { kind: 'Observe' },
  why,
  status: c.base,
  events: [],
  requeueMs: c.probeMs,
  verdict: c.verdict,
  ...over,
});

/** A status change without a side effect; the next reconcile goes on at once. */
const record = (c: Context, why: string, status: FailoverPolicyStatus, events: EventInput[] = []): Plan =>
  plan(c, why, { action: { kind: 'Record' }, status, events, requeueMs: 0 });

/** Why, when no guarded step chose anything (a quiet policy: quiet.ts). */
export const NOTHING_TO_DO = 'nothing to do';

export function decide(input: DecideInput): Plan {
  const c = context(input);
  const chosen = guards.reduce<Plan | undefined>((found, guard) => found ?? guard(c), undefined);
  const result = chosen ?? plan(c, NOTHING_TO_DO);
  // Whatever was chosen, people see which former primary waits for what.
  const waiting = reprotectWaiting(c, result.status);
  const oneServer = oneServerNamedTwice(input) ?? oneServerUntilAnswered(input);
  return {
    ...result,
    ...(waiting ? { reprotectWaiting: waiting } : {}),
    ...(c.held.length ? { held: c.held } : {}),
    ...(oneServer ? { oneServer } : {}),
  };
}

/**
 * An automatic rule, which spec.paused holds back: it is judged as ever (it is pure), and what it
 * would start is reported instead of started.
 */
const unlessPaused =
  (guard: Guard, allowed: (p: Plan) => boolean = () => false): Guard =>
  (c) => {
    const chosen = guard(c);
    if (!chosen || !c.input.spec.paused || allowed(chosen)) return chosen;
    const op = chosen.status.currentOperation;
    const started = op && op !== c.base.currentOperation ? op : undefined;
    c.held.push(
      started ? `a ${started.kind} of ${started.from} (${started.reason ?? started.trigger})` : chosen.why,
    );
    return undefined;
  };

function reprotectWaiting(c: Context, status: FailoverPolicyStatus): Plan['reprotectWaiting'] {
  if (!c.active || status.currentOperation) return undefined;
  const verdict = judgeReprotect({ ...c.input, status }, c.active);
  return verdict?.kind === 'Wait'
    ? { cluster: verdict.cluster, reason: verdict.reason, message: verdict.message }
    : undefined;
}

/**
 * The lag `kubectl get` shows (and the topology in status): a figure that moved with every probe
 * made every reconcile a status write. It moves by more than the heartbeats' resolution
 * (lagStepSeconds), or at once when it crosses the RPO budget. Nothing decides on it (decisions
 * use the facts).
 */
export function shownLag(lag: number, shown: number | undefined, spec: DecideInput['spec']): number {
  const budget = spec.promotion.rpo.maxLagSeconds;
  const same =
    shown !== undefined &&
    Math.abs(lag - shown) < lagStepSeconds(spec.detection.probeIntervalSeconds) &&
    lag > budget === shown > budget;
  return same ? shown : Math.round(lag * 100) / 100;
}

/**
 * Requests already in spec when status is new (a policy created with one, re-applied from Git
 * after a delete, or its status cleared): which of them were acted on lived in the status that is
 * gone, so none is acted on again. Each is answered as refused, once; a new id acts.
 */
function requestsBeforeStatus(input: DecideInput): Partial<FailoverPolicyStatus> {
  if (!input.statusNew) return {};
  return refusePendingRequests(
    input,
    'PredatesStatus',
    (what) =>
      `this ${what} was in spec before the policy had a status (created with it, re-applied, or its status cleared), so it may have been acted on already: not acted on; give a new id to ask again`,
  );
}

/** The promotion and drill requests in spec not handled yet, each answered as refused with `why`. */
export function refusePendingRequests(
  input: Pick<DecideInput, 'spec' | 'status' | 'now'>,
  reason: string,
  why: (what: 'promotion request' | 'drill request') => string,
): Partial<FailoverPolicyStatus> {
  const { spec, status, now } = input;
  const promotion = spec.promotionRequest;
  const drill = spec.drillRequest;
  return {
    ...(promotion && promotion.id !== status.lastHandledRequestId
      ? {
          lastHandledRequestId: promotion.id,
          lastRequest: {
            id: promotion.id,
            outcome: 'Rejected' as const,
            reason,
            message: why('promotion request'),
            time: timestamp(now),
          },
        }
      : {}),
    ...(drill && drill.id !== status.lastHandledDrillRequestId
      ? {
          lastHandledDrillRequestId: drill.id,
          lastDrillRequest: {
            id: drill.id,
            action: drill.action,
            outcome: 'Rejected' as const,
            message: why('drill request'),
            time: timestamp(now),
          },
        }
      : {}),
  };
}

function context(input: DecideInput): Context {
  const { spec, status, clusters, now } = input;
  const active = status.activePrimary;
  const verdict = active ? judgePrimary(spec, input.votes, now, active) : undefined;
  const lag = standbysOf(spec, active)
    .map((n) => clusters[n])
    .find((f) => healthyStandby(f) && f?.lagSeconds !== undefined)?.lagSeconds;
  const {
    primaryDownSince: _d,
    primaryLoss: _pl,
    standbyLagSeconds: _l,
    nextDrillTime: _n,
    pausedSince: _p,
    ...rest
  } = status;
  const nextDrillTime = scheduledDrillTime(spec, status, now);
  const base: FailoverPolicyStatus = {
    ...rest,
    ...requestsBeforeStatus(input),
    ...lossRecord(input, verdict),
    ...(lag !== undefined ? { standbyLagSeconds: shownLag(lag, status.standbyLagSeconds, spec) } : {}),
    ...(nextDrillTime ? { nextDrillTime } : {}),
    ...(spec.paused ? { pausedSince: status.pausedSince ?? timestamp(now) } : {}),
  };
  return {
    input,
    base,
    active,
    verdict,
    probeMs: seconds(spec.detection.probeIntervalSeconds),
    held: [],
  };
}

/** 1. Who is primary, from the world, when status does not know or the world is ahead of it. */
const knowThePrimary: Guard = (c) => {
  const { input, base } = c;
  const newer = newerEpochs(input);
  if (c.active && newer.length === 0) return undefined;
  const op = base.currentOperation;
  // Stopped already (aborted below, or ended otherwise): into history first, then discovery.
  // Aborted again instead, it would be written again at every reconcile while the world is ahead.
  if (op && c.active && isTerminal(op.step)) return finishOperation(c, op);
  if (op && c.active) {
    // Someone promoted beyond this operation's epoch: it is obsolete; stop before doing more.
    const ended = withStep(op, 'Aborted', input.now, `a newer epoch is in the world (${newer.join('; ')})`);
    return record(c, 'the world is ahead of the operation', { ...base, currentOperation: ended });
  }
  const found = discoverPrimary(input);
  if (found.kind === 'Unknown') return plan(c, 'discovering the primary', { undiscovered: found });
  const where = c.active
    ? `status said ${c.active} at epoch ${base.epoch ?? 0}, but ${newer.join('; ')}`
    : 'status did not record it';
  const differs = found.primary !== input.spec.primary ? ` (spec.primary names ${input.spec.primary})` : '';
  // Never below an epoch status already held (an operation's, or a status with no primary).
  const epoch = Math.max(found.epoch, base.epoch ?? 0);
  return record(c, 'primary discovered', { ...base, activePrimary: found.primary, epoch }, [
    eventOf(
      c.active ? 'Warning' : 'Normal',
      'PrimaryDiscovered',
      'Discover',
      `${found.primary} is the primary at epoch ${found.epoch}${differs}: ${found.message}; ${where}`,
    ),
  ]);
};

/**
 * 2a. A drill asked to stop (cancelled, or past maxDurationSeconds) stops before its operation
 * runs another step: a switchover out still fencing or catching up rolls back.
 */
const stopDrill: Guard = (c) => {
  const stopping = judgeDrillStop({ ...c.input, status: c.base });
  return stopping ? record(c, stopping.why, stopping.status, stopping.events) : undefined;
};

/**
 * What the servers' identities hold back in an operation (one-server.ts), once no stand-down
 * applies. Strays it recorded that turned out to be its target's own server are left out (their
 * fence would fence the target). An operation whose source and target turned out to be one
 * server runs no step on its source: a fence of a "stray" that is the primary is aborted, a
 * switchover still fencing or catching up rolls back; a reprotect, a demotion, or a failover sent
 * back to fence after its promotion waits (stand-downs still apply). And from its promotion on,
 * a writer not yet told apart from the target's server holds the step until it is (serverOf:
 * at most the detection window); another server was sent to be fenced by the stand-down.
 */
function oneServerHold(c: Context, op: Operation): Plan | undefined {
  const { input } = c;
  const same = (n: string) => sameServer(input.clusters[op.to], input.clusters[n]);
  const kept = (op.strays ?? []).filter((n) => !same(n));
  if (kept.length !== (op.strays ?? []).length) {
    const { strays: _s, ...rest } = op;
    const left = (op.strays ?? []).filter(same);
    return record(c, `operation ${op.id}: ${left.join(', ')} is ${op.to}'s own server`, {
      ...c.base,
      currentOperation: kept.length ? { ...rest, strays: kept } : rest,
    });
  }
  if (onOneServer(input, op)) {
    const why = `${op.from} and ${op.to} are one server`;
    // A switchover's fence (or its catch-up behind one) is rolled back, as a stopped drill's is.
    const ending =
      op.kind === 'Fence' || (op.kind === 'Switchover' && op.step === 'Detected')
        ? 'Aborted'
        : op.kind === 'Switchover' && (op.step === 'Fencing' || op.step === 'CatchingUp')
          ? 'RollingBack'
          : undefined;
    if (ending) {
      const ended = withStep(op, ending, input.now, `${why}: nothing more is done to ${op.from}`);
      return record(c, `operation ${op.id}: ${why}`, { ...c.base, currentOperation: ended });
    }
    // A reprotect's agent works on its own server, which the facts no longer show; nor may a
    // failover sent back to fence after its promotion fence its source, the target's server.
    if (op.kind === 'Reprotect' || op.step === 'Fencing' || op.step === 'Demoting')
      return plan(c, `operation ${op.id} waits: ${why}`);
  }
  if (!promotingOrAfter(op)) return undefined;
  const unknown = policyClusters(input.spec).filter(
    (n) =>
      n !== op.to &&
      freshWriter(c, op, n) &&
      serverOf(input, input.clusters[op.to], input.clusters[n]) === 'Undecided',
  );
  return unknown.length
    ? plan(c, `operation ${op.id} waits: ${unknown.join(', ')} not told apart from ${op.to}'s server yet`)
    : undefined;
}

const promotingOrAfter = (op: Operation) =>
  op.step === 'Promoting' || op.step === 'RepointingDns' || op.step === 'VerifyingDns';

/**
 * A writer seen since the operation's step began, which it has not marked (EpochOnly: a mark is
 * all that mode does).
 */
function freshWriter(c: Context, op: Operation, name: string): boolean {
  const f = c.input.clusters[name];
  const marked = (f?.fencedEpoch ?? -1) >= op.epoch;
  return writable(f) && !marked && f?.observedAt !== undefined && f.observedAt > new Date(op.stepStartedAt);
}

/** 2. An operation in flight goes on, or stands down when the ground it stood on is gone. */
const continueOperation: Guard = (c) => {
  const op = c.base.currentOperation;
  if (!op) return undefined;
  const { input } = c;
  const now = input.now;
  if (isTerminal(op.step)) return finishOperation(c, op);
  const standDown = standDownReason(c, op);
  if (standDown) {
    const [step, message] = standDown;
    const moved = withStep(op, step, now, message);
    const strays = step === 'Fencing' ? strayWriters(c, op) : [];
    return record(c, `operation ${op.id}: ${message}`, {
      ...c.base,
      currentOperation: strays.length
        ? { ...moved, strays: [...new Set([...(op.strays ?? []), ...strays])] }
        : moved,
    });
  }
  const held = oneServerHold(c, op);
  if (held) return held;
  const wait = backoffLeft(op, now);
  if (wait > 0) return plan(c, `waiting out the backoff of ${op.step}`, { requeueMs: wait });
  // Never promote blind: right after a restart the old primary is not probed yet, and it may be
  // back and taking writes. Its first probe decides (see standDownReason).
  if (op.step === 'Promoting' && promotes(op.kind) && input.clusters[op.from]?.unprobed) {
    if (input.clusters[op.from]?.exists !== false)
      return plan(c, `waiting for the first probe of ${op.from} before promoting ${op.to}`);
    // Deleted (by hand, or pruned from Git) mid-operation: nothing can probe it, so say so where
    // people look (Progressing, the operation's message) instead of waiting without a word.
    const why = `waiting to probe ${op.from} before promoting ${op.to}, but ReplicaCluster ${op.from} does not exist: apply it again so the operator can see whether it takes writes`;
    if (op.message === why) return plan(c, why, { requeueMs: c.probeMs });
    return {
      ...record(c, why, { ...c.base, currentOperation: { ...op, message: why } }),
      requeueMs: c.probeMs,
    };
  }
  // An old primary that could only be marked fences itself when its Lease runs out: not before.
  if (op.step === 'Promoting' && op.waitedForLeaseSeconds === undefined && op.protection === 'Lease') {
    const gate = leaseGate(input, op);
    if (!gate.open) {
      const requeueMs = Math.max(100, Math.min(gate.retryMs, c.probeMs));
      if (op.leaseWaitFrom) return plan(c, gate.why, { requeueMs });
      const waiting = { ...op, leaseWaitFrom: timestamp(now), message: gate.why.slice(0, 1024) };
      return { ...record(c, gate.why, { ...c.base, currentOperation: waiting }), requeueMs };
    }
    const waited = op.leaseWaitFrom ? (now.getTime() - new Date(op.leaseWaitFrom).getTime()) / 1000 : 0;
    return plan(c, `running ${op.kind} step ${op.step}`, {
      action: {
        kind: 'RunStep',
        operation: { ...op, waitedForLeaseSeconds: Math.round(waited * 100) / 100 },
      },
      requeueMs: 0,
    });
  }
  return plan(c, `running ${op.kind} step ${op.step}`, {
    action: { kind: 'RunStep', operation: op },
    requeueMs: 0,
  });
};

/** Why an operation must move off its step before running it, if it must. */
function standDownReason(c: Context, op: Operation): [Operation['step'], string] | undefined {
  const { clusters, spec } = c.input;
  // Paused: an automatic operation that has changed nothing yet is not started after all; a Fence
  // is safety, which a pause never holds back.
  if (spec.paused && op.trigger === 'Automatic' && op.step === 'Detected' && op.kind !== 'Fence')
    return ['Aborted', `the policy was paused (spec.paused) before ${op.kind} changed anything`];
  const from = clusters[op.from];
  // Only a fact taken after the step began says something about it: an earlier probe may predate the fence.
  const seenSince = (at: string) => from?.observedAt !== undefined && from.observedAt > new Date(at);
  if (op.kind === 'Fence') {
    if (op.step !== 'Detected' && op.step !== 'Fencing') return undefined;
    // A failover fences the stray with its old primary: it goes first. A failover that cannot start
    // (no standby within the budget, paused, cooling down) is no reason to leave two writers.
    if (failoverStartsNow(c)) return ['Aborted', `${op.to} is down by quorum: the failover rules act first`];
    if (seenSince(op.startedAt) && !writable(from))
      return [
        'Aborted',
        `${op.from} no longer accepts writes (${from?.reachable ? from.role : 'unreachable'})`,
      ];
    return undefined;
  }
  if (op.kind === 'Reprotect') {
    // The primary it rejoins is lost: the failover rules act first (a half-rejoined database is no
    // standby to promote, and it takes no writes).
    if (c.verdict?.down && !isTerminal(op.step) && op.step !== 'CatchingUp')
      return ['Aborted', `${op.to} is down by quorum: the failover rules act first`];
    // Never two writers: a database taking writes beside the primary is fenced first (guard 3).
    const writers = policyClusters(spec).filter(
      (n) =>
        n !== op.to &&
        strayBesideReprotect(spec, clusters[n], op.from, op.epoch) &&
        !sameServer(clusters[op.to], clusters[n]) &&
        (clusters[n]?.observedAt ?? 0) > new Date(op.startedAt),
    );
    if (writers.length)
      return ['Aborted', `${writers.join(', ')} takes writes beside ${op.to}: fenced first`];
    return undefined;
  }
  // Fence before promote: the old primary may have come back since it was fenced or marked, and
  // any other database seen taking writes is fenced with it (recorded in `strays`).
  // After it (re-pointing or verifying DNS, which can take minutes while a provider fails) a
  // returning old primary would take writes beside the new one: the operation goes back to fence it
  // (the promotion then finds its target already primary, and moves on).
  if (promotingOrAfter(op)) {
    // One that is the target's own server under another name is no second writer (one-server.ts).
    const fresh = (n: string) => freshWriter(c, op, n) && apartFrom(c.input, clusters[op.to], clusters[n]);
    const strays = policyClusters(spec).filter((n) => n !== op.from && n !== op.to && fresh(n));
    const writers = [...(fresh(op.from) ? [op.from] : []), ...strays];
    if (writers.length)
      return [
        'Fencing',
        `${writers.join(' and ')} ${writers.length === 1 ? 'accepts' : 'accept'} writes beside ${op.to}; fencing ${writers.length === 1 ? 'it' : 'them'} ${op.step === 'Promoting' ? 'before promoting' : 'before going on'}`,
      ];
  }
  // A switchover the provider does itself (Aurora global: both ends rejoin by themselves) is one
  // long Promoting step that needs the old writer; with it lost and the target not promoted yet,
  // the provider refuses or never finishes it, so it stands down for the failover rules.
  const native = clusters[op.from]?.rejoinsAfterSwitchover && clusters[op.to]?.rejoinsAfterSwitchover;
  // A switchover needs its primary: one lost by quorum before the promotion stands down, so the
  // failover rules can act instead of retrying a fence or a catch-up against a primary that is gone.
  // Not a person's while this operator itself still reaches it (observers that disagree): it can
  // fence it and let the standby catch up, which is what the person asked for then. Reached means
  // taking writes, or read-only under this very switchover's fence (its own Fencing step).
  const reached = operatorSeesWriting(c, op.from) || operatorSeesFencedBy(c, op.from, op.epoch);
  const personal = op.trigger === 'Manual' && !native;
  if (op.kind === 'Switchover' && beforePromotion(op.step) && c.verdict?.down && !(personal && reached))
    return ['Aborted', `${op.from} was lost (${c.verdict.message}) before ${op.to} was promoted`];
  if (
    op.kind === 'Switchover' &&
    op.step === 'Promoting' &&
    native &&
    c.verdict?.down &&
    !writable(clusters[op.to])
  )
    return [
      'Aborted',
      `${op.from} was lost (${c.verdict.message}) before the provider's switchover to ${op.to} finished`,
    ];
  // An automatic failover that has touched nothing stands down if the primary is back — on
  // positive evidence, not for want of it (a restarted operator has no probes yet).
  const back = primarySeenAlive(c, op.from);
  if (op.step === 'Detected' && op.trigger === 'Automatic' && op.kind === 'Failover' && back)
    return ['Aborted', `${op.from} is reachable again before anything was changed (${back})`];
  return undefined;
}

/**
 * Positive evidence that the primary is alive, whatever the verdict: this operator's own probe
 * finds it taking writes, or a quorum of observers reach it. An automatic failover neither starts
 * (failOver) nor goes on past Detected (standDownReason) on it: the same test for both, or a
 * failover would start and stand down at every reconcile while the observers disagree.
 */
function primarySeenAlive(c: Context, primary: string): string | undefined {
  if (operatorSeesWriting(c, primary)) return 'this operator reaches it and it takes writes';
  const up = c.verdict?.upVotes ?? 0;
  if (up >= c.input.spec.detection.quorum) return `${up} observers reach it`;
  return undefined;
}

/** This operator's own probe, as fresh as a vote must be, finds `name` taking writes. */
function operatorSeesWriting(c: Context, name: string): boolean {
  return writable(c.input.clusters[name]) && freshProbe(c, name);
}

/** This operator's own fresh probe finds `name` read-only under a fence at `epoch` (or later). */
function operatorSeesFencedBy(c: Context, name: string, epoch: number): boolean {
  const f = c.input.clusters[name];
  return (
    f?.reachable === true && f.role === 'Fenced' && (f.fencedEpoch ?? -1) >= epoch && freshProbe(c, name)
  );
}

/** A probe as fresh as a vote must be: a restarted operator's view from status may be old. */
function freshProbe(c: Context, name: string): boolean {
  const { clusters, spec, now } = c.input;
  const at = clusters[name]?.observedAt;
  return at !== undefined && now.getTime() - at.getTime() <= maxObservationAgeMs(spec);
}

/** A failover fences, with its old primary, whatever else takes writes when it starts. */
function withStrays(c: Context, op: Operation): Operation {
  const strays = strayWriters(c, op);
  return strays.length ? { ...op, strays } : op;
}

/** Databases other than an operation's two that take writes now. */
function strayWriters(c: Context, op: Operation): string[] {
  return policyClusters(c.input.spec).filter((n) => {
    const f = c.input.clusters[n];
    return (
      n !== op.from &&
      n !== op.to &&
      writable(f) &&
      (f?.fencedEpoch ?? -1) < op.epoch &&
      apartFrom(c.input, c.input.clusters[op.to], f)
    );
  });
}

/** An ended operation is filed in history, with the outcome of the request that started it. */
function finishOperation(c: Context, op: Operation): Plan {
  const { now } = c.input;
  const next = finish(c.base, op, now);
  const report = next.history?.[0];
  const succeeded = op.step === 'Completed';
  const figures =
    report && succeeded && promotes(op.kind)
      ? ` RTO ${report.rtoSeconds ?? '?'} s, expected loss ${report.rpoSeconds ?? 0} s / ${report.rpoBytes ?? 0} bytes, DNS verified in ${report.dnsVerifySeconds ?? '?'} s.`
      : '';
  const ending = succeeded ? 'completed' : `aborted: ${op.message ?? ''}`;
  const status: FailoverPolicyStatus = {
    ...next,
    ...(op.requestId
      ? {
          lastRequest: {
            id: op.requestId,
            outcome: succeeded ? 'Succeeded' : 'Aborted',
            reason: succeeded ? 'Completed' : 'Aborted',
            message: (op.message ?? op.reason ?? '').slice(0, 1024),
            time: timestamp(now),
          },
        }
      : {}),
  };
  const verified = succeeded && promotes(op.kind) && op.dnsChangedAt !== undefined;
  return {
    ...record(c, `operation ${op.id} ${succeeded ? 'completed' : 'aborted'}`, status, [
      eventOf(
        succeeded ? 'Normal' : 'Warning',
        `${op.kind}${succeeded ? 'Completed' : 'Aborted'}`,
        op.kind,
        `${op.kind} ${op.from} → ${op.to} at epoch ${op.epoch} ${ending}.${figures}`,
      ),
    ]),
    ...(verified
      ? {
          dnsReady: op.message?.startsWith('DNS not verified')
            ? { type: 'DnsReady', status: 'False', reason: 'NotVerified', message: op.message }
            : {
                type: 'DnsReady',
                status: 'True',
                reason: 'Verified',
                message: `the authoritative servers answer ${op.to}'s target (epoch ${op.epoch})`,
              },
        }
      : {}),
  };
}

/** How long after a Fence of a database a new one may start if it still takes writes. */
const FENCE_RETRY_MS = 30_000;
/** How long after a Fence that was refused (a missing privilege, a provider that cannot) to try again. */
const FENCE_REFUSED_RETRY_MS = 5 * 60_000;

/** 3. Never two primaries: anything else that accepts writes is fenced, as a recorded operation. */
const fenceStrayPrimary: Guard = (c) => {
  const { input, base, active } = c;
  if (!active) return undefined;
  // The failover about to start fences every stray writer with its old primary (its `strays`).
  if (failoverStartsNow(c)) return undefined;
  const epoch = base.epoch ?? 0;
  for (const name of policyClusters(input.spec)) {
    const facts = input.clusters[name];
    if (name === active || !writable(facts)) continue;
    // Not before it is known to be another server than the primary (one-server.ts): fencing the
    // primary's own server under another name would fence the primary.
    if (!apartFrom(input, input.clusters[active], facts)) continue;
    // Only a probe taken after the last operation ended says so: one from before may predate its fence.
    if (!probedSince(facts, base.history?.[0]?.completedAt)) continue;
    // EpochOnly can only mark a database with the epoch: once it holds it, there is no more to do.
    if (input.spec.promotion.fencing === 'EpochOnly' && (facts?.fencedEpoch ?? -1) >= epoch) continue;
    // After a fence that did not take, or was refused, wait before the next: a stand-down (the
    // primary lost meanwhile) is no reason to.
    const last = base.history?.find((r) => r.kind === 'Fence' && r.from === name);
    const wait = !last
      ? 0
      : last.result === 'Succeeded'
        ? FENCE_RETRY_MS
        : last.message?.startsWith('could not fence')
          ? FENCE_REFUSED_RETRY_MS
          : 0;
    if (last && input.now.getTime() - new Date(last.completedAt).getTime() < wait) continue;
    const operation = newOperation({
      kind: 'Fence',
      trigger: 'Automatic',
      from: name,
      to: active,
      epoch,
      reason: `${name} accepts writes but ${active} is the primary at epoch ${epoch}`,
      now: input.now,
    });
    return record(c, `fencing stray primary ${name}`, { ...base, currentOperation: operation }, [
      eventOf(
        'Warning',
        'StrayPrimary',
        'Fence',
        `${operation.reason}: fencing it (${input.spec.promotion.fencing})`,
      ),
    ]);
  }
  return undefined;
};

/** 4. A person's request, acted on once. */
const handleRequest: Guard = (c) => {
  if (!c.active || !c.verdict) return undefined;
  // Against the status being built: one new to this object has just answered a request that
  // predates it (requestsBeforeStatus).
  const handled = c.base.lastHandledRequestId;
  const status = { ...c.input.status, ...(handled ? { lastHandledRequestId: handled } : {}) };
  const verdict = judgeRequest({ ...c.input, status }, c.active, c.verdict);
  if (!verdict) return undefined;
  const now = timestamp(c.input.now);
  if (verdict.kind === 'Reject') {
    return record(
      c,
      `request ${verdict.requestId} rejected`,
      {
        ...c.base,
        lastHandledRequestId: verdict.requestId,
        lastRequest: {
          id: verdict.requestId,
          outcome: 'Rejected',
          reason: verdict.reason,
          message: verdict.message,
          time: now,
        },
      },
      [
        eventOf(
          'Warning',
          'PromotionRejected',
          'Promote',
          `request ${verdict.requestId}: ${verdict.message}`,
        ),
      ],
    );
  }
  return startOperation(c, verdict.operation);
};

/** Records a new operation (write-ahead: nothing is touched yet). */
function startOperation(c: Context, started: Operation, extra: Partial<FailoverPolicyStatus> = {}): Plan {
  const now = timestamp(c.input.now);
  // A switchover away from a database with an agent demotes it: a clean stop once the target has
  // everything, and a restart as its standby, so no rewind and no reprotect are needed after.
  // A failover records what keeps its old primary from writing once cut off: with a Lease, the
  // promotion waits for it (leaseGate) when the old primary cannot be fenced directly.
  const op =
    started.kind === 'Switchover' && agentAlive(c.input.clusters[started.from]?.agent, c.input.now)
      ? { ...started, demoted: true }
      : started.kind === 'Failover'
        ? withStrays(c, { ...started, protection: failoverProtection(c.input, started.from) })
        : started;
  return record(
    c,
    `${op.kind} ${op.id} started`,
    {
      ...c.base,
      ...extra,
      currentOperation: op,
      ...(op.requestId
        ? {
            lastHandledRequestId: op.requestId,
            lastRequest: {
              id: op.requestId,
              outcome: 'Accepted',
              reason: 'Accepted',
              message: `${op.kind} to ${op.to} started`,
              time: now,
            },
          }
        : {}),
    },
    [
      eventOf(
        op.trigger === 'Automatic' ? 'Warning' : 'Normal',
        `${op.kind}Started`,
        op.kind,
        `${op.kind} of ${op.from} to ${op.to} at epoch ${op.epoch}: ${op.reason ?? op.trigger}`,
      ),
    ],
  );
}

/** 5. The primary is down by quorum: fail over automatically, only inside every limit. */
const failOverIfDown: Guard = (outer) => {
  const { active, verdict } = outer;
  if (!active || !verdict?.down) return undefined;
  // A drill still starting moved nothing: it ends here, in the same write as whatever the outage
  // calls for, so status shows the outage (Blocked, FailingOver), not a drill that cannot go on.
  const ended = abortStartingDrill(
    outer.input,
    outer.base,
    `the primary ${active} was lost before the switchover (${verdict.message}); nothing moved`,
  );
  if (!ended) return failOver(outer, active, verdict);
  const p = failOver({ ...outer, base: ended.status }, active, verdict);
  return { ...p, events: [...ended.events, ...p.events] };
};

/** failOverIfDown's plan for a primary down by quorum. */
function failOver(c: Context, active: string, verdict: PrimaryVerdict): Plan {
  const { input, base } = c;
  const { spec, now } = input;
  // While no failover starts, an isolated drill steps aside and cleans up (its record, its copy).
  const waiting = (p: Plan): Plan => {
    const drill = base.drill?.mode === 'Isolated' ? drillPlanOf(c) : undefined;
    if (!drill) return p;
    return {
      ...drill,
      ...(p.blocked ? { blocked: p.blocked } : {}),
      ...(p.holdingDown ? { holdingDown: p.holdingDown } : {}),
      requeueMs: Math.min(drill.requeueMs, p.requeueMs),
    };
  };
  const blocked = (reason: BlockReason, message: string) =>
    waiting(plan(c, `failover blocked: ${reason}`, { blocked: { reason, message } }));
  if (spec.paused) {
    c.held.push(`failing over ${active} (${verdict.message})`);
    return blocked(
      'Paused',
      `the primary is down (${verdict.message}) and the policy is paused (spec.paused${spec.pauseReason ? `: ${spec.pauseReason}` : ''}): no automatic failover; resume it, or promote a standby by hand (kubectl failover promote --failover)`,
    );
  }
  if (spec.promotion.mode === 'Manual')
    return blocked(
      'ManualMode',
      'the primary is down and promotion.mode is Manual: request a promotion (kubectl failover promote)',
    );
  // The observers disagree (a partition that cut some paths to the primary, not all): down by
  // quorum, yet seen alive. A person decides; the hold-down keeps counting meanwhile.
  const alive = primarySeenAlive(c, active);
  if (alive)
    return blocked(
      'PrimaryReachable',
      `the primary is down by quorum (${verdict.message}), but ${alive}: no automatic failover while it is seen alive; ${
        operatorSeesWriting(c, active)
          ? 'to move it, request a switchover (kubectl failover switchover <policy> --to <standby>): it loses nothing, as this operator reaches the primary'
          : "fix this operator's path to it; once the primary is really gone, a failover follows"
      }`,
    );
  const downSince = new Date(base.primaryDownSince ?? timestamp(now));
  const heldFor = now.getTime() - downSince.getTime();
  const holdDown = seconds(spec.promotion.holdDownSeconds);
  if (heldFor < holdDown)
    return waiting(
      plan(c, 'hold-down', {
        holdingDown: `waiting out the ${spec.promotion.holdDownSeconds} s hold-down`,
        requeueMs: Math.min(c.probeMs, holdDown - heldFor),
      }),
    );
  const cooling = inCooldown(spec, base, now);
  if (cooling)
    return blocked(
      'Cooldown',
      `the last failover was ${Math.round(cooling.sinceMs / 1000)} s ago; the cool-down is ${spec.promotion.cooldownSeconds} s`,
    );
  const seenAt = primaryLastSeen(verdict, base);
  const lastSeen = seenAt && seenAt < downSince ? seenAt : downSince;
  const candidate = chooseStandby(spec, withLagAtLoss(input.clusters, base), active, lastSeen);
  if (!candidate) return blocked('NoHealthyStandby', 'the policy has no standby');
  if (candidate.problem) return blocked(candidate.problem.reason, candidate.problem.message);
  return startOperation(
    c,
    newOperation({
      kind: 'Failover',
      trigger: 'Automatic',
      from: active,
      to: candidate.facts.name,
      epoch: (base.epoch ?? 0) + 1,
      reason: verdict.message,
      now,
      extra: {
        timeline: detectionMoments(spec, input.votes, now, active, base.primaryDownSince, verdict.message),
        // RTO counts from when the primary was last seen alive, not from when the quorum agreed.
        primaryLostAt: timestamp(lastSeen),
        ...(candidate.facts.lagBytes !== undefined ? { estimatedLossBytes: candidate.facts.lagBytes } : {}),
        ...(candidate.facts.lagSeconds !== undefined
          ? { estimatedLossSeconds: candidate.facts.lagSeconds }
          : {}),
      },
    }),
  );
}

/**
 * Whether the failover rules start a failover on this reconcile: the primary is down by quorum and
 * nothing holds it back (pause, Manual mode, hold-down, cool-down, no standby within the budget).
 */
function failoverStartsNow(c: Context): boolean {
  if (!c.verdict?.down) return false;
  const started = failOverIfDown({ ...c, held: [] })?.status.currentOperation;
  return started?.kind === 'Failover' && started !== c.base.currentOperation;
}

/**
 * 5b. A primary left read-only by an operation that stood down takes writes again: a switchover
 * that lost its primary after fencing it stands down so the failover rules can act, and when the
 * primary is back before they did, nothing was promoted at the fence's epoch (no database holds
 * it, none takes writes), so it is still the only primary. Its fence is rolled back, as the
 * switchover's own rollback would have.
 */
const unfenceLeftPrimary: Guard = (c) => {
  const { input, base } = c;
  if (!c.active || c.verdict?.down || base.currentOperation) return undefined;
  const f = input.clusters[c.active];
  // Read-only by a fence, or still writable with only an EpochOnly mark (an Aurora switchover's).
  if (!f?.reachable || (f.role !== 'Fenced' && !writable(f)) || f.fencedEpoch === undefined) return undefined;
  // A fence at an epoch status committed is a promotion's (a failover away from it): not this.
  if (f.fencedEpoch <= (base.epoch ?? 0)) return undefined;
  // Only a probe taken after the last operation ended: one from before may predate this very
  // rollback's unfence, which would start it again at every reconcile until the next probe.
  if (!probedSince(f, base.history?.[0]?.completedAt)) return undefined;
  const fencedAt = f.fencedEpoch;
  const others = policyClusters(input.spec).filter((n) => n !== c.active);
  if (
    others.some((n) => {
      const o = input.clusters[n];
      // Only what is seen counts: a database out of sight may be promoting (RDS, Aurora).
      return !o?.reachable || o.unprobed || writable(o) || (o.heartbeatEpoch ?? -1) >= fencedAt;
    })
  )
    return undefined;
  const now = input.now;
  const to = standbysOf(input.spec, c.active)[0] ?? c.active;
  const why = `${c.active} is read-only, fenced at epoch ${fencedAt} by an operation that stood down before promoting anything; no database holds that epoch: unfencing it`;
  const op = withStep(
    newOperation({
      kind: 'Switchover',
      trigger: 'Automatic',
      from: c.active,
      to,
      epoch: fencedAt,
      reason: why,
      now,
    }),
    'RollingBack',
    now,
    why,
  );
  return record(c, why, { ...base, currentOperation: op }, [
    eventOf('Warning', 'FenceRolledBack', 'Unfence', `${why}.`),
  ]);
};

/** 6. Between operations the record points at the primary (created the first time). */
const keepDnsOnPrimary: Guard = (c) => {
  if (!c.active || c.base.currentOperation) return undefined;
  const repair = judgeDns(c.input, c.active, c.base.epoch ?? 0).repair;
  if (!repair) return undefined;
  const why =
    repair.expected === undefined
      ? 'creating the DNS record'
      : repair.expected.toLowerCase() === repair.value.toLowerCase()
        ? `setting the DNS record's TTL to ${repair.ttl} s`
        : 'repairing the DNS record';
  return plan(c, why, {
    action: { kind: 'RepairDns', ...repair },
  });
};

/** 7. A former primary that is back becomes a standby again, if that discards nothing (or may). */
const reprotectFormerPrimary: Guard = (c) => {
  if (!c.active || c.verdict?.down || c.base.currentOperation) return undefined;
  const verdict = judgeReprotect({ ...c.input, status: c.base }, c.active);
  if (!verdict) return undefined;
  // A former primary whose name reaches the primary's own server is no former primary to rejoin.
  if (verdict.kind === 'Start' && !onOneServer(c.input, verdict.operation))
    return startOperation(c, verdict.operation);
  // Waiting does not hold the rest back.
  return undefined;
};

/**
 * 8. Failback, only when the policy asks for it: a zero-loss switchover back to spec.primary once
 * it is a caught-up standby, and no operation has ended for failbackAfterSeconds (the hold-down).
 */
const failBack: Guard = (c) => {
  const { spec, clusters, now } = c.input;
  const home = spec.primary;
  if (spec.reprotect.failback !== 'Automatic' || !c.active || c.active === home) return undefined;
  if (c.verdict?.down || c.base.currentOperation || c.base.drill) return undefined;
  if (!writable(clusters[c.active]) || !isProtected(clusters[home], c.active)) return undefined;
  const lastEnded = c.base.history?.[0]?.completedAt;
  const held = lastEnded ? now.getTime() - new Date(lastEnded).getTime() : Number.POSITIVE_INFINITY;
  if (held < seconds(spec.reprotect.failbackAfterSeconds)) return undefined;
  const judged = judgeStandby(
    spec,
    clusters[home] as ClusterFacts,
    primaryReadAt(spec, clusters[c.active], now),
  );
  if (judged.problem) return undefined;
  return startOperation(
    c,
    newOperation({
      kind: 'Switchover',
      trigger: 'Automatic',
      from: c.active,
      to: home,
      epoch: (c.base.epoch ?? 0) + 1,
      reason: `failback: ${home} (spec.primary) is a caught-up standby of ${c.active}, and no operation has ended for ${spec.reprotect.failbackAfterSeconds} s`,
      now,
    }),
  );
};

/**
 * 9. Drills, only while nothing else is in flight and the primary is up. (While it is down and no
 * failover starts, failOverIfDown lets an isolated drill step aside and clean up.)
 */
const runDrill: Guard = (c) => drillPlanOf(c);

/** The drill rules' plan, with the primary down or not. */
function drillPlanOf(c: Context): Plan | undefined {
  if (!c.active) return undefined;
  const drill = decideDrill({ ...c.input, status: c.base }, c.active, c.probeMs, c.verdict?.down === true);
  if (!drill) return undefined;
  if (drill.kind === 'Wait') return plan(c, drill.why, { requeueMs: drill.requeueMs, status: drill.status });
  if (drill.kind === 'Act')
    return plan(c, drill.why, { action: drill.action, status: drill.status, requeueMs: 0 });
  if (drill.operation) return startOperation({ ...c, base: drill.status }, drill.operation);
  return record(c, drill.why, drill.status, drill.events);
}

const guards: Guard[] = [
  knowThePrimary,
  stopDrill,
  continueOperation,
  // Safety, not automation: never two writers, paused or not (a person's failover during a pause
  // leaves a returning old primary to this rule alone).
  fenceStrayPrimary,
  handleRequest,
  failOverIfDown,
  // It only undoes an operation's own fence: held back, the primary would stay read-only.
  unfenceLeftPrimary,
  unlessPaused(keepDnsOnPrimary, (p) => p.why.startsWith("setting the DNS record's TTL")),
  unlessPaused(reprotectFormerPrimary),
  unlessPaused(failBack),
  runDrill,
];
