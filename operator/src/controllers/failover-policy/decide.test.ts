import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type FailoverPolicyStatus, failoverPolicySpec, type Operation } from '../../api/v1alpha1/index.ts';
import { type ClusterFacts, type DecideInput, decide, judgePrimary, type Vote } from './decide.ts';

const NOW = new Date('2026-03-02T10:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);

const baseSpec = {
  primary: 'a',
  standbys: ['b', 'c'],
  dns: {
    provider: { type: 'Route53', route53: { hostedZoneId: 'Z1' } },
    zone: 'example.com',
    name: 'db.example.com',
  },
  detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 2 },
  promotion: { rpo: { maxLagSeconds: 10, maxLagBytes: 1_000_000 }, cooldownSeconds: 600 },
};
const spec = (over: Record<string, unknown> = {}) => failoverPolicySpec.parse({ ...baseSpec, ...over });

const primaryUp: ClusterFacts = { name: 'a', exists: true, reachable: true, role: 'Primary' };
const primaryGone: ClusterFacts = { name: 'a', exists: true, reachable: false, role: 'Unknown' };
const standby = (name: string, lagSeconds = 1, lagBytes = 1000, measuredAgo = 4): ClusterFacts => ({
  name,
  exists: true,
  reachable: true,
  role: 'Standby',
  lagSeconds,
  lagBytes,
  lagObservedAt: ago(measuredAgo),
});
const down = (observer: string, failures = 3, ageSeconds = 1): Vote => ({
  observer,
  observedAt: ago(ageSeconds),
  reachable: false,
  consecutiveFailures: failures,
});
const up = (observer: string, ageSeconds = 1): Vote => ({
  observer,
  observedAt: ago(ageSeconds),
  reachable: true,
  consecutiveFailures: 0,
});

function input(over: Partial<DecideInput> & { specOver?: Record<string, unknown> } = {}): DecideInput {
  const { specOver, ...rest } = over;
  return {
    spec: spec(specOver),
    status: { activePrimary: 'a', epoch: 4 },
    clusters: { a: primaryUp, b: standby('b'), c: standby('c') },
    votes: [up('operator'), up('region-b'), up('region-c')],
    now: NOW,
    ...rest,
  };
}

const outage = (over: Partial<DecideInput> & { specOver?: Record<string, unknown> } = {}) =>
  input({
    clusters: { a: primaryGone, b: standby('b'), c: standby('c') },
    votes: [down('operator'), down('region-b'), down('region-c')],
    ...over,
  });

const inProgress = (step: Operation['step'], over: Partial<Operation> = {}): Operation => ({
  id: 'failover-e5-x',
  kind: 'Failover',
  trigger: 'Automatic',
  from: 'a',
  to: 'b',
  epoch: 5,
  step,
  startedAt: ago(10).toISOString(),
  stepStartedAt: ago(5).toISOString(),
  ...over,
});

describe('decide: detection', () => {
  const cases: [string, DecideInput, string, string?][] = [
    ['all observers reach the primary', input(), 'Observe', 'Healthy'],
    [
      'one observer loses sight: not an outage',
      input({ votes: [down('region-b'), up('operator'), up('region-c')] }),
      'Observe',
      'Healthy',
    ],
    [
      'two of three lose sight: an outage',
      input({
        clusters: { a: primaryGone, b: standby('b'), c: standby('c') },
        votes: [down('region-b'), down('region-c'), up('operator')],
      }),
      'StartOperation',
      'FailingOver',
    ],
    [
      'down votes below the failure threshold do not count',
      outage({ votes: [down('region-b', 2), down('region-c', 2), down('operator', 2)] }),
      'Observe',
      'Healthy',
    ],
    [
      'stale down votes do not count',
      outage({ votes: [down('region-b', 3, 60), down('region-c', 3, 60), down('operator', 3, 60)] }),
      'Observe',
    ],
    [
      'one observer reporting twice is one vote',
      outage({ votes: [down('region-b'), down('region-b', 4, 0.5)] }),
      'Observe',
    ],
    [
      'a tie between down and up is not an outage',
      outage({
        specOver: { detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 1 } },
        votes: [down('region-b'), up('region-c')],
      }),
      'Observe',
    ],
  ];
  it.each(cases)('%s', (_, i, action, phase) => {
    const plan = decide(i);
    expect(plan.action.kind).toBe(action);
    if (phase) expect(plan.phase).toBe(phase);
  });

  it('reports too few observers as Unknown, not as available', () => {
    const plan = decide(input({ votes: [down('region-b')] }));
    expect(plan.conditions.find((c) => c.type === 'PrimaryAvailable')).toMatchObject({
      status: 'Unknown',
      reason: 'TooFewObservers',
    });
  });

  it('records when the quorum first agreed, and keeps that time', () => {
    const first = decide(outage({ specOver: { promotion: { holdDownSeconds: 30 } } }));
    expect(first.primaryDownSince).toBe('2026-03-02T10:00:00.000Z');
    const later = decide(
      outage({
        specOver: { promotion: { holdDownSeconds: 30 } },
        status: { activePrimary: 'a', epoch: 4, primaryDownSince: '2026-03-02T09:59:50Z' },
      }),
    );
    expect(later.primaryDownSince).toBe('2026-03-02T09:59:50Z');
  });
});

