import { describe, expect, it } from 'vitest';
import type {
  DrillState,
  FailoverPolicyStatus,
  Operation,
  OperationReport,
} from '../../api/v1alpha1/index.ts';
import type { CanaryRun, CanarySnapshot } from '../../providers/canary/port.ts';
import { ago, evaluate, NOW, spec as policySpec, unprobed } from './decide.fixtures.ts';
import { nextDrillAfter, scheduledDrillTime } from './drill.ts';
import type { ClusterFacts, DecideInput, Vote } from './facts.ts';

/** decide + summary, read the way these tests ask: the drill state, a report filed now, the leg started. */
function decide(i: DecideInput) {
  const e = evaluate(i);
  const filed = e.status.drills?.[0];
  return {
    action: e.plan.action,
    phase: e.status.phase,
    drill: e.status.drill,
    nextDrillTime: e.status.nextDrillTime,
    drillReport: filed && filed !== i.status.drills?.[0] ? filed : undefined,
    started: e.started,
    conditions: e.summary.conditions,
  };
}

// NOW is a Monday; the default schedule is Mondays at 03:00.
const at = (iso: string) => new Date(iso);
const later = (s: number) => new Date(NOW.getTime() + s * 1000);

// The record's own TTL (30 s): no lowering, except where a test asks for it.
const drills = {
  schedule: '0 3 * * 1',
  holdSeconds: 60,
  maxDurationSeconds: 600,
  abortIfLagSecondsAbove: 5,
  ttlSeconds: 30,
};
/** The fixtures' policy with one standby and drills. */
const spec = (over: Record<string, unknown> = {}) => policySpec({ standbys: ['b'], drills, ...over });

// A provider that makes the former primary a standby again after a switchover, so a drill can return.
const primary = (name: string): ClusterFacts => ({
  name,
  exists: true,
  reachable: true,
  role: 'Primary',
  rejoinsAfterSwitchover: true,
});
const standby = (name: string, lagSeconds = 0.5): ClusterFacts => ({
  name,
  exists: true,
  reachable: true,
  role: 'Standby',
  rejoinsAfterSwitchover: true,
  lagSeconds,
  lagBytes: 100,
  lagObservedAt: ago(1),
});
const vote = (observer: string, reachable = true): Vote => ({
  observer,
  observedAt: ago(1),
  reachable,
  consecutiveFailures: reachable ? 0 : 5,
});

/** A drill that is due now (a minute ago). */
const DUE = '2026-03-02T09:59:00.000Z';

function input(
  status: FailoverPolicyStatus = { activePrimary: 'a', epoch: 4, nextDrillTime: DUE },
  over: Partial<DecideInput> = {},
): DecideInput {
  return {
    spec: spec({ drills: { ...drills, schedule: '59 9 * * 1' } }),
    status,
    clusters: { a: primary('a'), b: standby('b') },
    votes: [vote('operator'), vote('region-b'), vote('region-c')],
    now: NOW,
    ...over,
  };
}

const drill = (leg: DrillState['leg'], over: Partial<DrillState> = {}): DrillState => ({
  id: 'drill-20260302095950',
  from: 'a',
  to: 'b',
  startedAt: ago(120).toISOString(),
  leg,
  outboundOperationId: 'switchover-e5-x',
  ...over,
});

/** A drill in its Starting leg, started `secondsAgo`. */
const startingDrill = (secondsAgo: number): DrillState => {
  const { outboundOperationId: _o, ...rest } = drill('Starting', {
    startedAt: ago(secondsAgo).toISOString(),
  });
  return rest;
};

/** What the canary writer saw: runs of acknowledged writes, each on one cluster. */
const canary = (drillId: string, runs: CanaryRun[]): CanarySnapshot => ({
  drillId,
  writer: 'operator-0@t',
  startedAt: ago(130).toISOString(),
  failed: 3,
  runs,
});
const run = (
  cluster: string,
  firstSeq: number,
  lastSeq: number,
  over: Partial<CanaryRun> = {},
): CanaryRun => ({
  cluster,
  firstSeq,
  lastSeq,
  acknowledged: lastSeq - firstSeq + 1,
  firstAt: ago(110).toISOString(),
  lastAt: ago(101).toISOString(),
  ...over,
});

const report = (id: string, over: Partial<OperationReport> = {}): OperationReport => ({
  id,
  kind: 'Switchover',
  trigger: 'Drill',
  from: 'a',
  to: 'b',
  epoch: 5,
  result: 'Succeeded',
  startedAt: ago(120).toISOString(),
  completedAt: ago(100).toISOString(),
  rtoSeconds: 3.2,
  rpoSeconds: 0,
  rpoBytes: 0,
  dnsVerifySeconds: 0.4,
  ...over,
});

function drillsOf(s: ReturnType<typeof spec>) {
  if (!s.drills) throw new Error('no drills in the spec');
  return s.drills;
}

