import { describe, expect, it } from 'vitest';
import {
  ago,
  evaluate,
  gone,
  inProgress,
  input,
  outage,
  primaryUp,
  standby,
  unprobed,
} from './decide.fixtures.ts';
import { NOTHING_TO_DO } from './decide.ts';
import type { ClusterFacts } from './facts.ts';
import { apartFrom, notYetApart, oneServerNamedTwice } from './one-server.ts';

/** Facts with the server that last answered for them, first seen `sinceAgo` s ago. */
const on = (f: ClusterFacts, server: string, sinceAgo = 3600): ClusterFacts => ({
  ...f,
  server,
  serverSince: ago(sinceAgo),
});
const writer = (name: string): ClusterFacts => ({
  ...primaryUp(name),
  observedAt: ago(0.2),
  lastReachableAt: ago(0.2),
});
/** b's connection names a's server: a probe of b is answered by the primary. */
const bIsA = { a: on(primaryUp(), 'A'), b: on(writer('b'), 'A'), c: on(standby('c'), 'C') };

describe('one server named by two clusters', () => {
  it('fences nothing and says which clusters are one server; told apart, the writer is fenced', () => {
    const held = evaluate(input({ clusters: bIsA }));
    expect(held.started).toBeUndefined();
    expect(held.plan.oneServer?.groups).toEqual([['a', 'b']]);
    expect(held.condition('ClustersResolved')).toMatchObject({ status: 'False', reason: 'OneServer' });
    expect(held.condition('ClustersResolved')?.message).toMatch(/^a and b are one server/);
    expect(held.condition('Ready')?.status).toBe('False');
    // The control: b its own server, taking writes beside a, is a stray and fenced.
    const stray = evaluate(input({ clusters: { ...bIsA, b: on(writer('b'), 'B') } }));
    expect(stray.started).toMatchObject({ kind: 'Fence', from: 'b', to: 'a' });
    expect(stray.condition('ClustersResolved')?.status).toBe('True');
  });

  it("keeps knowing it through failed probes and an operator's restart", () => {
    // The primary's name failed its last probe: the server it answered from is still known.
    const failedOnce = { ...gone('a', 1.5), server: 'A', serverSince: ago(3600) };
    const e = evaluate(input({ clusters: { ...bIsA, a: failedOnce } }));
    expect(e.started).toBeUndefined();
    expect(e.plan.oneServer?.groups).toEqual([['a', 'b']]);
    // Just restarted, b answered before a did: nothing is fenced until a has answered too.
    const bFirst = on(writer('b'), 'A', 1);
    const early = evaluate(input({ clusters: { ...bIsA, a: unprobed('a'), b: bFirst } }));
    expect(early.started).toBeUndefined();
    expect(early.plan.why).toBe(NOTHING_TO_DO);
    expect(apartFrom(input(), unprobed('a'), bFirst)).toBe(false);
    // Not for ever: a's name silent past detection's window (failureThreshold 3 and two more
    // 1 s intervals), b is taken for another server and fenced.
    expect(
      evaluate(input({ clusters: { ...bIsA, a: unprobed('a'), b: on(writer('b'), 'A', 6) } })).started,
    ).toMatchObject({
      kind: 'Fence',
      from: 'b',
    });
    // b's connection just changed (its server forgotten with the old provider), its last answer
    // from the old host still says it writes: nothing is fenced until it answers from the new one.
    const repointed = { ...bIsA, b: writer('b') };
    expect(evaluate(input({ clusters: repointed })).started).toBeUndefined();
    // A provider that tells no server: a writer is fenced as before.
    expect(
      evaluate(input({ clusters: { a: primaryUp(), b: writer('b'), c: standby('c') } })).started,
    ).toMatchObject({
      kind: 'Fence',
      from: 'b',
    });
  });

  it("keeps ClustersResolved's OneServer through an operator's restart until the names answer again", () => {
    const before = evaluate(input({ clusters: bIsA }));
    const said = before.condition('ClustersResolved');
    expect(said).toMatchObject({ status: 'False', reason: 'OneServer' });
    // Restarted: status says it, the probes have not told yet (b unprobed, or not answering).
    const status = before.status;
    for (const b of [unprobed('b'), gone('b', 1)]) {
      const restarted = evaluate(input({ status, clusters: { ...bIsA, b } }));
      expect(restarted.condition('ClustersResolved')).toMatchObject({
        status: 'False',
        reason: 'OneServer',
        message: said?.message,
      });
      expect(restarted.condition('Ready')?.status).toBe('False');
    }
    // Answered again: one server still, or each its own now (the verdict follows the probes).
    expect(evaluate(input({ status, clusters: bIsA })).condition('ClustersResolved')?.reason).toBe(
      'OneServer',
    );
    const apart = { ...bIsA, b: on(standby('b'), 'B') };
    expect(evaluate(input({ status, clusters: apart })).condition('ClustersResolved')).toMatchObject({
      status: 'True',
      reason: 'AllFound',
    });
    // Only the clusters it named: c down after the restart keeps nothing once a and b answer
    // apart, nor does b unprobed once b is taken out of the policy.
    expect(
      evaluate(input({ status, clusters: { ...apart, c: unprobed('c') } })).condition('ClustersResolved')
        ?.status,
    ).toBe('True');
    expect(
      evaluate(
        input({ status, specOver: { standbys: ['c'] }, clusters: { ...bIsA, b: unprobed('b') } }),
      ).condition('ClustersResolved')?.status,
    ).toBe('True');
    // Nothing kept without a verdict in status: a fresh start with b unprobed is AllFound.
    expect(
      evaluate(input({ clusters: { ...bIsA, b: unprobed('b') } })).condition('ClustersResolved')?.status,
    ).toBe('True');
  });

  it('waits after a restart of the server until the other name answers again', () => {
    // a's server restarted: a first answered from it 2 s ago; b's last answer (3 s ago, from the
    // old start) came before that: it may be a's server before the restart.
    const a = on(primaryUp(), 'A2', 2);
    const b = { ...on(writer('b'), 'A1'), lastReachableAt: ago(3), observedAt: ago(3) };
    expect(notYetApart(a, b)).toBe(true);
    const held = evaluate(input({ clusters: { a, b, c: standby('c') } }));
    expect(held.started).toBeUndefined();
    expect(held.plan.why).toBe(NOTHING_TO_DO);
    // Another timeline is another server, whoever answered last (a returning old primary).
    expect(
      evaluate(
        input({
          clusters: { a: { ...a, serverTimeline: 3 }, b: { ...b, serverTimeline: 2 }, c: standby('c') },
        }),
      ).started,
    ).toMatchObject({
      kind: 'Fence',
      from: 'b',
    });
    // b answered since, still from its own server: two servers, b is fenced.
    const again = on(writer('b'), 'A1');
    expect(notYetApart(a, again)).toBe(false);
    expect(evaluate(input({ clusters: { a, b: again, c: standby('c') } })).started).toMatchObject({
      kind: 'Fence',
      from: 'b',
    });
  });

  it('ends a fence of the primary under another name, holds steps on a source that is the target, and lets the rest go on', () => {
    const status = (op: ReturnType<typeof inProgress>) => ({
      activePrimary: 'a',
      epoch: 4,
      currentOperation: op,
    });
    const fence = inProgress('Fencing', { kind: 'Fence', from: 'b', to: 'a', epoch: 4 });
    const ended = evaluate(input({ clusters: bIsA, status: status(fence) }));
    expect(ended.status.currentOperation).toMatchObject({ step: 'Aborted' });
    expect(ended.status.currentOperation?.message).toMatch(/b and a are one server/);
    // A switchover of a to b still catching up behind its fence of a (which fenced b): rolled back.
    const switchover = inProgress('CatchingUp', { kind: 'Switchover', trigger: 'Manual' });
    const stops = evaluate(input({ clusters: bIsA, status: status(switchover) }));
    expect(stops.status.currentOperation).toMatchObject({ step: 'RollingBack' });
    expect(stops.status.currentOperation?.message).toMatch(
      /a and b are one server: nothing more is done to a/,
    );
    // A reprotect waits: its agent works on its own server, which the facts no longer show.
    const reprotect = inProgress('Rejoining', { kind: 'Reprotect', from: 'b', to: 'a', epoch: 4 });
    const rejoin = evaluate(input({ clusters: bIsA, status: status(reprotect) }));
    expect(rejoin.plan.action.kind).toBe('Observe');
    expect(rejoin.plan.why).toMatch(/waits: b and a are one server/);
    // Strays it recorded that are its target's own server are left out before the fence runs.
    const withStray = inProgress('Fencing', { strays: ['c'] });
    const promoted = { a: gone(), b: on(primaryUp('b', 5), 'B'), c: on(writer('c'), 'B') };
    const dropped = evaluate(input({ clusters: promoted, status: status(withStray) }));
    expect(dropped.status.currentOperation).toMatchObject({ step: 'Fencing' });
    expect(dropped.status.currentOperation?.strays).toBeUndefined();
    expect(dropped.plan.why).toMatch(/c is b's own server/);
    // Past its promotion (the application's DNS name, which a's connection names, moved to b):
    // verifying DNS touches neither, and it goes on.
    const verifying = inProgress('VerifyingDns');
    const onB = { a: on(writer('a'), 'B'), b: on(primaryUp('b', 5), 'B'), c: on(standby('c'), 'C') };
    const goesOn = evaluate(
      input({ clusters: onB, status: { activePrimary: 'a', epoch: 4, currentOperation: verifying } }),
    );
    expect(goesOn.plan.action).toMatchObject({ kind: 'RunStep', operation: { id: verifying.id } });
    // Nor does the way a returns to fence a writer take a, which is b.
    const promoting = inProgress('Promoting', { stepStartedAt: ago(1).toISOString() });
    const promotes = evaluate(
      input({ clusters: onB, status: { activePrimary: 'a', epoch: 4, currentOperation: promoting } }),
    );
    expect(promotes.plan.action).toMatchObject({ kind: 'RunStep', operation: { step: 'Promoting' } });
    // a back and writing, but b's last answer came before a's server first answered (a restart of
    // one server between the two?): the promotion waits for b's next answer, then fences a first.
    const back = { ...on(writer('a'), 'A2', 0.5) };
    const bBefore = { ...on(primaryUp('b', 5), 'B'), lastReachableAt: ago(0.8) };
    const waits2 = evaluate(
      input({
        clusters: { ...onB, a: back, b: bBefore },
        status: { activePrimary: 'a', epoch: 4, currentOperation: promoting },
      }),
    );
    expect(waits2.plan.action.kind).toBe('Observe');
    expect(waits2.plan.why).toMatch(/a not told apart from b's server yet/);
    const told = evaluate(
      input({
        clusters: { ...onB, a: back, b: on(primaryUp('b', 5), 'B') },
        status: { activePrimary: 'a', epoch: 4, currentOperation: promoting },
      }),
    );
    expect(told.status.currentOperation).toMatchObject({ step: 'Fencing' });
  });

  it('does not hold a failover back when two standbys are one server', () => {
    const lost = outage({ clusters: { a: gone(), b: on(standby('b'), 'B'), c: on(standby('c'), 'B') } });
    const e = evaluate(lost);
    expect(e.started).toMatchObject({ kind: 'Failover', from: 'a', to: 'b' });
    expect(e.plan.oneServer?.groups).toEqual([['b', 'c']]);
  });

  it('groups only clusters with a server', () => {
    expect(
      oneServerNamedTwice(input({ clusters: { a: primaryUp(), b: standby('b'), c: standby('c') } })),
    ).toBeUndefined();
    expect(oneServerNamedTwice(input({ clusters: bIsA }))?.groups).toEqual([['a', 'b']]);
  });
});
