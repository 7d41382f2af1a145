import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Lease } from './leader-election.ts';
import {
  electionLabelValue,
  fairShare,
  foreignHolders,
  LeaseLiveness,
  mayTakeShard,
  memberLeaseName,
  type ShardView,
  shardOf,
  shardToRelease,
} from './shards.ts';

describe('shardOf', () => {
  it('is FNV-1a of namespace/name: pinned, since replicas of two versions must agree', () => {
    expect(shardOf('', 1 << 30)).toBe(0x811c9dc5 % (1 << 30));
    expect(shardOf('a', 0xffffffff)).toBe(0xe40c292c % 0xffffffff);
    expect(shardOf('default/db', 3)).toBe(shardOf('default/db', 3));
    expect([0, 1, 2]).toContain(shardOf('payments/orders', 3));
  });

  it('spreads keys evenly', () => {
    for (const shards of [2, 3, 5, 16]) {
      const counts = new Array(shards).fill(0);
      for (let i = 0; i < 6000; i++) counts[shardOf(`team-${i % 7}/db-${i}`, shards)]++;
      const mean = 6000 / shards;
      for (const c of counts) expect(Math.abs(c - mean) / mean).toBeLessThan(0.15);
    }
  });
});

describe('memberLeaseName', () => {
  it('is a valid Lease name whatever the identity', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 300 }), (identity) => {
        const name = memberLeaseName('failover-operator-leader', identity);
        expect(name.length).toBeLessThanOrEqual(253);
        expect(name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      }),
    );
    expect(memberLeaseName('x', 'pod-abc')).toBe('x-member-pod-abc');
    // Cut short to fit, the hash of the whole identity stays: two long identities stay apart.
    const long = (c: string) => `pod-${'a'.repeat(300)}${c}`;
    expect(memberLeaseName('x', long('1'))).not.toBe(memberLeaseName('x', long('2')));
    // Identities that differ only where they were made safe get different names.
    expect(memberLeaseName('x', 'Host_1')).not.toBe(memberLeaseName('x', 'host-1'));
  });
});

describe('electionLabelValue', () => {
  it('fits a label value (63 characters) and stays apart for long names', () => {
    const long = (c: string) => `${'r'.repeat(70)}-${c}-leader`;
    expect(electionLabelValue('failover-operator-leader')).toBe('failover-operator-leader');
    for (const c of ['a', 'b']) {
      expect(electionLabelValue(long(c)).length).toBeLessThanOrEqual(63);
      expect(electionLabelValue(long(c))).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    }
    expect(electionLabelValue(long('a'))).not.toBe(electionLabelValue(long('b')));
  });
});

describe('shares', () => {
  const view = (shards: number, members: number, held: number[], foreign: string[] = []): ShardView => ({
    shards,
    members,
    held: new Map(held.map((s) => [s, 0])),
    foreign,
  });

  it('takes up to the share, nothing while another layout holds Leases', () => {
    expect(fairShare(3, 2)).toBe(2);
    expect(fairShare(3, 0)).toBe(3);
    expect(mayTakeShard(view(3, 2, [0]))).toBe(true);
    expect(mayTakeShard(view(3, 2, [0, 1]))).toBe(false);
    expect(mayTakeShard(view(3, 1, [], ['failover-operator-leader (held by old)']))).toBe(false);
  });

  it('gives back the highest shard held long enough, only above the share', () => {
    const v = view(3, 3, [0, 2]);
    expect(shardToRelease(v, 10_000, 5_000)).toBe(2);
    expect(shardToRelease(v, 1_000, 5_000)).toBeUndefined();
    expect(shardToRelease(view(3, 2, [0, 2]), 10_000, 5_000)).toBeUndefined();
  });
});

describe('LeaseLiveness', () => {
  const lease = (name: string, holder: string | null, renewTime: string, labels = {}): Lease => ({
    metadata: { name, labels },
    spec: { holderIdentity: holder, renewTime, leaseDurationSeconds: 10 },
  });

  it('judges by the local time since the Lease last changed, not by its timestamps', () => {
    const l = new LeaseLiveness();
    // A renewTime far in the past (the holder's clock is behind) is still live when just seen changing.
    l.observe([lease('a', 'p', '2000-01-01T00:00:00.000000Z')], 0);
    expect(l.live(lease('a', 'p', ''), 9_000)).toBe(true);
    l.observe([lease('a', 'p', '2000-01-01T00:00:00.000000Z')], 10_000);
    expect(l.live(lease('a', 'p', ''), 10_000)).toBe(false);
    l.observe([lease('a', 'p', '2000-01-01T00:00:02.000000Z')], 11_000);
    expect(l.live(lease('a', 'p', ''), 11_000)).toBe(true);
    l.observe([lease('a', null, '2000-01-01T00:00:03.000000Z')], 12_000);
    expect(l.live(lease('a', null, ''), 12_000)).toBe(false);
  });

  it('names the held shard Leases of other shard counts', () => {
    const l = new LeaseLiveness();
    const leases = [
      lease('op', 'old-pod', 't', { 'regionfailover.io/leader-election': 'operator' }),
      lease('op-shard-0-of-2', 'x', 't', {
        'regionfailover.io/leader-election': 'shard',
        'regionfailover.io/shards': '2',
      }),
      lease('op-shard-0-of-3', 'y', 't', {
        'regionfailover.io/leader-election': 'shard',
        'regionfailover.io/shards': '3',
      }),
    ];
    l.observe(leases, 0);
    // The leader Lease is the layout Lease, judged apart (ShardCoordinator.holdLayout).
    expect(foreignHolders(leases, l, 1, { shards: 3 })).toEqual(['op-shard-0-of-2 (held by x)']);
  });
});

