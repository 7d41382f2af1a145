import { describe, expect, it } from 'vitest';
import { leaseSettings } from '../../agent/lease-settings.ts';
import {
  ago,
  down,
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

  it('waits no longer than its next DNS check or drill, and never less than the plan asked', () => {
    expect(quiet(input(), 12_000)).toBe(12_000);
    // Due already (or within the interval): the plan's own look, the probe interval.
    expect(quiet(input(), -5_000)).toBe(1000);
    const drill = new Date(NOW.getTime() + 7_000).toISOString();
    const i = input({
      specOver: { drills: { schedule: '0 3 * * 1', timeZone: 'UTC' } },
      status: { activePrimary: 'a', epoch: 4, nextDrillTime: drill },
    });
    expect(decide(i).status.nextDrillTime).toBeDefined();
    const next = new Date(decide(i).status.nextDrillTime as string).getTime() - NOW.getTime();
    expect(quiet(i)).toBe(Math.max(1000, Math.min(QUIET_RESYNC_MS, next)));
  });

  it('with an agent beside a member, waits no longer than a Lease lasts (its renewals are no event)', () => {
    const report = {
      name: 'agent',
      reportedAt: ago(1).toISOString(),
      dataDirectory: '/var/lib/postgresql/15/main',
      server: 'Primary' as const,
      lease: { state: 'Holding' as const, epoch: 4 },
    };
    const i = input({ clusters: { a: { ...primaryUp(), agent: report }, b: standby('b'), c: standby('c') } });
    const { durationMs } = leaseSettings(i.spec);
    expect(durationMs).toBeLessThan(QUIET_RESYNC_MS);
    expect(quiet(i)).toBe(Math.max(1000, durationMs));
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
    ['the primary Lease could not be read', { lease: { unreadable: true } }],
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
          history: [
            {
              id: 'failover-e5-x',
              kind: 'Failover',
              trigger: 'Automatic',
              from: 'a',
              to: 'b',
              epoch: 5,
              result: 'Succeeded',
              startedAt: ago(30).toISOString(),
              completedAt: ago(1).toISOString(),
            },
          ],
        },
        clusters: { a: standby('a', 1, 1000, 4, 5), b: primaryUp('b', 5), c: standby('c', 1, 1000, 4, 5) },
      });
    expect(quiet(failedOver('Manual'))).toBe(QUIET_RESYNC_MS);
    expect(quiet(failedOver('Automatic'))).toBeUndefined();
  });
});
