/**
 * Safety properties of decide over generated situations. The generators are biased toward what
 * matters (outages, silent primaries, partial partitions, requests, strays, operations in flight,
 * lags and ages at the edges of their limits), and each property counts how often its assertion
 * was really reached: a property that returns early on almost every input proves nothing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus, Operation } from '../../api/v1alpha1/index.ts';
import { lagWindowMs } from './candidates.ts';
import { ago, inProgress, NOW, spec } from './decide.fixtures.ts';
import { decide } from './decide.ts';
import { judgePrimary } from './detection.ts';
import type { ClusterFacts, DecideInput, Vote } from './facts.ts';
import { healthyStandby, writable } from './facts.ts';

const NAMES = ['a', 'b', 'c'] as const;
type Shape = 'healthy' | 'outage' | 'silent' | 'partial' | 'request' | 'stray' | 'inflight' | 'recreated';

/** True with probability p (fast-check's own number generators lean toward the ends of ranges). */
const chance = (p: number) =>
  fc.oneof(
    { weight: Math.round(p * 100), arbitrary: fc.constant(true) },
    { weight: Math.round((1 - p) * 100), arbitrary: fc.constant(false) },
  );

/** A figure usually inside its limit, sometimes at it, sometimes beyond. */
const nearLimit = (max: number, integer = false) =>
  fc.oneof(
    { weight: 6, arbitrary: integer ? fc.integer({ min: 0, max }) : fc.double({ min: 0, max, noNaN: true }) },
    { weight: 1, arbitrary: fc.constant(max) },
    {
      weight: 2,
      arbitrary: integer
        ? fc.integer({ min: max + 1, max: max * 3 + 2 })
        : fc.double({ min: max, max: max * 3 + 1, noNaN: true }),
    },
  );

const clusterArb = (
  name: string,
  role: 'Primary' | 'Standby',
  budget: { seconds: number; bytes: number },
  epoch: number,
) =>
  fc
    .record({
      reachable: chance(0.9),
      role: fc.oneof(
        { weight: 12, arbitrary: fc.constant(role) },
        { weight: 1, arbitrary: fc.constantFrom('Fenced', 'Unknown', 'Primary', 'Standby') },
      ),
      lagSeconds: fc.option(nearLimit(budget.seconds), { nil: undefined, freq: 12 }),
      lagBytes: fc.option(nearLimit(budget.bytes, true), { nil: undefined, freq: 12 }),
      lagAgo: fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 0, max: 5 }) },
        { weight: 1, arbitrary: fc.integer({ min: 6, max: 120 }) },
      ),
      heartbeat: fc.oneof(
        { weight: 10, arbitrary: fc.constant(epoch) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: epoch + 2 }) },
      ),
    })
    .map(
      (g): ClusterFacts => ({
        name,
        exists: true,
        reachable: g.reachable,
        role: g.reachable ? (g.role as ClusterFacts['role']) : 'Unknown',
        observedAt: ago(0.5),
        lastReachableAt: ago(g.reachable ? 0.5 : 20),
        ...(g.reachable ? { heartbeatEpoch: g.heartbeat } : {}),
        ...(g.lagSeconds !== undefined ? { lagSeconds: g.lagSeconds } : {}),
        ...(g.lagBytes !== undefined ? { lagBytes: g.lagBytes } : {}),
        lagObservedAt: ago(g.lagAgo),
      }),
    );

const OBSERVERS = ['operator', 'region-a', 'region-b', 'region-c'];

/** One vote per observer (sometimes two, sometimes none), each reaching the primary with `upChance`. */
const votesArb = (upChance: number, threshold: number, lastSeenAgo: number) =>
  fc
    .array(
      fc.record({
        present: chance(0.9),
        up: chance(upChance),
        age: fc.oneof(
          { weight: 8, arbitrary: fc.integer({ min: 0, max: 3 }) },
          { weight: 1, arbitrary: fc.integer({ min: -2, max: 40 }) },
        ),
        failures: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: threshold, max: threshold + 3 }) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: threshold }) },
        ),
      }),
      { minLength: OBSERVERS.length, maxLength: OBSERVERS.length },
    )
    .map((gs) =>
      gs.flatMap((g, n): Vote[] =>
        g.present
          ? [
              {
                observer: OBSERVERS[n] as string,
                observedAt: ago(g.age),
                reachable: g.up,
                consecutiveFailures: g.up ? 0 : g.failures,
                lastSeenAt: ago(g.up ? g.age : lastSeenAgo),
              },
            ]
          : [],
      ),
    );