describe('the drill schedule', () => {
  it('is the next occurrence of the cron schedule, in its time zone', () => {
    expect(nextDrillAfter(drillsOf(spec()), NOW)?.toISOString()).toBe('2026-03-09T03:00:00.000Z');
    const amsterdam = drillsOf(spec({ drills: { ...drills, timeZone: 'Europe/Amsterdam' } }));
    // 03:00 in Amsterdam is 02:00 UTC in winter and 01:00 UTC in summer.
    expect(nextDrillAfter(amsterdam, NOW)?.toISOString()).toBe('2026-03-09T02:00:00.000Z');
    expect(nextDrillAfter(amsterdam, at('2026-06-01T12:00:00Z'))?.toISOString()).toBe(
      '2026-06-08T01:00:00.000Z',
    );
  });

  it('keeps a stored time while it is an occurrence of the schedule, and moves when the schedule changes', () => {
    const status = { nextDrillTime: '2026-03-09T03:00:00.000Z' };
    expect(scheduledDrillTime(spec(), status, NOW)).toBe('2026-03-09T03:00:00.000Z');
    // Due, and still kept: the drill is handled before the time moves on.
    expect(scheduledDrillTime(spec(), status, at('2026-03-09T03:00:05Z'))).toBe('2026-03-09T03:00:00.000Z');
    const daily = spec({ drills: { ...drills, schedule: '30 4 * * *' } });
    expect(scheduledDrillTime(daily, status, NOW)).toBe('2026-03-03T04:30:00.000Z');
  });

  const drillsCondition = (over: Record<string, unknown>) =>
    decide(
      input({ activePrimary: 'a', epoch: 4 }, { spec: spec({ drills: { ...drills, ...over } }) }),
    ).conditions.find((c) => c.type === 'DrillsScheduled');

  it('says in a condition when the schedule cannot be used, instead of failing the reconcile', () => {
    expect(drillsCondition({ timeZone: 'Mars/Olympus' })).toMatchObject({
      status: 'False',
      reason: 'InvalidSchedule',
      message: expect.stringMatching(/Mars\/Olympus.*use an IANA time zone/),
    });
    expect(drillsCondition({ schedule: '0 3 30 2 *' })).toMatchObject({
      status: 'False',
      reason: 'InvalidSchedule',
      message: expect.stringMatching(/never fires/),
    });
    expect(drillsCondition({ suspend: true })).toMatchObject({ status: 'False', reason: 'Suspended' });
    expect(drillsCondition({})).toMatchObject({ status: 'True', reason: 'Scheduled' });
    const plan = decide(
      input(
        { activePrimary: 'a', epoch: 4 },
        { spec: spec({ drills: { ...drills, timeZone: 'Mars/Olympus' } }) },
      ),
    );
    expect(plan.nextDrillTime).toBeUndefined();
    expect(plan.phase).toBe('Healthy');
  });

  it('is absent while drills are off or suspended', () => {
    expect(scheduledDrillTime(spec({ drills: undefined }), {}, NOW)).toBeUndefined();
    expect(scheduledDrillTime(spec({ drills: { ...drills, suspend: true } }), {}, NOW)).toBeUndefined();
    expect(decide(input({ activePrimary: 'a', epoch: 4 })).nextDrillTime).toBe('2026-03-09T09:59:00.000Z');
  });
});

