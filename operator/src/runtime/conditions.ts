/**
 * Conditions as Kubernetes defines them (metav1.Condition): one per type, with the generation
 * they describe, and a transition time that only moves when the status actually changes.
 */
import type { Condition } from '../api/v1alpha1/common.ts';
import { byCodeUnits } from './order.ts';

export type { Condition };

export interface ConditionInput {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

/** A condition to set, its message cut to a length people read. */
export const conditionOf = (
  type: string,
  status: ConditionInput['status'],
  reason: string,
  message: string,
): ConditionInput => ({ type, status, reason, message: message.slice(0, 1000) });

/** Returns a new list with `input` set; `lastTransitionTime` is kept unless the status changed. */
export function setCondition(
  existing: Condition[] | undefined,
  input: ConditionInput,
  generation: number | undefined,
  now: Date,
): Condition[] {
  const list = existing ?? [];
  const previous = list.find((c) => c.type === input.type);
  const next: Condition = {
    ...input,
    message: input.message.slice(0, 32768),
    observedGeneration: generation,
    lastTransitionTime:
      previous && previous.status === input.status
        ? previous.lastTransitionTime
        : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  return withCondition(list, next);
}

const byType = (a: Condition, b: Condition) => byCodeUnits(a.type, b.type);

/**
 * `list` without `next`'s type, and `next`, sorted by type (a stable sort). Lists are kept sorted,
 * so this is usually an insertion, without sorting or copying twice (reconciles set a dozen
 * conditions each); a list out of order (a hand-edited status) is sorted as a whole.
 */
function withCondition(list: readonly Condition[], next: Condition): Condition[] {
  const result: Condition[] = [];
  let last: Condition | undefined;
  let placed = false;
  for (let i = 0; i < list.length; i++) {
    const c = list[i] as Condition;
    if (c.type === next.type) continue;
    if (last && byType(last, c) > 0) return [...list.filter((x) => x.type !== next.type), next].sort(byType);
    // After every condition that sorts before it or with it, as a stable sort of [...rest, next] puts it.
    if (!placed && byType(c, next) > 0) {
      result.push(next);
      placed = true;
    }
    result.push(c);
    last = c;
  }
  if (!placed) result.push(next);
  return result;
}

export function findCondition(list: Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/**
 * The conditions whose status or reason differ between two lists (or that are new): what is news.
 * A new message alone is not: a message that carries a figure would otherwise be news every probe.
 */
export function changedConditions(before: Condition[] | undefined, after: Condition[]): Condition[] {
  return after.filter((c) => {
    const b = findCondition(before, c.type);
    return !b || b.status !== c.status || b.reason !== c.reason;
  });
}