const shapeArb = fc.constantFrom<Shape>(
  'healthy',
  'outage',
  'outage',
  'silent',
  'partial',
  'request',
  'stray',
  'inflight',
  'recreated',
);

const inputArb = fc
  .record({
    shape: shapeArb,
    quorum: fc.integer({ min: 1, max: 3 }),
    failureThreshold: fc.integer({ min: 1, max: 4 }),
    maxLagSeconds: fc.integer({ min: 0, max: 30 }),
    maxLagBytes: fc.integer({ min: 0, max: 2_000_000 }),
    cooldownSeconds: fc.constantFrom(0, 60, 600),
    holdDownSeconds: fc.constantFrom(0, 0, 0, 5, 30),
    mode: fc.constantFrom('Automatic', 'Automatic', 'Automatic', 'Manual'),
    fencing: fc.constantFrom('ReadOnly', 'Shutdown', 'EpochOnly'),
    active: fc.constantFrom(...NAMES),
    epoch: fc.integer({ min: 0, max: 20 }),
    lastFailoverAgo: fc.option(fc.integer({ min: 0, max: 1200 }), { nil: undefined, freq: 2 }),
    downSinceAgo: fc.option(fc.integer({ min: 0, max: 60 }), { nil: undefined }),
    lastSeenAgo: fc.integer({ min: 1, max: 40 }),
    seed: fc.integer({ min: 0, max: 1000 }),
    seenSinceStep: chance(0.5),
    request: fc.record({
      kind: fc.constantFrom('Switchover', 'Failover'),
      target: fc.constantFrom(...NAMES),
      allowDataLoss: fc.boolean(),
    }),
    step: fc.constantFrom<Operation['step']>(
      'Detected',
      'Fencing',
      'CatchingUp',
      'Promoting',
      'Promoting',
      'Promoting',
      'Promoting',
      'RepointingDns',
      'VerifyingDns',
    ),
  })
  .chain((g) => {
    const primaryDown =
      g.shape === 'outage' ||
      g.shape === 'silent' ||
      (g.shape === 'request' && g.request.kind === 'Failover');
    const others = NAMES.filter((n) => n !== g.active);
    const budget = { seconds: g.maxLagSeconds, bytes: g.maxLagBytes };
    const upChance = primaryDown ? 0.1 : g.shape === 'partial' ? 0.5 : 0.9;
    return fc
      .record({
        clusters: fc.tuple(
          ...NAMES.map((n) => clusterArb(n, n === g.active ? 'Primary' : 'Standby', budget, g.epoch)),
        ),
        votes: votesArb(upChance, g.failureThreshold, g.lastSeenAgo),
      })
      .map(({ clusters, votes }) => {
        const facts: Record<string, ClusterFacts> = {};
        for (const c of clusters) facts[c.name] = c;
        const active = facts[g.active] as ClusterFacts;
        if (primaryDown)
          facts[g.active] = {
            ...active,
            reachable: false,
            role: 'Unknown',
            lastReachableAt: ago(g.lastSeenAgo),
          };
        if (primaryDown) {
          // The standbys' last lag figures are from around the primary's last sign of life (a silent
          // primary: long before the quorum formed), now and then from long before it.
          for (const n of others) {
            const f = facts[n] as ClusterFacts;
            const drift = g.shape === 'silent' ? (g.seed % 5) - 1 : (g.seed % 13) - 2;
            facts[n] = { ...f, lagObservedAt: ago(g.lastSeenAgo + drift) };
          }
        }
        if (g.shape === 'stray') {
          const n = others[g.seed % others.length] as string;
          facts[n] = {
            ...(facts[n] as ClusterFacts),
            reachable: true,
            role: 'Primary',
            heartbeatEpoch: Math.max(0, g.epoch - (g.seed % 2)),
          };
        }
        const status: FailoverPolicyStatus =
          g.shape === 'recreated'
            ? {}
            : {
                activePrimary: g.active,
                epoch: g.epoch,
                ...(g.lastFailoverAgo !== undefined
                  ? { lastFailoverTime: ago(g.lastFailoverAgo).toISOString() }
                  : {}),
                ...(g.downSinceAgo !== undefined
                  ? { primaryDownSince: ago(g.downSinceAgo).toISOString() }
                  : {}),
                ...(g.shape === 'inflight'
                  ? {
                      currentOperation: inProgress(g.step, {
                        from: g.active,
                        to: others[0] as string,
                        epoch: g.epoch + 1,
                        stepStartedAt: ago(g.seenSinceStep ? 1 : 0.2).toISOString(),
                      }),
                    }
                  : {}),
              };
        const i: DecideInput = {
          spec: spec({
            detection: { quorum: g.quorum, failureThreshold: g.failureThreshold, probeIntervalSeconds: 1 },
            promotion: {
              mode: g.mode,
              fencing: g.fencing,
              rpo: { maxLagSeconds: g.maxLagSeconds, maxLagBytes: g.maxLagBytes },
              cooldownSeconds: g.cooldownSeconds,
              holdDownSeconds: g.holdDownSeconds,
            },
            ...(g.shape === 'request'
              ? {
                  promotionRequest: {
                    id: 'r1',
                    ...g.request,
                    allowDataLoss: g.request.kind === 'Failover' && g.request.allowDataLoss,
                  },
                }
              : {}),
          }),
          status,
          clusters: facts,
          votes,
          now: NOW,
          dnsTargets: { a: 'a.db', b: 'b.db', c: 'c.db' },
          dnsOwner: 'ns/orders',
          ...(g.shape === 'recreated'
            ? { dns: { readAt: NOW, value: `${g.active}.db`, owner: 'ns/orders', epoch: g.epoch } }
            : {}),
        };
        return { shape: g.shape, input: i };
      });
  });

