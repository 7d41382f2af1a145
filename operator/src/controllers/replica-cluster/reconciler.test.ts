import { describe, expect, it } from 'vitest';
import type { ReplicaClusterStatus } from '../../api/v1alpha1/index.ts';
import type { ProbeRecord } from './probes.ts';
import {
  PROBE_WAIT_MS,
  probeWaitMs,
  QUICK_PROBE_MS,
  summarize,
  whyWrite,
  worthWriting,
} from './reconciler.ts';

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

  it('moves its lag in bytes by an eighth of the RPO byte budget (64 KiB to 1 MiB), and at once across it', () => {
    const lagged = (bytes: number): ReplicaClusterStatus => ({
      ...status(later),
      replicationLagBytes: bytes,
    });
    const rpo = { maxLagSeconds: 30, maxLagBytes: 4 * 1024 * 1024 };
    // A busy primary's WAL between two probes' reads is not news; 512 KiB (an eighth) is.
    expect(worthWriting(status(t0), lagged(110_000), later, 5, rpo)).toBe(false);
    expect(whyWrite(status(t0), lagged(512 * 1024), later, 5, rpo)).toBe('lag moved 524288 bytes');
    expect(whyWrite(status(t0), lagged(5 * 1024 * 1024), later, 5, rpo)).toBe('lag crossed the RPO budget');
    // A small budget keeps a 64 KiB floor; a large one (and a cluster no policy names) a 1 MiB cap.
    const small = { maxLagSeconds: 30, maxLagBytes: 100_000 };
    expect(worthWriting(status(t0), lagged(60_000), later, 5, small)).toBe(false);
    expect(worthWriting(status(t0), lagged(70_000), later, 5, small)).toBe(true);
    const large = { maxLagSeconds: 30, maxLagBytes: 2 ** 40 };
    expect(worthWriting(status(t0), lagged(1000 * 1024), later, 5, large)).toBe(false);
    expect(worthWriting(status(t0), lagged(1024 * 1024), later, 5, large)).toBe(true);
    expect(worthWriting(status(t0), lagged(1024 * 1024), later, 5)).toBe(true);
  });

  it('says why it is written', () => {
    expect(whyWrite(status(t0), { ...status(later), role: 'Primary' }, later, 2)).toBe('changed: role');
    expect(whyWrite({ ...status(t0), lastObservedTime: undefined }, status(later), later, 2)).toBe(
      'first probe',
    );
    expect(whyWrite(status(t0), { ...status(later), replicationLagSeconds: 3 }, later, 2)).toBe(
      'lag moved 3 s',
    );
  });
});

describe('how long a reconcile waits for its probe', () => {
  const took = (durationMs: number, reachable = true): ProbeRecord =>
    ({
      at: t0,
      consecutiveFailures: reachable ? 0 : 1,
      observation: reachable
        ? { reachable, role: 'Standby', durationMs }
        : { reachable, role: 'Unknown', failure: { reason: 'Timeout', message: 'no answer' }, durationMs },
    }) as ProbeRecord;

  it('waits for a database that answered quickly, or was never asked (a refusal is quick too)', () => {
    expect(probeWaitMs(undefined)).toBe(PROBE_WAIT_MS);
    expect(probeWaitMs(took(2))).toBe(PROBE_WAIT_MS);
    expect(probeWaitMs(took(QUICK_PROBE_MS))).toBe(PROBE_WAIT_MS);
    expect(probeWaitMs(took(0, false))).toBe(PROBE_WAIT_MS);
  });

  it('holds no worker for a database a round trip away, or one that went silent: its verdict wakes the cluster', () => {
    expect(probeWaitMs(took(QUICK_PROBE_MS + 1))).toBe(0);
    expect(probeWaitMs(took(80))).toBe(0);
    expect(probeWaitMs(took(5_000, false))).toBe(0);
  });
});

describe('a primary whose commits wait for a synchronous standby that is not there', () => {
  const spec = {
    region: 'a',
    provider: { type: 'SelfManaged' },
    connection: { host: 'db', port: 5432, database: 'app', sslMode: 'disable' },
  } as unknown as Parameters<typeof summarize>[2];
  const record = (extra: Partial<ProbeRecord['observation']>): ProbeRecord => ({
    observation: {
      reachable: true,
      role: 'Primary',
      replicas: [{ applicationName: 'b', state: 'streaming', syncState: 'async' }],
      durationMs: 1,
      ...extra,
    },
    at: t0,
    consecutiveFailures: 0,
  });

  it('is Degraded, and Replicating says why: its clients’ commits hang', () => {
    const s = summarize({}, record({ commitsWaitFor: "FIRST 1 ('b')" }), spec, undefined, 1, t0);
    expect(s.health).toBe('Degraded');
    expect(s.conditions?.find((c) => c.type === 'Replicating')).toMatchObject({
      status: 'False',
      reason: 'SynchronousStandbyMissing',
      message: expect.stringContaining("synchronous_standby_names = 'FIRST 1 ('b')'"),
    });
    expect(summarize({}, record({}), spec, undefined, 1, t0).health).toBe('Healthy');
  });
});
