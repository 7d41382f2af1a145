import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.ts';

describe('backoffDelay', () => {
  const policy = { baseMs: 100, maxMs: 10_000 };

  it('doubles per attempt, between half and all of the step', () => {
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 0)).toBe(400);
    expect(backoffDelay(3, policy, () => 1)).toBe(800);
  });

  it('never exceeds the cap', () => {
    for (let attempt = 0; attempt < 64; attempt++) {
      expect(backoffDelay(attempt, policy, Math.random)).toBeLessThanOrEqual(10_000);
    }
  });
});
