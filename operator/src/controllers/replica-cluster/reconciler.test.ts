import { describe, expect, it } from 'vitest';
import type { ReplicaClusterStatus } from '../../api/v1alpha1/index.ts';
import type { ProbeRecord } from './probes.ts';
import {
  PROBE_WAIT_MS,
  probeWaitMs,
  QUICK_PROBE_MS,
  summarize,
  whatPoliciesSee,
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

  it('moves its lag in bytes by what the primary writes in one and a half intervals, when that is more', () => {
    const lagged = (bytes: number): ReplicaClusterStatus => ({
      ...status(later),
      replicationLagBytes: bytes,
    });
    const rpo = { maxLagSeconds: 30, maxLagBytes: 64 * 2 ** 20 };
    // 1 MB/s at 5 s: the two reads' skew alone moves the figure by up to ~5 MB.
    expect(worthWriting(lagged(1_000_000), lagged(6_000_000), later, 5, rpo, 1_000_000)).toBe(false);
    expect(whyWrite(lagged(1_000_000), lagged(8_600_000), later, 5, rpo, 1_000_000)).toBe(
      'lag moved 7600000 bytes',
    );
    // Once the primary calms down the step is the budget's again, and the stale figure goes.
    expect(worthWriting(lagged(6_000_000), lagged(0), later, 5, rpo, 1000)).toBe(true);
    // Across the budget at once.
    expect(whyWrite(lagged(60 * 2 ** 20), lagged(70 * 2 ** 20), later, 5, rpo, 10_000_000)).toBe(
      'lag crossed the RPO budget',
    );
  });

  it('moves its lag in seconds by one and a half intervals, however long the interval', () => {
    const seconds = (s: number): ReplicaClusterStatus => ({ ...status(later), replicationLagSeconds: s });
    const rpo = { maxLagSeconds: 120, maxLagBytes: 2 ** 40 };
    // At 20 s a caught-up standby reads 0 or about one interval as the two reads' order drifts.
    expect(worthWriting(seconds(0), seconds(21), later, 20, rpo)).toBe(false);
    expect(worthWriting(seconds(21), seconds(0), later, 20, rpo)).toBe(false);
    expect(whyWrite(seconds(0), seconds(30), later, 20, rpo)).toBe('lag moved 30 s');
    expect(worthWriting(seconds(100), seconds(180), later, 60, { ...rpo, maxLagSeconds: 300 })).toBe(false);
    // Across the budget it is written at once, whatever the step.
    expect(whyWrite(seconds(100), seconds(130), later, 60, rpo)).toBe('lag crossed the RPO budget');
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

describe('what a cluster’s policies see of its probe (they are woken when it changes)', () => {
  const budget = { intervalSeconds: 5, rpo: { maxLagSeconds: 30, maxLagBytes: 16 * 1024 * 1024 } };
  const standbyProbe = (at: Date, over: Partial<ProbeRecord> = {}, lsn = '0/3000060'): ProbeRecord => ({
    observation: { reachable: true, role: 'Standby', lsn, receiveLsn: lsn, timeline: 1, durationMs: 2 },
    at,
    consecutiveFailures: 0,
    lastReachableAt: at,
    lag: { bytes: 4096, seconds: 0.2, at },
    ...over,
  });
  const seen = (r: ProbeRecord) => whatPoliciesSee(r, undefined, [budget]);

  it('does not change while nothing happens: times, WAL positions and small lag moves', () => {
    const first = seen(standbyProbe(t0));
    expect(seen(standbyProbe(later, { lag: { bytes: 900_000, seconds: 1.1, at: later } }, '0/4000000'))).toBe(
      first,
    );
  });

  it('changes with anything a decision reads', () => {
    const first = seen(standbyProbe(t0));
    const failed: ProbeRecord = {
      observation: {
        reachable: false,
        role: 'Unknown',
        failure: { reason: 'Timeout', message: 'x' },
        durationMs: 5000,
      },
      at: later,
      consecutiveFailures: 1,
    };
    const changes: ProbeRecord[] = [
      failed,
      { ...failed, consecutiveFailures: 2 },
      standbyProbe(later, { observation: { ...standbyProbe(t0).observation, role: 'Primary' } }),
      standbyProbe(later, { observation: { ...standbyProbe(t0).observation, timeline: 2 } }),
      standbyProbe(later, {
        observation: { ...standbyProbe(t0).observation, heartbeat: { epoch: 3, writtenAt: later } },
      }),

      // A move its status would show (lagStepSeconds(5) is 7.5 s), and each side of each budget.
      standbyProbe(later, { lag: { bytes: 4096, seconds: 8, at: later } }),
      standbyProbe(later, { lag: { bytes: 4096, seconds: 30, at: later } }),
      standbyProbe(later, { lag: { bytes: 17 * 1024 * 1024, seconds: 0.2, at: later } }),
      // Its seconds unknown: it has not replayed a heartbeat yet.
      standbyProbe(later, { lag: { bytes: 4096, seconds: Number.NaN, at: later } }),
      standbyProbe(later, { lag: undefined }),
    ];
    for (const r of changes) expect(seen(r)).not.toBe(first);
    // A fence's mark on the heartbeat row.
    const heartbeat = (fencedEpoch?: number) =>
      standbyProbe(later, {
        observation: {
          ...standbyProbe(t0).observation,
          heartbeat: { epoch: 0, writtenAt: later, ...(fencedEpoch ? { fencedEpoch } : {}) },
        },
      });
    expect(seen(heartbeat(1))).not.toBe(seen(heartbeat()));
    const apps = (healthy: boolean) => ({ at: later, checks: [{ name: 'api', healthy, message: '' }] });
    expect(whatPoliciesSee(standbyProbe(t0), apps(true), [budget])).not.toBe(
      whatPoliciesSee(standbyProbe(t0), apps(false), [budget]),
    );
  });
});
