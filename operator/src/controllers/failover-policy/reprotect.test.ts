import { describe, expect, it } from 'vitest';
import type { AgentReport } from '../../api/v1alpha1/index.ts';
import { ago, evaluate, gone, input, primaryUp, standby, up } from './decide.fixtures.ts';
import { decide } from './decide.ts';
import type { ClusterFacts } from './facts.ts';

type Divergence = NonNullable<AgentReport['divergence']>;

const agent = (over: Partial<AgentReport> = {}, divergence?: Partial<Divergence>): AgentReport => ({
  name: 'agent-a',
  reportedAt: ago(2).toISOString(),
  dataDirectory: '/var/lib/postgresql/15/main',
  server: 'Stopped',
  ...(divergence
    ? {
        divergence: {
          primary: 'b',
          assessedAt: ago(3).toISOString(),
          relation: 'Diverged',
          forkLsn: '0/3000148',
          localEndLsn: '0/3000600',
          localTimeline: 4,
          divergedBytes: 1208,
          ...divergence,
        },
      }
    : {}),
  ...over,
});

/** Region a was the primary; b took over at epoch 5; a is back (stopped), with its agent. */
const formerPrimary = (a: Partial<ClusterFacts> = {}, over: Parameters<typeof input>[0] = {}) =>
  input({
    status: { activePrimary: 'b', epoch: 5, history: [] },
    clusters: { a: { ...gone('a'), ...a }, b: primaryUp('b', 5), c: standby('c', 1, 1000, 4, 5) },
    votes: [up('operator'), up('region-b'), up('region-c')],
    ...over,
  });

