import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../runtime/kube-client.ts';
import { claimantNaming, claimantOf, claimedElsewhere, claimOrder, clustersNamed } from './claims.ts';

const policy = (name: string, created: string | undefined, primary: unknown, standbys: unknown = []) =>
  ({
    metadata: {
      name,
      namespace: 'db',
      ...(created ? { creationTimestamp: created } : {}),
    },
    spec: { primary, standbys },
  }) as KubeObject;

describe('claims (a ReplicaCluster belongs to the oldest policy naming it)', () => {
  it('the oldest policy wins, then the name; one without a creation time counts as the newest', () => {
    const orders = policy('orders', '2026-01-02T00:00:00Z', 'a', ['b']);
    const older = policy('zz-older', '2026-01-01T00:00:00Z', 'a', ['c']);
    const sameSecond = policy('orders-copy', '2026-01-02T00:00:00Z', 'a', ['b']);
    const undated = policy('aaa', undefined, 'a');
    expect(claimantOf([orders, sameSecond, undated])?.metadata.name).toBe('orders');
    expect(claimantOf([undated, sameSecond, orders, older])?.metadata.name).toBe('zz-older');
    expect(claimantOf([])).toBeUndefined();
    expect([undated, sameSecond, orders].sort(claimOrder).map((p) => p.metadata.name)).toEqual([
      'orders',
      'orders-copy',
      'aaa',
    ]);
  });

  it('every member whatever the order they are listed in agrees on one claimant', () => {
    const stamps = ['2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z', undefined];
    let ties = 0;
    fc.assert(
      fc.property(
        // Few names and stamps: ties of creation time, and undated policies, are common.
        fc.uniqueArray(fc.record({ name: fc.constantFrom('a', 'b', 'c', 'd', 'e'), stamp: fc.nat(2) }), {
          selector: (p) => p.name,
          minLength: 1,
          maxLength: 5,
        }),
        fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
        (specs, keys) => {
          const policies = specs.map((p) => policy(p.name, stamps[p.stamp], 'x'));
          // Another listing order: by a random key each.
          const shuffled = policies
            .map((p, i) => ({ p, key: keys[i] ?? 0 }))
            .sort((x, y) => x.key - y.key)
            .map((x) => x.p);
          if (new Set(specs.map((p) => p.stamp)).size < specs.length) ties++;
          const winner = claimantOf(policies);
          expect(claimantOf(shuffled)).toBe(winner);
          expect(claimantNaming(shuffled, 'x')).toBe(winner);
          for (const p of policies) expect(claimOrder(winner as KubeObject, p)).toBeLessThanOrEqual(0);
        },
      ),
      { numRuns: 300 },
    );
    expect(ties).toBeGreaterThan(50);
  });

  it('names what a policy names, from its raw spec, once each', () => {
    expect(clustersNamed(policy('p', undefined, 'a', ['b', 'a', 7]))).toEqual(['a', 'b']);
    expect(clustersNamed({ metadata: { name: 'p' } } as KubeObject)).toEqual([]);
  });

  it("a younger policy learns which of its clusters are another policy's, and the owner learns none", () => {
    const orders = policy('orders', '2026-01-01T00:00:00Z', 'a', ['b']);
    const copy = policy('orders-copy', '2026-01-03T00:00:00Z', 'a', ['c']);
    const all = [orders, copy];
    const policiesOf = (cluster: string) => all.filter((p) => clustersNamed(p).includes(cluster));
    expect(claimedElsewhere(copy, clustersNamed(copy), policiesOf)).toEqual([
      { cluster: 'a', policy: 'orders' },
    ]);
    expect(claimedElsewhere(orders, clustersNamed(orders), policiesOf)).toEqual([]);
    expect(claimantNaming(all, 'c')?.metadata.name).toBe('orders-copy');
  });
});