describe('decide: automatic failover', () => {
  it('promotes the first healthy standby within budget, at the next epoch, recording the expected loss', () => {
    const plan = decide(outage());
    expect(plan.action).toMatchObject({
      kind: 'StartOperation',
      operation: {
        kind: 'Failover',
        trigger: 'Automatic',
        from: 'a',
        to: 'b',
        epoch: 5,
        step: 'Detected',
        estimatedLossSeconds: 1,
        estimatedLossBytes: 1000,
      },
    });
  });

  it('skips an unreachable standby for the next one', () => {
    const plan = decide(
      outage({ clusters: { a: primaryGone, b: { ...standby('b'), reachable: false }, c: standby('c') } }),
    );
    expect(plan.action).toMatchObject({ kind: 'StartOperation', operation: { to: 'c' } });
  });

  const blockedCases: [string, DecideInput, string][] = [
    ['manual mode', outage({ specOver: { promotion: { mode: 'Manual' } } }), 'ManualMode'],
    [
      'inside the cool-down',
      outage({ status: { activePrimary: 'a', epoch: 4, lastFailoverTime: ago(60).toISOString() } }),
      'Cooldown',
    ],
    [
      'lag in seconds above budget',
      outage({ clusters: { a: primaryGone, b: standby('b', 11), c: standby('c', 50) } }),
      'LagAboveBudget',
    ],
    [
      'lag in bytes above budget',
      outage({ clusters: { a: primaryGone, b: standby('b', 1, 2_000_000), c: standby('c', 1, 5_000_000) } }),
      'LagAboveBudget',
    ],
    [
      'lag never measured',
      outage({
        clusters: {
          a: primaryGone,
          b: { ...standby('b'), lagObservedAt: undefined },
          c: { ...standby('c'), lagObservedAt: undefined },
        },
      }),
      'LagUnknown',
    ],
    [
      'lag measured long before the loss',
      outage({ clusters: { a: primaryGone, b: standby('b', 1, 1, 3600), c: standby('c', 1, 1, 3600) } }),
      'LagUnknown',
    ],
    [
      'no standby reachable',
      outage({
        clusters: {
          a: primaryGone,
          b: { ...standby('b'), reachable: false },
          c: { ...standby('c'), reachable: false },
        },
      }),
      'NoHealthyStandby',
    ],
    [
      'standbys in the wrong role',
      outage({
        clusters: {
          a: primaryGone,
          b: { ...standby('b'), role: 'Fenced' },
          c: { ...standby('c'), role: 'Unknown' },
        },
      }),
      'NoHealthyStandby',
    ],
  ];
  it.each(blockedCases)('is blocked: %s', (_, i, reason) => {
    const plan = decide(i);
    expect(plan.action.kind).toBe('Observe');
    expect(plan.phase).toBe('Blocked');
    expect(plan.conditions.find((c) => c.type === 'FailoverBlocked')).toMatchObject({
      status: 'True',
      reason,
    });
  });

  it('waits out the hold-down, then fails over', () => {
    const held = outage({
      specOver: { promotion: { holdDownSeconds: 30 } },
      status: { activePrimary: 'a', epoch: 4, primaryDownSince: ago(10).toISOString() },
    });
    expect(decide(held).action).toMatchObject({ kind: 'Observe' });
    expect(decide(held).conditions.find((c) => c.type === 'FailoverBlocked')?.reason).toBe('HoldDown');
    const past = { ...held, status: { ...held.status, primaryDownSince: ago(31).toISOString() } };
    const plan = decide(past);
    expect(plan.action).toMatchObject({
      kind: 'StartOperation',
      operation: { primaryLostAt: ago(31).toISOString() },
    });
  });

  it('does not fail back to a recovered old primary', () => {
    const afterFailover: FailoverPolicyStatus = {
      activePrimary: 'b',
      epoch: 5,
      lastFailoverTime: ago(7200).toISOString(),
    };
    const plan = decide(
      input({
        status: afterFailover,
        clusters: { a: { ...standby('a'), role: 'Fenced' }, b: { ...primaryUp, name: 'b' }, c: standby('c') },
      }),
    );
    expect(plan.action.kind).toBe('Observe');
  });
});

