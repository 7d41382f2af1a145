/**
 * summary: what status tells people, derived from the facts and the status about to be written
 * (after the step's result), so it never reports the state before the step. Pure.
 *
 * - PrimaryAvailable: True only on positive evidence (an observer reaches it and it takes writes).
 * - FailoverReady: evaluated at all times: could a standby take over right now, within the budget?
 * - FailoverBlocked: the primary is down and an automatic failover cannot start (why).
 * - Ready: everything a person waits for (`kubectl wait --for=condition=Ready`): the primary known
 *   and available, DNS on it, a standby ready, nothing in flight.
 * - Paused: spec.paused (maintenance): since when, why, and what the pause holds back.
 */

import { agentAlive } from '../../agent/liveness.ts';
import type { FailoverPolicyStatus, policyPhase } from '../../api/v1alpha1/index.ts';
import { type Condition, type ConditionInput, conditionOf } from '../../runtime/conditions.ts';
import { chooseStandby, inCooldown, primaryReadAt, standbysOf } from './candidates.ts';
import { type Plan, shownLag } from './decide.ts';
import { judgeDns } from './dns-check.ts';
import { drillsCondition, uncopyableStandbys } from './drill.ts';
import type { DecideInput } from './facts.ts';
import { primaryLastSeen, withLagAtLoss } from './loss.ts';
import { isTerminal } from './operation.ts';
import { isProtected } from './reprotect.ts';
import { protectionOf, splitBrainCondition } from './split-brain.ts';

type Phase = (typeof policyPhase.options)[number];

export interface Summary {
  phase: Phase;
  conditions: ConditionInput[];
}

export interface StepResult {
  /** The side effect of this reconcile failed (its attempt is recorded in the operation). */
  failure?: { reason: string; message: string };
  /** What a DNS repair did, if one ran. */
  dnsReady?: ConditionInput;
}

export function summarize(
  input: DecideInput,
  plan: Plan,
  next: FailoverPolicyStatus,
  result: StepResult,
): Summary {
  const { spec, now } = input;
  const conditions: ConditionInput[] = [
    pausedCondition(input, plan, next),
    primaryKnown(plan, next),
    primaryAvailable(input, plan, next),
    failoverBlocked(plan),
    failoverReady(input, plan, next),
  ];
  const dns =
    result.dnsReady ??
    plan.dnsReady ??
    (next.activePrimary ? judgeDns(input, next.activePrimary, next.epoch ?? 0).condition : undefined);
  if (dns) conditions.push(dns);
  conditions.push(redundant(input, plan, next));
  const splitBrain = splitBrainCondition({ ...input, status: next });
  if (splitBrain) conditions.push(splitBrain);
  const progressing = progressingCondition(next, result, now);
  if (progressing) conditions.push(progressing);
  if (spec.drills)
    conditions.push(drillsCondition(spec.drills, next.nextDrillTime, now, uncopyableStandbys(input)));
  return { phase: phaseOf(plan, next, conditions), conditions };
}

function pausedCondition(input: DecideInput, plan: Plan, next: FailoverPolicyStatus): ConditionInput {
  const { spec } = input;
  if (!spec.paused) return conditionOf('Paused', 'False', 'Active', 'not paused: automatic actions run');
  const why = spec.pauseReason ? ` (${spec.pauseReason})` : '';
  const held = plan.held?.length ? `; held back now: ${plan.held.join('; ')}` : '';
  const op = next.currentOperation;
  const finishing = op ? `; ${op.kind} ${op.id} in flight finishes` : '';
  // One reason while paused: what it holds back changes as facts are read (DNS only when due), and
  // a reason that flapped would announce each change. A held failover has its own condition.
  return conditionOf(
    'Paused',
    'True',
    'Maintenance',
    `paused since ${next.pausedSince ?? 'now'}${why}: no automatic failover, DNS repair, reprotect, failback or drill starts (a stray primary is still fenced); requests still run${finishing}${held}`.slice(
      0,
      1024,
    ),
  );
}

function primaryKnown(plan: Plan, next: FailoverPolicyStatus): ConditionInput {
  if (next.activePrimary)
    return conditionOf(
      'PrimaryKnown',
      'True',
      'Known',
      `${next.activePrimary} is the primary at epoch ${next.epoch ?? 0}`,
    );
  const u = plan.undiscovered;
  return conditionOf(
    'PrimaryKnown',
    'False',
    u?.reason ?? 'Waiting',
    u?.message ?? 'the primary is not known yet',
  );
}