describe('reprotect: who needs it and whether it may start alone', () => {
  it('starts at once when the former primary discards nothing (RequireRequest, the default)', () => {
    const plan = decide(formerPrimary({ agent: agent({}, { relation: 'Behind', divergedBytes: 0 }) }));
    expect(plan.status.currentOperation).toMatchObject({
      kind: 'Reprotect',
      trigger: 'Automatic',
      from: 'a',
      to: 'b',
      epoch: 5,
      step: 'Detected',
      discarded: { bytes: 0 },
    });
    expect(plan.status.currentOperation?.allowDataLoss).toBeUndefined();
  });

  it('does not start again on a probe taken before the last reprotect ended (mid-rejoin, the server down)', () => {
    const behind = { agent: agent({}, { relation: 'Behind', divergedBytes: 0 }) }; // looked 3 s ago
    const done = {
      ...{ id: 'reprotect-a', kind: 'Reprotect' as const, trigger: 'Automatic' as const, from: 'a', to: 'b' },
      ...{ epoch: 5, result: 'Succeeded' as const, startedAt: ago(20).toISOString() },
      completedAt: ago(0.2).toISOString(),
    };
    const status = { status: { activePrimary: 'b', epoch: 5, history: [done] } };
    // The probe (0.5 s ago) saw the server down mid-rejoin: nothing starts.
    expect(decide(formerPrimary(behind, status)).status.currentOperation).toBeUndefined();
    // Control: with no reprotect before, the same world starts one.
    expect(decide(formerPrimary(behind)).status.currentOperation).toMatchObject({ kind: 'Reprotect' });
  });

  it('under EpochOnly fencing, a former primary still writable but marked with the epoch is rejoined (its rejoin stops it)', () => {
    const behind = { agent: agent({}, { relation: 'Behind', divergedBytes: 0 }) };
    const marked = { ...primaryUp('a', 4), fencedEpoch: 5, ...behind };
    const world = formerPrimary(marked, {
      specOver: { promotion: { fencing: 'EpochOnly' } },
      clusters: { a: marked, b: primaryUp('b', 5), c: standby('c', 1, 1000, 4, 5) },
    });
    const plan = decide(world);
    expect(plan.reprotectWaiting?.reason).not.toBe('StrayWriter');
    expect(plan.status.currentOperation).toMatchObject({ kind: 'Reprotect', from: 'a' });
    // Under way, it does not stand down for the writer it is rejoining.
    const next = decide({ ...world, status: plan.status });
    expect(next.status.currentOperation?.step).not.toBe('Aborted');
  });

  it('a former primary its provider reprotects (a new replica, the old instance left running) is a stray while it takes writes; a marked writer is one too unless fencing is EpochOnly', () => {
    const behind = { agent: agent({}, { relation: 'Behind', divergedBytes: 0 }) };
    const rds = { ...primaryUp('a', 4), ...behind, reprotectsItself: true };
    // Its fence was refused a minute ago (RDS allows no ALTER SYSTEM), so guard 3 waits to retry.
    const refused = {
      ...{ id: 'fence-a', kind: 'Fence' as const, trigger: 'Automatic' as const, from: 'a', to: 'b' },
      ...{ epoch: 5, result: 'Aborted' as const, startedAt: ago(65).toISOString() },
      ...{ completedAt: ago(60).toISOString(), message: 'could not fence a: permission denied' },
    };
    const managed = decide(
      formerPrimary(rds, {
        status: { activePrimary: 'b', epoch: 5, history: [refused] },
        clusters: { a: rds, b: primaryUp('b', 5), c: standby('c', 1, 1000, 4, 5) },
      }),
    );
    expect(managed.status.currentOperation).toBeUndefined();
    expect(managed.reprotectWaiting).toMatchObject({ reason: 'StrayWriter', cluster: 'a' });
    // ReadOnly fencing (the default): c, promoted by hand after replaying a fence mark, is still a writer.
    const marked = { ...primaryUp('c', 5), fencedEpoch: 5 };
    const plan = decide(
      formerPrimary(behind, {
        clusters: { a: { ...gone('a'), ...behind }, b: primaryUp('b', 5), c: marked },
      }),
    );
    // Fenced first (guard 3), not rejoined beside it.
    expect(plan.status.currentOperation).toMatchObject({ kind: 'Fence', from: 'c' });
  });

  it('does not start beside a stray writer whose fence was refused; it waits, and starts once that is fenced', () => {
    const behind = { agent: agent({}, { relation: 'Behind', divergedBytes: 0 }) };
    // c was promoted by hand; its fence was refused a minute ago, so guard 3 waits to retry.
    const refused = {
      ...{ id: 'fence-c', kind: 'Fence' as const, trigger: 'Automatic' as const, from: 'c', to: 'b' },
      ...{ epoch: 5, result: 'Aborted' as const, startedAt: ago(65).toISOString() },
      ...{ completedAt: ago(60).toISOString(), message: 'could not fence c: permission denied' },
    };
    const world = (c: ClusterFacts) =>
      formerPrimary(behind, {
        status: { activePrimary: 'b', epoch: 5, history: [refused] },
        clusters: { a: { ...gone('a'), ...behind }, b: primaryUp('b', 5), c },
      });
    let status = world(primaryUp('c', 5)).status;
    for (let i = 0; i < 3; i++) {
      const plan = decide({ ...world(primaryUp('c', 5)), status });
      expect(plan.status.currentOperation).toBeUndefined();
      expect(plan.reprotectWaiting).toMatchObject({ reason: 'StrayWriter', cluster: 'a' });
      expect(plan.reprotectWaiting?.message).toContain('c takes writes beside b');
      status = plan.status;
    }
    expect(status.history).toEqual([refused]);
    // c fenced (read-only): a rejoins.
    const fenced = { ...primaryUp('c', 5), role: 'Fenced' as const };
    expect(decide({ ...world(fenced), status }).status.currentOperation).toMatchObject({
      kind: 'Reprotect',
      from: 'a',
    });
  });

  it('does not start on an assessment made before the primary last moved (a drill came back since)', () => {
    const moved = (secondsAgo: number) => ({
      ...{ id: 'drill-back', kind: 'Switchover' as const, trigger: 'Drill' as const, from: 'a', to: 'b' },
      ...{ epoch: 5, result: 'Succeeded' as const, startedAt: ago(secondsAgo + 5).toISOString() },
      completedAt: ago(secondsAgo).toISOString(),
    });
    const behind = { agent: agent({}, { relation: 'Behind', divergedBytes: 0 }) }; // assessed 3 s ago
    const status = (secondsAgo: number) => ({
      status: { activePrimary: 'b', epoch: 5, history: [moved(secondsAgo)] },
    });
    const stale = decide(formerPrimary(behind, status(1)));
    expect(stale.status.currentOperation).toBeUndefined();
    expect(stale.reprotectWaiting).toMatchObject({ reason: 'Assessing' });
    expect(stale.reprotectWaiting?.message).toContain('the primary moved since its last look');
    expect(decide(formerPrimary(behind, status(10))).status.currentOperation).toMatchObject({
      kind: 'Reprotect',
    });
  });

  it('starts alone when the diverged WAL holds no committed transaction', () => {
    const plan = decide(formerPrimary({ agent: agent({}, { divergedTransactions: 0 }) }));
    expect(plan.status.currentOperation).toMatchObject({
      kind: 'Reprotect',
      discarded: { bytes: 1208, transactions: 0 },
    });
  });

  it('waits for a person when committed transactions would be discarded, or when that cannot be told', () => {
    for (const divergedTransactions of [3, undefined]) {
      const facts = agent({}, divergedTransactions === undefined ? {} : { divergedTransactions });
      const { plan, summary } = evaluate(formerPrimary({ agent: facts }));
      expect(plan.status.currentOperation).toBeUndefined();
      expect(plan.reprotectWaiting).toMatchObject({ cluster: 'a', reason: 'ReprotectNeedsRequest' });
      const redundant = summary.conditions.find((c) => c.type === 'Redundant');
      expect(redundant).toMatchObject({ status: 'False', reason: 'ReprotectNeedsRequest' });
      expect(redundant?.message).toMatch(/1208 bytes past the fork at 0\/3000148.*--allow-data-loss/);
    }
  });

  it('with mode Automatic starts anyway, recording what it discards', () => {
    const plan = decide(
      formerPrimary(
        { agent: agent({}, { divergedTransactions: 3 }) },
        { specOver: { reprotect: { mode: 'Automatic' } } },
      ),
    );
    expect(plan.status.currentOperation).toMatchObject({
      kind: 'Reprotect',
      allowDataLoss: true,
      discarded: { bytes: 1208, transactions: 3, forkLsn: '0/3000148', endLsn: '0/3000600' },
    });
  });

  it('with mode Manual never starts alone', () => {
    const plan = decide(
      formerPrimary(
        { agent: agent({}, { relation: 'Behind', divergedBytes: 0 }) },
        { specOver: { reprotect: { mode: 'Manual' } } },
      ),
    );
    expect(plan.status.currentOperation).toBeUndefined();
    expect(plan.reprotectWaiting?.reason).toBe('ReprotectNeedsRequest');
  });

  it('says what it waits for: an agent, a fresh assessment, an agent that refuses, a failed attempt', () => {
    const reachable = { reachable: true, role: 'Fenced' as const };
    const cases: [string, Partial<ClusterFacts>, Parameters<typeof input>[0], string][] = [
      ['no agent', reachable, {}, 'NoAgent'],
      [
        'an agent silent for a minute',
        { ...reachable, agent: agent({ reportedAt: ago(60).toISOString() }, {}) },
        {},
        'NoAgent',
      ],
      ['an old assessment', { agent: agent({}, { assessedAt: ago(120).toISOString() }) }, {}, 'Assessing'],
      ['an assessment against another primary', { agent: agent({}, { primary: 'c' }) }, {}, 'Assessing'],
      [
        'an agent that refuses',
        { agent: agent({ problem: { reason: 'ForeignCluster', message: 'another system identifier' } }, {}) },
        {},
        'AgentRefuses',
      ],
    ];
    for (const [what, facts, over, reason] of cases) {
      const plan = decide(formerPrimary(facts, over));
      expect(plan.status.currentOperation, what).toBeUndefined();
      expect(plan.reprotectWaiting?.reason, what).toBe(reason);
    }
    const failedRecently = formerPrimary(
      { agent: agent({}, { relation: 'Behind', divergedBytes: 0 }) },
      {
        status: {
          activePrimary: 'b',
          epoch: 5,
          history: [
            {
              id: 'reprotect-e5-x-a',
              kind: 'Reprotect',
              trigger: 'Automatic',
              from: 'a',
              to: 'b',
              epoch: 5,
              result: 'Aborted',
              startedAt: ago(70).toISOString(),
              completedAt: ago(60).toISOString(),
              message: 'could not rejoin a: RewindImpossible',
            },
          ],
        },
      },
    );
    expect(decide(failedRecently).reprotectWaiting).toMatchObject({ reason: 'ReprotectFailed' });
  });

  it('leaves an unreachable former primary without an agent to the failover rules, and a replicating standby alone', () => {
    expect(decide(formerPrimary()).reprotectWaiting).toBeUndefined();
    const following = formerPrimary({
      ...standby('a', 0, 0, 1, 5),
      agent: agent({ server: 'Standby' }, { relation: 'Following', divergedBytes: 0 }),
    });
    const { plan, summary } = evaluate(following);
    expect(plan.status.currentOperation).toBeUndefined();
    expect(summary.conditions.find((c) => c.type === 'Redundant')).toMatchObject({ status: 'True' });
  });

  it('a managed former primary that is back gets a new replica from its provider', () => {
    const plan = decide(formerPrimary({ reachable: true, role: 'Fenced', reprotectsItself: true }));
    expect(plan.status.currentOperation).toMatchObject({
      kind: 'Reprotect',
      from: 'a',
      trigger: 'Automatic',
    });
  });

  it('does not start while the primary it would rejoin is down', () => {
    const plan = decide(
      formerPrimary(
        { agent: agent({}, { relation: 'Behind', divergedBytes: 0 }) },
        { clusters: { a: gone('a'), b: gone('b'), c: standby('c', 1, 1000, 4, 5) } },
      ),
    );
    expect(plan.status.currentOperation?.kind).not.toBe('Reprotect');
  });
});

