import { describe, expect, it } from 'vitest';
import type { Operation } from '../../api/v1alpha1/index.ts';
import { ThrottledError } from '../../providers/dns/digitalocean.ts';
import { failure } from './act.ts';
import { ago, inProgress, NOW } from './decide.fixtures.ts';
import { reportOf } from './operation.ts';
import {
  CATCH_UP_TIMEOUT_MS,
  DNS_VERIFY_TIMEOUT_MS,
  SWITCHOVER_FENCE_ATTEMPTS,
  transition,
} from './transition.ts';

const half = () => 0.5;
const switchover = (step: Operation['step'], over: Partial<Operation> = {}) =>
  inProgress(step, {
    id: 'switchover-e5-x',
    kind: 'Switchover',
    trigger: 'Manual',
    reason: 'planned',
    ...over,
  });

describe('transition: a step that is done', () => {
  it('moves to the next step with what it learned, forgetting earlier failed attempts', () => {
    const op = inProgress('Fencing', { attempts: 2, lastError: 'x', retryAfter: NOW.toISOString() });
    const t = transition(
      op,
      { kind: 'Done', detail: 'read-only', learned: { fenceDetail: 'read-only' } },
      NOW,
      half,
    );
    expect(t.operation).toMatchObject({ step: 'Promoting', fenceDetail: 'read-only' });
    expect(t.operation).not.toHaveProperty('attempts');
    expect(t.events[0]).toMatchObject({ reason: 'PrimaryFenced' });
    expect(t.requeueMs).toBe(0);
  });

  it('settles the new primary and epoch when the promotion is done; only a failover starts the cool-down', () => {
    const failover = transition(inProgress('Promoting'), { kind: 'Done' }, NOW, half);
    expect(failover.settled).toEqual({ activePrimary: 'b', epoch: 5, lastFailoverTime: NOW.toISOString() });
    const planned = transition(switchover('Promoting'), { kind: 'Done' }, NOW, half);
    expect(planned.settled).toEqual({ activePrimary: 'b', epoch: 5 });
    const drill = transition(switchover('Promoting', { trigger: 'Drill' }), { kind: 'Done' }, NOW, half);
    expect(drill.settled).not.toHaveProperty('lastFailoverTime');
  });

  it('takes a switchover the provider does itself from Fencing straight to Promoting, others to CatchingUp', () => {
    const done = { kind: 'Done' as const, detail: 'EpochOnly: epoch 5 recorded', nativeSwitchover: true };
    const native = transition(switchover('Fencing'), done, NOW, half);
    expect(native.operation.step).toBe('Promoting');
    expect(native.events[0]).toMatchObject({ reason: 'PrimaryFenced' });
    const { nativeSwitchover: _n, ...plain } = done;
    expect(transition(switchover('Fencing'), plain, NOW, half).operation.step).toBe('CatchingUp');
    // A failover has no catch-up to skip: it goes on as ever.
    expect(transition(inProgress('Fencing'), done, NOW, half).operation.step).toBe('Promoting');
    expect(transition(inProgress('Detected'), done, NOW, half).operation.step).toBe('Fencing');
  });

  it('ends a Fence operation after fencing, with a warning that names the primary', () => {
    const fence = inProgress('Fencing', { kind: 'Fence', from: 'a', to: 'b', epoch: 5 });
    const t = transition(fence, { kind: 'Done', detail: 'read-only' }, NOW, half);
    expect(t.operation.step).toBe('Completed');
    expect(t.events[0]).toMatchObject({ type: 'Warning', reason: 'StrayPrimaryFenced' });
    expect(t.settled).toBeUndefined();
  });
});

describe('transition: a step that is under way', () => {
  it('waits, saying for what, without counting a failure', () => {
    const t = transition(inProgress('Promoting'), { kind: 'Pending', detail: 'RDS: modifying' }, NOW, half);
    expect(t.operation).toMatchObject({ step: 'Promoting', message: 'RDS: modifying' });
    expect(t.failure).toBeUndefined();
    expect(t.requeueMs).toBeGreaterThan(0);
  });

  it('rolls a switchover back when the standby does not catch up in time', () => {
    const late = switchover('CatchingUp', {
      stepStartedAt: new Date(NOW.getTime() - CATCH_UP_TIMEOUT_MS - 1).toISOString(),
    });
    const t = transition(late, { kind: 'Pending', detail: 'b replayed 0/1 of 0/2' }, NOW, half);
    expect(t.operation).toMatchObject({ step: 'RollingBack', reason: 'planned' });
    expect(t.operation.message).toMatch(/did not replay/);
  });

  it('completes with a warning when the authoritative servers never agree', () => {
    const late = inProgress('VerifyingDns', {
      stepStartedAt: new Date(NOW.getTime() - DNS_VERIFY_TIMEOUT_MS - 1).toISOString(),
    });
    const t = transition(late, { kind: 'Pending', detail: 'ns1: a' }, NOW, half);
    expect(t.operation.step).toBe('Completed');
    expect(t.operation.message).toMatch(/DNS not verified/);
    expect(t.events[0]).toMatchObject({ reason: 'DnsNotVerified' });
  });
});