describe('decide: starting a drill', () => {
  it('starts when due with a standby within the lag limit: the canary writes first, and the next one is scheduled', () => {
    const plan = decide(input());
    expect(plan.started).toBeUndefined();
    expect(plan.phase).toBe('Drilling');
    expect(plan.drill).toMatchObject({ from: 'a', to: 'b', leg: 'Starting' });
    expect(plan.drill?.outboundOperationId).toBeUndefined();
    expect(plan.nextDrillTime).toBe('2026-03-09T09:59:00.000Z');
    expect(plan.drillReport).toBeUndefined();
  });

  it('switches over once the canary has writes acknowledged by the primary, giving up the catch-up at the lag limit', () => {
    const fresh = startingDrill(1);
    const status = { activePrimary: 'a', epoch: 4, drill: fresh };
    const few = decide(input(status, { canary: canary(fresh.id, [run('a', 1, 3)]) }));
    expect(few.started).toBeUndefined();
    expect(few.drill).toEqual(fresh);
    const plan = decide(input(status, { canary: canary(fresh.id, [run('a', 1, 12)]) }));
    expect(plan.started).toMatchObject({
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'a',
      to: 'b',
      epoch: 5,
      maxCatchUpSeconds: 5,
    });
    expect(plan.drill).toMatchObject({ leg: 'Out', outboundOperationId: plan.started?.id });
    // Without a canary (it could not connect) it goes anyway after the warm-up, measured by the operator.
    const late = startingDrill(16);
    expect(decide(input({ activePrimary: 'a', epoch: 4, drill: late })).started).toMatchObject({ to: 'b' });
  });

  it('holds through a probe its primary or standby did not answer, and aborts once the silence outlasts detection', () => {
    // Detection here: 1 s probes × failureThreshold 3, so a silence holds up to 5 s (the last
    // answered probe began then). The canary has written: it would go out now.
    const fresh = startingDrill(20);
    const status = { activePrimary: 'a', epoch: 4, drill: fresh };
    const silent = (f: ClusterFacts, secondsAgo: number): ClusterFacts => ({
      ...f,
      reachable: false,
      role: 'Unknown',
      lastReachableAt: ago(secondsAgo),
    });
    const withClusters = (a: ClusterFacts, b: ClusterFacts) =>
      decide(input(status, { clusters: { a, b }, canary: canary(fresh.id, [run('a', 1, 12)]) }));
    for (const held of [
      withClusters(silent(primary('a'), 4.5), standby('b')),
      withClusters(primary('a'), silent(standby('b'), 2)),
    ]) {
      expect(held.started).toBeUndefined();
      expect(held.drillReport).toBeUndefined();
      expect(held.drill).toEqual(fresh);
    }
    const gone = withClusters(silent(primary('a'), 5), standby('b'));
    expect(gone.started).toBeUndefined();
    expect(gone.drillReport).toMatchObject({ result: 'Aborted' });
    expect(gone.drillReport?.reason).toMatch(/the primary a does not accept writes before the switchover/);
    // A primary that answers, but not as a writable primary, is a fact at once.
    const fenced = withClusters({ ...primary('a'), role: 'Fenced' }, standby('b'));
    expect(fenced.drillReport).toMatchObject({ result: 'Aborted' });
    // The control: the same drill with both answering goes out.
    expect(withClusters(primary('a'), standby('b')).started).toMatchObject({ kind: 'Switchover', to: 'b' });
  });

  it('starts with database agents on both sides even where the provider would not bring the old primary back', () => {
    const withAgent = (f: ClusterFacts): ClusterFacts => ({
      ...f,
      rejoinsAfterSwitchover: false,
      agent: { name: 'x', reportedAt: ago(2).toISOString(), dataDirectory: '/d', server: 'Primary' },
    });
    const plan = decide(
      input(undefined, { clusters: { a: withAgent(primary('a')), b: withAgent(standby('b')) } }),
    );
    expect(plan.drill).toMatchObject({ leg: 'Starting', to: 'b' });
    const noAgentOnB = decide(
      input(undefined, {
        clusters: { a: withAgent(primary('a')), b: { ...standby('b'), rejoinsAfterSwitchover: false } },
      }),
    );
    expect(noAgentOnB.drillReport?.reason).toMatch(/no standby .* that can come back after a switchover/);
  });

  it("switches over only on a lag measured close to the primary's last read, not the clock", () => {
    // Probes 1 s apart: a lag may be measured up to 7 s (two intervals and 5 s) before that read.
    const fresh = startingDrill(60);
    const status = { activePrimary: 'a', epoch: 4, drill: fresh };
    const at = (lagAgo: number, primaryReadAgo = 3, over: Partial<DecideInput> = {}) =>
      decide(
        input(status, {
          clusters: {
            a: { ...primary('a'), lastReachableAt: ago(primaryReadAgo) },
            b: { ...standby('b'), lagObservedAt: ago(lagAgo) },
          },
          canary: canary(fresh.id, [run('a', 1, 12)]),
          ...over,
        }),
      );
    expect(at(9).started).toMatchObject({ kind: 'Switchover', to: 'b' });
    // Early on, an old figure is waited for (as long as detection takes, past the warm-up).
    const early = startingDrill(2);
    const waits = at(11, 3, {
      status: { activePrimary: 'a', epoch: 4, drill: early },
      canary: canary(early.id, [run('a', 1, 12)]),
    });
    expect(waits.started).toBeUndefined();
    expect(waits.drill).toEqual(early);
    expect(waits.drillReport).toBeUndefined();
    const stale = at(11);
    expect(stale.started).toBeUndefined();
    expect(stale.drillReport).toMatchObject({ result: 'Aborted' });
    expect(stale.drillReport?.reason).toMatch(
      /b is no longer a standby replicating within 5 s \(the lag of b was last measured at 2026-03-02T09:59:49.000Z, too long before a was last read\) before the switchover; nothing moved/,
    );
    // A primary read older than a vote may be is no anchor: the clock is, and the same lag is too old.
    expect(at(9, 9).drillReport?.reason).toMatch(/the lag of b was last measured/);
    // Starting one is judged without the lag's age (the plugin's preflight reads statuses, whose
    // times a quiet cluster does not refresh): the switchover's own check is the one above.
    expect(
      decide(
        input(undefined, { clusters: { a: primary('a'), b: { ...standby('b'), lagObservedAt: ago(600) } } }),
      ).drill,
    ).toMatchObject({ leg: 'Starting' });
  });

  it('does nothing before it is due', () => {
    const plan = decide(input({ activePrimary: 'a', epoch: 4, nextDrillTime: '2026-03-09T09:59:00.000Z' }));
    expect(plan.action.kind).toBe('Observe');
    expect(plan.drill).toBeUndefined();
    expect(plan.phase).toBe('Healthy');
  });

  const skipped: [string, DecideInput, RegExp][] = [
    [
      'the standby lags more than abortIfLagSecondsAbove',
      input(undefined, { clusters: { a: primary('a'), b: standby('b', 7) } }),
      /no standby replicating within 5 s that can come back after a switchover \(b lags 7 s\)/,
    ],
    [
      'the standby is unreachable',
      input(undefined, {
        clusters: { a: primary('a'), b: { name: 'b', exists: true, reachable: false, role: 'Unknown' } },
      }),
      /b is unreachable/,
    ],
    [
      "neither an agent nor the primary's provider would make it a standby again, so the drill could not return",
      input(undefined, {
        clusters: { a: { ...primary('a'), rejoinsAfterSwitchover: false }, b: standby('b') },
      }),
      /no database agent reports for a and its provider does not make a former primary a standby again.*could not come back/,
    ],
    [
      'a real failover ended within the cool-down',
      input({ activePrimary: 'a', epoch: 4, nextDrillTime: DUE, lastFailoverTime: ago(60).toISOString() }),
      /within the 600 s cool-down/,
    ],
    [
      'it was due more than an hour ago',
      input(
        { activePrimary: 'a', epoch: 4, nextDrillTime: '2026-03-02T08:59:00.000Z' },
        {
          spec: spec({ drills: { ...drills, schedule: '59 8 * * 1' } }),
        },
      ),
      /more than an hour ago/,
    ],
  ];
  it.each(skipped)('is skipped and filed as Aborted when %s', (_, given, reason) => {
    const plan = decide(given);
    expect(plan.action.kind).toBe('Record');
    expect(plan.started).toBeUndefined();
    expect(plan.drillReport).toMatchObject({ trigger: 'Drill', result: 'Aborted' });
    expect(plan.drillReport?.reason).toMatch(reason);
    expect(plan.drill).toBeUndefined();
    expect(new Date(plan.nextDrillTime ?? 0).getTime()).toBeGreaterThan(NOW.getTime());
  });

  it('never starts while the primary is down: the failover rules decide', () => {
    const plan = decide(
      input(undefined, {
        clusters: { a: { name: 'a', exists: true, reachable: false, role: 'Unknown' }, b: standby('b') },
        votes: [vote('operator', false), vote('region-b', false), vote('region-c', false)],
      }),
    );
    expect(plan.drill).toBeUndefined();
    expect(plan.started?.trigger).not.toBe('Drill');
  });

  it('still starting when the primary is lost, it ends Aborted in the failover rules’ own write', () => {
    const fresh = startingDrill(20);
    const lost = (over: Partial<DecideInput> = {}) =>
      decide(
        input(
          { activePrimary: 'a', epoch: 4, drill: fresh },
          {
            clusters: { a: { name: 'a', exists: true, reachable: false, role: 'Unknown' }, b: standby('b') },
            votes: [vote('operator', false), vote('region-b', false), vote('region-c', false)],
            ...over,
          },
        ),
      );
    const failing = lost();
    expect(failing.drill).toBeUndefined();
    expect(failing.drillReport).toMatchObject({ result: 'Aborted' });
    expect(failing.drillReport?.reason).toMatch(
      /the primary a was lost before the switchover .*nothing moved/,
    );
    expect(failing.started).toMatchObject({ kind: 'Failover', trigger: 'Automatic', to: 'b' });
    expect(failing.phase).toBe('FailingOver');
    // Blocked (Manual promotion): the phase says so, not Drilling.
    const manual = spec({ drills: { ...drills, schedule: '59 9 * * 1' }, promotion: { mode: 'Manual' } });
    const blocked = lost({ spec: manual });
    expect(blocked.started).toBeUndefined();
    expect(blocked.drillReport).toMatchObject({ result: 'Aborted' });
    expect(blocked.phase).toBe('Blocked');
  });

  it('waits for an operation in progress, showing a drill leg as Drilling', () => {
    const status: FailoverPolicyStatus = {
      activePrimary: 'a',
      epoch: 4,
      nextDrillTime: '2026-03-09T09:59:00.000Z',
      drill: drill('Out'),
      currentOperation: {
        id: 'switchover-e5-x',
        kind: 'Switchover',
        trigger: 'Drill',
        from: 'a',
        to: 'b',
        epoch: 5,
        step: 'CatchingUp',
        startedAt: ago(2).toISOString(),
        stepStartedAt: ago(1).toISOString(),
      },
    };
    const plan = decide(input(status));
    expect(plan.action).toMatchObject({ kind: 'RunStep', operation: { step: 'CatchingUp' } });
    expect(plan.phase).toBe('Drilling');
    expect(plan.drill).toEqual(status.drill);
  });
});