describe('reprotect on request', () => {
  const request = (allowDataLoss: boolean) => ({
    promotionRequest: { id: 'r1', target: 'a', kind: 'Reprotect', allowDataLoss },
  });

  it('refuses one that would discard committed transactions unless the loss is accepted', () => {
    const facts = { agent: agent({}, { divergedTransactions: 3 }) };
    const refused = decide(formerPrimary(facts, { specOver: request(false) }));
    expect(refused.status.lastRequest).toMatchObject({
      id: 'r1',
      outcome: 'Rejected',
      reason: 'WouldDiscard',
    });
    expect(refused.status.lastRequest?.message).toMatch(/3 committed transaction/);
    const accepted = decide(formerPrimary(facts, { specOver: request(true) }));
    expect(accepted.status.currentOperation).toMatchObject({
      kind: 'Reprotect',
      trigger: 'Manual',
      requestId: 'r1',
      allowDataLoss: true,
      epoch: 5,
    });
  });

  it('refuses a cluster that is already a replicating standby', () => {
    const plan = decide(
      formerPrimary(
        {
          ...standby('a', 0, 0, 1, 5),
          agent: agent({ server: 'Standby' }, { relation: 'Following', divergedBytes: 0 }),
        },
        { specOver: request(false) },
      ),
    );
    expect(plan.status.lastRequest).toMatchObject({ outcome: 'Rejected', reason: 'AlreadyProtected' });
  });
});

