import { describe, expect, it } from 'vitest';
import { type FailoverObservationSpec, failoverPolicySpec } from '../api/v1alpha1/index.ts';
import { maxObservationAgeMs } from '../controllers/failover-policy/detection.ts';
import { KubeApiError, type KubeClient, type KubeObject } from '../runtime/kube-client.ts';
import { silentLogger } from '../runtime/logger.ts';
import { createObservation, meaningOf, publishDue, refreshMs } from './observer.ts';

const spec = (detection: Record<string, number> = {}) =>
  failoverPolicySpec.parse({
    primary: 'a',
    standbys: ['b'],
    detection,
    dns: { provider: { type: 'Route53', route53: { hostedZoneId: 'Z' } }, zone: 'x.test', name: 'db.x.test' },
  });

const seen = (at: number, over: Partial<FailoverObservationSpec['clusters'][number]> = {}) =>
  ({
    policy: 'orders',
    observer: 'region-c',
    observedAt: new Date(at).toISOString(),
    probeIntervalSeconds: 1,
    clusters: [
      {
        name: 'a',
        reachable: true,
        role: 'Primary',
        consecutiveFailures: 0,
        lastSuccessTime: new Date(at).toISOString(),
        lsn: `0/${at.toString(16)}`,
        ...over,
      },
    ],
  }) as FailoverObservationSpec;

/** A cluster not reached since the epoch (its failure count is given per round). */
const failing = {
  reachable: false,
  role: 'Unknown' as const,
  lastSuccessTime: new Date(0).toISOString(),
};

/** Rounds every `interval` ms (with a few ms of drift) of the same healthy view: when each writes. */
function writes(interval: number, refresh: number, rounds: number): number[] {
  let last: { meaning: string; at: number } | undefined;
  const written: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const now = r * interval + ((r * 7) % 5) - 2;
    const o = seen(now);
    if (publishDue(last, meaningOf(o, 3), refresh, now, interval)) {
      written.push(r);
      last = { meaning: meaningOf(o, 3), at: now };
    }
  }
  return written;
}

describe('observer writes', () => {
  it('writes an unchanged view again at half the age the operator ignores it at, at most once a round', () => {
    expect(refreshMs(spec({ probeIntervalSeconds: 5 }))).toBe(10_000);
    expect(refreshMs(spec({ probeIntervalSeconds: 1 }))).toBe(2_000);
    expect(refreshMs(spec({ probeIntervalSeconds: 2 }))).toBe(4_000);
    expect(refreshMs(spec({ probeIntervalSeconds: 2, observationMaxAgeSeconds: 2 }))).toBe(2_000);
    for (const interval of [1, 2, 5, 30]) {
      const s = spec({ probeIntervalSeconds: interval });
      const refresh = refreshMs(s);
      const rounds = writes(interval * 1000, refresh, 60);
      // Never a gap in which the operator's newest vote from this observer could go stale.
      const gaps = rounds.slice(1).map((r, i) => (r - (rounds[i] ?? 0)) * interval * 1000);
      // A late round (half an interval) and a margin for the write, the read and clocks apart.
      expect(Math.max(...gaps) + interval * 500 + 4_000).toBeLessThanOrEqual(maxObservationAgeMs(s));
      expect(Math.max(...gaps)).toBeLessThanOrEqual(refresh);
      if (interval <= 5) expect(rounds.length).toBeLessThanOrEqual(31);
    }
  });

  it('writes a change in the round that saw it: lost, a failure counted, a role, an app endpoint', () => {
    const last = { meaning: meaningOf(seen(0), 3), at: 0 };
    expect(publishDue(last, meaningOf(seen(1000), 3), 4000, 1000, 1000)).toBe(false);
    for (const change of [
      { reachable: false, role: 'Unknown' as const, consecutiveFailures: 1 },
      { role: 'Standby' as const },
      { appEndpointsHealthy: false },
    ])
      expect(publishDue(last, meaningOf(seen(1000, change), 3), 4000, 1000, 1000)).toBe(true);
    const one = { meaning: meaningOf(seen(1000, { ...failing, consecutiveFailures: 1 }), 3), at: 1000 };
    expect(
      publishDue(one, meaningOf(seen(2000, { ...failing, consecutiveFailures: 2 }), 3), 4000, 2000, 1000),
    ).toBe(true);
  });

  it('writes a cluster that stays down at the refresh rate once its failures reach the threshold', () => {
    const threshold = 3;
    const refresh = 4000;
    let last: { meaning: string; at: number } | undefined;
    const written: number[] = [];
    for (let r = 1; r <= 30; r++) {
      const meaning = meaningOf(seen(r * 1000, { ...failing, consecutiveFailures: r }), threshold);
      if (publishDue(last, meaning, refresh, r * 1000, 1000)) {
        written.push(r);
        last = { meaning, at: r * 1000 };
      }
    }
    // Every count up to the threshold in its own round (detection is not slowed), then refreshes.
    expect(written.slice(0, threshold)).toEqual([1, 2, 3]);
    const gaps = written.slice(threshold - 1).map((r, i, a) => r - (a[i - 1] ?? r));
    expect(Math.max(...gaps) * 1000).toBeLessThanOrEqual(refresh);
    expect(written.length).toBeLessThanOrEqual(threshold + 30 / 3);
    // The same view with the count written every round, as before: one write a round.
    expect(written.length).toBeLessThan(30);
  });
});

describe('creating an observation', () => {
  const policy = { metadata: { name: 'orders', namespace: 'apps', uid: 'p-1' } };
  /** A stand-in for the observations collection; `refuse` answers 403 to what it matches. */
  function collection(refuse: (obj: KubeObject) => boolean) {
    const created: KubeObject[] = [];
    const client = {
      create: async (_t: unknown, _ns: string, obj: KubeObject) => {
        if (refuse(obj)) throw new KubeApiError(403, 'Forbidden', 'forbidden');
        created.push(obj);
        return obj;
      },
    } as unknown as KubeClient;
    return { client, created };
  }
  const owned = (o: KubeObject) => Array.isArray(o.metadata.ownerReferences);

  it('is owned by its policy, so it goes with it', async () => {
    const { client, created } = collection(() => false);
    await createObservation(client, { refused: false }, silentLogger, 'apps', seen(0), policy);
    expect(created[0]?.metadata.ownerReferences).toEqual([
      { apiVersion: 'regionfailover.io/v1alpha1', kind: 'FailoverPolicy', name: 'orders', uid: 'p-1' },
    ]);
  });

  it('goes without an owner where the API server refuses it (OwnerReferencesPermissionEnforcement), and stops asking', async () => {
    const { client, created } = collection(owned);
    const owners = { refused: false };
    await createObservation(client, owners, silentLogger, 'apps', seen(0), policy);
    expect(owners.refused).toBe(true);
    await createObservation(client, owners, silentLogger, 'apps', seen(1), policy);
    expect(created).toHaveLength(2);
    expect(created.some(owned)).toBe(false);
  });

  it('still fails when the create itself is refused (RBAC)', async () => {
    const { client } = collection(() => true);
    const owners = { refused: false };
    await expect(createObservation(client, owners, silentLogger, 'apps', seen(0), policy)).rejects.toThrow(
      'forbidden',
    );
    expect(owners.refused).toBe(false);
  });
});
