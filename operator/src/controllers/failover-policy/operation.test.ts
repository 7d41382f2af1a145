import { describe, expect, it } from 'vitest';
import type { Operation } from '../../api/v1alpha1/index.ts';
import { advance, failedAttempt, STEP_RETRY } from './operation.ts';

const NOW = new Date('2026-03-02T10:00:00Z');
const op: Operation = {
  id: 'failover-e1-x',
  kind: 'Failover',
  trigger: 'Automatic',
  from: 'a',
  to: 'b',
  epoch: 1,
  step: 'RepointingDns',
  startedAt: NOW.toISOString(),
  stepStartedAt: NOW.toISOString(),
};

describe('a failed attempt of a step', () => {
  it('is counted, explained, and not retried before a backoff that doubles up to a minute', () => {
    const first = failedAttempt(op, 'REFUSED', NOW, () => 1);
    expect(first).toMatchObject({
      attempts: 1,
      lastError: 'REFUSED',
      retryAfter: '2026-03-02T10:00:01.000Z',
    });
    const third = failedAttempt(
      failedAttempt(first, 'REFUSED', NOW, () => 1),
      'REFUSED',
      NOW,
      () => 1,
    );
    expect(third).toMatchObject({ attempts: 3, retryAfter: '2026-03-02T10:00:04.000Z' });
    let many = third;
    for (let i = 0; i < 20; i++) many = failedAttempt(many, 'REFUSED', NOW, () => 1);
    expect(new Date(many.retryAfter ?? 0).getTime() - NOW.getTime()).toBe(STEP_RETRY.maxMs);
  });

  it('is forgotten once the step is done', () => {
    const next = advance(failedAttempt(op, 'REFUSED', NOW), NOW);
    expect(next.step).toBe('VerifyingDns');
    expect(next).not.toHaveProperty('attempts');
    expect(next).not.toHaveProperty('lastError');
    expect(next).not.toHaveProperty('retryAfter');
  });
});
