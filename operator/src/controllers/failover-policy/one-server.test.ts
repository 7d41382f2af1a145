import { describe, expect, it } from 'vitest';
import {
  ago,
  evaluate,
  gone,
  inProgress,
  input,
  NOW,
  outage,
  primaryUp,
  standby,
  up,
} from './decide.fixtures.ts';
import type { ClusterFacts } from './facts.ts';
import { notYetApart, oneServerNamedTwice } from './one-server.ts';

const on = (f: ClusterFacts, server: string): ClusterFacts => ({ ...f, server });
/** b's connection names a's server: a probe of b is answered by the primary. */
const bIsA = {
  a: on(primaryUp(), 'A'),
  b: on({ ...primaryUp('b'), observedAt: ago(0.2) }, 'A'),
  c: on(standby('c'), 'C'),
};

describe('one server named by two clusters', () => {
  it('fences nothing and says which clusters are one server; told apart, the stray is fenced', () => {
    const held = evaluate(input({ clusters: bIsA }));
    expect(held.started).toBeUndefined();
    expect(held.plan.action.kind).toBe('Observe');
    expect(held.plan.events).toEqual([]);
    expect(held.plan.oneServer?.groups).toEqual([['a', 'b']]);
    expect(held.condition('ClustersResolved')).toMatchObject({ status: 'False', reason: 'OneServer' });
    expect(held.condition('ClustersResolved')?.message).toMatch(/^a and b are one server/);
    expect(held.condition('Ready')?.status).toBe('False');
    // The control: b its own server, taking writes beside a, is a stray and fenced.
    const stray = evaluate(input({ clusters: { ...bIsA, b: on(bIsA.b, 'B') } }));
    expect(stray.started).toMatchObject({ kind: 'Fence', from: 'b', to: 'a' });
    expect(stray.condition('ClustersResolved')?.status).toBe('True');
  });

  it('holds an operation on those clusters, and lets one on others go on', () => {
    const op = inProgress('Promoting', { from: 'a', to: 'b' });
    const lost = { a: gone(), b: on(standby('b'), 'B'), c: on(standby('c'), 'B') };
    const held = evaluate(
      outage({ status: { activePrimary: 'a', epoch: 4, currentOperation: op }, clusters: lost }),
    );
    expect(held.plan.action.kind).toBe('Observe');
    expect(held.plan.oneServer?.groups).toEqual([['b', 'c']]);
    // Four clusters: c and d are one server, the failover of a to b goes on.
    const four = outage({
      specOver: { standbys: ['b', 'c', 'd'] },
      status: { activePrimary: 'a', epoch: 4, currentOperation: op },
      clusters: { ...lost, c: on(standby('c'), 'C'), d: on(standby('d'), 'C') },
      votes: outage().votes,
    });
    const goesOn = evaluate(four);
    expect(goesOn.plan.action).toMatchObject({ kind: 'RunStep', operation: { id: op.id } });
    // Once it is over: a writer beside the new primary that is not one of them is still fenced,
    // and ClustersResolved still says what is wrong.
    const after = evaluate({
      ...four,
      status: { activePrimary: 'b', epoch: 5 },
      clusters: { ...four.clusters, a: on(primaryUp('a', 4), 'A'), b: on(primaryUp('b', 5), 'B') },
      votes: [up('operator')],
    });
    expect(after.started).toMatchObject({ kind: 'Fence', from: 'a', to: 'b' });
    expect(after.condition('ClustersResolved')).toMatchObject({ status: 'False', reason: 'OneServer' });
  });

  it('counts only clusters that answered: an unreachable one has no server', () => {
    expect(
      oneServerNamedTwice(input({ clusters: { ...bIsA, b: { ...gone('b'), server: 'A' } } })),
    ).toBeUndefined();
    expect(
      oneServerNamedTwice(input({ clusters: { a: primaryUp(), b: standby('b'), c: standby('c') } })),
    ).toBeUndefined();
    expect(oneServerNamedTwice(input({ clusters: bIsA }))?.groups).toEqual([['a', 'b']]);
  });
});

describe('a server restarted between the probes of its two names', () => {
  // Start times as the probe reads them: seconds since the epoch, to the microsecond.
  const started = (secondsAgo: number) => ((NOW.getTime() - secondsAgo * 1000) / 1000).toFixed(6);

  it("keeps a writer's fence until its last answer comes from after the primary's server started", () => {
    // a's server restarted 2 s ago and answered since; b's last answer (3 s ago) came before the
    // restart: it may be a's server under another name, as it was then.
    const a = on(primaryUp(), started(2));
    const b = on({ ...primaryUp('b'), observedAt: ago(3) }, started(3600));
    expect(notYetApart(a, b)).toBe(true);
    const held = evaluate(input({ clusters: { a, b, c: standby('c') } }));
    expect(held.started).toBeUndefined();
    // Not quiet meanwhile (b is no standby): the policy looks again at the next probe interval.
    expect(held.plan.reprotectWaiting?.cluster).toBe('b');
    // b answered after a's restart, still from its own older server: two servers, b is fenced.
    const apart = { ...b, observedAt: ago(0.2) };
    const afterRestart = on(primaryUp(), started(10));
    expect(notYetApart(afterRestart, apart)).toBe(false);
    expect(
      evaluate(input({ clusters: { a: afterRestart, b: apart, c: standby('c') } })).started,
    ).toMatchObject({
      kind: 'Fence',
      from: 'b',
    });
    // Without start times (another provider's probe) nothing is held back.
    expect(notYetApart(primaryUp(), primaryUp('b'))).toBe(false);
  });
});
