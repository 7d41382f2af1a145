import { describe, expect, it } from 'vitest';
import { changedConditions, setCondition } from './conditions.ts';

const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-01T00:05:00Z');

describe('setCondition', () => {
  it('moves the transition time only when the status changes', () => {
    const a = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'Probing', message: 'x' },
      1,
      t0,
    );
    const b = setCondition(
      a,
      { type: 'Ready', status: 'False', reason: 'StillProbing', message: 'y' },
      2,
      t1,
    );
    expect(b[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    expect(b[0]?.observedGeneration).toBe(2);
    const c = setCondition(b, { type: 'Ready', status: 'True', reason: 'Ok', message: 'z' }, 2, t1);
    expect(c[0]?.lastTransitionTime).toBe('2026-01-01T00:05:00Z');
  });

  it('keeps one condition per type, sorted', () => {
    let list = setCondition(undefined, { type: 'B', status: 'True', reason: 'R', message: '' }, 1, t0);
    list = setCondition(list, { type: 'A', status: 'True', reason: 'R', message: '' }, 1, t0);
    list = setCondition(list, { type: 'B', status: 'False', reason: 'R', message: '' }, 1, t0);
    expect(list.map((c) => `${c.type}=${c.status}`)).toEqual(['A=True', 'B=False']);
  });

  it('reports which conditions changed', () => {
    const a = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Ok', message: '' }, 1, t0);
    const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'Down', message: '' }, 1, t1);
    expect(changedConditions(a, a)).toEqual([]);
    expect(changedConditions(a, b).map((c) => c.reason)).toEqual(['Down']);
  });
});