describe('transition: a step that failed', () => {
  it('marks an unreachable old primary by the epoch instead of fencing it, in a failover', () => {
    const t = transition(
      inProgress('Fencing'),
      { kind: 'Failed', reason: 'Timeout', message: 'no answer', retryable: true },
      NOW,
      half,
    );
    expect(t.operation).toMatchObject({
      step: 'Promoting',
      fenceDetail: expect.stringMatching(/marked by epoch 5/),
    });
    expect(t.events[0]).toMatchObject({ reason: 'PrimaryNotFenced' });
    // The strays act fenced all the same are in the record and the Event.
    const withStrays = transition(
      inProgress('Fencing', { strays: ['c'] }),
      {
        kind: 'Failed',
        reason: 'Unreachable',
        message: 'refused',
        retryable: true,
        learned: { fenceDetail: 'c: fenced ReadOnly' },
      },
      NOW,
      half,
    );
    expect(withStrays.operation.fenceDetail).toMatch(/marked by epoch 5 .*; c: fenced ReadOnly$/);
    expect(withStrays.events[0]?.note).toMatch(/c: fenced ReadOnly/);
  });

  it('retries other failures after a backoff recorded in status, counting attempts', () => {
    const t = transition(
      inProgress('RepointingDns'),
      { kind: 'Failed', reason: 'Unreachable', message: 'REFUSED', retryable: true },
      NOW,
      () => 1,
    );
    expect(t.operation).toMatchObject({
      step: 'RepointingDns',
      attempts: 1,
      lastError: 'Unreachable: REFUSED',
      retryAfter: '2026-03-02T10:00:01.000Z',
    });
    expect(t.requeueMs).toBe(1000);
    expect(t.failure).toEqual({ reason: 'Unreachable', message: 'REFUSED' });
    expect(t.events).toHaveLength(1);
    const again = transition(
      t.operation,
      { kind: 'Failed', reason: 'Unreachable', message: 'REFUSED', retryable: true },
      NOW,
      () => 1,
    );
    expect(again.events).toHaveLength(0);
    expect(again.operation.attempts).toBe(2);
  });

  it("waits out a throttling provider's Retry-After, as act passes it on from the provider's error", () => {
    const outcome = failure(new ThrottledError('API Rate limit exceeded.', 7_000));
    expect(outcome).toMatchObject({ reason: 'Throttled', retryable: true, retryAfterMs: 7_000 });
    const t = transition(inProgress('RepointingDns'), outcome, NOW, () => 1);
    expect(t.operation.retryAfter).toBe('2026-03-02T10:00:07.000Z');
    expect(t.requeueMs).toBe(7_000);
  });

  it('rolls a switchover back when its old primary cannot be fenced, at once when retrying cannot help', () => {
    const refused = transition(
      switchover('Fencing'),
      { kind: 'Failed', reason: 'Rejected', message: 'permission denied', retryable: false },
      NOW,
      half,
    );
    expect(refused.operation).toMatchObject({ step: 'RollingBack', reason: 'planned' });
    expect(refused.events[0]).toMatchObject({ reason: 'FencingFailed' });
    const flaky = switchover('Fencing', { attempts: SWITCHOVER_FENCE_ATTEMPTS - 1 });
    expect(
      transition(flaky, { kind: 'Failed', reason: 'Timeout', message: 'slow', retryable: true }, NOW, half)
        .operation.step,
    ).toBe('RollingBack');
    const first = transition(
      switchover('Fencing'),
      { kind: 'Failed', reason: 'Timeout', message: 'slow', retryable: true },
      NOW,
      half,
    );
    expect(first.operation.step).toBe('Fencing');
  });

  it('never gives up on a stray primary’s fence or a promotion past the point of no return', () => {
    const fence = inProgress('Fencing', {
      kind: 'Fence',
      from: 'a',
      to: 'b',
      attempts: 40,
      startedAt: ago(3600).toISOString(),
    });
    expect(
      transition(
        fence,
        { kind: 'Failed', reason: 'Unreachable', message: 'gone', retryable: true },
        NOW,
        half,
      ).operation.step,
    ).toBe('Fencing');
    const promote = inProgress('Promoting', { attempts: 40 });
    expect(
      transition(promote, { kind: 'Failed', reason: 'Rejected', message: 'no', retryable: false }, NOW, half)
        .operation.step,
    ).toBe('Promoting');
  });
});

describe('transition: a reprotect that needs its ReplicaCluster re-pointed', () => {
  it('ends, keeping the replacement in the record and in the report', () => {
    const replacement = {
      cluster: 'a',
      provider: {
        type: 'AwsRds' as const,
        awsRds: { region: 'us-east-1', dbInstanceIdentifier: 'orders-a-e5' },
      },
      host: 'orders-a-e5.rds.example',
      superseded: 'orders-a',
    };
    const op = inProgress('Rejoining', { kind: 'Reprotect', from: 'a', to: 'b', id: 'reprotect-e5-x-a' });
    const t = transition(
      op,
      {
        kind: 'Failed',
        reason: 'RepointNeeded',
        message: 'point a at it',
        retryable: false,
        learned: { replacement },
      },
      NOW,
      half,
    );
    expect(t.operation).toMatchObject({ step: 'Aborted', replacement });
    expect(reportOf(t.operation, NOW)).toMatchObject({ result: 'Aborted', replacement });
  });
});