describe('decide: a drill in progress', () => {
  const decideWith = (
    d: DrillState,
    over: FailoverPolicyStatus = {},
    clusters?: Record<string, ClusterFacts>,
  ) =>
    decide(
      input(
        {
          epoch: 5,
          nextDrillTime: '2026-03-09T09:59:00.000Z',
          drill: d,
          history: [report(d.outboundOperationId ?? 'switchover-e5-x')],
          ...over,
        },
        clusters ? { clusters } : {},
      ),
    );
  const onB = { a: standby('a'), b: primary('b') };

  it('holds on the standby for holdSeconds once the switchover to it succeeded', () => {
    const plan = decideWith(drill('Out'), { activePrimary: 'b' }, onB);
    expect(plan.drill).toMatchObject({ leg: 'Holding', returnAfter: later(60).toISOString() });
    expect(plan.phase).toBe('Drilling');
    expect(plan.action.kind).toBe('Record');
  });

  it('is filed as Aborted when the switchover to the standby did not complete', () => {
    const plan = decideWith(drill('Out'), {
      activePrimary: 'a',
      history: [report('switchover-e5-x', { result: 'Aborted', reason: 'b did not catch up' })],
    });
    expect(plan.drill).toBeUndefined();
    expect(plan.drillReport).toMatchObject({ result: 'Aborted' });
    expect(plan.drillReport?.reason).toMatch(/did not complete \(b did not catch up\); a is the primary/);
  });

  it('keeps holding until returnAfter', () => {
    const holding = drill('Holding', { returnAfter: later(30).toISOString() });
    const plan = decideWith(holding, { activePrimary: 'b' }, onB);
    expect(plan.action.kind).toBe('Observe');
    expect(plan.phase).toBe('Drilling');
    expect(plan.drill).toEqual(holding);
  });

  it('switches back to where it started once the hold is over', () => {
    const plan = decideWith(
      drill('Holding', { returnAfter: ago(1).toISOString() }),
      { activePrimary: 'b' },
      onB,
    );
    expect(plan.started).toMatchObject({
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'b',
      to: 'a',
      epoch: 6,
    });
    const op = plan.started ?? { id: '' };
    expect(plan.drill).toMatchObject({ leg: 'Back', backOperationId: op.id });
  });

  it('is judged by its own legs, not by whatever operation ended last', () => {
    // A person's switchover ran after the drill came back: the drill still succeeded.
    const plan = decideWith(drill('Back', { backOperationId: 'switchover-e6-y' }), {
      activePrimary: 'a',
      epoch: 6,
      history: [
        report('switchover-e7-z', { trigger: 'Manual', from: 'a', to: 'a', reason: 'a person' }),
        report('switchover-e6-y', { from: 'b', to: 'a', rtoSeconds: 2.9 }),
        report('switchover-e5-x'),
      ],
    });
    expect(plan.drillReport).toMatchObject({ result: 'Succeeded' });
  });

  it('waits after a restart, before anything is probed, instead of failing or skipping', () => {
    const overdue = drill('Holding', {
      startedAt: ago(601).toISOString(),
      returnAfter: ago(1).toISOString(),
    });
    const held = decideWith(overdue, { activePrimary: 'b' }, { a: unprobed('a'), b: unprobed('b') });
    expect(held.drillReport).toBeUndefined();
    expect(held.phase).toBe('Drilling');
    const due = decide(input(undefined, { clusters: { a: unprobed('a'), b: unprobed('b') }, votes: [] }));
    expect(due.drillReport).toBeUndefined();
    expect(due.drill).toBeUndefined();
    expect(due.started).toBeUndefined();
    expect(due.nextDrillTime).toBe(DUE);
  });

  it('ends at once when spec.drills is removed while it cannot switch back', () => {
    const gone = {
      a: { name: 'a', exists: true, reachable: false, role: 'Unknown' as const },
      b: primary('b'),
    };
    const plan = decide(
      input(
        { activePrimary: 'b', epoch: 5, drill: drill('Holding', { returnAfter: later(30).toISOString() }) },
        { spec: spec({ drills: undefined }), clusters: gone },
      ),
    );
    expect(plan.drillReport).toMatchObject({ result: 'Failed' });
  });

  it('switches back at maxDurationSeconds even if the hold is longer', () => {
    const long = drill('Holding', {
      startedAt: ago(601).toISOString(),
      returnAfter: later(3600).toISOString(),
    });
    // Past maxDurationSeconds the drill is marked stopping first, then switched back.
    const stopping = decideWith(long, { activePrimary: 'b' }, onB);
    expect(stopping.drill?.stop).toMatchObject({ result: 'Aborted' });
    expect(decideWith(stopping.drill as DrillState, { activePrimary: 'b' }, onB).started).toMatchObject({
      kind: 'Switchover',
    });
  });

  it('fails, leaving the primary where it is, when it cannot switch back within maxDurationSeconds and the grace after', () => {
    const gone = {
      a: { name: 'a', exists: true, reachable: false, role: 'Unknown' as const },
      b: primary('b'),
    };
    const waiting = drill('Holding', { returnAfter: ago(1).toISOString() });
    expect(decideWith(waiting, { activePrimary: 'b' }, gone).drill).toEqual(waiting);
    const overdue = (s: number) =>
      drill('Holding', { startedAt: ago(s).toISOString(), returnAfter: ago(1).toISOString() });
    // Just past maxDurationSeconds it keeps trying to come home...
    const stopping = decideWith(overdue(601), { activePrimary: 'b' }, gone);
    expect(
      decideWith(stopping.drill as DrillState, { activePrimary: 'b' }, gone).drillReport,
    ).toBeUndefined();
    // ...for ten minutes more.
    const late = decideWith(overdue(1201), { activePrimary: 'b' }, gone);
    const plan = decideWith(late.drill as DrillState, { activePrimary: 'b' }, gone);
    expect(plan.started).toBeUndefined();
    expect(plan.drillReport).toMatchObject({ result: 'Failed' });
    expect(plan.drillReport?.reason).toMatch(
      /could not switch back to a within maxDurationSeconds and 10 min more: a is unreachable.*b stays the primary/,
    );
  });

  it('is filed as Interrupted when something else moved the primary during the hold', () => {
    const plan = decideWith(drill('Holding'), { activePrimary: 'a' });
    expect(plan.drillReport).toMatchObject({ result: 'Interrupted' });
    expect(plan.drillReport?.reason).toMatch(
      /the primary moved to a during the drill: a real failover took over/,
    );
  });

  it('succeeds once back on the primary it started from, with the RTO and RPO of the switchover', () => {
    const plan = decideWith(drill('Back', { backOperationId: 'switchover-e6-y' }), {
      activePrimary: 'a',
      epoch: 6,
      history: [
        report('switchover-e6-y', { from: 'b', to: 'a', rtoSeconds: 2.9 }),
        report('switchover-e5-x'),
      ],
    });
    expect(plan.drill).toBeUndefined();
    expect(plan.drillReport).toMatchObject({
      id: 'drill-20260302095950',
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'a',
      to: 'b',
      result: 'Succeeded',
      epoch: 6,
      rtoSeconds: 3.2,
      rpoBytes: 0,
      rpoSeconds: 0,
    });
    expect(plan.drillReport?.reason).toMatch(
      /out to b: RTO 3.2 s \(operator-measured\); back: RTO 2.9 s; DNS verified in 0.4 s/,
    );
  });

  it('tries the way back again when it rolled back, and fails only past maxDurationSeconds and the grace', () => {
    const rolledBack = {
      activePrimary: 'b',
      history: [
        report('switchover-e6-y', { from: 'b', to: 'a', result: 'Aborted', reason: 'a did not catch up' }),
      ],
    };
    const again = decideWith(drill('Back', { backOperationId: 'switchover-e6-y' }), rolledBack, onB);
    expect(again.drillReport).toBeUndefined();
    expect(again.drill).toMatchObject({ leg: 'Holding' });
    expect(again.drill?.backOperationId).toBeUndefined();
    const plan = decideWith(
      drill('Back', { backOperationId: 'switchover-e6-y', startedAt: ago(1300).toISOString() }),
      rolledBack,
      onB,
    );
    expect(plan.drillReport).toMatchObject({ result: 'Failed' });
    expect(plan.drillReport?.reason).toMatch(
      /back to a did not complete \(a did not catch up\); b stays the primary/,
    );
  });
});

