import { describe, expect, it } from 'vitest';
import { onlyStatusChanged, sameVote } from './manager.ts';
import type { KubeObject } from './runtime/kube-client.ts';

const policy = (over: Partial<KubeObject> = {}, meta: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'FailoverPolicy',
  metadata: { name: 'orders', namespace: 'db', generation: 1, resourceVersion: '10', ...meta },
  spec: { primary: 'a' },
  status: { phase: 'Healthy' },
  ...over,
});

describe('onlyStatusChanged (our own status writes do not wake the policy again)', () => {
  it('is true for a new status, resourceVersion or managedFields', () => {
    expect(
      onlyStatusChanged(
        policy(),
        policy({ status: { phase: 'Blocked' } }, { resourceVersion: '11', managedFields: [] }),
      ),
    ).toBe(true);
  });

  it('is false for a spec change, a label, an annotation or a deletion', () => {
    expect(onlyStatusChanged(policy(), policy({ spec: { primary: 'b' } }, { generation: 2 }))).toBe(false);
    expect(onlyStatusChanged(policy(), policy({}, { labels: { team: 'x' } }))).toBe(false);
    expect(onlyStatusChanged(policy(), policy({}, { annotations: { note: 'x' } }))).toBe(false);
    expect(onlyStatusChanged(policy(), policy({}, { deletionTimestamp: '2026-03-02T10:00:00Z' }))).toBe(
      false,
    );
  });
});

describe("sameVote (an observer's refresh that says nothing new does not wake the policy)", () => {
  const observation = (at: string, cluster: Record<string, unknown>): KubeObject => ({
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'FailoverObservation',
    metadata: { name: 'orders-region-b', namespace: 'db', resourceVersion: at },
    spec: {
      policy: 'orders',
      observer: 'region-b',
      observedAt: at,
      probeIntervalSeconds: 5,
      clusters: [{ name: 'a', reachable: true, role: 'Primary', consecutiveFailures: 0, ...cluster }],
    },
  });
  const t1 = '2026-03-02T10:00:00Z';
  const t2 = '2026-03-02T10:00:10Z';

  it('is true when only the time, a last success or a WAL position moved', () => {
    expect(
      sameVote(
        observation(t1, { lastSuccessTime: t1, lsn: '0/1' }),
        observation(t2, { lastSuccessTime: t2, lsn: '0/2' }),
      ),
    ).toBe(true);
  });

  it('is false for anything a verdict reads, each failure counted included', () => {
    const failing = (n: number) => ({ reachable: false, role: 'Unknown', consecutiveFailures: n });
    expect(sameVote(observation(t1, {}), observation(t2, failing(1)))).toBe(false);
    // Past any threshold too: detection counts back from the real count.
    expect(sameVote(observation(t1, failing(7)), observation(t2, failing(8)))).toBe(false);
    expect(sameVote(observation(t1, {}), observation(t2, { role: 'Standby' }))).toBe(false);
  });
});
