/**
 * What rejoining a former primary to the active primary would discard. The primary's timeline
 * history says where the local timeline ended in its history (the fork); WAL written here after
 * that point never reached it, and a rewind throws it away. Pure: the caller reads both sides.
 */
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
