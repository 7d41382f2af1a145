import { describe, expect, it } from 'vitest';
import type { Operation } from '../../api/v1alpha1/index.ts';
import {
  advance,
  failedAttempt,
  fencingModeFor,
  finish,
  newOperation,
  nextStep,
  reportOf,
  STEP_RETRY,
  withStep,
} from './operation.ts';

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

  it("waits as long as a throttling provider asked (Retry-After), up to the backoff's longest wait", () => {
    const wait = (o: Operation) => new Date(o.retryAfter ?? 0).getTime() - NOW.getTime();
    expect(wait(failedAttempt(op, 'Throttled', NOW, () => 1, 7_000))).toBe(7_000);
    // Never sooner than the backoff, nor longer than a minute for a hint that is wrong.
    expect(wait(failedAttempt(op, 'Throttled', NOW, () => 1, 100))).toBe(1_000);
    expect(wait(failedAttempt(op, 'Throttled', NOW, () => 1, 3_600_000))).toBe(STEP_RETRY.maxMs);
    expect(wait(failedAttempt(op, 'Throttled', NOW, () => 1, Number.NaN))).toBe(1_000);
  });

  it('is forgotten once the step is done, but why a switchover rolled back ends in its report', () => {
    const rolling = withStep(
      { ...op, kind: 'Switchover' },
      'RollingBack',
      NOW,
      'could not fence a read-only',
    );
    const aborted = advance(
      failedAttempt(rolling, 'x', NOW, () => 0.5),
      NOW,
    );
    expect(aborted).toMatchObject({ step: 'Aborted', message: 'could not fence a read-only' });
    expect(reportOf(aborted, NOW).message).toBe('could not fence a read-only');
  });

  it('leaves no error of a step behind once it is done', () => {
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
  const walk = (kind: Operation['kind'], extra: Partial<Operation> = {}, nativeSwitchover = false) => {
    const seen: string[] = [];
    let o: Operation = { ...op, kind, step: 'Detected', ...extra };
    while (o.step !== 'Completed') {
      seen.push(o.step);
      o = advance(o, NOW, {}, { nativeSwitchover });
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

  it('runs a switchover the provider does itself from Fencing (a mark) straight to Promoting', () => {
    const native = ['Detected', 'Fencing', 'Promoting', 'RepointingDns', 'VerifyingDns'];
    expect(walk('Switchover', {}, true)).toEqual(native);
    // Not even an agent's demotion: the provider demotes the old writer.
    expect(walk('Switchover', { demoted: true }, true)).toEqual(native);
    expect(walk('Switchover', { demoted: true })).toEqual([
      'Detected',
      'Fencing',
      'CatchingUp',
      'Demoting',
      'Promoting',
      'RepointingDns',
      'VerifyingDns',
    ]);
    // Only a switchover: a failover keeps its steps whatever act found.
    expect(walk('Failover', {}, true)).toEqual(walk('Failover'));
    // Sent back to Fencing from Promoting, it returns to Promoting.
    expect(nextStep({ ...op, kind: 'Switchover', step: 'Fencing' }, { nativeSwitchover: true })).toBe(
      'Promoting',
    );
  });

  it('fences a native switchover EpochOnly, any other switchover ReadOnly, the rest in the policy mode', () => {
    const planned = { ...op, kind: 'Switchover' as const };
    expect(fencingModeFor(planned, 'Shutdown', { nativeSwitchover: true })).toBe('EpochOnly');
    expect(fencingModeFor(planned, 'Shutdown')).toBe('ReadOnly');
    expect(fencingModeFor(op, 'Shutdown', { nativeSwitchover: true })).toBe('Shutdown');
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

describe('step timings', () => {
  it('counts the time spent in each step (a step entered again adds up) and files it in the report', () => {
    const t = (s: number) => new Date(Date.parse('2026-03-02T10:00:00Z') + s * 1000);
    let o = newOperation({
      kind: 'Switchover',
      trigger: 'Manual',
      from: 'a',
      to: 'b',
      epoch: 5,
      reason: 'r',
      now: t(0),
    });
    o = withStep(o, 'Fencing', t(1));
    o = withStep(o, 'CatchingUp', t(1.5));
    o = withStep(o, 'Fencing', t(2.25));
    o = advance(o, t(2.5));
    o = withStep(o, 'Promoting', t(3));
    o = withStep(o, 'Completed', t(4.2));
    expect(o.stepSeconds).toEqual({ fencing: 0.75, catchingUp: 1.25, promoting: 1.2 });
    expect(reportOf(o, t(4.2)).stepSeconds).toEqual({ fencing: 0.75, catchingUp: 1.25, promoting: 1.2 });
  });
});