describe('decide: never two primaries', () => {
  it('fences a database that accepts writes but is not the active primary', () => {
    const plan = decide(
      input({
        status: { activePrimary: 'b', epoch: 5 },
        clusters: { a: primaryUp, b: { ...primaryUp, name: 'b' }, c: standby('c') },
      }),
    );
    expect(plan.action).toEqual({ kind: 'FenceStrayPrimary', cluster: 'a', epoch: 5 });
  });

  it('goes back to fencing when the old primary accepts writes again before the promotion', () => {
    const plan = decide(
      input({ status: { activePrimary: 'a', epoch: 4, currentOperation: inProgress('Promoting') } }),
    );
    expect(plan.action).toMatchObject({ kind: 'RunStep', operation: { step: 'Fencing' } });
  });

  it('does not stand down for want of evidence (a restarted operator has not probed yet)', () => {
    const plan = decide(
      input({
        votes: [],
        clusters: { a: { ...primaryGone }, b: standby('b'), c: standby('c') },
        status: { activePrimary: 'a', epoch: 4, currentOperation: inProgress('Detected') },
      }),
    );
    expect(plan.action).toMatchObject({ kind: 'RunStep', operation: { step: 'Detected' } });
  });

  it('stands an automatic failover down if the primary is back before anything changed', () => {
    const plan = decide(
      input({ status: { activePrimary: 'a', epoch: 4, currentOperation: inProgress('Detected') } }),
    );
    expect(plan.action).toMatchObject({ kind: 'RunStep', operation: { step: 'Aborted' } });
  });

  const switchover = (step: Operation['step']) =>
    inProgress(step, { id: 'switchover-e5-x', kind: 'Switchover', trigger: 'Manual' });
  it.each(['Detected', 'Fencing', 'CatchingUp', 'RollingBack'] as const)(
    'stands a switchover down at %s when the primary is lost by quorum, so the failover rules can act',
    (step) => {
      const plan = decide(
        outage({ status: { activePrimary: 'a', epoch: 4, currentOperation: switchover(step) } }),
      );
      expect(plan.action).toMatchObject({ kind: 'RunStep', operation: { step: 'Aborted' } });
      expect((plan.action as { operation: Operation }).operation.reason).toMatch(
        /a was lost .* before b was promoted/,
      );
    },
  );

  it('carries on with a switchover once it promotes, and with one whose primary only one observer lost', () => {
    const promoting = decide(
      outage({ status: { activePrimary: 'a', epoch: 4, currentOperation: switchover('Promoting') } }),
    );
    expect(promoting.action).toMatchObject({ kind: 'RunStep', operation: { step: 'Promoting' } });
    const fencing = decide(
      input({
        votes: [down('region-b'), up('operator'), up('region-c')],
        status: { activePrimary: 'a', epoch: 4, currentOperation: switchover('Fencing') },
      }),
    );
    expect(fencing.action).toMatchObject({ kind: 'RunStep', operation: { step: 'Fencing' } });
  });

  it('carries on with an operation that has touched a database, whatever is observed', () => {
    const plan = decide(
      input({ status: { activePrimary: 'a', epoch: 4, currentOperation: inProgress('RepointingDns') } }),
    );
    expect(plan.action).toMatchObject({ kind: 'RunStep', operation: { step: 'RepointingDns' } });
  });
});

