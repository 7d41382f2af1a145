import { describe, expect, it } from 'vitest';
import type { ReplicaClusterStatus } from '../../api/v1alpha1/index.ts';
import { worthWriting } from './reconciler.ts';

const t0 = new Date('2026-01-05T03:00:00Z');
const later = new Date('2026-01-05T03:00:02Z');

const status = (at: Date): ReplicaClusterStatus => ({
  observedGeneration: 1,
  role: 'Standby',
  health: 'Healthy',
  lastObservedTime: at.toISOString(),
  consecutiveProbeFailures: 0,
  conditions: [
    {
      type: 'Reachable',
      status: 'True',
      reason: 'Connected',
      message: 'db:5432 answered as Standby',
      observedGeneration: 1,
      lastTransitionTime: '2026-01-05T02:00:00Z',
    },
  ],
  replicationLagBytes: 0,
  replicationLagSeconds: 0,
});

describe('a probe’s status', () => {
  it('is not written when only its times moved', () => {
    expect(worthWriting(status(t0), status(later), later, 2)).toBe(false);
    expect(worthWriting(status(t0), { ...status(later), role: 'Primary' }, later, 2)).toBe(true);
  });

  it('of a Healthy cluster that says the same is never rewritten; one that is not Healthy every 5 minutes', () => {
    const hourLater = new Date(t0.getTime() + 3_600_000);
    expect(worthWriting(status(t0), status(hourLater), hourLater, 2)).toBe(false);
    const degraded = (at: Date): ReplicaClusterStatus => ({ ...status(at), health: 'Degraded' });
    const at = (ms: number) => new Date(t0.getTime() + ms);
    expect(worthWriting(degraded(t0), degraded(at(299_000)), at(299_000), 2)).toBe(false);
    expect(worthWriting(degraded(t0), degraded(at(300_000)), at(300_000), 2)).toBe(true);
  });

  it('is not written for the agent’s report, which the probe never computes and a write keeps as it is', () => {
    const agent = { name: 'db-0', reportedAt: t0.toISOString() } as ReplicaClusterStatus['agent'];
    expect(worthWriting({ ...status(t0), agent }, status(later), later, 2)).toBe(false);
    expect(worthWriting({ ...status(t0), agent }, { ...status(later), health: 'Degraded' }, later, 2)).toBe(
      true,
    );
  });
});
