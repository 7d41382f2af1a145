import { describe, expect, it } from 'vitest';
import { evaluate, fenced, gone, inProgress, input, NOW, primaryUp, standby } from './decide.fixtures.ts';
import {
  afterDiscoveryRead,
  type DiscoveryRead,
  discoverPrimary,
  discoveryDns,
  discoveryMayKeep,
  discoveryNeedsDns,
  newerEpochs,
} from './discovery.ts';
import { DNS_CHECK_MS } from './dns-check.ts';
import type { DecideInput, DnsFacts } from './facts.ts';

const ours = (value: string | undefined, epoch: number): DnsFacts => ({
  readAt: NOW,
  ...(value ? { value } : {}),
  owner: 'ns/orders',
  epoch,
});
/** A policy whose status was lost (recreated from Git, restored, moved): nothing in status. */
const recreated = (over: Partial<DecideInput>) => input({ status: {}, votes: [], ...over });

describe('discovery: who is primary, learned from the world', () => {
  it('after a failover, finds the promoted standby, not spec.primary, and fences nothing', () => {
    const i = recreated({
      clusters: { a: fenced('a', 1), b: primaryUp('b', 1), c: standby('c', 0, 0, 1, 1) },
      dns: ours('b.db.internal', 1),
    });
    expect(discoverPrimary(i)).toMatchObject({ kind: 'Found', primary: 'b', epoch: 1 });
    const e = evaluate(i);
    expect(e.plan.action.kind).toBe('Record');
    expect(e.started).toBeUndefined();
    expect(e.status).toMatchObject({ activePrimary: 'b', epoch: 1 });
    expect(e.plan.events[0]?.note).toMatch(/spec.primary names a/);
  });

  it('prefers the writable database at the highest epoch; the older writer is then a stray', () => {
    // a came back unfenced after being cut off: writable, but at epoch 0.
    const i = recreated({
      clusters: { a: primaryUp('a', 0), b: primaryUp('b', 1), c: standby('c', 0, 0, 1, 1) },
      dns: ours('b.db.internal', 1),
    });
    expect(discoverPrimary(i)).toMatchObject({ kind: 'Found', primary: 'b', epoch: 1 });
    const next = evaluate({ ...i, status: evaluate(i).plan.status });
    expect(next.started).toMatchObject({ kind: 'Fence', from: 'a', to: 'b', epoch: 1 });
  });

  it('trusts DNS for a primary that is unreachable right now', () => {
    const i = recreated({
      clusters: { a: primaryUp('a', 0), b: gone('b'), c: standby('c', 0, 0, 1, 1) },
      dns: ours('b.db.internal', 1),
    });
    expect(discoverPrimary(i)).toMatchObject({ kind: 'Found', primary: 'b', epoch: 1 });
  });

  it('takes spec.primary only where no failover ever happened', () => {
    const fresh = recreated({
      clusters: { a: primaryUp('a', 0), b: standby('b', 0, 0, 1, 0), c: standby('c', 0, 0, 1, 0) },
      dns: { readAt: NOW },
    });
    expect(discoverPrimary(fresh)).toMatchObject({ kind: 'Found', primary: 'a', epoch: 0 });
    const noHeartbeats = recreated({
      clusters: {
        a: { ...gone('a') },
        b: { ...standby('b'), heartbeatEpoch: undefined },
        c: { ...standby('c'), heartbeatEpoch: undefined },
      },
      dns: { readAt: NOW },
    });
    expect(discoverPrimary(noHeartbeats)).toMatchObject({ kind: 'Found', primary: 'a', epoch: 0 });
  });

  it('waits, doing nothing, until every cluster is probed and the DNS record is read', () => {
    const unprobed = recreated({
      clusters: { a: { ...gone('a'), unprobed: true }, b: primaryUp('b', 1), c: standby('c') },
      dns: ours('b.db.internal', 1),
    });
    expect(discoverPrimary(unprobed)).toMatchObject({ kind: 'Unknown', reason: 'Waiting' });
    const noDns = recreated({
      clusters: { a: fenced('a', 1), b: primaryUp('b', 1), c: standby('c', 0, 0, 1, 1) },
    });
    expect(discoveryNeedsDns(noDns)).toBe(true);
    // With every database reachable and one writer at the newest epoch, DNS is not needed.
    expect(
      discoverPrimary({ ...noDns, dns: { readAt: NOW, error: { reason: 'Timeout', message: 'no answer' } } }),
    ).toMatchObject({
      kind: 'Found',
      primary: 'b',
      epoch: 1,
    });
    // An old primary back unfenced at an older epoch does not hide who is primary (it is fenced
    // next); two writers at the newest epoch do.
    const stray = { ...noDns, clusters: { ...noDns.clusters, a: primaryUp('a', 0) } };
    const noAnswer = { readAt: NOW, error: { reason: 'Timeout', message: 'no answer' } };
    expect(discoverPrimary({ ...stray, dns: noAnswer })).toMatchObject({
      kind: 'Found',
      primary: 'b',
      message: expect.stringMatching(/a also accepts writes at an older epoch/),
    });
    const afterIt = evaluate({ ...stray, dns: noAnswer });
    expect(evaluate({ ...stray, dns: noAnswer, status: afterIt.plan.status }).started).toMatchObject({
      kind: 'Fence',
      from: 'a',
      to: 'b',
    });
    const tie = { ...noDns, clusters: { ...noDns.clusters, a: primaryUp('a', 1) }, dns: noAnswer };
    expect(discoverPrimary(tie)).toMatchObject({ kind: 'Unknown', reason: 'Waiting' });
    const dnsDown = {
      ...noDns,
      clusters: { ...noDns.clusters, a: gone('a') },
      dns: { readAt: NOW, error: { reason: 'Timeout', message: 'no answer' } },
    };
    const e = evaluate(dnsDown);
    expect(e.plan.action.kind).toBe('Observe');
    expect(e.status.activePrimary).toBeUndefined();
    expect(e.status.phase).toBe('Pending');
    expect(e.condition('PrimaryKnown')).toMatchObject({ status: 'False', reason: 'Waiting' });
    expect(e.condition('Ready')).toMatchObject({ status: 'False' });
  });

  it('refuses to guess between two writers at the same epoch that DNS does not settle', () => {
    const i = recreated({
      clusters: { a: primaryUp('a', 1), b: primaryUp('b', 1), c: standby('c', 0, 0, 1, 1) },
      dns: ours('c.db.internal', 1),
    });
    expect(discoverPrimary(i)).toMatchObject({ kind: 'Unknown', reason: 'Ambiguous' });
    expect(evaluate(i).started).toBeUndefined();
    const settled = { ...i, dns: ours('b.db.internal', 1) };
    expect(discoverPrimary(settled)).toMatchObject({ kind: 'Found', primary: 'b' });
  });

  it('ignores a DNS record someone else owns', () => {
    const i = recreated({
      clusters: { a: fenced('a', 1), b: gone('b'), c: standby('c', 0, 0, 1, 1) },
      dns: { readAt: NOW, value: 'b.db.internal', owner: 'other', epoch: 9 },
    });
    expect(discoverPrimary(i)).toMatchObject({ kind: 'Unknown', reason: 'NoPrimary' });
  });
});