describe('decide: promotion requests', () => {
  const req = (r: Record<string, unknown>) => ({ promotionRequest: { id: 'r1', target: 'b', ...r } });

  it('starts a switchover once, with the request id', () => {
    const plan = decide(input({ specOver: req({ kind: 'Switchover', reason: 'maintenance' }) }));
    expect(plan.action).toMatchObject({
      kind: 'StartOperation',
      operation: { kind: 'Switchover', trigger: 'Manual', to: 'b', requestId: 'r1', epoch: 5 },
    });
    const handled = decide(
      input({
        specOver: req({ kind: 'Switchover' }),
        status: { activePrimary: 'a', epoch: 4, lastHandledRequestId: 'r1' },
      }),
    );
    expect(handled.action.kind).toBe('Observe');
  });

  const rejected: [string, DecideInput, string][] = [
    [
      'a switchover without a reachable primary',
      outage({ specOver: req({ kind: 'Switchover' }) }),
      'PrimaryUnavailable',
    ],
    [
      'a failover while the primary takes writes',
      input({ specOver: req({ kind: 'Failover' }) }),
      'PrimaryAvailable',
    ],
    [
      'a failover beyond the budget',
      outage({
        specOver: req({ kind: 'Failover' }),
        clusters: { a: primaryGone, b: standby('b', 60), c: standby('c') },
      }),
      'LagAboveBudget',
    ],
    ['a promotion of the primary itself', input({ specOver: req({ target: 'a' }) }), 'AlreadyPrimary'],
    [
      'a target that is not a standby',
      input({
        specOver: req({}),
        clusters: { a: primaryUp, b: { ...standby('b'), reachable: false }, c: standby('c') },
      }),
      'TargetNotStandby',
    ],
  ];
  it.each(rejected)('rejects %s, saying why', (_, i, reason) => {
    const plan = decide(i);
    expect(plan.action).toMatchObject({ kind: 'RejectRequest', requestId: 'r1', reason });
  });

  it('accepts a failover beyond the budget when the request allows data loss', () => {
    const plan = decide(
      outage({
        specOver: req({ kind: 'Failover', allowDataLoss: true }),
        clusters: { a: primaryGone, b: standby('b', 60), c: standby('c') },
      }),
    );
    expect(plan.action).toMatchObject({
      kind: 'StartOperation',
      operation: { kind: 'Failover', trigger: 'Manual', allowDataLoss: true },
    });
  });

  it('works in manual mode', () => {
    const plan = decide(
      outage({ specOver: { ...req({ kind: 'Failover' }), promotion: { mode: 'Manual' } } }),
    );
    expect(plan.action).toMatchObject({ kind: 'StartOperation' });
  });
});

