import { describe, expect, it } from 'vitest';
import {
  ago,
  down,
  finished,
  gone,
  inProgress,
  input,
  NOW,
  primaryUp,
  standby,
  unprobed,
  up,
} from './decide.fixtures.ts';
import { decide, NOTHING_TO_DO } from './decide.ts';
import type { DecideInput } from './facts.ts';
import { QUIET_RESYNC_MS, quietLookMs } from './quiet.ts';

const quiet = (i: DecideInput, dueInMs?: number) =>
  quietLookMs(
    i,
    decide(i),
    dueInMs === undefined ? undefined : { failures: 0, dueAt: NOW.getTime() + dueInMs },
  );

describe('a quiet policy', () => {
  it('is one with nothing to do, every member where it should be and every vote fresh and up', () => {
    const i = input();
    expect(decide(i).why).toBe(NOTHING_TO_DO);
    expect(quiet(i)).toBe(QUIET_RESYNC_MS);
  });

  it('waits no longer than its next DNS check, drill or the end of a cool-down, never less than the plan asked', () => {
    expect(quiet(input(), 12_000)).toBe(12_000);
    // Due already (or within the interval): the plan's own look, the probe interval.
    expect(quiet(input(), -5_000)).toBe(1000);
    // 50 s on, the daily drill at 10:01 is 10 s away (the votes taken just before).
    const later = new Date(NOW.getTime() + 50_000);
    const drill = input({
      now: later,
      specOver: { drills: { schedule: '1 10 * * *', timeZone: 'UTC' } },
      status: { activePrimary: 'a', epoch: 4, nextDrillTime: '2026-03-02T10:01:00Z' },
      votes: [up('operator', -49), up('region-b', -49), up('region-c', -49)],
    });
    expect(decide(drill).status.nextDrillTime).toBe('2026-03-02T10:01:00Z');
    expect(quiet(drill)).toBe(10_000);
    // A failover 590 s ago: FailoverReady turns True in 10 s, at the cool-down's end (600 s).
    const cooling = input({
      status: { activePrimary: 'a', epoch: 4, lastFailoverTime: ago(590).toISOString() },
    });
    expect(quiet(cooling)).toBe(10_000);
  });

  it('is not quiet until every member was probed after the last operation ended', () => {
    const ended = (completedAgo: number) =>
      input({
        status: {
          activePrimary: 'a',
          epoch: 4,
          history: [
            finished({
              id: 'switchover-e4-x',
              kind: 'Switchover',
              trigger: 'Manual',
              from: 'b',
              to: 'a',
              epoch: 4,
              completedAt: ago(completedAgo).toISOString(),
            }),
          ],
        },
      });
    // The fixtures' probes are half a second old.
    expect(quiet(ended(0.2))).toBeUndefined();
    expect(quiet(ended(1))).toBe(QUIET_RESYNC_MS);
  });

  it("is not quiet with an agent beside a member: the Lease's renewals are timed by the operator's reads", () => {
    const report = {
      name: 'agent',
      reportedAt: ago(1).toISOString(),
      dataDirectory: '/var/lib/postgresql/15/main',
      server: 'Primary' as const,
      lease: { state: 'Holding' as const, epoch: 4 },
    };
    const clusters = { a: { ...primaryUp(), agent: report }, b: standby('b'), c: standby('c') };
    expect(quiet(input({ clusters }))).toBeUndefined();
    // Without the Lease it may be quiet, but looks again when the report ages out (30 s after it
    // was made, and a second), in case no newer one comes to wake it.
    expect(quiet(input({ clusters, specOver: { primaryLease: { enabled: false } } }))).toBe(30_000);
    const stopped = {
      ...clusters,
      a: { ...primaryUp(), agent: { ...report, reportedAt: ago(40).toISOString() } },
    };
    expect(quiet(input({ clusters: stopped, specOver: { primaryLease: { enabled: false } } }))).toBe(
      QUIET_RESYNC_MS,
    );
  });

  it.each<[string, Partial<DecideInput>]>([
    ['the primary is unreachable', { clusters: { a: gone(), b: standby('b'), c: standby('c') } }],
    ['a standby is unreachable', { clusters: { a: primaryUp(), b: gone('b'), c: standby('c') } }],
    ['a member is not probed yet', { clusters: { a: primaryUp(), b: unprobed('b'), c: standby('c') } }],
    ['a member is missing', { clusters: { a: primaryUp(), b: standby('b') } }],
    [
      'an observer says down (below the quorum)',
      { votes: [up('operator'), down('region-b', 1), up('region-c')] },
    ],
    ["an observer's vote is stale", { votes: [up('operator'), up('region-b', 600), up('region-c')] }],
    [
      'an application endpoint is unhealthy',
      { clusters: { a: { ...primaryUp(), appEndpoints: 'Unhealthy' }, b: standby('b'), c: standby('c') } },
    ],
    [
      'an operation is under way',
      { status: { activePrimary: 'a', epoch: 4, currentOperation: inProgress('VerifyingDns') } },
    ],
  ])('is not quiet when %s', (_why, over) => {
    expect(quiet(input(over))).toBeUndefined();
  });

  it('is not quiet with an automatic failback ahead (it waits for a time to pass)', () => {
    const failedOver = (failback: 'Automatic' | 'Manual') =>
      input({
        specOver: { reprotect: { failback, failbackAfterSeconds: 600 } },
        status: {
          activePrimary: 'b',
          epoch: 5,
          history: [finished()],
        },
        clusters: { a: standby('a', 1, 1000, 4, 5), b: primaryUp('b', 5), c: standby('c', 1, 1000, 4, 5) },
      });
    expect(quiet(failedOver('Manual'))).toBe(QUIET_RESYNC_MS);
    expect(quiet(failedOver('Automatic'))).toBeUndefined();
  });
});