/** The operation a plan started, if it started one. */
const startedBy = (i: DecideInput) => {
  const plan = decide(i);
  const op = plan.status.currentOperation;
  return { plan, op: op && op.id !== i.status.currentOperation?.id ? op : undefined };
};

const RUNS = { numRuns: 4000 };

describe('decide: safety properties (biased generators, coverage asserted)', () => {
  it('promotes only a healthy standby, at the next epoch, never the primary; a fence keeps the epoch', () => {
    const reached = { promote: 0, fence: 0 };
    fc.assert(
      fc.property(inputArb, ({ input: i }) => {
        const { op } = startedBy(i);
        if (!op) return;
        if (op.kind === 'Fence') {
          reached.fence++;
          expect(op.epoch).toBe(i.status.epoch ?? 0);
          // Never a database holding a newer epoch than status: that would be the real primary.
          expect(i.clusters[op.from]?.heartbeatEpoch ?? 0).toBeLessThanOrEqual(i.status.epoch ?? 0);
          expect(writable(i.clusters[op.from])).toBe(true);
          return;
        }
        reached.promote++;
        expect(op.to).not.toBe(i.status.activePrimary);
        expect(healthyStandby(i.clusters[op.to])).toBe(true);
        expect(op.epoch).toBe((i.status.epoch ?? 0) + 1);
      }),
      RUNS,
    );
    expect(reached.promote).toBeGreaterThan(RUNS.numRuns * 0.08);
    expect(reached.fence).toBeGreaterThan(RUNS.numRuns * 0.03);
  });

  it('never promotes automatically beyond the RPO budget, or on a lag not measured close to the loss', () => {
    let reached = 0;
    fc.assert(
      fc.property(inputArb, ({ input: i }) => {
        const { op } = startedBy(i);
        if (op?.trigger !== 'Automatic' || op.kind !== 'Failover') return;
        reached++;
        const t = i.clusters[op.to] as ClusterFacts;
        const verdict = judgePrimary(i.spec, i.votes, i.now, i.status.activePrimary ?? '');
        expect(verdict.down).toBe(true);
        expect(i.spec.promotion.mode).toBe('Automatic');
        expect(t.lagSeconds ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(
          i.spec.promotion.rpo.maxLagSeconds,
        );
        expect(t.lagBytes ?? Number.POSITIVE_INFINITY).toBeLessThanOrEqual(i.spec.promotion.rpo.maxLagBytes);
        const lostAt = new Date(op.primaryLostAt ?? 0).getTime();
        expect(t.lagObservedAt?.getTime() ?? 0).toBeGreaterThanOrEqual(lostAt - lagWindowMs(i.spec));
        if (i.status.lastFailoverTime)
          expect(NOW.getTime() - new Date(i.status.lastFailoverTime).getTime()).toBeGreaterThanOrEqual(
            i.spec.promotion.cooldownSeconds * 1000,
          );
        const since = new Date(i.status.primaryDownSince ?? NOW).getTime();
        expect(NOW.getTime() - since).toBeGreaterThanOrEqual(i.spec.promotion.holdDownSeconds * 1000);
      }),
      RUNS,
    );
    expect(reached).toBeGreaterThan(RUNS.numRuns * 0.05);
  });

  it('never runs the promotion step while the old primary was seen taking writes since the step began', () => {
    const reached = { promoting: 0, sentBack: 0 };
    fc.assert(
      fc.property(inputArb, ({ input: i }) => {
        const op = i.status.currentOperation;
        if (!op || op.kind === 'Fence' || op.step !== 'Promoting') return;
        const { plan } = startedBy(i);
        const from = i.clusters[op.from];
        const seenSince = from?.observedAt !== undefined && from.observedAt > new Date(op.stepStartedAt);
        if (writable(from) && seenSince && plan.status.currentOperation?.step === 'Fencing')
          reached.sentBack++;
        if (plan.action.kind !== 'RunStep' || plan.action.operation.step !== 'Promoting') return;
        reached.promoting++;
        expect(writable(from) && seenSince).toBe(false);
      }),
      RUNS,
    );
    expect(reached.promoting).toBeGreaterThan(RUNS.numRuns * 0.01);
    expect(reached.sentBack).toBeGreaterThan(RUNS.numRuns * 0.005);
  });

  it('a policy that lost its status only learns who is primary: no fence, no promotion, no DNS change', () => {
    let reached = 0;
    fc.assert(
      fc.property(inputArb, ({ shape, input: i }) => {
        if (shape !== 'recreated') return;
        reached++;
        const { plan } = startedBy(i);
        expect(plan.action.kind === 'RunStep' || plan.action.kind === 'RepairDns').toBe(false);
        expect(plan.status.currentOperation).toBeUndefined();
        if (plan.status.activePrimary) expect(plan.status.epoch).toBeGreaterThanOrEqual(i.dns?.epoch ?? 0);
      }),
      RUNS,
    );
    expect(reached).toBeGreaterThan(RUNS.numRuns * 0.05);
  });

  it('acts on a request at most once, and only by starting or rejecting it', () => {
    let reached = 0;
    fc.assert(
      fc.property(inputArb, ({ shape, input: i }) => {
        if (shape !== 'request') return;
        const { plan, op } = startedBy(i);
        const handled = plan.status.lastHandledRequestId === 'r1';
        if (!handled) return;
        reached++;
        const again = decide({ ...i, status: plan.status });
        expect(
          again.status.lastRequest?.id === 'r1' &&
            again.status.currentOperation?.requestId === 'r1' &&
            again.status.currentOperation.id !== op?.id,
        ).toBe(false);
        expect(op === undefined || op.requestId === 'r1').toBe(true);
      }),
      RUNS,
    );
    expect(reached).toBeGreaterThan(RUNS.numRuns * 0.05);
  });
});
