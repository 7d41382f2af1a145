/**
 * What a canary writer's runs say about one move of the primary, from the client's side: when
 * writes stopped on the old primary, when they resumed on the new one, and how many acknowledged
 * writes the new primary lacks. Pure: the runs in, the figures out.
 */
import type { CanarySnapshot } from './port.ts';

export interface SwitchMeasure {
  /** The last write acknowledged on `from` before the move. */
  writesStoppedAt?: string;
  /** The first write acknowledged on `to` after it. */
  writesResumedAt?: string;
  /** Resumed − stopped, seconds with 3 decimals: how long a client could not write. */
  rtoSeconds?: number;
  /** Acknowledged writes on `from` missing on `to`, counted when the first write landed there. */
  rpoTransactions?: number;
  /** Writes `from` acknowledged in the run before the move: what the RPO is out of (0: none). */
  acknowledged: number;
}

/**
 * Measures the move from cluster `from` to `to`: the first run on `to` that follows a run on
 * `from`, and the last run on `from` before it. The RPO is that run's `missing`, and only when
 * the two runs are adjacent: with a run on a third server between them, `missing` was counted
 * there, not on `to`. Fields that cannot be measured are left out.
 */
export function measureSwitch(snapshot: CanarySnapshot, from: string, to: string): SwitchMeasure {
  const runs = snapshot.runs;
  const firstFrom = runs.findIndex((r) => r.cluster === from);
  if (firstFrom < 0) return { acknowledged: 0 };
  const resumed = runs.findIndex((r, i) => i > firstFrom && r.cluster === to);
  const stopped = runs.findLastIndex((r, i) => r.cluster === from && (resumed < 0 || i < resumed));
  const fromRun = runs[stopped];
  if (!fromRun) return { acknowledged: 0 };
  const toRun = resumed < 0 ? undefined : runs[resumed];
  const measure: SwitchMeasure = { writesStoppedAt: fromRun.lastAt, acknowledged: fromRun.acknowledged };
  if (!toRun) return measure;
  measure.writesResumedAt = toRun.firstAt;
  const gapMs = Date.parse(toRun.firstAt) - Date.parse(fromRun.lastAt);
  if (Number.isFinite(gapMs)) measure.rtoSeconds = Math.round(gapMs) / 1000;
  if (resumed === stopped + 1 && fromRun.missing !== undefined) measure.rpoTransactions = fromRun.missing;
  return measure;
}
