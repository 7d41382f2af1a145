/**
 * Which operator's Leases `kubectl failover status` judges a namespace by: several operators in one
 * cluster (each watching a namespace of its own) must not answer for each other.
 */
import { describe, expect, it } from 'vitest';
import { LEADER_LEASE_LABEL, type Lease, WATCH_NAMESPACE_LABEL } from '../runtime/leader-election.ts';
import { ELECTION_LABEL, SHARD_LABEL, SHARDS_LABEL } from '../runtime/shards.ts';
import { type OperatorLeases, operatorLeaseWarning, shardLayout, watching } from './operator-lease.ts';

const now = new Date('2026-12-04T12:00:00Z');
const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();

function lease(name: string, role: string, renewedSecondsAgo: number, labels: Record<string, string>): Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace: 'ops', labels: { [LEADER_LEASE_LABEL]: role, ...labels } },
    spec: { holderIdentity: `${name}-pod`, leaseDurationSeconds: 15, renewTime: ago(renewedSecondsAgo) },
  };
}

/** An operator watching `team-a` whose leader Lease went stale, and three sharded replicas watching `team-b`, all held. */
const twoOperators = (): OperatorLeases => ({
  leader: [lease('failover-a', 'operator', 600, { [WATCH_NAMESPACE_LABEL]: 'team-a' })],
  shards: [0, 1, 2].map((i) =>
    lease(`failover-b-shard-${i}`, 'shard', 2, {
      [WATCH_NAMESPACE_LABEL]: 'team-b',
      [SHARD_LABEL]: String(i),
      [SHARDS_LABEL]: '3',
    }),
  ),
});

describe('the operator Leases a namespace is judged by', () => {
  it("warns for the namespace whose operator stopped, though another operator's shards are all held", () => {
    const a = watching(twoOperators(), 'team-a');
    expect(shardLayout(a, now)).toBeUndefined();
    expect(operatorLeaseWarning(a, now)).toMatch(
      /^no operator holds its leader Lease: ops\/failover-a \(holder failover-a-pod, renewed 600 s ago\)/,
    );
  });

  it("gives the sharded operator's namespace its shards, and no warning from the stopped one", () => {
    const b = watching(twoOperators(), 'team-b');
    expect(shardLayout(b, now)?.shardOf('team-b', 'orders')).toMatchObject({ of: 3 });
    expect(operatorLeaseWarning(b, now)).toBeUndefined();
  });

  it('is silent for a namespace no operator watches (it cannot tell)', () => {
    const c = watching(twoOperators(), 'team-c');
    expect(shardLayout(c, now)).toBeUndefined();
    expect(operatorLeaseWarning(c, now)).toBeUndefined();
  });

  it("keeps one election's Leases together through a rollout that labels them one by one", () => {
    // Replicas of the new version labelled shard 0 and the leader Lease; shards 1 and 2 are
    // still an old replica's, unlabelled. Judged apart, team-b would see a layout of shard 0
    // missing and team-a one of shards 1 and 2 missing.
    const shard = (i: number, labels: Record<string, string>) =>
      lease(`failover-shard-${i}-of-3`, 'shard', 2, {
        [ELECTION_LABEL]: 'failover',
        [SHARD_LABEL]: String(i),
        [SHARDS_LABEL]: '3',
        ...labels,
      });
    const rolling: OperatorLeases = {
      leader: [lease('failover', 'operator', 2, { [WATCH_NAMESPACE_LABEL]: 'team-a' })],
      shards: [shard(0, { [WATCH_NAMESPACE_LABEL]: 'team-a' }), shard(1, {}), shard(2, {})],
    };
    const a = watching(rolling, 'team-a');
    expect(a?.shards).toHaveLength(3);
    expect(a?.leader).toHaveLength(1);
    expect(shardLayout(a, now)?.unheld()).toEqual([]);
    expect(operatorLeaseWarning(a, now)).toBeUndefined();
    const b = watching(rolling, 'team-b');
    expect(b).toEqual({ leader: [], shards: [] });
    expect(shardLayout(b, now)).toBeUndefined();
  });

  it('says nothing when the Leases could not be read', () => {
    expect(operatorLeaseWarning(watching(undefined, 'team-a'), now)).toBeUndefined();
  });

  it('counts an operator watching every namespace, or one from before the label, for any namespace', () => {
    const everywhere = lease('failover', 'operator', 1, { [WATCH_NAMESPACE_LABEL]: '' });
    const unlabelled = lease('old', 'operator', 1, {});
    const scoped = lease('scoped', 'operator', 1, { [WATCH_NAMESPACE_LABEL]: 'team-a' });
    const all: OperatorLeases = { leader: [everywhere, unlabelled, scoped], shards: [] };
    expect(watching(all, 'team-z')?.leader.map((l) => l.metadata.name)).toEqual(['failover', 'old']);
    // --all-namespaces: every operator's Leases, as before the label.
    expect(watching(all, undefined)?.leader).toHaveLength(3);
    expect(watching(undefined, 'team-a')).toBeUndefined();
  });
});