describe('discovery: when the DNS record is read', () => {
  // a is out of sight, so the record naming b settles nothing: a may hold a newer epoch.
  const waiting = recreated({
    clusters: { a: gone('a'), b: gone('b'), c: standby('c', 0, 0, 1, 1) },
  });
  const namesB = ours('b.db.internal', 1);
  const failing: DnsFacts = { readAt: NOW, error: { reason: 'Throttled', message: 'Rate exceeded' } };
  const keptAfter = (reads: number, dns = namesB, random = () => 1): DiscoveryRead => {
    let kept: DiscoveryRead | undefined;
    for (let i = 0; i < reads; i++) kept = afterDiscoveryRead(kept, { ...waiting, dns }, random);
    if (!kept) throw new Error('no read');
    return kept;
  };
  const at = (ms: number) => new Date(NOW.getTime() + ms);

  it('reads none before every database is probed: discovery waits for them whatever it says', () => {
    const i = { ...waiting, clusters: { ...waiting.clusters, a: { ...gone('a'), unprobed: true } } };
    expect(discoveryDns(i, undefined)).toEqual({ read: false, canWait: true });
    expect(discoveryDns(i, keptAfter(1))).toEqual({ read: false, canWait: true });
    expect(discoverPrimary(i)).toMatchObject({ kind: 'Unknown', message: /first probe of a/ });
  });

  it('reads the record first, then reuses a read that settles nothing for five minutes', () => {
    // The first read does not wait for the read budget: a policy without a primary cannot fail over.
    expect(discoveryDns(waiting, undefined)).toEqual({ read: true, canWait: false });
    expect(discoverPrimary({ ...waiting, dns: namesB })).toMatchObject({
      kind: 'Unknown',
      reason: 'Waiting',
    });
    const kept = keptAfter(1);
    expect(kept.dueAt).toBe(at(DNS_CHECK_MS).getTime());
    expect(discoveryDns({ ...waiting, now: at(DNS_CHECK_MS - 1) }, kept)).toEqual({
      read: false,
      canWait: true,
      kept: { ...namesB, kept: true },
    });
    expect(discoveryDns({ ...waiting, now: at(DNS_CHECK_MS) }, kept)).toEqual({
      read: true,
      canWait: true,
      kept: { ...namesB, kept: true },
    });
  });

  it('reads again after a failed read from a second on, backing off to five minutes', () => {
    // Without the record, discovery needs every database in sight: a throttled read is retried.
    expect(discoverPrimary({ ...waiting, dns: failing })).toMatchObject({ kind: 'Unknown' });
    const once = keptAfter(1, failing);
    expect(once.dueAt).toBe(at(1000).getTime());
    expect(discoveryDns({ ...waiting, now: at(999) }, once)).toEqual({
      read: false,
      canWait: true,
      kept: { ...failing, kept: true },
    });
    expect(discoveryDns({ ...waiting, now: at(1000) }, once)).toEqual({
      read: true,
      canWait: true,
      kept: { ...failing, kept: true },
    });
    expect(keptAfter(3, failing).dueAt).toBe(at(4000).getTime());
    expect(keptAfter(40, failing).dueAt).toBe(at(DNS_CHECK_MS).getTime());
    // A read that answers after failures is kept the full five minutes.
    const answered = afterDiscoveryRead(keptAfter(5, failing), { ...waiting, dns: namesB }, () => 1);
    expect(answered).toMatchObject({ failures: 0, dueAt: at(DNS_CHECK_MS).getTime(), dns: namesB });
  });

  it('reads at once when the databases changed so that the kept read would settle discovery', () => {
    const kept = keptAfter(1);
    // a answers now, fenced: the record names b and nothing is out of sight.
    const back = { ...waiting, clusters: { ...waiting.clusters, a: fenced('a', 1) } };
    expect(discoverPrimary({ ...back, dns: kept.dns })).toMatchObject({ kind: 'Found', primary: 'b' });
    // Read, with nothing kept to fall back on if the read must wait: it would settle discovery.
    expect(discoveryDns(back, kept)).toEqual({ read: true, canWait: false });
    // A change that still settles nothing keeps the read.
    const stillOut = { ...waiting, clusters: { ...waiting.clusters, c: gone('c') } };
    expect(discoveryDns(stillOut, kept)).toEqual({
      read: false,
      canWait: true,
      kept: { ...kept.dns, kept: true },
    });
  });

  it('keeps reads while a newer epoch is in the world with nothing in flight, and never judges a kept one', () => {
    // Status says a at epoch 1; b and c both take writes at epoch 2: a person must settle it.
    const ahead = input({
      status: { activePrimary: 'a', epoch: 1 },
      clusters: { a: gone('a'), b: primaryUp('b', 2), c: primaryUp('c', 2) },
    });
    expect(discoveryMayKeep(ahead)).toBe(true);
    expect(
      discoveryMayKeep({
        ...ahead,
        clusters: { ...ahead.clusters, b: standby('b', 0, 0, 1, 1), c: standby('c', 0, 0, 1, 1) },
      }),
    ).toBe(false);
    const op = inProgress('Fencing', { from: 'a', to: 'b', epoch: 2 });
    expect(discoveryMayKeep({ ...ahead, status: { ...ahead.status, currentOperation: op } })).toBe(false);
    const keptRead = { ...ours('b.db.internal', 1), kept: true };
    expect(discoverPrimary({ ...ahead, dns: keptRead })).toMatchObject({
      kind: 'Unknown',
      reason: 'Ambiguous',
    });
    const e = evaluate({ ...ahead, dns: keptRead });
    expect(e.plan.action.kind).toBe('Observe');
    // Minutes old: not judged as a check, so DnsReady stays as the last fresh read left it.
    expect(e.condition('DnsReady')).toBeUndefined();
    expect(evaluate({ ...ahead, dns: ours('b.db.internal', 1) }).condition('DnsReady')).toBeDefined();
  });

  it('does not reuse a read of another record, and starts its backoff over', () => {
    const kept = keptAfter(5, failing);
    const renamed = {
      ...waiting,
      spec: { ...waiting.spec, dns: { ...waiting.spec.dns, name: 'db2.example.com' } },
    };
    expect(discoveryDns(renamed, kept)).toEqual({ read: true, canWait: false });
    expect(afterDiscoveryRead(kept, { ...renamed, dns: failing }, () => 1)).toMatchObject({
      failures: 1,
      dueAt: at(1000).getTime(),
    });
  });
});