describe('decide: a drill measured by its canary', () => {
  const onB = { a: standby('a'), b: primary('b') };
  const out = (completedSecondsAgo: number) =>
    report('switchover-e5-x', { completedAt: ago(completedSecondsAgo).toISOString() });

  it('waits for the canary to land a write on the new primary, then records the leg from the client side', () => {
    const d = drill('Out');
    const status = { activePrimary: 'b', epoch: 5, drill: d, history: [out(2)] };
    const waiting = decide(input(status, { clusters: onB, canary: canary(d.id, [run('a', 1, 40)]) }));
    expect(waiting.drill).toEqual(d);
    const seen = canary(d.id, [
      run('a', 1, 40, { lastAt: '2026-03-02T09:59:58.000Z', missing: 0 }),
      run('b', 46, 50, { firstAt: '2026-03-02T09:59:59.250Z', lastAt: '2026-03-02T09:59:59.650Z' }),
    ]);
    const plan = decide(input(status, { clusters: onB, canary: seen }));
    expect(plan.drill).toMatchObject({
      leg: 'Holding',
      out: {
        operationId: 'switchover-e5-x',
        measuredBy: 'Canary',
        rtoSeconds: 1.25,
        rpoTransactions: 0,
        acknowledged: 40,
        writesStoppedAt: '2026-03-02T09:59:58.000Z',
        writesResumedAt: '2026-03-02T09:59:59.250Z',
      },
    });
  });

  it('falls back to the operator’s own figures, saying why, when the canary saw no write on the old primary', () => {
    const d = drill('Out');
    const plan = decide(
      input(
        { activePrimary: 'b', epoch: 5, drill: d, history: [out(31)] },
        { clusters: onB, canary: canary(d.id, [run('b', 1, 20)]) },
      ),
    );
    expect(plan.drill?.out).toMatchObject({
      measuredBy: 'Operator',
      rtoSeconds: 3.2,
      message: expect.stringMatching(/saw no write acknowledged by a/),
    });
  });

  it('fails a drill whose canary lost acknowledged rows in a switchover, and reports them', () => {
    const d = drill('Back', {
      backOperationId: 'switchover-e6-y',
      out: {
        operationId: 'switchover-e5-x',
        measuredBy: 'Canary',
        rtoSeconds: 1.1,
        rpoTransactions: 2,
        acknowledged: 40,
      },
    });
    const back = report('switchover-e6-y', { from: 'b', to: 'a', completedAt: ago(40).toISOString() });
    const plan = decide(
      input({ activePrimary: 'a', epoch: 6, drill: d, history: [back, report('switchover-e5-x')] }),
    );
    expect(plan.drillReport).toMatchObject({ result: 'Failed', lostWrites: 2, rtoSeconds: 1.1 });
    expect(plan.drillReport?.reason).toMatch(/2 acknowledged canary row\(s\) lost/);
  });

  it('waits after the way back for the drill’s standby to replicate again, and fails if it does not', () => {
    const d = drill('Back', { backOperationId: 'switchover-e6-y' });
    const back = (s: number) =>
      report('switchover-e6-y', { from: 'b', to: 'a', completedAt: ago(s).toISOString() });
    const stillFenced = { a: primary('a'), b: { ...primary('b'), role: 'Fenced' as const } };
    const soon = decide(
      input({ activePrimary: 'a', epoch: 6, drill: d, history: [back(40)] }, { clusters: stillFenced }),
    );
    expect(soon.drillReport).toBeUndefined();
    expect(soon.drill?.back).toMatchObject({ measuredBy: 'Operator' });
    const late = decide(
      input({ activePrimary: 'a', epoch: 6, drill: d, history: [back(61)] }, { clusters: stillFenced }),
    );
    expect(late.drillReport).toMatchObject({ result: 'Failed' });
    expect(late.drillReport?.reason).toMatch(/b is not a replicating standby 60 s later/);
  });
});