function primaryAvailable(input: DecideInput, plan: Plan, next: FailoverPolicyStatus): ConditionInput {
  const active = next.activePrimary;
  const v = plan.verdict;
  if (!active || !v || active !== input.status.activePrimary)
    return conditionOf(
      'PrimaryAvailable',
      'Unknown',
      'PrimaryUnknown',
      'the primary is not known yet, or has just changed',
    );
  if (v.down) return conditionOf('PrimaryAvailable', 'False', 'QuorumLostPrimary', v.message);
  const facts = input.clusters[active];
  // Seen as a standby: a probe from before its promotion, not yet repeated.
  if (facts?.reachable && facts.role === 'Standby')
    return conditionOf(
      'PrimaryAvailable',
      'Unknown',
      'NotProbedSincePromotion',
      `${active} has not been probed since it was promoted`,
    );
  if (facts?.reachable && facts.role !== 'Primary')
    return conditionOf(
      'PrimaryAvailable',
      'False',
      'NotWritable',
      `${active} is reachable but in role ${facts.role}`,
    );
  if (v.upVotes === 0)
    return conditionOf(
      'PrimaryAvailable',
      'Unknown',
      v.fresh === 0 ? 'TooFewObservers' : v.refusedVotes > 0 ? 'ObserversRefused' : 'Unconfirmed',
      `${v.message}: no fresh observer reaches it, and no quorum has found it down`,
    );
  return conditionOf('PrimaryAvailable', 'True', 'Reachable', v.message);
}

/** Whether every standby replicates from the primary again: a second region to fail over to. */
function redundant(input: DecideInput, plan: Plan, next: FailoverPolicyStatus): ConditionInput {
  const active = next.activePrimary;
  if (!active) return conditionOf('Redundant', 'Unknown', 'PrimaryUnknown', 'the primary is not known yet');
  const op = next.currentOperation;
  if (op?.kind === 'Reprotect' && !isTerminal(op.step))
    return conditionOf(
      'Redundant',
      'False',
      'Reprotecting',
      `${op.from} is being rejoined to ${op.to} (${op.step})`,
    );
  if (plan.reprotectWaiting)
    return conditionOf('Redundant', 'False', plan.reprotectWaiting.reason, plan.reprotectWaiting.message);
  const lagging = standbysOf(input.spec, active).filter((n) => !isProtected(input.clusters[n], active));
  if (lagging.length)
    return conditionOf(
      'Redundant',
      'False',
      'StandbyNotReplicating',
      `${lagging.join(', ')} ${lagging.length === 1 ? 'is' : 'are'} not a replicating standby of ${active}`,
    );
  return conditionOf(
    'Redundant',
    'True',
    'AllStandbysReplicating',
    `every standby replicates from ${active}`,
  );
}

/** The policy's members as status shows them: role, readiness, lag. */
export function topologyOf(input: DecideInput, next: FailoverPolicyStatus): FailoverPolicyStatus['topology'] {
  const active = next.activePrimary;
  if (!active) return undefined;
  const members = [active, ...standbysOf(input.spec, active)];
  return members.map((name) => {
    const f = input.clusters[name];
    const agent = {
      ...(f?.agent ? { agent: agentAlive(f.agent, input.now) } : {}),
      protection: protectionOf({ ...input, status: next }, name).protection,
    };
    if (name === active) {
      const ready = !!f?.reachable && f.role === 'Primary';
      return {
        cluster: name,
        role: 'Primary',
        ready,
        ...agent,
        ...(ready
          ? {}
          : {
              message: !f?.reachable
                ? 'not reachable'
                : f.role === 'Standby'
                  ? 'not probed since its promotion'
                  : `in role ${f.role}`,
            }),
      };
    }
    const standby = isProtected(f, active);
    const shown = input.status.topology?.find((t) => t.cluster === name)?.lagSeconds;
    const lag =
      f?.lagSeconds !== undefined && Number.isFinite(f.lagSeconds)
        ? { lagSeconds: Math.ceil(shownLag(f.lagSeconds, shown, input.spec)) }
        : {};
    if (standby) return { cluster: name, role: 'Standby', ready: true, ...lag, ...agent };
    const role =
      f?.exists && f.reachable && f.role === 'Standby'
        ? 'Standby'
        : !f?.exists || (!f.reachable && !f.agent)
          ? 'Unknown'
          : 'FormerPrimary';
    const d = f?.agent?.divergence;
    const message = !f?.exists
      ? 'missing'
      : role === 'Standby'
        ? `in recovery, but ${d?.message ?? 'not replicating from the primary'}`
        : f.reachable
          ? `in role ${f.role}, not a standby of ${active}`
          : 'not reachable';
    return { cluster: name, role, ready: false, ...agent, message };
  });
}

function failoverBlocked(plan: Plan): ConditionInput {
  if (plan.blocked) return conditionOf('FailoverBlocked', 'True', plan.blocked.reason, plan.blocked.message);
  if (plan.holdingDown) return conditionOf('FailoverBlocked', 'False', 'HoldDown', plan.holdingDown);
  return conditionOf(
    'FailoverBlocked',
    'False',
    'PrimaryNotDown',
    'no quorum finds the primary down (FailoverReady says whether a failover could run)',
  );
}

