/**
 * What rejoining a former primary to the active primary would discard. The primary's timeline
 * history says where the local timeline ended in its history (the fork); WAL written here after
 * that point never reached it, and a rewind throws it away. Pure: the caller reads both sides.
 */

import type { AgentReport, Operation } from '../api/v1alpha1/index.ts';
import { compareLsn, lsnDiffBytes } from '../providers/database/lsn.ts';
import type { TimelineSwitch } from './local-postgres.ts';

export type Relation = 'Following' | 'Behind' | 'Diverged' | 'Unrelated';

export interface Comparison {
  relation: Relation;
  forkLsn?: string;
  divergedBytes: number;
  message: string;
}

export interface LocalHistory {
  timeline: number;
  /** Where the local WAL ends (the end of its last record). */
  walEnd: string;
}

export interface PrimaryHistory {
  timeline: number;
  walPosition: string;
  history: TimelineSwitch[];
}

export function compareHistories(local: LocalHistory, primary: PrimaryHistory): Comparison {
  const fork =
    local.timeline === primary.timeline
      ? primary.walPosition
      : primary.history.find((h) => h.timeline === local.timeline)?.switchLsn;
  if (!fork || local.timeline > primary.timeline)
    return {
      relation: 'Unrelated',
      divergedBytes: 0,
      message: `local timeline ${local.timeline} is not in the history of the primary (timeline ${primary.timeline}): only a re-clone can rejoin it`,
    };
  if (compareLsn(local.walEnd, fork) <= 0)
    return {
      relation: 'Behind',
      forkLsn: fork,
      divergedBytes: 0,
      message: `local WAL ends at ${local.walEnd} on timeline ${local.timeline}, at or before where the primary's history left it (${fork}): nothing is discarded`,
    };
  const bytes = Number(lsnDiffBytes(local.walEnd, fork));
  return {
    relation: 'Diverged',
    forkLsn: fork,
    divergedBytes: bytes,
    message: `local WAL on timeline ${local.timeline} runs ${bytes} bytes past the fork at ${fork} (to ${local.walEnd}): a rewind discards them`,
  };
}

/** What an operation (or a rejoin's task) records of an assessment: what the rejoin discards. */
export function discardedOf(d: NonNullable<AgentReport['divergence']> | undefined): Operation['discarded'] {
  if (!d) return undefined;
  return {
    bytes: d.relation === 'Diverged' ? d.divergedBytes : 0,
    ...(d.divergedTransactions !== undefined ? { transactions: d.divergedTransactions } : {}),
    ...(d.forkLsn ? { forkLsn: d.forkLsn } : {}),
    ...(d.localEndLsn ? { endLsn: d.localEndLsn } : {}),
  };
}

/**
 * Why a rejoin may not discard what the assessment made with the server stopped shows, if it may
 * not. A person's permission (allowDataLoss on a request) covers what was shown when it was given,
 * not what came after. A reprotect the operator started under reprotect.mode Automatic is bound by
 * neither: the policy allows any discard, and whatever commits between its assessment and the stop
 * (autovacuum, the fence's own records, clients cut off with the old primary) would otherwise hold
 * the rejoin back for good; what it discards is recorded instead.
 */
export function discardRefusal(
  op: Pick<Operation, 'trigger' | 'allowDataLoss' | 'discarded'>,
  mode: 'Automatic' | 'RequireRequest' | 'Manual',
  d: NonNullable<AgentReport['divergence']>,
): { reason: 'WouldDiscard' | 'DivergenceGrew'; message: string } | undefined {
  const discards = d.relation === 'Diverged' && d.divergedTransactions !== 0;
  if (!discards || (op.trigger === 'Automatic' && mode === 'Automatic')) return undefined;
  if (!op.allowDataLoss)
    return {
      reason: 'WouldDiscard',
      message: `${d.message}; the reprotect was not allowed to discard data: request it with allowDataLoss: true`,
    };
  const shown = op.discarded?.transactions;
  if (shown !== undefined && (d.divergedTransactions === undefined || d.divergedTransactions > shown))
    return {
      reason: 'DivergenceGrew',
      message: `${d.message}, more than the ${shown} transaction(s) the reprotect was allowed to discard: request it again`,
    };
  return undefined;
}
