import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyedAdmission } from './admission.ts';

describe('KeyedAdmission', () => {
  it('admits at most max per key, in order of asking, and other keys apart', async () => {
    const gate = new KeyedAdmission(2);
    const order: string[] = [];
    const a1 = await gate.enter('a');
    const a2 = await gate.enter('a');
    const b1 = await gate.enter('b');
    expect(gate.load('a')).toEqual({ running: 2, waiting: 0 });
    const a3 = gate.enter('a').then((leave) => {
      order.push('a3');
      return leave;
    });
    const a4 = gate.enter('a').then((leave) => {
      order.push('a4');
      return leave;
    });
    await Promise.resolve();
    expect(order).toEqual([]);
    expect(gate.load('a')).toEqual({ running: 2, waiting: 2 });
    a1();
    a1(); // a second leave gives nothing back
    expect((await a3) && order).toEqual(['a3']);
    expect(gate.load('a')).toEqual({ running: 2, waiting: 1 });
    a2();
    (await a4)();
    (await a3)();
    b1();
    expect(order).toEqual(['a3', 'a4']);
    expect(gate.load('a')).toEqual({ running: 0, waiting: 0 });
    expect(gate.load('b')).toEqual({ running: 0, waiting: 0 });
  });

  it('never runs more than max at once, and every asker runs (any arrivals and hold times)', async () => {
    let crowded = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.record({ key: fc.constantFrom('x', 'y'), ticks: fc.integer({ min: 0, max: 3 }) }), {
          minLength: 1,
          maxLength: 12,
        }),
        async (max, jobs) => {
          const gate = new KeyedAdmission(max);
          const running = new Map<string, number>();
          let most = 0;
          let ran = 0;
          await Promise.all(
            jobs.map(async ({ key, ticks }) => {
              const leave = await gate.enter(key);
              const now = (running.get(key) ?? 0) + 1;
              running.set(key, now);
              most = Math.max(most, now);
              for (let i = 0; i < ticks; i++) await Promise.resolve();
              running.set(key, (running.get(key) ?? 1) - 1);
              ran++;
              leave();
            }),
          );
          expect(most).toBeLessThanOrEqual(max);
          expect(ran).toBe(jobs.length);
          if (jobs.filter((j) => j.key === 'x').length > max) crowded++;
        },
      ),
      { numRuns: 200 },
    );
    // The property met its case: more askers for one key than places.
    expect(crowded).toBeGreaterThan(20);
  });
});