describe('rediscovery: status behind the world', () => {
  it('notices a newer epoch in a heartbeat or in DNS, not the one an operation in flight establishes', () => {
    const i = input({ clusters: { a: primaryUp('a', 4), b: standby('b', 1, 1, 4, 5), c: standby('c') } });
    expect(newerEpochs(i)).toEqual(["b's heartbeat holds epoch 5"]);
    const promoting = { ...i, status: { ...i.status, currentOperation: inProgress('Promoting') } };
    expect(newerEpochs(promoting)).toEqual([]);
  });

  it('stops an operation the world has overtaken before it does more', () => {
    const op = inProgress('Fencing', { startedAt: NOW.toISOString(), stepStartedAt: NOW.toISOString() });
    const world = input({
      status: { activePrimary: 'a', epoch: 4, currentOperation: op },
      clusters: { a: gone('a'), b: standby('b'), c: primaryUp('c', 6) },
    });
    const e = evaluate(world);
    expect(e.status.currentOperation).toMatchObject({
      step: 'Aborted',
      message: expect.stringMatching(/newer epoch/),
    });
    // Next, with the world still ahead: the aborted operation is finished (into history), not
    // aborted again at every reconcile (a status write each time, at once).
    const next = evaluate({ ...world, status: e.status, now: new Date(NOW.getTime() + 1000) });
    expect(next.status.currentOperation).toBeUndefined();
    expect(next.status.history?.[0]).toMatchObject({ id: op.id, result: 'Aborted' });
    // Then the primary is learned from the world.
    const after = evaluate({ ...world, status: next.status, now: new Date(NOW.getTime() + 2000) });
    expect(after.plan.why).toMatch(/discover/);
  });
});
