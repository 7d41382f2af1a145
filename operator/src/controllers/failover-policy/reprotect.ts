/**
 * Reprotect: a former primary made a standby of the active primary again, so the policy has a
 * second region to fail over to. Pure judgement of who needs it and whether it may start by
 * itself: never when it would discard committed transactions, unless the policy says Automatic
 * (then what it discards is recorded) — otherwise a person's request (kind: Reprotect) starts it.
 *
 * A self-managed former primary is rejoined by its agent (operator/src/agent), which compares it
 * with the primary first and reports what a rejoin would discard; a managed one by its provider.
 */

import { discardedOf } from '../../agent/divergence.ts';
import { agentAlive } from '../../agent/liveness.ts';
import type { AgentReport, Operation } from '../../api/v1alpha1/index.ts';
import { standbysOf } from './candidates.ts';
import type { ClusterFacts, DecideInput } from './facts.ts';
import { healthyStandby, policyClusters, probedSince, writable } from './facts.ts';
import { sameServer } from './one-server.ts';
import { newOperation } from './operation.ts';

export type ReprotectWaitReason =
  | 'NoAgent'
  | 'AgentRefuses'
  | 'Assessing'
  | 'ReprotectNeedsRequest'
  | 'ReprotectFailed'
  | 'FormerPrimaryUnreachable'
  | 'StrayWriter';

export type ReprotectVerdict =
  | { kind: 'Start'; operation: Operation }
  | { kind: 'Wait'; cluster: string; reason: ReprotectWaitReason; message: string };

/** How long after a reprotect that did not finish the next automatic one may start. */
export const REPROTECT_RETRY_MS = 5 * 60_000;
/** An assessment older than this says nothing about the database now. */
const ASSESSMENT_FRESH_MS = 60_000;

type Divergence = NonNullable<AgentReport['divergence']>;

/** Whether rejoining discards committed data (or might: a count that could not be made). */
export function discardsData(d: Divergence): boolean {
  return d.relation === 'Unrelated' || (d.relation === 'Diverged' && d.divergedTransactions !== 0);
}

export function describeDivergence(d: Divergence): string {
  if (d.relation === 'Unrelated')
    return d.message ?? 'its history is not the primary’s: only a re-clone rejoins it';
  if (d.relation !== 'Diverged') return 'nothing would be discarded';
  const txs = d.divergedTransactions === undefined ? 'an unknown number of' : String(d.divergedTransactions);
  return `its WAL runs ${d.divergedBytes} bytes past the fork at ${d.forkLsn ?? '?'} (to ${d.localEndLsn ?? '?'} on timeline ${d.localTimeline ?? '?'}): ${txs} committed transaction(s) there would be discarded`;
}

/**
 * Needs nothing: a standby that replicates. An agent's assessment can say otherwise: a standby
 * whose WAL went past where the primary's history left it (Diverged, Unrelated) is stuck however
 * healthy it looks, while one merely Behind catches up by itself.
 */
export function isProtected(f: ClusterFacts | undefined, active: string): boolean {
  if (!healthyStandby(f)) return false;
  const d = f?.agent?.divergence;
  return !d || d.primary !== active || d.relation === 'Following' || d.relation === 'Behind';
}

/**
 * Why `f` cannot be rejoined now, or the assessment that says it may be. Shared by the automatic
 * path and a person's request.
 */
export function readiness(
  f: ClusterFacts,
  active: string,
  now: Date,
  assessedAfter?: Date,
): { ok: true; divergence?: Divergence } | { ok: false; reason: ReprotectWaitReason; message: string } {
  if (f.reprotectsItself) {
    if (!f.reachable)
      return {
        ok: false,
        reason: 'FormerPrimaryUnreachable',
        message: `${f.name} is not reachable: reprotect starts when it returns`,
      };
    return { ok: true };
  }
  const agent = f.agent;
  if (!agentAlive(agent, now))
    return {
      ok: false,
      reason: 'NoAgent',
      message: `${f.name} is not a replicating standby and no database agent reports for it: run the agent beside it (docs/agent.md), or rebuild it as a standby by hand`,
    };
  if (agent?.problem)
    return {
      ok: false,
      reason: 'AgentRefuses',
      message: `the agent beside ${f.name} refuses: ${agent.problem.message}`,
    };
  const d = agent?.divergence;
  if (!d || d.primary !== active || now.getTime() - new Date(d.assessedAt).getTime() > ASSESSMENT_FRESH_MS)
    return {
      ok: false,
      reason: 'Assessing',
      message: `waiting for the agent beside ${f.name} to compare it with ${active}`,
    };
  // A look from before the primary last moved (a drill's or a switchover's way back) says nothing
  // of the server since: it was a primary meanwhile, or is restarting as a standby now.
  if (assessedAfter && new Date(d.assessedAt) < assessedAfter)
    return {
      ok: false,
      reason: 'Assessing',
      message: `waiting for the agent beside ${f.name} to compare it with ${active} again: the primary moved since its last look`,
    };
  return { ok: true, divergence: d };
}

