import { describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus, Operation } from '../../api/v1alpha1/index.ts';
import {
  ago,
  type DecideInputLike,
  down,
  evaluate,
  fenced,
  gone,
  inProgress,
  input,
  NOW,
  outage,
  primaryUp,
  standby,
  up,
} from './decide.fixtures.ts';
import { decide } from './decide.ts';
import type { ClusterFacts, DecideInput } from './facts.ts';
import { topologyOf } from './summary.ts';

describe('decide: detection', () => {
  const cases: [string, DecideInputLike, boolean, string?][] = [
    ['all observers reach the primary', input(), false, 'Healthy'],
    [
      'one observer loses sight: not an outage',
      input({ votes: [down('region-b'), up('operator'), up('region-c')] }),
      false,
      'Healthy',
    ],
    [
      'two of three lose sight: an outage',
      input({
        clusters: { a: gone(), b: standby('b'), c: standby('c') },
        votes: [down('region-b'), down('region-c'), up('operator')],
      }),
      true,
      'FailingOver',
    ],
    [
      'down votes below the failure threshold do not count',
      outage({ votes: [down('region-b', 2), down('region-c', 2), down('operator', 2)] }),
      false,
    ],
    [
      'stale down votes do not count',
      outage({ votes: [down('region-b', 3, 60), down('region-c', 3, 60), down('operator', 3, 60)] }),
      false,
    ],
    [
      'one observer reporting twice is one vote',
      outage({ votes: [down('region-b'), down('region-b', 4, 0.5)] }),
      false,
    ],
    [
      'a tie between down and up is not an outage',
      outage({
        specOver: { detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 1 } },
        votes: [down('region-b'), up('region-c')],
      }),
      false,
    ],
  ];
  it.each(cases)('%s', (_, i, starts, phase) => {
    const e = evaluate(i);
    expect(e.started !== undefined).toBe(starts);
    if (phase) expect(e.status.phase).toBe(phase);
  });

  describe('a primary that answers and refuses the observers (not down)', () => {
    const refused = (observer: string, failureReason: string) => ({ ...down(observer, 9), failureReason });

    it.each(['AuthenticationFailed', 'CredentialsMissing', 'TlsFailed', 'Rejected'])(
      'every observer refused with %s: no failover, and the verdict says why',
      (reason) => {
        const i = outage({
          votes: [refused('operator', reason), refused('region-b', reason), refused('region-c', reason)],
        });
        const e = evaluate(i);
        expect(e.started).toBeUndefined();
        expect(e.condition('PrimaryAvailable')).toMatchObject({
          status: 'Unknown',
          reason: 'ObserversRefused',
          message: expect.stringContaining(
            `3 cannot judge it (${reason}: refused by it, or nothing to log in with)`,
          ),
        });
      },
    );

    it('the observers that lost it still decide: two down of three is an outage, the third abstaining', () => {
      const e = evaluate(
        outage({ votes: [refused('operator', 'AuthenticationFailed'), down('region-b'), down('region-c')] }),
      );
      expect(e.started).toBeDefined();
    });

    it('one down and one refused of a quorum of two is not an outage', () => {
      const e = evaluate(
        outage({ votes: [refused('operator', 'AuthenticationFailed'), down('region-b'), up('region-c')] }),
      );
      expect(e.started).toBeUndefined();
    });

    it('refused after timing out abstains: the newest failure is what the observer knows', () => {
      const e = evaluate(
        outage({
          votes: [
            refused('operator', 'AuthenticationFailed'),
            refused('region-b', 'AuthenticationFailed'),
            down('region-c'),
          ],
        }),
      );
      expect(e.started).toBeUndefined();
    });

    it('a server that answers "starting up", "too many connections" or "no such database" (rebuilt empty), or a connection reset mid-handshake, still counts down', () => {
      for (const reason of ['Unreachable', 'Timeout', 'ProviderError', 'NotFound']) {
        const e = evaluate(
          outage({
            votes: [refused('operator', reason), refused('region-b', reason), refused('region-c', reason)],
          }),
        );
        expect(e.started, reason).toBeDefined();
      }
    });
  });

  it('observers that disagree (some paths to the primary cut, not all) block a failover, never start one to stand it down', () => {
    const worlds: [string, DecideInput][] = [
      [
        'the operator still reaches the primary, two observers do not',
        input({ votes: [down('region-b'), down('region-c'), up('operator')] }),
      ],
      [
        'three observers of five lose it, two (a quorum) still reach it',
        input({
          clusters: { a: gone(), b: standby('b'), c: standby('c') },
          votes: [down('region-b'), down('region-c'), down('region-d'), up('region-e'), up('operator')],
        }),
      ],
    ];
    for (const [name, world] of worlds) {
      let status = world.status;
      // Reconciles in a row: no operation started, none aborted, nothing filed.
      for (let i = 0; i < 4; i++) {
        const e = evaluate({ ...world, status });
        expect(e.started, name).toBeUndefined();
        expect(e.plan.blocked?.reason, name).toBe('PrimaryReachable');
        expect(e.condition('FailoverBlocked'), name).toMatchObject({
          status: 'True',
          reason: 'PrimaryReachable',
        });
        status = e.plan.status;
      }
      expect(status.history ?? [], name).toEqual([]);
    }
    // Control: the operator's own sight of the primary is old (from status, after a restart), so
    // the quorum decides.
    const stale = evaluate(
      input({
        clusters: { a: { ...primaryUp(), observedAt: ago(60) }, b: standby('b'), c: standby('c') },
        votes: [down('region-b'), down('region-c')],
      }),
    );
    expect(stale.started).toMatchObject({ kind: 'Failover', from: 'a' });
  });

  it('while the observers disagree, a person can still move the primary: a switchover goes on, as the operator reaches it', () => {
    const split = (op?: Operation) =>
      input({
        status: { activePrimary: 'a', epoch: 4, ...(op ? { currentOperation: op } : {}) },
        votes: [down('region-b'), down('region-c'), up('operator')],
      });
    const blocked = evaluate(split());
    expect(blocked.condition('FailoverBlocked')?.message).toMatch(
      /request a switchover \(kubectl failover switchover/,
    );
    const requested = evaluate(
      input({
        specOver: { promotionRequest: { id: 'move', target: 'b', kind: 'Switchover' } },
        votes: [down('region-b'), down('region-c'), up('operator')],
      }),
    );
    expect(requested.started).toMatchObject({ kind: 'Switchover', from: 'a', to: 'b' });
    // The quorum still says down: the switchover is not stood down as "a was lost".
    for (const step of ['Detected', 'Fencing', 'CatchingUp'] as const) {
      const going = decide(split(inProgress(step, { kind: 'Switchover', trigger: 'Manual', epoch: 5 })));
      expect(going.status.currentOperation?.step, step).toBe(step);
    }
    // Nor once its own fence shows: the operator reaches it read-only at the switchover's epoch.
    const fencedByIt = (op: Operation, fencedEpoch: number) =>
      input({
        status: { activePrimary: 'a', epoch: 4, currentOperation: op },
        clusters: { a: { ...fenced('a'), fencedEpoch }, b: standby('b'), c: standby('c') },
        votes: [down('region-b'), down('region-c'), up('operator')],
      });
    const catching = inProgress('CatchingUp', { kind: 'Switchover', trigger: 'Manual', epoch: 5 });
    expect(decide(fencedByIt(catching, 5)).status.currentOperation?.step).toBe('CatchingUp');
    // A fence from before (an older epoch) is not its own: it stands down.
    expect(decide(fencedByIt(catching, 4)).status.currentOperation?.step).toBe('Aborted');
    // Only a person's: a drill's switchover out stands down as before.
    const drill = inProgress('CatchingUp', { kind: 'Switchover', trigger: 'Drill', epoch: 5 });
    expect(decide(split(drill)).status.currentOperation?.step).toBe('Aborted');
  });

  it('never reports the primary available on no evidence: too few observers is Unknown', () => {
    const e = evaluate(input({ votes: [down('region-b')] }));
    expect(e.condition('PrimaryAvailable')).toMatchObject({ status: 'Unknown', reason: 'Unconfirmed' });
    expect(e.status.phase).toBe('Degraded');
    const none = evaluate(input({ votes: [] }));
    expect(none.condition('PrimaryAvailable')).toMatchObject({
      status: 'Unknown',
      reason: 'TooFewObservers',
    });
    expect(none.status.phase).toBe('Degraded');
  });

  it('says a reachable primary that refuses writes is not available', () => {
    const e = evaluate(input({ clusters: { a: fenced('a'), b: standby('b'), c: standby('c') } }));
    expect(e.condition('PrimaryAvailable')).toMatchObject({ status: 'False', reason: 'NotWritable' });
  });

  it('records when the quorum first agreed, and keeps that time', () => {
    const first = decide(outage({ specOver: { promotion: { holdDownSeconds: 30 } } }));
    expect(first.status.primaryDownSince).toBe('2026-03-02T10:00:00.000Z');
    const later = decide(
      outage({
        specOver: { promotion: { holdDownSeconds: 30 } },
        status: { activePrimary: 'a', epoch: 4, primaryDownSince: '2026-03-02T09:59:50Z' },
      }),
    );
    expect(later.status.primaryDownSince).toBe('2026-03-02T09:59:50Z');
    expect(
      decide(input({ status: { activePrimary: 'a', epoch: 4, primaryDownSince: ago(5).toISOString() } }))
        .status.primaryDownSince,
    ).toBeUndefined();
  });
});

