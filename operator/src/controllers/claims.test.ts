import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../runtime/kube-client.ts';
import {
  claimantNaming,
  claimantOf,
  claimedElsewhere,
  claimOrder,
  clustersNamed,
  hasTakenUp,
} from './claims.ts';

const policy = (
  name: string,
  created: string | undefined,
  primary: unknown,
  standbys: unknown = [],
  status?: Record<string, unknown>,
) =>
  ({
    metadata: {
      name,
      namespace: 'db',
      ...(created ? { creationTimestamp: created } : {}),
    },
    spec: { primary, standbys },
    ...(status ? { status } : {}),
  }) as KubeObject;

describe('claims (whose a ReplicaCluster is)', () => {
  it('among policies that have not taken it up: the oldest, then the name; one without a creation time is the newest', () => {
    const orders = policy('orders', '2026-01-02T00:00:00Z', 'a', ['b']);
    const older = policy('zz-older', '2026-01-01T00:00:00Z', 'a', ['c']);
    const sameSecond = policy('orders-copy', '2026-01-02T00:00:00Z', 'a', ['b']);
    const undated = policy('aaa', undefined, 'a');
    expect(claimantOf([orders, sameSecond, undated], 'a')?.metadata.name).toBe('orders');
    expect(claimantOf([undated, sameSecond, orders, older], 'a')?.metadata.name).toBe('zz-older');
    expect(claimantOf([], 'a')).toBeUndefined();
    expect([undated, sameSecond, orders].sort(claimOrder('a')).map((p) => p.metadata.name)).toEqual([
      'orders',
      'orders-copy',
      'aaa',
    ]);
  });

  it('a policy that has taken the cluster up keeps it from an older one edited to name it', () => {
    const running = policy('payments', '2026-03-01T00:00:00Z', 'x', ['y'], {
      activePrimary: 'y',
      topology: [{ cluster: 'y' }, { cluster: 'x' }],
    });
    const edited = policy('orders', '2026-01-01T00:00:00Z', 'a', ['x'], {
      activePrimary: 'a',
      topology: [{ cluster: 'a' }],
    });
    expect(claimantOf([edited, running], 'x')?.metadata.name).toBe('payments');
    // Its own clusters stay its own.
    expect(claimantOf([edited], 'a')?.metadata.name).toBe('orders');
    // Each way a status names a cluster: the topology, the active primary, an operation's sides.
    expect(hasTakenUp(running, 'x')).toBe(true);
    expect(hasTakenUp(policy('p', undefined, 'x', [], { activePrimary: 'x' }), 'x')).toBe(true);
    expect(
      hasTakenUp(policy('p', undefined, 'x', [], { currentOperation: { from: 'w', to: 'x' } }), 'x'),
    ).toBe(true);
    expect(hasTakenUp(policy('p', undefined, 'x', [], { conditions: [] }), 'x')).toBe(false);
    expect(hasTakenUp(policy('p', undefined, 'x'), 'x')).toBe(false);
  });

  it('every member, whatever order they are listed in, agrees on one claimant', () => {
    const stamps = ['2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z', undefined];
    let ties = 0;
    let takenUp = 0;
    fc.assert(
      fc.property(
        // Few names and stamps: ties of creation time, undated policies and several policies
        // that took the cluster up are common.
        fc.uniqueArray(
          fc.record({
            name: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
            stamp: fc.nat(2),
            taken: fc.boolean(),
          }),
          { selector: (p) => p.name, minLength: 1, maxLength: 5 },
        ),
        fc.array(fc.nat(), { minLength: 5, maxLength: 5 }),
        (specs, keys) => {
          const policies = specs.map((p) =>
            policy(p.name, stamps[p.stamp], 'x', [], p.taken ? { activePrimary: 'x' } : undefined),
          );
          // Another listing order: by a random key each.
          const shuffled = policies
            .map((p, i) => ({ p, key: keys[i] ?? 0 }))
            .sort((x, y) => x.key - y.key)
            .map((x) => x.p);
          if (new Set(specs.map((p) => p.stamp)).size < specs.length) ties++;
          const winner = claimantOf(policies, 'x') as KubeObject;
          if (specs.some((p) => p.taken) && specs.some((p) => !p.taken)) {
            takenUp++;
            expect(hasTakenUp(winner, 'x')).toBe(true);
          }
          expect(claimantOf(shuffled, 'x')).toBe(winner);
          expect(claimantNaming(shuffled, 'x')).toBe(winner);
          for (const p of policies) expect(claimOrder('x')(winner, p)).toBeLessThanOrEqual(0);
        },
      ),
      { numRuns: 300 },
    );
    expect(ties).toBeGreaterThan(50);
    expect(takenUp).toBeGreaterThan(50);
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
    // A cluster its status still runs but its spec dropped: another policy naming it owns it.
    expect(claimedElsewhere(orders, ['c'], policiesOf)).toEqual([{ cluster: 'c', policy: 'orders-copy' }]);
    // One nobody names stays with whoever runs it.
    expect(claimedElsewhere(orders, ['z'], policiesOf)).toEqual([]);
  });
});
