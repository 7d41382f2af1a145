import { describe, expect, it } from 'vitest';
import type { Operation } from '../../api/v1alpha1/index.ts';
import { advance, failedAttempt, finish, nextStep, STEP_RETRY, withStep } from './operation.ts';

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
    const next = advance(
      failedAttempt(op, 'REFUSED', NOW, () => 0.5),
      NOW,
    );
    expect(next.step).toBe('VerifyingDns');
    expect(next).not.toHaveProperty('attempts');
    expect(next).not.toHaveProperty('lastError');
    expect(next).not.toHaveProperty('retryAfter');
  });
});

describe('the steps of each kind of operation', () => {
  const walk = (kind: Operation['kind']) => {
    const seen: string[] = [];
    let o: Operation = { ...op, kind, step: 'Detected' };
    while (o.step !== 'Completed') {
      seen.push(o.step);
      o = advance(o, NOW);
    }
    return seen;
  };
  it('runs a failover, a switchover and a fence through their own steps', () => {
    expect(walk('Failover')).toEqual(['Detected', 'Fencing', 'Promoting', 'RepointingDns', 'VerifyingDns']);
    expect(walk('Switchover')).toEqual([
      'Detected',
      'Fencing',
      'CatchingUp',
      'Promoting',
      'RepointingDns',
      'VerifyingDns',
    ]);
    expect(walk('Fence')).toEqual(['Detected', 'Fencing']);
    expect(nextStep({ ...op, step: 'RollingBack' })).toBe('Aborted');
  });

  it('keeps the reason it started for when it moves back or ends: the note goes to message', () => {
    const planned = {
      ...op,
      kind: 'Switchover' as const,
      reason: 'kernel upgrade',
      step: 'Promoting' as const,
    };
    const back = withStep(planned, 'Fencing', NOW, 'a accepts writes again');
    expect(back).toMatchObject({
      reason: 'kernel upgrade',
      message: 'a accepts writes again',
      step: 'Fencing',
    });
    const ended = withStep(back, 'Aborted', NOW, 'lost the primary');
    const filed = finish({ activePrimary: 'a', epoch: 1, currentOperation: ended }, ended, NOW).history?.[0];
    expect(filed).toMatchObject({ reason: 'kernel upgrade', message: 'lost the primary', result: 'Aborted' });
  });
});