/** When the last failover or switchover (a drill's legs too) that moved the primary ended. */
function primaryMovedAt(status: DecideInput['status']): Date | undefined {
  const last = status.history?.find(
    (h) => (h.kind === 'Failover' || h.kind === 'Switchover') && h.result === 'Succeeded',
  );
  return last ? new Date(last.completedAt) : undefined;
}

/**
 * Whether `f` takes writes beside the primary so that a reprotect of `rejoining` must wait for it
 * to be fenced (guard 3). Not the former primary itself when its agent rejoins it (the rejoin
 * stops it first; a provider's own reprotect leaves the old instance running), nor, under
 * EpochOnly, one marked with the epoch (all that mode does: guard 3 leaves it be).
 */
export function strayBesideReprotect(
  spec: DecideInput['spec'],
  f: ClusterFacts | undefined,
  rejoining: string,
  epoch: number,
): boolean {
  if (!writable(f)) return false;
  if (f?.name === rejoining && !f.reprotectsItself) return false;
  return !(spec.promotion.fencing === 'EpochOnly' && (f?.fencedEpoch ?? -1) >= epoch);
}

/** The first former primary that needs reprotecting: start it, or say why it waits. */
export function judgeReprotect(input: DecideInput, active: string): ReprotectVerdict | undefined {
  const { spec, status, clusters, now } = input;
  const mode = spec.reprotect.mode;
  // One waiting former primary holds no other back: the first that may start does.
  let waiting: ReprotectVerdict | undefined;
  const wait = (v: Extract<ReprotectVerdict, { kind: 'Wait' }>) => {
    waiting ??= v;
  };
  // Starting alone needs a look taken since the primary last moved; a request takes any fresh look.
  const moved = primaryMovedAt(status);
  for (const name of standbysOf(spec, active)) {
    const f = clusters[name];
    if (!f?.exists || isProtected(f, active)) continue;
    // A standby that replicates but never had an agent is fine; so is one not probed yet.
    if (f.unprobed) continue;
    // Only a probe taken after its last reprotect ended: one from before (taken mid-rejoin, the
    // server down) with the agent's look from before the rejoin would start another at once.
    const previous = status.history?.find((r) => r.kind === 'Reprotect' && r.from === name);
    if (!probedSince(f, previous?.completedAt)) continue;
    const ready = readiness(f, active, now, moved);
    if (!ready.ok) {
      // An unreachable standby without agent is the failover rules' business (FailoverReady says so).
      if (ready.reason === 'NoAgent' && !f.reachable) continue;
      wait({ kind: 'Wait', cluster: name, ...ready });
      continue;
    }
    // Only a rejoin that failed on its own waits before the next (a stand-down for a lost primary does not).
    const last = status.history?.find((r) => r.kind === 'Reprotect' && r.from === name);
    if (
      last &&
      last.result !== 'Succeeded' &&
      /^(could not rejoin|.* did not catch up)/.test(last.message ?? '') &&
      now.getTime() - new Date(last.completedAt).getTime() < REPROTECT_RETRY_MS
    ) {
      wait({
        kind: 'Wait',
        cluster: name,
        reason: 'ReprotectFailed',
        message: `the last reprotect of ${name} did not finish (${last.message ?? last.result}); the next starts ${REPROTECT_RETRY_MS / 60_000} min after it, or on a request`,
      });
      continue;
    }
    // Never beside two writers: a database taking writes beside the primary is fenced first
    // (guard 3). Started anyway, it would stand down at once, and start again at every probe
    // while that fence is refused.
    const epoch = status.epoch ?? 0;
    const writers = policyClusters(spec).filter(
      (n) =>
        n !== active &&
        strayBesideReprotect(spec, clusters[n], name, epoch) &&
        // The primary's own server under another name is no writer beside it (one-server.ts).
        !sameServer(clusters[active], clusters[n]),
    );
    if (writers.length) {
      wait({
        kind: 'Wait',
        cluster: name,
        reason: 'StrayWriter',
        message: `${writers.join(', ')} ${writers.length === 1 ? 'takes' : 'take'} writes beside ${active}: fenced first, then ${name} rejoins`,
      });
      continue;
    }
    const discards = ready.divergence ? discardsData(ready.divergence) : false;
    if (mode === 'Manual' || (discards && mode !== 'Automatic')) {
      const why = ready.divergence ? describeDivergence(ready.divergence) : 'nothing would be discarded';
      wait({
        kind: 'Wait',
        cluster: name,
        reason: 'ReprotectNeedsRequest',
        message: `${name} can rejoin as a standby of ${active}, but ${why}; spec.reprotect.mode is ${mode}: request it (kubectl failover reprotect <policy> ${name}${discards ? ' --allow-data-loss' : ''})`,
      });
      continue;
    }
    const discarded = discardedOf(ready.divergence);
    return {
      kind: 'Start',
      operation: newOperation({
        kind: 'Reprotect',
        trigger: 'Automatic',
        from: name,
        to: active,
        epoch: status.epoch ?? 0,
        reason: `${name} is back and not a standby of ${active}; ${ready.divergence ? describeDivergence(ready.divergence) : 'its provider makes a new replica'}`,
        now,
        extra: {
          ...(discards ? { allowDataLoss: true } : {}),
          ...(discarded ? { discarded } : {}),
        },
      }),
    };
  }
  return waiting;
}