describe('decide: drill requests and early ends', () => {
  const outOp = (step: Operation['step']): Operation => ({
    id: 'switchover-e5-x',
    kind: 'Switchover',
    trigger: 'Drill',
    from: 'a',
    to: 'b',
    epoch: 5,
    step,
    startedAt: ago(5).toISOString(),
    stepStartedAt: ago(1).toISOString(),
  });
  const withRequest = (request: Record<string, unknown>) =>
    spec({ drills: { ...drills, schedule: '59 9 * * 1' }, drillRequest: request });

  it('runs a drill on request, once per id, and says why when it cannot', () => {
    const run1 = { id: 'now-1', action: 'Run', requestedBy: 'ana' };
    const status = { activePrimary: 'a', epoch: 4, nextDrillTime: '2026-03-09T09:59:00.000Z' };
    const plan = decide(input(status, { spec: withRequest(run1) }));
    expect(plan.drill).toMatchObject({ leg: 'Starting', to: 'b', requestId: 'now-1' });
    expect(plan.nextDrillTime).toBe('2026-03-09T09:59:00.000Z');
    const handled = decide(
      input({ ...status, lastHandledDrillRequestId: 'now-1' }, { spec: withRequest(run1) }),
    );
    expect(handled.drill).toBeUndefined();
    const refused = evaluate(
      input(status, {
        spec: withRequest({ id: 'now-2', action: 'Run' }),
        clusters: { a: primary('a'), b: standby('b', 9) },
      }),
    );
    expect(refused.status.lastDrillRequest).toMatchObject({
      id: 'now-2',
      action: 'Run',
      outcome: 'Rejected',
      message: expect.stringMatching(/b lags 9 s/),
    });
    expect(refused.status.drill).toBeUndefined();
  });

  it('cancelled while catching up: the switchover out rolls back, and the drill is filed Cancelled', () => {
    const d = drill('Out');
    const cancel = { id: 'stop-1', action: 'Cancel', reason: 'release day' };
    const plan = evaluate(
      input(
        { activePrimary: 'a', epoch: 4, drill: d, currentOperation: outOp('CatchingUp') },
        { spec: withRequest(cancel) },
      ),
    );
    expect(plan.status.currentOperation?.step).toBe('RollingBack');
    expect(plan.status.drill?.stop).toMatchObject({
      result: 'Cancelled',
      reason: expect.stringMatching(/stop-1.*release day/),
    });
    expect(plan.status.lastDrillRequest).toMatchObject({ id: 'stop-1', outcome: 'Accepted' });
    // The rollback ended it: the drill is filed with what the person asked.
    const ended = decide(
      input(
        {
          activePrimary: 'a',
          epoch: 4,
          lastHandledDrillRequestId: 'stop-1',
          drill: plan.status.drill,
          history: [report('switchover-e5-x', { result: 'Aborted', message: 'rolled back' })],
        },
        { spec: withRequest(cancel) },
      ),
    );
    expect(ended.drillReport).toMatchObject({ result: 'Cancelled' });
  });

  it('cancelled during the hold: it comes back at once; past maxDurationSeconds the same', () => {
    const onB = { a: standby('a'), b: primary('b') };
    const holding = drill('Holding', { returnAfter: later(3000).toISOString() });
    const stopped = evaluate(
      input(
        { activePrimary: 'b', epoch: 5, drill: holding },
        { spec: withRequest({ id: 's', action: 'Cancel' }), clusters: onB },
      ),
    );
    expect(stopped.status.drill?.stop?.result).toBe('Cancelled');
    const back = decide(input({ ...stopped.status, lastHandledDrillRequestId: 's' }, { clusters: onB }));
    expect(back.started).toMatchObject({ from: 'b', to: 'a', trigger: 'Drill' });
    const overdue = evaluate(
      input({
        activePrimary: 'a',
        epoch: 4,
        drill: drill('Out', { startedAt: ago(601).toISOString() }),
        currentOperation: outOp('Fencing'),
      }),
    );
    expect(overdue.status.currentOperation?.step).toBe('RollingBack');
    expect(overdue.status.drill?.stop).toMatchObject({
      result: 'Aborted',
      reason: expect.stringMatching(/maxDurationSeconds/),
    });
  });

  it('never stops the way back, and refuses a cancel with no drill', () => {
    const none = evaluate(
      input({ activePrimary: 'a', epoch: 4 }, { spec: withRequest({ id: 'c', action: 'Cancel' }) }),
    );
    expect(none.status.lastDrillRequest).toMatchObject({
      outcome: 'Rejected',
      message: 'no drill is in progress',
    });
    const backOp = { ...outOp('CatchingUp'), id: 'switchover-e6-y', from: 'b', to: 'a', epoch: 6 };
    const onTheWay = evaluate(
      input(
        {
          activePrimary: 'b',
          epoch: 5,
          drill: drill('Back', { backOperationId: 'switchover-e6-y', startedAt: ago(700).toISOString() }),
          currentOperation: backOp,
        },
        { spec: withRequest({ id: 'c2', action: 'Cancel' }) },
      ),
    );
    expect(onTheWay.status.currentOperation?.step).toBe('CatchingUp');
    expect(onTheWay.status.drill?.stop).toBeUndefined();
  });

  it('is filed Interrupted as soon as a real failover has moved the primary, whatever runs next', () => {
    const failover = report('failover-e6-z', {
      kind: 'Failover',
      trigger: 'Automatic',
      from: 'b',
      to: 'a',
      epoch: 6,
      startedAt: ago(30).toISOString(),
      reason: 'b down by quorum',
    });
    const reprotect: Operation = {
      ...outOp('Rejoining'),
      id: 'reprotect-e6-b',
      kind: 'Reprotect',
      trigger: 'Automatic',
      from: 'b',
      to: 'a',
      epoch: 6,
    };
    const plan = evaluate(
      input({
        activePrimary: 'a',
        epoch: 6,
        drill: drill('Holding', { returnAfter: later(3000).toISOString() }),
        history: [failover, report('switchover-e5-x')],
        currentOperation: reprotect,
      }),
    );
    expect(plan.status.drill).toBeUndefined();
    expect(plan.status.drills?.[0]).toMatchObject({ result: 'Interrupted' });
    expect(plan.status.drills?.[0]?.reason).toMatch(
      /real failover took over during the drill: b → a \(failover-e6-z\): b down by quorum/,
    );
    expect(plan.status.currentOperation?.id).toBe('reprotect-e6-b');
  });

  it('refuses a Run while a drill runs, at once, instead of queueing a second drill', () => {
    const plan = evaluate(
      input(
        { activePrimary: 'b', epoch: 5, drill: drill('Holding', { returnAfter: later(3000).toISOString() }) },
        { spec: withRequest({ id: 'again', action: 'Run' }), clusters: { a: standby('a'), b: primary('b') } },
      ),
    );
    expect(plan.status.lastDrillRequest).toMatchObject({
      id: 'again',
      outcome: 'Rejected',
      message: expect.stringMatching(/drill-20260302095950 is in progress \(Holding\)/),
    });
    expect(plan.status.drill?.leg).toBe('Holding');
  });

  it('lowers the TTL first, waits out the old one, then switches with the lowered TTL, and reports it', () => {
    const lowering = {
      spec: spec({ drills: { ...drills, ttlSeconds: 5 } }),
      dnsTargets: { a: 'a.db.internal', b: 'b.db.internal' },
      dnsOwner: 'ns/orders',
      canary: canary('drill-20260302095950', [run('a', 1, 30)]),
    };
    const fresh = startingDrill(1);
    const first = decide(input({ activePrimary: 'a', epoch: 4, drill: fresh }, lowering));
    expect(first.drill?.ttl).toEqual({ lowered: 5, was: 30 });
    expect(first.started).toBeUndefined();
    // Until the authoritative servers serve it, nothing moves (keepDnsOnPrimary sets it).
    const withTtl = { ...fresh, ttl: { lowered: 5, was: 30 } };
    const notYet = evaluate(
      input(
        { activePrimary: 'a', epoch: 4, drill: withTtl },
        { ...lowering, dns: { readAt: NOW, value: 'a.db.internal', owner: 'ns/orders', epoch: 4, ttl: 30 } },
      ),
    );
    expect(notYet.plan.action).toMatchObject({ kind: 'RepairDns', ttl: 5 });
    const served = decide(
      input(
        { activePrimary: 'a', epoch: 4, drill: withTtl },
        { ...lowering, dns: { readAt: NOW, value: 'a.db.internal', owner: 'ns/orders', epoch: 4, ttl: 5 } },
      ),
    );
    expect(served.drill?.ttl?.loweredAt).toBe(NOW.toISOString());
    // The old TTL is waited out, then the switchover re-points with the lowered one.
    const waiting = decide(
      input(
        {
          activePrimary: 'a',
          epoch: 4,
          drill: { ...withTtl, ttl: { lowered: 5, was: 30, loweredAt: ago(10).toISOString() } },
        },
        lowering,
      ),
    );
    expect(waiting.started).toBeUndefined();
    const going = decide(
      input(
        {
          activePrimary: 'a',
          epoch: 4,
          drill: { ...withTtl, ttl: { lowered: 5, was: 30, loweredAt: ago(31).toISOString() } },
        },
        lowering,
      ),
    );
    expect(going.started).toMatchObject({ to: 'b', dnsTtlSeconds: 5 });
    // A TTL that never shows (a provider that refuses it) is given up, and the drill goes on.
    const stuck = decide(
      input(
        { activePrimary: 'a', epoch: 4, drill: { ...withTtl, startedAt: ago(31).toISOString() } },
        lowering,
      ),
    );
    expect(stuck.drill?.ttl?.skipped).toMatch(/not lowered within 30 s/);
    // The report says which TTL clients could hold.
    const d = drill('Back', {
      backOperationId: 'switchover-e6-y',
      ttl: { lowered: 5, was: 30, loweredAt: ago(200).toISOString() },
    });
    const back = report('switchover-e6-y', { from: 'b', to: 'a', completedAt: ago(40).toISOString() });
    const done = decide(
      input({ activePrimary: 'a', epoch: 6, drill: d, history: [back, report('switchover-e5-x')] }),
    );
    expect(done.drillReport).toMatchObject({ result: 'Succeeded', clientTtlSeconds: 5 });
  });
});