/** Whether a standby could take over right now, automatically (or at a person's request in Manual mode). */
export function failoverReady(input: DecideInput, plan: Plan, next: FailoverPolicyStatus): ConditionInput {
  const { spec, now } = input;
  const active = next.activePrimary;
  if (!active) return conditionOf('FailoverReady', 'False', 'PrimaryUnknown', 'the primary is not known yet');
  if (next.currentOperation)
    return conditionOf(
      'FailoverReady',
      'False',
      'OperationInProgress',
      `${next.currentOperation.kind} ${next.currentOperation.id} is in progress`,
    );
  // Judged as failOver judges it: by the lag recorded at the loss where none is measured since,
  // and against the primary's last sign of life, as a loss right now would be (primaryReadAt).
  const lastSeen = plan.verdict?.down
    ? (primaryLastSeen(plan.verdict, next) ?? now)
    : primaryReadAt(spec, input.clusters[active], now);
  const candidate = chooseStandby(spec, withLagAtLoss(input.clusters, next), active, lastSeen);
  if (!candidate)
    return conditionOf('FailoverReady', 'False', 'NoHealthyStandby', 'the policy has no standby');
  if (candidate.problem)
    return conditionOf('FailoverReady', 'False', candidate.problem.reason, candidate.problem.message);
  const name = candidate.facts.name;
  if (spec.promotion.mode === 'Manual' || spec.paused)
    return conditionOf(
      'FailoverReady',
      'True',
      'StandbyReady',
      `${name} is replicating within the RPO budget; ${spec.paused ? 'the policy is paused' : 'promotion.mode is Manual'}: a person promotes it`,
    );
  const cooling = inCooldown(spec, next, now);
  if (cooling)
    return conditionOf(
      'FailoverReady',
      'False',
      'Cooldown',
      `no automatic failover for ${Math.ceil((spec.promotion.cooldownSeconds * 1000 - cooling.sinceMs) / 1000)} s (cool-down)`,
    );
  return conditionOf(
    'FailoverReady',
    'True',
    'StandbyReady',
    `${name} is replicating within the RPO budget: an automatic failover could start`,
  );
}

function progressingCondition(
  next: FailoverPolicyStatus,
  result: StepResult,
  now: Date,
): ConditionInput | undefined {
  const op = next.currentOperation;
  if (!op) return conditionOf('Progressing', 'False', 'Idle', 'no operation in progress');
  if (result.failure)
    return conditionOf('Progressing', 'False', result.failure.reason, op.lastError ?? result.failure.message);
  // Waiting out a failed attempt's backoff: Progressing stays as that failure left it (False).
  if (op.retryAfter && new Date(op.retryAfter) > now) return undefined;
  const note = op.message ? `: ${op.message}` : '';
  return conditionOf('Progressing', 'True', op.step, `${op.kind} ${op.from} → ${op.to}: ${op.step}${note}`);
}

function phaseOf(plan: Plan, next: FailoverPolicyStatus, conditions: ConditionInput[]): Phase {
  if (!next.activePrimary) return 'Pending';
  // An operation at Completed or Aborted is over: it is only waiting to be filed.
  const op =
    next.currentOperation && !isTerminal(next.currentOperation.step) ? next.currentOperation : undefined;
  if (op) {
    if (op.kind === 'Fence') return 'Degraded';
    if (op.kind === 'Reprotect') return 'Reprotecting';
    return op.trigger === 'Drill' ? 'Drilling' : op.kind === 'Switchover' ? 'SwitchingOver' : 'FailingOver';
  }
  // A failover the primary needs and cannot have outranks a drill waiting on it.
  if (plan.blocked) return 'Blocked';
  if (next.drill) return 'Drilling';
  const isTrue = (type: string) => conditions.find((c) => c.type === type)?.status === 'True';
  const healthy = isTrue('PrimaryAvailable') && isTrue('FailoverReady');
  // Paused replaces only Healthy: a lost or degraded primary stays in sight.
  return !healthy ? 'Degraded' : next.pausedSince ? 'Paused' : 'Healthy';
}

/** The conditions Ready sums up, in the order their problems are reported. */
const READY_NEEDS = [
  'SpecValid',
  'ClustersResolved',
  'PrimaryKnown',
  'PrimaryAvailable',
  'DnsReady',
  'FailoverReady',
];

/** Ready, from the merged conditions (DnsReady persists between checks) and the operation. */
export function readyCondition(conditions: Condition[], next: FailoverPolicyStatus): ConditionInput {
  for (const type of READY_NEEDS) {
    const c = conditions.find((x) => x.type === type);
    if (!c) return conditionOf('Ready', 'Unknown', `${type}Unknown`, `${type} has not been evaluated yet`);
    if (c.status !== 'True')
      return conditionOf(
        'Ready',
        'False',
        `${type}${c.status === 'False' ? 'False' : 'Unknown'}`,
        `${type}: ${c.message}`,
      );
  }
  const op = next.currentOperation;
  if (op) return conditionOf('Ready', 'False', 'OperationInProgress', `${op.kind} ${op.id} is at ${op.step}`);
  return conditionOf(
    'Ready',
    'True',
    'Ready',
    `${next.activePrimary} is the primary, DNS points at it, and a standby is ready to take over`,
  );
}