describe('switchover with an agent beside the old primary', () => {
  it('demotes it: the switchover gets a Demoting step', () => {
    const plan = decide(
      input({
        clusters: {
          a: { ...primaryUp(), agent: agent({ server: 'Primary' }) },
          b: standby('b'),
          c: standby('c'),
        },
        specOver: { promotionRequest: { id: 's1', target: 'b', kind: 'Switchover' } },
      }),
    );
    expect(plan.status.currentOperation).toMatchObject({ kind: 'Switchover', demoted: true });
  });
});

describe('automatic failback', () => {
  const home = (over: Parameters<typeof input>[0] = {}) =>
    input({
      status: {
        activePrimary: 'b',
        epoch: 6,
        history: [
          {
            id: 'reprotect-e5-x-a',
            kind: 'Reprotect',
            trigger: 'Automatic',
            from: 'a',
            to: 'b',
            epoch: 5,
            result: 'Succeeded',
            startedAt: ago(4000).toISOString(),
            completedAt: ago(3700).toISOString(),
          },
        ],
      },
      clusters: { a: standby('a', 0, 0, 1, 6), b: primaryUp('b', 6), c: standby('c', 0, 0, 1, 6) },
      specOver: { reprotect: { failback: 'Automatic', failbackAfterSeconds: 3600 } },
      ...over,
    });

  it('switches back to spec.primary once it is a caught-up standby and the hold-down is over', () => {
    const plan = decide(home());
    expect(plan.status.currentOperation).toMatchObject({
      kind: 'Switchover',
      trigger: 'Automatic',
      from: 'b',
      to: 'a',
      epoch: 7,
    });
  });

  it('not within the hold-down, not when failback is Manual, not to a lagging standby', () => {
    expect(
      decide(home({ specOver: { reprotect: { failback: 'Automatic', failbackAfterSeconds: 7200 } } })).status
        .currentOperation,
    ).toBeUndefined();
    expect(decide(home({ specOver: {} })).status.currentOperation).toBeUndefined();
    const lagging = home({
      clusters: { a: standby('a', 30, 50_000_000, 1, 6), b: primaryUp('b', 6), c: standby('c', 0, 0, 1, 6) },
    });
    expect(decide(lagging).status.currentOperation).toBeUndefined();
  });

  it("judges the home standby's lag against the primary's last read, not the clock", () => {
    // Interval 1 s: a lag up to 7 s before the primary's read stands (2 intervals and 5 s).
    const read = (primaryReadAgo: number, lagMeasuredAgo: number) =>
      decide(
        home({
          clusters: {
            a: standby('a', 0, 0, lagMeasuredAgo, 6),
            b: {
              ...primaryUp('b', 6),
              observedAt: ago(primaryReadAgo),
              lastReachableAt: ago(primaryReadAgo),
            },
            c: standby('c', 0, 0, 1, 6),
          },
        }),
      ).status.currentOperation;
    expect(read(1, 7.5)).toMatchObject({ kind: 'Switchover', to: 'a' });
    expect(read(3, 9.5)).toMatchObject({ kind: 'Switchover', to: 'a' });
    expect(read(0.2, 7.5)).toBeUndefined();
    // A primary read as old as a stale vote (probes stalled) anchors nothing.
    expect(read(8.5, 9)).toBeUndefined();
  });
});