describe('decide: automatic failover', () => {
  it('promotes the first healthy standby within budget, at the next epoch, recording the expected loss', () => {
    const e = evaluate(outage());
    expect(e.plan.action.kind).toBe('Record');
    expect(e.started).toMatchObject({
      kind: 'Failover',
      trigger: 'Automatic',
      from: 'a',
      to: 'b',
      epoch: 5,
      step: 'Detected',
      estimatedLossSeconds: 1,
      estimatedLossBytes: 1000,
    });
    expect(e.status.phase).toBe('FailingOver');
  });

  it('fails over a primary that went silent: the lag is judged against when it was last seen, however long detection took', () => {
    // Every probe of a silent primary waits out its deadline: the quorum formed 20 s after the
    // primary was last seen, and the standby's last lag figure is from just before that.
    const silent = outage({
      votes: [down('operator', 3, 1, 20), down('region-b', 3, 1, 20), down('region-c', 3, 1, 21)],
      clusters: { a: gone('a', 20), b: standby('b', 0, 0, 19), c: standby('c', 0, 0, 19) },
    });
    expect(evaluate(silent).started).toMatchObject({ to: 'b', primaryLostAt: ago(20).toISOString() });
    // A figure from well before the primary's last sign of life still says nothing about now.
    const stale = outage({
      votes: [down('operator', 3, 1, 20), down('region-b', 3, 1, 20)],
      clusters: { a: gone('a', 20), b: standby('b', 0, 0, 40), c: standby('c', 0, 0, 40) },
    });
    expect(evaluate(stale).condition('FailoverBlocked')).toMatchObject({
      status: 'True',
      reason: 'LagUnknown',
    });
  });

  it('skips an unreachable standby for the next one', () => {
    const e = evaluate(
      outage({ clusters: { a: gone(), b: { ...standby('b'), reachable: false }, c: standby('c') } }),
    );
    expect(e.started).toMatchObject({ to: 'c' });
  });

  const blockedCases: [string, DecideInputLike, string][] = [
    ['manual mode', outage({ specOver: { promotion: { mode: 'Manual' } } }), 'ManualMode'],
    [
      'inside the cool-down',
      outage({ status: { activePrimary: 'a', epoch: 4, lastFailoverTime: ago(60).toISOString() } }),
      'Cooldown',
    ],
    [
      'lag in seconds above budget',
      outage({ clusters: { a: gone(), b: standby('b', 11), c: standby('c', 50) } }),
      'LagAboveBudget',
    ],
    [
      'lag in bytes above budget',
      outage({ clusters: { a: gone(), b: standby('b', 1, 2_000_000), c: standby('c', 1, 5_000_000) } }),
      'LagAboveBudget',
    ],
    [
      'lag never measured',
      outage({
        clusters: {
          a: gone(),
          b: { ...standby('b'), lagObservedAt: undefined },
          c: { ...standby('c'), lagObservedAt: undefined },
        },
      }),
      'LagUnknown',
    ],
    [
      'lag in seconds unknown: no heartbeat replayed yet',
      outage({
        clusters: {
          a: gone(),
          b: { ...standby('b'), lagSeconds: undefined },
          c: { ...standby('c'), lagSeconds: undefined },
        },
      }),
      'LagUnknown',
    ],
    [
      'lag measured long before the loss',
      outage({ clusters: { a: gone(), b: standby('b', 1, 1, 3600), c: standby('c', 1, 1, 3600) } }),
      'LagUnknown',
    ],
    [
      'no standby reachable',
      outage({
        clusters: {
          a: gone(),
          b: { ...standby('b'), reachable: false },
          c: { ...standby('c'), reachable: false },
        },
      }),
      'NoHealthyStandby',
    ],
    [
      'standbys in the wrong role',
      outage({ clusters: { a: gone(), b: fenced('b'), c: { ...standby('c'), role: 'Unknown' } } }),
      'NoHealthyStandby',
    ],
  ];
  it.each(blockedCases)('is blocked: %s', (_, i, reason) => {
    const e = evaluate(i);
    expect(e.plan.action.kind).toBe('Observe');
    expect(e.started).toBeUndefined();
    expect(e.status.phase).toBe('Blocked');
    expect(e.condition('FailoverBlocked')).toMatchObject({ status: 'True', reason });
    expect(e.condition('Ready')).toMatchObject({ status: 'False' });
  });

  it('says why the lag is unknown: never measured, measured too early, or without seconds', () => {
    const message = (b: ReturnType<typeof standby>) =>
      evaluate(outage({ clusters: { a: gone(), b, c: b } })).condition('FailoverBlocked')?.message;
    expect(message({ ...standby('b'), lagObservedAt: undefined })).toBe('the lag of b has not been measured');
    expect(message(standby('b', 1, 1, 3600))).toMatch(
      /^the lag of b was last measured at \S+Z, more than \d+ s before \S+Z \(the primary's last sign of life, or now when none is recent\)$/,
    );
    expect(message({ ...standby('b'), lagSeconds: undefined })).toMatch(
      /^the lag of b in seconds is unknown \(\d+ bytes behind at \S+Z\): it has not replayed a heartbeat of the primary yet \(if this lasts, the operator cannot write its heartbeat on the primary, or reads the standby through another database: see the operator's log\)$/,
    );
  });

  it('waits out the hold-down, then fails over', () => {
    const held = outage({
      specOver: { promotion: { holdDownSeconds: 30 } },
      status: { activePrimary: 'a', epoch: 4, primaryDownSince: ago(10).toISOString() },
    });
    const e = evaluate(held);
    expect(e.started).toBeUndefined();
    expect(e.condition('FailoverBlocked')?.reason).toBe('HoldDown');
    expect(e.plan.requeueMs).toBeLessThanOrEqual(1000);
    const past = { ...held, status: { ...held.status, primaryDownSince: ago(31).toISOString() } };
    expect(evaluate(past).started).toMatchObject({ primaryLostAt: ago(31).toISOString() });
  });

  it('does not fail back to a recovered old primary', () => {
    const afterFailover: FailoverPolicyStatus = {
      activePrimary: 'b',
      epoch: 5,
      lastFailoverTime: ago(7200).toISOString(),
    };
    const e = evaluate(
      input({
        status: afterFailover,
        clusters: {
          a: { ...standby('a', 0, 0, 4, 5) },
          b: primaryUp('b', 5),
          c: standby('c', 1, 1000, 4, 5),
        },
      }),
    );
    expect(e.plan.action.kind).toBe('Observe');
    expect(e.status.phase).toBe('Healthy');
  });
});

describe('decide: FailoverReady is evaluated at all times', () => {
  it('is True with a standby within budget, and Ready follows once DNS is in sync', () => {
    const e = evaluate(input({ dns: { readAt: NOW, value: 'a.db.internal', owner: 'ns/orders', epoch: 4 } }));
    expect(e.condition('FailoverReady')).toMatchObject({ status: 'True', reason: 'StandbyReady' });
    expect(e.condition('DnsReady')).toMatchObject({ status: 'True', reason: 'InSync' });
    expect(e.condition('Ready')).toMatchObject({ status: 'True' });
  });

  it("judges the standby's lag against the primary's last read, as a loss now would be", () => {
    // Interval 1 s: a lag may be measured up to 7 s (2 intervals and 5 s) before the primary's read.
    const judged = (primaryReadAgo: number, lagMeasuredAgo: number) =>
      evaluate(
        input({
          clusters: {
            a: { ...primaryUp(), observedAt: ago(primaryReadAgo), lastReachableAt: ago(primaryReadAgo) },
            b: standby('b', 1, 1000, lagMeasuredAgo),
            c: standby('c', 1, 1000, lagMeasuredAgo),
          },
        }),
      ).condition('FailoverReady');
    // 7.5 s before now but 6.5 s before the primary's read: as a failover now would judge it.
    expect(judged(1, 7.5)).toMatchObject({ status: 'True', reason: 'StandbyReady' });
    expect(judged(1, 8.5)).toMatchObject({ status: 'False', reason: 'LagUnknown' });
    // The window moves with the read.
    expect(judged(3, 9.5)).toMatchObject({ status: 'True', reason: 'StandbyReady' });
    expect(judged(0.2, 7.5)).toMatchObject({ status: 'False', reason: 'LagUnknown' });
    // A read older than a vote may be (3 intervals and 5 s: probes stalled) anchors nothing: now does.
    expect(judged(8.5, 9)).toMatchObject({ status: 'False', reason: 'LagUnknown' });
    expect(judged(7.5, 8)).toMatchObject({ status: 'True', reason: 'StandbyReady' });
  });

  it('says so while the primary is healthy but no standby could take over', () => {
    const dead = evaluate(input({ clusters: { a: primaryUp(), b: gone('b'), c: gone('c') } }));
    expect(dead.condition('FailoverReady')).toMatchObject({ status: 'False', reason: 'NoHealthyStandby' });
    expect(dead.condition('FailoverBlocked')).toMatchObject({ status: 'False' });
    expect(dead.condition('FailoverBlocked')?.message).not.toMatch(/nothing stands in the way/);
    expect(dead.status.phase).toBe('Degraded');
    const lagging = evaluate(
      input({ clusters: { a: primaryUp(), b: standby('b', 60), c: standby('c', 60) } }),
    );
    expect(lagging.condition('FailoverReady')).toMatchObject({ status: 'False', reason: 'LagAboveBudget' });
    const cooling = evaluate(
      input({ status: { activePrimary: 'a', epoch: 4, lastFailoverTime: ago(5).toISOString() } }),
    );
    expect(cooling.condition('FailoverReady')).toMatchObject({ status: 'False', reason: 'Cooldown' });
  });
});

describe('decide: never two primaries', () => {
  it('fences a database that accepts writes but is not the primary, as a recorded operation in the fencing mode', () => {
    const e = evaluate(
      input({
        specOver: { promotion: { fencing: 'Shutdown' } },
        status: { activePrimary: 'b', epoch: 5 },
        clusters: { a: primaryUp('a', 4), b: primaryUp('b', 5), c: standby('c', 1, 1, 4, 5) },
      }),
    );
    expect(e.started).toMatchObject({ kind: 'Fence', from: 'a', to: 'b', epoch: 5, step: 'Detected' });
    expect(e.plan.events[0]).toMatchObject({ type: 'Warning', reason: 'StrayPrimary' });
    expect(e.plan.events[0]?.note).toMatch(/Shutdown/);
  });

  it('fences a stray promoted by hand at the current epoch (its heartbeat row replicated from the primary), and goes on fencing it', () => {
    const world = (status: FailoverPolicyStatus) =>
      input({
        status,
        clusters: { a: standby('a', 1, 1, 4, 5), b: primaryUp('b', 5), c: primaryUp('c', 5) },
      });
    const e = evaluate(world({ activePrimary: 'b', epoch: 5 }));
    expect(e.started).toMatchObject({ kind: 'Fence', from: 'c', to: 'b', epoch: 5 });
    // A Fence establishes no epoch: a writer at the current one is what it fences, not a newer
    // promotion that would make it obsolete.
    const next = decide({ ...world(e.plan.status), status: e.plan.status });
    expect(next.status.currentOperation?.step).not.toBe('Aborted');
    expect(next.action).toMatchObject({ kind: 'RunStep', operation: { kind: 'Fence', from: 'c' } });
  });

  it('leaves a stray to the failover that starts when the primary is down, and fences it alone when none can', () => {
    const world = (specOver: Record<string, unknown> = {}, op?: Operation) =>
      input({
        specOver,
        status: { activePrimary: 'b', epoch: 5, ...(op ? { currentOperation: op } : {}) },
        clusters: { a: primaryUp('a', 4), b: gone('b'), c: standby('c', 1, 1, 4, 5) },
        votes: [down('operator'), down('region-b'), down('region-c')],
      });
    const failover = evaluate(world());
    expect(failover.started).toMatchObject({ kind: 'Failover', from: 'b', to: 'c', strays: ['a'] });
    // Manual mode (or a pause, a cool-down, no standby in budget): no failover, so the stray is fenced.
    const manual = evaluate(world({ promotion: { mode: 'Manual' } }));
    expect(manual.started).toMatchObject({ kind: 'Fence', from: 'a', to: 'b', epoch: 5 });
    expect(manual.plan.blocked).toBeUndefined();
    // A Fence under way stands aside only for a failover that starts.
    const fencing = inProgress('Fencing', { id: 'fence-a', kind: 'Fence', from: 'a', to: 'b', epoch: 5 });
    expect(decide(world({}, fencing)).status.currentOperation?.step).toBe('Aborted');
    const kept = decide(world({ promotion: { mode: 'Manual' } }, fencing));
    expect(kept.action).toMatchObject({ kind: 'RunStep', operation: { id: 'fence-a', step: 'Fencing' } });
  });

  it('never fences a database whose heartbeat holds a newer epoch: status is behind the world', () => {
    const e = evaluate(
      input({
        status: { activePrimary: 'a', epoch: 4 },
        clusters: { a: primaryUp('a', 4), b: primaryUp('b', 5), c: standby('c', 1, 1, 4, 5) },
        dns: { readAt: NOW, value: 'b.db.internal', owner: 'ns/orders', epoch: 5 },
      }),
    );
    expect(e.started).toBeUndefined();
    expect(e.plan.status).toMatchObject({ activePrimary: 'b', epoch: 5 });
    expect(e.plan.events[0]).toMatchObject({ reason: 'PrimaryDiscovered' });
  });

  it('does not fence again and again in EpochOnly mode, which can only mark the database', () => {
    const e = evaluate(
      input({
        specOver: { promotion: { fencing: 'EpochOnly' } },
        status: { activePrimary: 'b', epoch: 5 },
        clusters: {
          a: { ...primaryUp('a', 4), fencedEpoch: 5 },
          b: primaryUp('b', 5),
          c: standby('c', 1, 1, 4, 5),
        },
      }),
    );
    expect(e.started).toBeUndefined();
  });

  it('goes back to fencing when the old primary accepts writes again before the promotion', () => {
    const plan = decide(
      input({
        status: {
          activePrimary: 'a',
          epoch: 4,
          currentOperation: inProgress('Promoting', { stepStartedAt: ago(2).toISOString() }),
        },
      }),
    );
    expect(plan.status.currentOperation).toMatchObject({
      step: 'Fencing',
      message: expect.stringMatching(/accepts writes beside b; fencing it before promoting/),
    });
  });

  it("waits to probe an old primary whose ReplicaCluster was deleted mid-failover, and says so in the operation's message", () => {
    const world = (op: Operation) =>
      input({
        status: { activePrimary: 'a', epoch: 4, currentOperation: op },
        clusters: {
          a: { name: 'a', exists: false, reachable: false, role: 'Unknown', unprobed: true },
          b: standby('b'),
          c: standby('c'),
        },
        votes: [down('operator'), down('region-b'), down('region-c')],
      });
    const plan = decide(world(inProgress('Promoting')));
    expect(plan.action.kind).not.toBe('RunStep');
    expect(plan.status.currentOperation?.message).toMatch(/ReplicaCluster a does not exist: apply it again/);
    // Said once: the next reconcile writes nothing more.
    const again = decide(world(plan.status.currentOperation as Operation));
    expect(again.status.currentOperation).toEqual(plan.status.currentOperation);
    expect(again.action.kind).not.toBe('RunStep');
  });

  it('does not re-fence on an observation taken before the fence (a switchover keeps its reason)', () => {
    const op = inProgress('Promoting', {
      kind: 'Switchover',
      trigger: 'Manual',
      reason: 'kernel upgrade in region a',
      stepStartedAt: ago(0.2).toISOString(),
    });
    const staleWritable = { ...primaryUp('a'), observedAt: ago(0.5) };
    const plan = decide(
      input({
        clusters: { a: staleWritable, b: standby('b'), c: standby('c') },
        status: { activePrimary: 'a', epoch: 4, currentOperation: op },
      }),
    );
    expect(plan.action).toMatchObject({
      kind: 'RunStep',
      operation: { step: 'Promoting', reason: 'kernel upgrade in region a' },
    });
    const fresh = decide(
      input({
        clusters: { a: { ...primaryUp('a'), observedAt: NOW }, b: standby('b'), c: standby('c') },
        status: { activePrimary: 'a', epoch: 4, currentOperation: op },
      }),
    );
    expect(fresh.status.currentOperation).toMatchObject({
      step: 'Fencing',
      reason: 'kernel upgrade in region a',
    });
  });

  it.each(['RepointingDns', 'VerifyingDns'] as const)(
    'fences an old primary that comes back writable at %s, before going on',
    (step) => {
      const op = inProgress(step, { stepStartedAt: ago(2).toISOString() });
      const plan = decide(
        input({
          status: { activePrimary: 'b', epoch: 5, currentOperation: op },
          clusters: { a: primaryUp('a', 4), b: primaryUp('b', 5), c: standby('c', 1, 1, 4, 5) },
        }),
      );
      expect(plan.status.currentOperation).toMatchObject({
        step: 'Fencing',
        message: expect.stringMatching(/a accepts writes beside b/),
      });
    },
  );

  it('does not stand down for want of evidence (a restarted operator has not probed yet)', () => {
    const plan = decide(
      input({
        votes: [],
        clusters: {
          a: { ...gone(), unprobed: true, observedAt: undefined },
          b: standby('b'),
          c: standby('c'),
        },
        status: { activePrimary: 'a', epoch: 4, currentOperation: inProgress('Detected') },
      }),
    );
    expect(plan.action).toMatchObject({ kind: 'RunStep', operation: { step: 'Detected' } });
  });

  it('stands an automatic failover down if the primary is back before anything changed', () => {
    const plan = decide(
      input({ status: { activePrimary: 'a', epoch: 4, currentOperation: inProgress('Detected') } }),
    );
    expect(plan.status.currentOperation).toMatchObject({ step: 'Aborted' });
  });

  const switchover = (step: Operation['step']) =>
    inProgress(step, { id: 'switchover-e5-x', kind: 'Switchover', trigger: 'Manual', reason: 'planned' });
  it.each(['Detected', 'Fencing', 'CatchingUp', 'RollingBack'] as const)(
    'stands a switchover down at %s when the primary is lost by quorum, so the failover rules can act',
    (step) => {
      const plan = decide(
        outage({ status: { activePrimary: 'a', epoch: 4, currentOperation: switchover(step) } }),
      );
      expect(plan.status.currentOperation).toMatchObject({ step: 'Aborted', reason: 'planned' });
      expect(plan.status.currentOperation?.message).toMatch(/a was lost .* before b was promoted/);
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

  it('carries on with an operation that has touched a database, whatever the votes say', () => {
    const plan = decide(
      input({
        status: { activePrimary: 'b', epoch: 5, currentOperation: inProgress('RepointingDns') },
        clusters: { a: gone(), b: primaryUp('b', 5), c: standby('c', 1, 1, 4, 5) },
      }),
    );
    expect(plan.action).toMatchObject({ kind: 'RunStep', operation: { step: 'RepointingDns' } });
  });

  it('waits out a failed step’s backoff without running it, however often it is reconciled', () => {
    const op = inProgress('RepointingDns', {
      attempts: 2,
      lastError: 'REFUSED',
      retryAfter: new Date(NOW.getTime() + 3000).toISOString(),
    });
    const plan = decide(
      input({
        status: { activePrimary: 'b', epoch: 5, currentOperation: op },
        clusters: { a: gone(), b: primaryUp('b', 5), c: standby('c', 1, 1, 4, 5) },
      }),
    );
    expect(plan.action.kind).toBe('Observe');
    expect(plan.requeueMs).toBe(3000);
  });
});

describe('decide: the lag kubectl get shows', () => {
  it('moves only by more than the heartbeats’ resolution (1.5 probe intervals), or across the budget', () => {
    const at = (lagSeconds: number, shown?: number, interval = 1) =>
      evaluate(
        input({
          specOver: { detection: { probeIntervalSeconds: interval, failureThreshold: 3, quorum: 2 } },
          status: {
            activePrimary: 'a',
            epoch: 4,
            ...(shown !== undefined ? { standbyLagSeconds: shown } : {}),
          },
          clusters: { a: primaryUp(), b: standby('b', lagSeconds), c: standby('c', lagSeconds) },
        }),
      ).status.standbyLagSeconds;
    expect(at(1.834)).toBe(1.83);
    // Probing every second: a caught-up standby reads between 0 and about 1 s.
    expect(at(0, 1.02)).toBe(1.02);
    expect(at(2.2, 1.02)).toBe(1.02);
    expect(at(2.6, 1.02)).toBe(2.6);
    // Every 5 s: up to 7.5 s of wandering is resolution.
    expect(at(0, 5.1, 5)).toBe(5.1);
    expect(at(7.9, 0, 5)).toBe(7.9);
    // Crossing the budget (10 s in these fixtures) shows at once.
    expect(at(10.5, 9.8)).toBe(10.5);
    expect(at(9.9, 10.5)).toBe(9.9);
  });

  it('keeps the topology’s standby lag as it was while it moves within that resolution', () => {
    const topologyLag = (lagSeconds: number, shown: number) => {
      const i = input({
        status: {
          activePrimary: 'a',
          epoch: 4,
          topology: [{ cluster: 'b', role: 'Standby', ready: true, lagSeconds: shown }],
        },
        clusters: { a: primaryUp(), b: standby('b', lagSeconds), c: standby('c', lagSeconds) },
      });
      return topologyOf(i, evaluate(i).status)?.find((t) => t.cluster === 'b')?.lagSeconds;
    };
    expect(topologyLag(0, 1)).toBe(1);
    expect(topologyLag(2.4, 1)).toBe(1);
    expect(topologyLag(2.6, 1)).toBe(3);
  });
});

describe('decide: promotion requests', () => {
  const req = (r: Record<string, unknown>) => ({ promotionRequest: { id: 'r1', target: 'b', ...r } });

  it('starts a switchover once, with the request id', () => {
    const e = evaluate(input({ specOver: req({ kind: 'Switchover', reason: 'maintenance' }) }));
    expect(e.started).toMatchObject({
      kind: 'Switchover',
      trigger: 'Manual',
      to: 'b',
      requestId: 'r1',
      epoch: 5,
      reason: 'maintenance',
    });
    expect(e.status.lastRequest).toMatchObject({ id: 'r1', outcome: 'Accepted' });
    const handled = decide(
      input({
        specOver: req({ kind: 'Switchover' }),
        status: { activePrimary: 'a', epoch: 4, lastHandledRequestId: 'r1' },
      }),
    );
    expect(handled.action.kind).toBe('Observe');
  });

  it('never acts on a request already in spec when status is new (re-applied from Git, status cleared): it may have run', () => {
    const spec = {
      ...req({ kind: 'Failover', allowDataLoss: true }),
      drillRequest: { id: 'd1', action: 'Run' },
      drills: { schedule: '0 3 * * 1' },
    };
    // Status lost: the primary is learned from the world (here known at once), the requests not acted on.
    const world = input({
      specOver: spec,
      status: {},
      statusNew: true,
      clusters: { a: gone(), b: standby('b'), c: standby('c') },
    });
    const first = evaluate(world);
    expect(first.started).toBeUndefined();
    expect(first.status.lastHandledRequestId).toBe('r1');
    expect(first.status.lastRequest).toMatchObject({
      id: 'r1',
      outcome: 'Rejected',
      reason: 'PredatesStatus',
    });
    expect(first.status.lastHandledDrillRequestId).toBe('d1');
    expect(first.status.lastDrillRequest).toMatchObject({ id: 'd1', outcome: 'Rejected' });
    // Written, status is no longer new: still nothing, until a new id.
    const next = { ...world, status: { ...first.status, activePrimary: 'a', epoch: 4 }, statusNew: false };
    expect(evaluate(next).started).toBeUndefined();
    const asked = evaluate({
      ...next,
      clusters: input().clusters,
      spec: {
        ...next.spec,
        promotionRequest: {
          ...(next.spec.promotionRequest as NonNullable<typeof next.spec.promotionRequest>),
          id: 'r2',
          kind: 'Switchover',
          allowDataLoss: false,
        },
      },
    });
    expect(asked.started).toMatchObject({ kind: 'Switchover', requestId: 'r2' });
  });

  it('a status with a primary but never written by this operator (edited by hand) acts on no request already in spec', () => {
    const world = input({
      specOver: req({ kind: 'Switchover' }),
      status: { activePrimary: 'a', epoch: 4 },
      statusNew: true,
    });
    const e = evaluate(world);
    expect(e.started).toBeUndefined();
    expect(e.status.lastRequest).toMatchObject({ id: 'r1', outcome: 'Rejected', reason: 'PredatesStatus' });
  });

  const rejected: [string, DecideInputLike, string][] = [
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
      'a failover while the operator is cut off from a primary a quorum of observers still reach',
      input({
        specOver: req({ kind: 'Failover' }),
        clusters: { a: gone(), b: standby('b'), c: standby('c') },
        votes: [down('operator'), up('region-b'), up('region-c')],
      }),
      'PrimaryAvailable',
    ],
    [
      'a failover beyond the budget',
      outage({
        specOver: req({ kind: 'Failover' }),
        clusters: { a: gone(), b: standby('b', 60), c: standby('c') },
      }),
      'LagAboveBudget',
    ],
    [
      'a failover on a lag measured long before the primary was lost',
      outage({
        specOver: req({ kind: 'Failover' }),
        clusters: { a: gone('a', 5), b: standby('b', 0, 0, 600), c: standby('c') },
      }),
      'LagUnknown',
    ],
    ['a promotion of the primary itself', input({ specOver: req({ target: 'a' }) }), 'AlreadyPrimary'],
    [
      'a target that is not a standby',
      input({
        specOver: req({}),
        clusters: { a: primaryUp(), b: { ...standby('b'), reachable: false }, c: standby('c') },
      }),
      'TargetNotStandby',
    ],
  ];
  it.each(rejected)('rejects %s, saying why', (_, i, reason) => {
    const e = evaluate(i);
    expect(e.started).toBeUndefined();
    expect(e.status).toMatchObject({
      lastHandledRequestId: 'r1',
      lastRequest: { id: 'r1', outcome: 'Rejected', reason },
    });
    expect(e.plan.events[0]).toMatchObject({ reason: 'PromotionRejected' });
  });

  it('judges a failover request on a view of the primary taken after the quorum lost it, not on an older one', () => {
    const lost = (since: number) => ({
      activePrimary: 'a',
      epoch: 4,
      conditions: [
        {
          type: 'PrimaryAvailable',
          status: 'False' as const,
          reason: 'QuorumLostPrimary',
          message: 'lost',
          lastTransitionTime: ago(since)
            .toISOString()
            .replace(/\.\d{3}Z$/, 'Z'),
        },
      ],
    });
    // The operator's last probe answered before the kill; two observers have lost it since.
    const stale = { ...primaryUp(), observedAt: ago(3), lastReachableAt: ago(3) };
    const at = (a: ClusterFacts, status: DecideInput['status']) =>
      evaluate(
        input({
          specOver: { ...req({ kind: 'Failover' }), promotion: { mode: 'Manual' } },
          status,
          clusters: { a, b: standby('b'), c: standby('c') },
          votes: [up('operator', 3), down('region-b'), down('region-c')],
        }),
      );
    for (const status of [{ activePrimary: 'a', epoch: 4 }, lost(2)]) {
      const waiting = at(stale, status);
      expect(waiting.status.lastHandledRequestId).toBeUndefined();
      expect(waiting.plan.events.map((e) => e.reason)).not.toContain('PromotionRejected');
    }
    // A view from after the outage was seen that still takes writes is evidence: refused.
    const fresh = at({ ...stale, observedAt: ago(0.5) }, lost(2));
    expect(fresh.status.lastRequest).toMatchObject({ outcome: 'Rejected', reason: 'PrimaryAvailable' });
    // A view that stays stale long after is judged as it is, rather than holding the request.
    const longAfter = at({ ...stale, observedAt: ago(60) }, lost(45));
    expect(longAfter.status.lastRequest).toMatchObject({ outcome: 'Rejected', reason: 'PrimaryAvailable' });
    // The same quorum with the operator's own probe failing too: the request starts at once.
    const gonePrimary = at({ ...gone(), observedAt: ago(0.5) }, lost(2));
    expect(gonePrimary.started).toMatchObject({ kind: 'Failover', requestId: 'r1' });
  });

  it('accepts a failover beyond the budget when the request allows data loss', () => {
    const e = evaluate(
      outage({
        specOver: req({ kind: 'Failover', allowDataLoss: true }),
        clusters: { a: gone(), b: standby('b', 60), c: standby('c') },
      }),
    );
    expect(e.started).toMatchObject({ kind: 'Failover', trigger: 'Manual', allowDataLoss: true });
  });

  it('reports a manual failover’s RPO and RTO as for an automatic one: from the primary’s loss, with the lag then', () => {
    const e = evaluate(
      outage({
        specOver: { ...req({ kind: 'Failover' }), promotion: { mode: 'Manual' } },
        votes: [down('operator', 3, 1, 30), down('region-b', 3, 1, 30), down('region-c', 3, 1, 31)],
        clusters: { a: gone('a', 30), b: standby('b', 2, 4096, 29), c: standby('c') },
      }),
    );
    expect(e.started).toMatchObject({
      kind: 'Failover',
      primaryLostAt: ago(30).toISOString(),
      estimatedLossSeconds: 2,
      estimatedLossBytes: 4096,
    });
  });
});

describe('decide: ended operations', () => {
  it.each(['Completed', 'Aborted'] as const)(
    'files a %s operation into history, and the phase says what is true now',
    (step) => {
      const e = evaluate(
        input({
          status: {
            activePrimary: 'b',
            epoch: 5,
            currentOperation: inProgress(step, { dnsChangedAt: ago(1).toISOString() }),
          },
          clusters: { a: fenced('a', 5), b: primaryUp('b', 5), c: standby('c', 1, 1, 4, 5) },
        }),
      );
      expect(e.plan.action.kind).toBe('Record');
      expect(e.status.currentOperation).toBeUndefined();
      expect(e.status.history?.[0]).toMatchObject({
        id: 'failover-e5-x',
        result: step === 'Completed' ? 'Succeeded' : 'Aborted',
      });
      expect(e.status.phase).not.toBe('FailingOver');
      if (step === 'Completed')
        expect(e.condition('DnsReady')).toMatchObject({ status: 'True', reason: 'Verified' });
    },
  );
});

describe('decide: the application in the standby region', () => {
  const withApps = (b: Partial<ReturnType<typeof standby>>) =>
    outage({
      specOver: {
        promotion: {
          rpo: { maxLagSeconds: 10, maxLagBytes: 1_000_000 },
          cooldownSeconds: 600,
          requireHealthyAppEndpoints: true,
        },
      },
      clusters: { a: gone(), b: { ...standby('b'), ...b }, c: { ...standby('c'), ...b } },
    });

  it('holds an automatic failover back while the standby region’s application is down, saying which endpoint', () => {
    const e = evaluate(withApps({ appEndpoints: 'Unhealthy', unhealthyAppEndpoints: ['api'] }));
    expect(e.started).toBeUndefined();
    expect(e.condition('FailoverBlocked')).toMatchObject({
      status: 'True',
      reason: 'AppEndpointsUnhealthy',
      message: expect.stringMatching(/\(api\)/),
    });
    expect(evaluate(withApps({ appEndpoints: 'Unknown' })).started).toBeUndefined();
  });

  it('fails over once it is healthy, and never holds back a standby without endpoints', () => {
    expect(evaluate(withApps({ appEndpoints: 'Healthy' })).started).toMatchObject({ to: 'b' });
    expect(evaluate(withApps({})).started).toMatchObject({ to: 'b' });
  });

  it('is only a rule for automatic failovers: a person’s request decides for itself', () => {
    const i = withApps({ appEndpoints: 'Unhealthy', unhealthyAppEndpoints: ['api'] });
    const requested = evaluate({
      ...i,
      spec: {
        ...i.spec,
        promotionRequest: { id: 'r1', target: 'b', kind: 'Failover', allowDataLoss: false },
      },
    });
    expect(requested.started).toMatchObject({ kind: 'Failover', trigger: 'Manual', to: 'b' });
  });
});

describe('a primary left fenced by an operation that stood down', () => {
  const leftFenced = { ...fenced('a'), fencedEpoch: 5 };

  it('is unfenced (a rollback at the fence epoch) when no database holds that epoch and none takes writes', () => {
    const e = evaluate(input({ clusters: { a: leftFenced, b: standby('b'), c: standby('c') } }));
    expect(e.status.currentOperation).toMatchObject({
      kind: 'Switchover',
      from: 'a',
      step: 'RollingBack',
      epoch: 5,
    });
    expect(e.status.epoch).toBe(4);
  });

  it('is unfenced once: a probe from before the rollback ended does not start another', () => {
    const world = (clusters: DecideInput['clusters'], status: FailoverPolicyStatus) =>
      input({ clusters, status });
    const before = { a: leftFenced, b: standby('b'), c: standby('c') };
    const started = evaluate(world(before, { activePrimary: 'a', epoch: 4 }));
    const op = started.status.currentOperation;
    expect(op?.step).toBe('RollingBack');
    // The unfence ran and the rollback ended; filed in history at NOW.
    const ended = { ...started.status, currentOperation: { ...(op as Operation), step: 'Aborted' as const } };
    const filed = decide(world(before, ended)).status;
    expect(filed.currentOperation).toBeUndefined();
    // The probe still shows the fence (taken before the unfence): nothing starts.
    expect(evaluate(world(before, filed)).status.currentOperation).toBeUndefined();
    // A probe after it that still finds it fenced: the unfence did not take, so it is tried again.
    const later = { ...before, a: { ...leftFenced, observedAt: new Date(NOW.getTime() + 1000) } };
    const again = evaluate({ ...world(later, filed), now: new Date(NOW.getTime() + 1500) });
    expect(again.status.currentOperation?.step).toBe('RollingBack');
  });

  it('is not unfenced when a standby holds the fence epoch (promoted), a database takes writes, or the fence is a committed epoch', () => {
    for (const clusters of [
      { a: leftFenced, b: standby('b', 1, 1000, 4, 5), c: standby('c') },
      { a: leftFenced, b: primaryUp('b', 4), c: standby('c') },
      { a: { ...fenced('a'), fencedEpoch: 4 }, b: standby('b'), c: standby('c') },
    ])
      expect(evaluate(input({ clusters })).status.currentOperation?.step).not.toBe('RollingBack');
  });
});

describe("a provider's own switchover (Aurora global) whose old writer is lost", () => {
  it('stands down at Promoting while the target is not promoted, so the failover rules act', () => {
    const aurora = (f: ReturnType<typeof gone>) => ({ ...f, rejoinsAfterSwitchover: true });
    const op = inProgress('Promoting', {
      kind: 'Switchover',
      trigger: 'Manual',
      from: 'a',
      to: 'b',
      epoch: 5,
    });
    const e = evaluate(
      outage({
        status: { activePrimary: 'a', epoch: 4, currentOperation: op },
        clusters: { a: aurora(gone()), b: aurora(standby('b')), c: standby('c') },
      }),
    );
    expect(e.status.currentOperation?.step ?? e.status.history?.[0]?.result).toMatch(/Aborted/);
    // Self-managed: past the fence and the catch-up, the promotion goes on.
    const selfManaged = evaluate(outage({ status: { activePrimary: 'a', epoch: 4, currentOperation: op } }));
    expect(selfManaged.plan.action.kind).toBe('RunStep');
  });
});

describe('decide: paused for maintenance (spec.paused)', () => {
  const paused = { paused: true, pauseReason: 'kernel upgrade in region-a' };

  it('starts no failover of a primary down by quorum, says so, and fails over once resumed', () => {
    const e = evaluate(outage({ specOver: paused }));
    // Positive control: the outage is seen (quorum down), and only the pause holds it back.
    expect(e.plan.verdict?.down).toBe(true);
    expect(e.started).toBeUndefined();
    expect(e.condition('FailoverBlocked')).toMatchObject({ status: 'True', reason: 'Paused' });
    expect(e.condition('Paused')).toMatchObject({ status: 'True', reason: 'Maintenance' });
    expect(e.condition('Paused')?.message).toMatch(
      /kernel upgrade in region-a.*held back now: failing over a/,
    );
    // A lost primary stays in sight: Blocked, not Paused.
    expect(e.status).toMatchObject({ phase: 'Blocked', pausedSince: NOW.toISOString() });
    // The time it was first seen paused is kept, not renewed each reconcile.
    const later = evaluate({
      ...outage({ specOver: paused, status: e.status }),
      now: new Date(NOW.getTime() + 60_000),
    });
    expect(later.status.pausedSince).toBe(NOW.toISOString());
    const resumed = evaluate(outage({ status: later.status }));
    expect(resumed.started).toMatchObject({ kind: 'Failover', from: 'a', to: 'b' });
    expect(resumed.status.pausedSince).toBeUndefined();
    expect(resumed.condition('Paused')).toMatchObject({ status: 'False', reason: 'Active' });
    // Paused with nothing wrong: the phase says so.
    const quiet = evaluate(input({ specOver: paused }));
    expect(quiet.condition('Paused')).toMatchObject({ status: 'True', reason: 'Maintenance' });
    expect(quiet.status.phase).toBe('Paused');
  });

  it('still fences a stray primary (safety is never paused), but creates or moves no DNS record', () => {
    // A person failed over during the pause; the old primary came back writable.
    const world = input({
      specOver: paused,
      status: { activePrimary: 'b', epoch: 5 },
      clusters: { a: primaryUp('a', 4), b: primaryUp('b', 5), c: standby('c', 1, 1, 4, 5) },
    });
    const stray = evaluate(world);
    expect(stray.started).toMatchObject({ kind: 'Fence', from: 'a', to: 'b' });
    // ...and the Fence goes on: it is not an automatic action a pause stands down.
    const next = decide({ ...world, status: stray.plan.status });
    expect(next.action).toMatchObject({ kind: 'RunStep', operation: { kind: 'Fence', step: 'Detected' } });
    // No DNS record yet: creating it is an automatic action, held and reported.
    const dns = evaluate(input({ specOver: paused, dns: { readAt: NOW } }));
    expect(dns.plan.action.kind).toBe('Observe');
    expect(dns.condition('Paused')?.message).toMatch(/held back now: creating the DNS record/);
    expect(evaluate(input({ dns: { readAt: NOW } })).plan.action.kind).toBe('RepairDns');
  });

  it('lets an automatic failover that changed nothing stand down, and one under way finish', () => {
    const detected = evaluate(
      outage({
        specOver: paused,
        status: { activePrimary: 'a', epoch: 4, currentOperation: inProgress('Detected') },
      }),
    );
    expect(detected.status.currentOperation).toMatchObject({ step: 'Aborted' });
    expect(detected.status.currentOperation?.message).toMatch(/paused/);
    const promoting = decide(
      outage({
        specOver: paused,
        status: { activePrimary: 'a', epoch: 4, currentOperation: inProgress('Promoting') },
      }),
    );
    expect(promoting.action).toMatchObject({ kind: 'RunStep', operation: { step: 'Promoting' } });
  });

  it("still runs a person's request", () => {
    const e = evaluate(
      input({ specOver: { ...paused, promotionRequest: { id: 'r1', target: 'b', kind: 'Switchover' } } }),
    );
    expect(e.started).toMatchObject({ kind: 'Switchover', from: 'a', to: 'b', trigger: 'Manual' });
  });
});