describe('decide: invariants (property-based)', () => {
  const names = ['a', 'b', 'c'];
  const roleArb = fc.constantFrom('Primary', 'Standby', 'Fenced', 'Unknown') as fc.Arbitrary<
    ClusterFacts['role']
  >;
  const factsArb = (name: string) =>
    fc.record({
      name: fc.constant(name),
      exists: fc.boolean(),
      reachable: fc.boolean(),
      role: roleArb,
      lagSeconds: fc.option(fc.double({ min: 0, max: 120, noNaN: true }), { nil: undefined }),
      lagBytes: fc.option(fc.integer({ min: 0, max: 10_000_000 }), { nil: undefined }),
      lagObservedAt: fc.option(fc.integer({ min: 0, max: 600 }).map(ago), { nil: undefined }),
    });
  const voteArb = fc.record({
    observer: fc.constantFrom('operator', 'region-a', 'region-b', 'region-c', 'region-d'),
    observedAt: fc.integer({ min: -5, max: 120 }).map(ago),
    reachable: fc.boolean(),
    consecutiveFailures: fc.integer({ min: 0, max: 8 }),
  });
  const inputArb = fc
    .record({
      quorum: fc.integer({ min: 1, max: 4 }),
      failureThreshold: fc.integer({ min: 1, max: 5 }),
      probeIntervalSeconds: fc.integer({ min: 1, max: 10 }),
      maxLagSeconds: fc.integer({ min: 0, max: 60 }),
      maxLagBytes: fc.integer({ min: 0, max: 5_000_000 }),
      cooldownSeconds: fc.integer({ min: 0, max: 3600 }),
      holdDownSeconds: fc.integer({ min: 0, max: 60 }),
      mode: fc.constantFrom('Automatic', 'Manual'),
      active: fc.constantFrom(...names),
      epoch: fc.integer({ min: 0, max: 100 }),
      lastFailoverAgo: fc.option(fc.integer({ min: 0, max: 7200 }), { nil: undefined }),
      downSinceAgo: fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }),
      a: factsArb('a'),
      b: factsArb('b'),
      c: factsArb('c'),
      votes: fc.array(voteArb, { maxLength: 8 }),
    })
    .map(
      (g): DecideInput => ({
        spec: spec({
          detection: {
            quorum: g.quorum,
            failureThreshold: g.failureThreshold,
            probeIntervalSeconds: g.probeIntervalSeconds,
          },
          promotion: {
            mode: g.mode,
            rpo: { maxLagSeconds: g.maxLagSeconds, maxLagBytes: g.maxLagBytes },
            cooldownSeconds: g.cooldownSeconds,
            holdDownSeconds: g.holdDownSeconds,
          },
        }),
        status: {
          activePrimary: g.active,
          epoch: g.epoch,
          ...(g.lastFailoverAgo !== undefined
            ? { lastFailoverTime: ago(g.lastFailoverAgo).toISOString() }
            : {}),
          ...(g.downSinceAgo !== undefined ? { primaryDownSince: ago(g.downSinceAgo).toISOString() } : {}),
        },
        clusters: { a: g.a, b: g.b, c: g.c },
        votes: g.votes,
        now: NOW,
      }),
    );
  const automaticStart = (i: DecideInput) => {
    const a = decide(i).action;
    return a.kind === 'StartOperation' && a.operation.trigger === 'Automatic' ? a.operation : undefined;
  };
  const runs = { numRuns: 3000 };

  it('never promotes anything but a reachable standby, and never while another database is a writable stray', () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const a = decide(i).action;
        if (a.kind !== 'StartOperation') return;
        const target = i.clusters[a.operation.to];
        expect(a.operation.to).not.toBe(i.status.activePrimary);
        expect(target?.reachable && target.role === 'Standby').toBe(true);
        for (const name of names) {
          if (name !== i.status.activePrimary)
            expect(i.clusters[name]?.reachable && i.clusters[name]?.role === 'Primary').toBe(false);
        }
      }),
      runs,
    );
  });

  it('never runs the promotion step while the old primary accepts writes', () => {
    fc.assert(
      fc.property(
        inputArb,
        fc.constantFrom('Detected', 'Fencing', 'CatchingUp', 'Promoting', 'RepointingDns'),
        (i, step) => {
          const withOp = {
            ...i,
            status: {
              ...i.status,
              currentOperation: inProgress(step as Operation['step'], { from: 'a', to: 'b' }),
            },
          };
          const a = decide(withOp).action;
          if (a.kind === 'RunStep' && a.operation.step === 'Promoting') {
            expect(withOp.clusters.a?.reachable && withOp.clusters.a.role === 'Primary').toBe(false);
          }
        },
      ),
      runs,
    );
  });

  it('never promotes automatically beyond the RPO budget or on an unknown lag', () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const op = automaticStart(i);
        if (!op) return;
        const t = i.clusters[op.to];
        expect(t?.lagSeconds).toBeDefined();
        expect(t?.lagBytes).toBeDefined();
        expect(t?.lagSeconds ?? Infinity).toBeLessThanOrEqual(i.spec.promotion.rpo.maxLagSeconds);
        expect(t?.lagBytes ?? Infinity).toBeLessThanOrEqual(i.spec.promotion.rpo.maxLagBytes);
      }),
      runs,
    );
  });

  it('never fails over automatically while the active primary is not down by quorum (no automatic failback)', () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const op = automaticStart(i);
        if (!op) return;
        const verdict = judgePrimary(i.spec, i.votes, i.now, i.status.activePrimary ?? 'a');
        expect(verdict.down).toBe(true);
        expect(verdict.downVotes).toBeGreaterThanOrEqual(i.spec.detection.quorum);
        expect(i.spec.promotion.mode).toBe('Automatic');
      }),
      runs,
    );
  });

  it('takes no automatic action during the cool-down or the hold-down', () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const op = automaticStart(i);
        if (!op) return;
        if (i.status.lastFailoverTime) {
          expect(NOW.getTime() - new Date(i.status.lastFailoverTime).getTime()).toBeGreaterThanOrEqual(
            i.spec.promotion.cooldownSeconds * 1000,
          );
        }
        const since = new Date(i.status.primaryDownSince ?? NOW).getTime();
        expect(NOW.getTime() - since).toBeGreaterThanOrEqual(i.spec.promotion.holdDownSeconds * 1000);
      }),
      runs,
    );
  });

  it('raises the epoch by exactly one per operation', () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const a = decide(i).action;
        if (a.kind === 'StartOperation') expect(a.operation.epoch).toBe((i.status.epoch ?? 0) + 1);
      }),
      runs,
    );
  });
});

describe('decide: ended operations', () => {
  it.each(['Completed', 'Aborted'] as const)(
    'hands a %s operation to act to be filed into history',
    (step) => {
      const plan = decide(
        input({ status: { activePrimary: 'b', epoch: 5, currentOperation: inProgress(step) } }),
      );
      expect(plan.action).toMatchObject({ kind: 'RunStep', operation: { step } });
    },
  );
});
