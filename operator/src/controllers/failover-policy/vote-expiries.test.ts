import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FailoverObservationSpec } from '../../api/v1alpha1/index.ts';
import { OPERATOR_OBSERVER } from './observe.ts';
import { VoteExpiries } from './vote-expiries.ts';

describe('VoteExpiries', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Fake timers and both clocks (the policy's by Date, the schedule's by performance). */
  function setup() {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });
    const woken: string[] = [];
    const expiries = new VoteExpiries({ now: () => new Date() }, (policy) => woken.push(policy));
    const vote = (observer: string, agoMs = 0): FailoverObservationSpec => ({
      policy: 'orders',
      observer,
      observedAt: new Date(Date.now() - agoMs).toISOString(),
      probeIntervalSeconds: 1,
      clusters: [],
    });
    return { woken, expiries, vote };
  }

  it('wakes the policy once an observer’s newest vote is older than its limit, not before', () => {
    const { woken, expiries, vote } = setup();
    expiries.seen('db/orders', vote('region-c'), 10_000);
    vi.advanceTimersByTime(10_000);
    expect(woken).toEqual([]); // at its limit the vote still counts (freshVotes: older than it)
    vi.advanceTimersByTime(1_000);
    expect(woken).toEqual(['db/orders']);
    vi.advanceTimersByTime(60_000);
    expect(woken).toEqual(['db/orders']); // once
  });

  it('moves the wake on with each refresh, so observers that keep writing wake nobody', () => {
    const { woken, expiries, vote } = setup();
    expiries.seen('db/orders', vote('region-c'), 10_000);
    expiries.seen('db/orders', vote('region-d'), 10_000);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(5_000);
      expiries.seen('db/orders', vote('region-c'), 10_000);
      expiries.seen('db/orders', vote('region-d'), 10_000);
    }
    expect(woken).toEqual([]);
    // region-d stops writing; region-c goes on.
    for (let i = 0; i < 4; i++) {
      vi.advanceTimersByTime(5_000);
      expiries.seen('db/orders', vote('region-c'), 10_000);
    }
    expect(woken).toEqual(['db/orders']);
  });

  it('takes a vote that arrives late by its own time, and ignores one already stale', () => {
    const { woken, expiries, vote } = setup();
    expiries.seen('db/orders', vote('region-c', 8_000), 10_000);
    vi.advanceTimersByTime(3_001);
    expect(woken).toEqual(['db/orders']);
    expiries.seen('db/late', { ...vote('region-c', 20_000), policy: 'late' }, 10_000);
    vi.advanceTimersByTime(60_000);
    expect(woken).toEqual(['db/orders']);
  });

  it('works the wakes out again from what a reconcile read: sooner under a shorter limit, and one no write set', () => {
    const { woken, expiries, vote } = setup();
    expiries.seen('db/orders', vote('region-c'), 60_000);
    // The limit was made 10 s; region-d's observation was listed before the policy was cached.
    const votes = [
      { observer: 'region-c', observedAt: new Date(), reachable: true, consecutiveFailures: 0 },
      {
        observer: 'region-d',
        observedAt: new Date(Date.now() - 5_000),
        reachable: true,
        consecutiveFailures: 0,
      },
      { observer: OPERATOR_OBSERVER, observedAt: new Date(), reachable: true, consecutiveFailures: 0 },
    ];
    expiries.reset('db/orders', votes, 10_000, new Date());
    vi.advanceTimersByTime(6_001);
    expect(woken).toEqual(['db/orders']); // region-d's
    vi.advanceTimersByTime(5_000);
    expect(woken).toEqual(['db/orders', 'db/orders']); // region-c's, not 60 s on
    vi.advanceTimersByTime(120_000);
    expect(woken).toEqual(['db/orders', 'db/orders']);
  });

  it('wakes at once for a vote fresh when the reconcile read it and stale by the time it was done', () => {
    const { woken, expiries } = setup();
    const readAt = new Date();
    const vote = {
      observer: 'region-c',
      observedAt: new Date(Date.now() - 9_500),
      reachable: true,
      consecutiveFailures: 0,
    };
    vi.advanceTimersByTime(2_000); // the reconcile waited on the network
    expiries.reset('db/orders', [vote], 10_000, readAt);
    vi.advanceTimersByTime(1);
    expect(woken).toEqual(['db/orders']);
    // Stale already when read: the policy is not quiet and looks each interval; no wake is kept.
    expiries.reset('db/orders', [vote], 10_000, new Date());
    vi.advanceTimersByTime(60_000);
    expect(woken).toEqual(['db/orders']);
  });

  it('forgets a deleted observation, and leaves the operator’s own vote to its probes', () => {
    const { woken, expiries, vote } = setup();
    expiries.seen('db/orders', vote('region-c'), 10_000);
    expiries.forget('db/orders', 'region-c');
    expiries.seen('db/orders', vote(OPERATOR_OBSERVER), 10_000);
    expiries.seen('db/orders', { ...vote('region-d'), observedAt: 'not a time' }, 10_000);
    vi.advanceTimersByTime(60_000);
    expect(woken).toEqual([]);
  });
});