describe('drills while the policy is paused (spec.paused)', () => {
  it('skips a due drill with a report, and refuses a requested one, saying why', () => {
    const pausedSpec = spec({
      drills: { ...drills, schedule: '59 9 * * 1' },
      paused: true,
      pauseReason: 'upgrade',
    });
    const due = decide(input(undefined, { spec: pausedSpec }));
    expect(due.drill).toBeUndefined();
    expect(due.drillReport).toMatchObject({
      result: 'Aborted',
      reason: expect.stringMatching(/skipped: the policy is paused \(spec.paused: upgrade\)/),
    });
    // Positive control: not paused, the same drill starts.
    expect(decide(input()).drill).toMatchObject({ leg: 'Starting' });
    const requested = evaluate(
      input(
        { activePrimary: 'a', epoch: 4, nextDrillTime: '2026-03-09T09:59:00.000Z' },
        { spec: spec({ drills, paused: true, drillRequest: { id: 'now-1', action: 'Run' } }) },
      ),
    );
    expect(requested.status.lastDrillRequest).toMatchObject({
      id: 'now-1',
      outcome: 'Rejected',
      message: expect.stringMatching(/paused/),
    });
    expect(requested.status.drill).toBeUndefined();
  });
});

describe('a drill caught by a pause', () => {
  it('still in its Starting leg, it ends with nothing moved; one out already comes home', () => {
    const pausedSpec = spec({ drills: { ...drills, schedule: '59 9 * * 1' }, paused: true });
    const starting = decide(
      input({ activePrimary: 'a', epoch: 4, drill: startingDrill(5) }, { spec: pausedSpec }),
    );
    expect(starting.drill).toBeUndefined();
    expect(starting.started).toBeUndefined();
    expect(starting.drillReport).toMatchObject({
      result: 'Aborted',
      reason: expect.stringMatching(/paused \(spec.paused\) before it went out/),
    });
    // Out and holding: the way back still runs (half a drill is worse than either end).
    const holding = decide(
      input(
        { activePrimary: 'b', epoch: 5, drill: drill('Holding', { returnAfter: ago(1).toISOString() }) },
        { spec: pausedSpec, clusters: { a: standby('a'), b: primary('b') } },
      ),
    );
    expect(holding.started).toMatchObject({ kind: 'Switchover', from: 'b', to: 'a', trigger: 'Drill' });
  });
});
