import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Condition, changedConditions, setCondition } from './conditions.ts';
import { byCodeUnits } from './order.ts';

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

  it('gives the list a sort of the others and the new one gives, in order or not, duplicates and all', () => {
    const type = fc.constantFrom(
      'Ready',
      'ready',
      'A',
      'b',
      'B',
      'DnsReady',
      'SpecValid',
      'Zeta',
      'é',
      'e\u0301',
    );
    const condition = fc.record({
      type,
      status: fc.constantFrom('True' as const, 'False' as const),
      reason: fc.string(),
      message: fc.string(),
    });
    fc.assert(
      fc.property(fc.array(condition, { maxLength: 8 }), condition, fc.boolean(), (raw, input, sorted) => {
        const list: Condition[] = raw.map((c) => ({ ...c, lastTransitionTime: '2025-12-31T00:00:00Z' }));
        if (sorted) list.sort((a, b) => byCodeUnits(a.type, b.type));
        const next = setCondition(list, input, 3, t0);
        const set = next.find((c) => c.type === input.type) as Condition;
        const expected = [...list.filter((c) => c.type !== input.type), set].sort((a, b) =>
          byCodeUnits(a.type, b.type),
        );
        // The very objects, in the same order.
        expect(next).toHaveLength(expected.length);
        expect(next.every((c, i) => c === expected[i])).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('reports which conditions changed', () => {
    const a = setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Ok', message: '' }, 1, t0);
    const b = setCondition(a, { type: 'Ready', status: 'False', reason: 'Down', message: '' }, 1, t1);
    expect(changedConditions(a, a)).toEqual([]);
    expect(changedConditions(a, b).map((c) => c.reason)).toEqual(['Down']);
  });
});