/**
 * A model of replicas sharing shards through Leases, driven by the same decisions the coordinator
 * makes: replicas start, stop (release) and are killed (stop renewing) at random; time passes in
 * rounds of one retry period. A Lease has one holder by construction (the API server's optimistic
 * concurrency); what is checked is what the decisions make of it: once replicas stop coming and
 * going, within a few lease durations every shard is held, by live replicas only, none above its
 * share, and no shard changes hands while it stays quiet.
 */
describe('shard assignment (model)', () => {
  type Command =
    | { kind: 'start' }
    | { kind: 'stop'; which: number }
    | { kind: 'kill'; which: number }
    | { kind: 'wait'; rounds: number };
  const command: fc.Arbitrary<Command> = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ kind: 'start' as const }) },
    { weight: 1, arbitrary: fc.nat(9).map((which) => ({ kind: 'stop' as const, which })) },
    { weight: 2, arbitrary: fc.nat(9).map((which) => ({ kind: 'kill' as const, which })) },
    {
      weight: 3,
      arbitrary: fc.integer({ min: 1, max: 12 }).map((rounds) => ({ kind: 'wait' as const, rounds })),
    },
  );
  const DURATION = 5; // lease duration, in rounds

  it('converges to every shard held, by live replicas within their share', () => {
    let converged = 0;
    let rebalanced = 0;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.array(command, { minLength: 1, maxLength: 25 }),
        (shards, commands) => {
          interface Replica {
            id: number;
            alive: boolean;
            killed: boolean;
            lastRenew: number;
            held: Map<number, number>;
          }
          const replicas: Replica[] = [];
          /** shard → holder and the round it last renewed. */
          const leases = new Map<number, { holder: number; renewed: number }>();
          let now = 0;
          const round = () => {
            now++;
            for (const r of replicas) {
              if (!r.alive) continue;
              r.lastRenew = now;
              for (const s of r.held.keys()) leases.set(s, { holder: r.id, renewed: now });
            }
            const members = replicas.filter((r) => now - r.lastRenew < DURATION).length;
            for (const r of replicas.filter((x) => x.alive)) {
              const view: ShardView = { shards, members: Math.max(members, 1), held: r.held, foreign: [] };
              const release = shardToRelease(view, now, DURATION);
              if (release !== undefined) {
                r.held.delete(release);
                leases.delete(release);
                rebalanced++;
              }
              for (let s = 0; s < shards; s++) {
                const l = leases.get(s);
                const free = !l || (l.holder !== r.id && now - l.renewed >= DURATION);
                if (free && mayTakeShard(view)) {
                  if (l) replicas[l.holder]?.held.delete(s); // a killed holder's memory, not acting
                  leases.set(s, { holder: r.id, renewed: now });
                  r.held.set(s, now);
                }
              }
            }
            // One holder per shard among the replicas that act.
            const holders = new Map<number, number>();
            for (const r of replicas.filter((x) => x.alive))
              for (const s of r.held.keys()) {
                expect(holders.has(s), `shard ${s} held twice`).toBe(false);
                holders.set(s, r.id);
              }
          };
          for (const c of commands) {
            const live = replicas.filter((r) => r.alive);
            if (c.kind === 'start')
              replicas.push({
                id: replicas.length,
                alive: true,
                killed: false,
                lastRenew: now,
                held: new Map(),
              });
            else if (c.kind === 'wait') for (let i = 0; i < c.rounds; i++) round();
            else if (live.length) {
              const r = live[c.which % live.length] as Replica;
              r.alive = false;
              r.killed = c.kind === 'kill';
              if (c.kind === 'stop') {
                for (const s of r.held.keys()) leases.delete(s);
                r.held.clear();
                r.lastRenew = -DURATION;
              }
            }
          }
          const alive = replicas.filter((r) => r.alive);
          if (alive.length === 0) return;
          for (let i = 0; i < 4 * DURATION + shards * (DURATION + 1); i++) round();
          const before = new Map([...leases].map(([s, l]) => [s, l.holder]));
          for (let i = 0; i < 2 * DURATION; i++) round();
          const share = fairShare(shards, alive.length);
          for (let s = 0; s < shards; s++) {
            const holder = leases.get(s)?.holder;
            expect(holder, `shard ${s} unheld`).toBeDefined();
            expect(replicas[holder as number]?.alive).toBe(true);
            expect(before.get(s), `shard ${s} moved while quiet`).toBe(holder);
          }
          for (const r of alive) expect(r.held.size).toBeLessThanOrEqual(share);
          converged++;
        },
      ),
      { numRuns: 300 },
    );
    // The interesting cases were reached: runs that ended with replicas, and shards given back.
    expect(converged).toBeGreaterThan(150);
    expect(rebalanced).toBeGreaterThan(20);
  });
});
