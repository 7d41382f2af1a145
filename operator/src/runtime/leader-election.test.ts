/**
 * The leader Lease's owner reference, against a stand-in for the two collections the elector
 * touches (Leases and Deployments): a refused owner never stops a replica from leading, and a
 * Lease deleted under its leader is lost, not quietly made again. Real processes against a real
 * API server are in test/integration/leader-election.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { KubeApiError, type KubeClient, type KubeObject, type ResourceType } from './kube-client.ts';
import { LeaderElector, type Lease } from './leader-election.ts';
import { silentLogger } from './logger.ts';

interface Stand {
  leases: Map<string, Lease>;
  deployments: Map<string, KubeObject>;
  writes: Lease[];
  /** Refuse (403) any Lease write that sets an owner reference, as OwnerReferencesPermissionEnforcement does. */
  refuseOwners: boolean;
  /** Refuse (403) reading Deployments. */
  refuseDeployments: boolean;
  deploymentReads: number;
  leaseReads: number;
  /** Set: the next Lease replace waits for it (one in flight, `held` counts it). */
  gate?: Promise<void>;
  held: number;
  /** When the last write was stored (ms). */
  lastWriteAt: number;
  /** Set: the next Lease read waits for it; `reads` counts the reads answered. */
  readGate?: Promise<void>;
  answered: number;
}

function standIn(init: Partial<Stand> = {}): { client: KubeClient; stand: Stand } {
  const stand: Stand = {
    leases: new Map(),
    deployments: new Map(),
    writes: [],
    refuseOwners: false,
    refuseDeployments: false,
    deploymentReads: 0,
    leaseReads: 0,
    held: 0,
    lastWriteAt: 0,
    answered: 0,
    ...init,
  };
  let version = 0;
  const write = (obj: Lease, expected?: string): Lease => {
    if (stand.refuseOwners && (obj.metadata.ownerReferences as unknown[] | undefined)?.length)
      throw new KubeApiError(403, 'Forbidden', 'cannot set an ownerRef on a resource you can not delete');
    const current = stand.leases.get(obj.metadata.name);
    if (expected !== undefined && current?.metadata.resourceVersion !== expected)
      throw new KubeApiError(409, 'Conflict', 'conflict');
    const stored = structuredClone({
      ...obj,
      metadata: { ...obj.metadata, resourceVersion: String(++version) },
    });
    stand.leases.set(obj.metadata.name, stored);
    stand.writes.push(stored);
    stand.lastWriteAt = Date.now();
    return stored;
  };
  const client = {
    find: async (type: ResourceType, _ns: string, name: string) => {
      if (type.plural === 'deployments') {
        stand.deploymentReads++;
        if (stand.refuseDeployments) throw new KubeApiError(403, 'Forbidden', 'deployments is forbidden');
        return stand.deployments.get(name);
      }
      stand.leaseReads++;
      const gate = stand.readGate;
      if (gate) {
        stand.readGate = undefined;
        await gate;
      }
      const lease = stand.leases.get(name);
      stand.answered++;
      return lease ? structuredClone(lease) : undefined;
    },
    create: async (_type: ResourceType, _ns: string, obj: Lease) => {
      if (stand.leases.has(obj.metadata.name)) throw new KubeApiError(409, 'AlreadyExists', 'exists');
      return write(obj);
    },
    replace: async (_type: ResourceType, _ns: string, obj: Lease) => {
      const gate = stand.gate;
      if (gate) {
        stand.gate = undefined;
        stand.held++;
        await gate;
      }
      return write(obj, obj.metadata.resourceVersion);
    },
  } as unknown as KubeClient;
  return { client, stand };
}

const elector = (
  client: KubeClient,
  identity: string,
  ownerDeployment?: string,
  times: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number } = {},
) =>
  new LeaderElector({
    client,
    namespace: 'ops',
    name: 'leader',
    identity,
    log: silentLogger,
    ...(ownerDeployment ? { ownerDeployment } : {}),
    leaseDurationMs: 400,
    renewDeadlineMs: 250,
    retryPeriodMs: 20,
    ...times,
  });

const deployment: KubeObject = { metadata: { name: 'operator', namespace: 'ops', uid: 'd-1' } };

/** Polls until `check` holds (5 s at most) and returns when it first did. */
async function until(check: () => boolean): Promise<number> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now();
}

/** Runs an elector until it leads or `ms` pass; it goes on running after. */
async function leadFor(e: LeaderElector, ms: number): Promise<{ led: boolean; outcome?: string }> {
  let led = false;
  let outcome: string | undefined;
  const run = e.run(() => {
    led = true;
  });
  void run.then((o) => {
    outcome = o;
  });
  const deadline = Date.now() + ms;
  while (!led && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return { led, ...(outcome ? { outcome } : {}) };
}

/** Runs an elector until it leads; the state returned then follows the run (its outcome once it ends). */
async function leading(e: LeaderElector): Promise<{ outcome?: string }> {
  const state: { led: boolean; outcome?: string } = { led: false };
  void e
    .run(() => {
      state.led = true;
    })
    .then((o) => {
      state.outcome = o;
    });
  await until(() => state.led);
  return state;
}

/** Elector `a`, leading in a stand-in of its own with these timings, and its run. */
async function leaderA(times: Parameters<typeof elector>[3]) {
  const { client, stand } = standIn();
  const e = elector(client, 'a', undefined, times);
  return { stand, e, run: await leading(e) };
}

/** A gate for the stand-in's next write or read, and what opens it. */
function gate(): { closed: Promise<void>; open: () => void } {
  let open = () => {};
  const closed = new Promise<void>((r) => {
    open = r;
  });
  return { closed, open };
}

/** A Lease held by `x`, renewed every 20 ms by hand until `stop` is called. */
function heldByX(stand: Stand, leaseDurationSeconds = 0.4) {
  let version = 1000;
  let last = 0;
  const renew = () => {
    last = Date.now();
    const at = new Date().toISOString().replace('Z', '000Z');
    stand.leases.set('leader', {
      metadata: { name: 'leader', namespace: 'ops', resourceVersion: String(++version) },
      spec: { holderIdentity: 'x', leaseDurationSeconds, renewTime: at, acquireTime: at },
    });
  };
  renew();
  const timer = setInterval(renew, 20);
  return {
    /** Stops renewing; returns when it last renewed. */
    stop: () => {
      clearInterval(timer);
      return last;
    },
  };
}

describe('the leader Lease owner', () => {
  it('is the Deployment, by uid, on the Lease it creates', async () => {
    const { client, stand } = standIn({ deployments: new Map([['operator', deployment]]) });
    const e = elector(client, 'a', 'operator');
    expect((await leadFor(e, 3000)).led).toBe(true);
    await until(() => stand.writes.length > 3);
    await e.stop();
    expect(stand.writes[0]?.metadata.ownerReferences).toEqual([
      { apiVersion: 'apps/v1', kind: 'Deployment', name: 'operator', uid: 'd-1' },
    ]);
    // Looked up once for the create, never on each renewal.
    expect(stand.deploymentReads).toBe(1);
  });

  it('is added once to a Lease an older version made without one', async () => {
    const { client, stand } = standIn({ deployments: new Map([['operator', deployment]]) });
    stand.leases.set('leader', {
      metadata: { name: 'leader', namespace: 'ops', resourceVersion: '0' },
      spec: { holderIdentity: null },
    });
    const e = elector(client, 'a', 'operator');
    expect((await leadFor(e, 3000)).led).toBe(true);
    await until(() => stand.writes.length > 2);
    await e.stop();
    for (const w of stand.writes) expect(w.metadata.ownerReferences).toHaveLength(1);
  });

  it('refused by admission (OwnerReferencesPermissionEnforcement): the replica leads without one', async () => {
    const { client, stand } = standIn({
      deployments: new Map([['operator', deployment]]),
      refuseOwners: true,
    });
    const e = elector(client, 'a', 'operator');
    expect((await leadFor(e, 3000)).led).toBe(true);
    await e.stop();
    expect(stand.leases.get('leader')?.metadata.ownerReferences).toBeUndefined();
  });

  it('unreadable (RBAC) or missing: the replica leads without one, asking once', async () => {
    for (const init of [{ refuseDeployments: true }, {}]) {
      const { client, stand } = standIn(init);
      const e = elector(client, 'a', 'operator');
      expect((await leadFor(e, 3000)).led).toBe(true);
      await e.stop();
      expect(stand.leases.get('leader')?.metadata.ownerReferences).toBeUndefined();
      expect(stand.deploymentReads).toBe(1);
    }
  });
});

describe('a Lease deleted while held', () => {
  it('is lost by its leader, and made again by a follower only a lease duration later', async () => {
    const { client, stand } = standIn();
    const leader = elector(client, 'a');
    const follower = elector(client, 'b');
    expect((await leadFor(leader, 3000)).led).toBe(true);
    const followerRun = leadFor(follower, 60);
    expect((await followerRun).led).toBe(false);
    stand.leases.delete('leader');
    const deletedAt = Date.now();
    // The leader cannot renew what is gone and gives up at its renew deadline; the follower,
    // which had seen the Lease, waits as for an expiry before it makes the Lease again.
    const leaderGaveUp = await until(() => !leader.isLeader);
    const followerLed = await until(() => follower.isLeader);
    expect(stand.leases.get('leader')?.spec?.holderIdentity).toBe('b');
    expect(leaderGaveUp).toBeLessThanOrEqual(followerLed);
    expect(followerLed - deletedAt).toBeGreaterThanOrEqual(400);
    await follower.stop();
  });

  it('stops saying it leads before it gives the lease up', async () => {
    const { client, stand } = standIn();
    const metrics: number[] = [];
    const e = new LeaderElector({
      client,
      namespace: 'ops',
      name: 'leader',
      identity: 'a',
      log: silentLogger,
      metrics: {
        leaderStatus: { set: (_l: unknown, v: number) => metrics.push(v) },
      } as unknown as NonNullable<ConstructorParameters<typeof LeaderElector>[0]['metrics']>,
      retryPeriodMs: 20,
    });
    expect((await leadFor(e, 3000)).led).toBe(true);
    const before = stand.writes.length;
    const stopping = e.stop();
    // Synchronously, before the release is written.
    expect(e.isLeader).toBe(false);
    expect(metrics.at(-1)).toBe(0);
    await stopping;
    expect(stand.writes.at(-1)?.spec?.holderIdentity).toBeNull();
    expect(stand.writes.length).toBe(before + 1);
  });
});

describe('renewing', () => {
  it('is one write a round, from the Lease as last written, without reading it first', async () => {
    const { client, stand } = standIn();
    const e = elector(client, 'a');
    expect((await leadFor(e, 3000)).led).toBe(true);
    const reads = stand.leaseReads;
    const writes = stand.writes.length;
    await until(() => stand.writes.length >= writes + 10);
    expect(stand.leaseReads).toBe(reads);
    expect(e.isLeader).toBe(true);
    const renewals = stand.writes.slice(writes);
    expect(new Set(renewals.map((w) => w.spec?.renewTime)).size).toBe(renewals.length);
    expect(renewals.every((w) => w.spec?.holderIdentity === 'a' && w.spec.leaseTransitions === 0)).toBe(true);
    await e.stop();
  });

  it('never overwrites a Lease someone else changed under it: refused, read, and lost at the renew deadline', async () => {
    const { client, stand } = standIn();
    const e = elector(client, 'a');
    expect((await leadFor(e, 3000)).led).toBe(true);
    const reads = stand.leaseReads;
    // Taken by another holder (a replica that judged it expired, or a person), with a new version.
    const held = stand.leases.get('leader') as Lease;
    const now = new Date().toISOString().replace('Z', '000Z');
    stand.leases.set('leader', {
      ...held,
      metadata: { ...held.metadata, resourceVersion: '999' },
      spec: { ...held.spec, holderIdentity: 'b', renewTime: now, acquireTime: now },
    });
    const writes = stand.writes.length;
    await until(() => !e.isLeader);
    // The conditional write was refused, and the Lease read (the positive control: it tried).
    expect(stand.leaseReads).toBeGreaterThan(reads);
    expect(stand.writes.length).toBe(writes);
    expect(stand.leases.get('leader')?.spec?.holderIdentity).toBe('b');
    await e.stop();
  });
});

describe('a candidate fed reads made elsewhere (a shard coordinator)', () => {
  it('reads the Lease itself only when it may be taken, and takes it no sooner than a lease duration after its last change', async () => {
    const { client, stand } = standIn();
    const x = heldByX(stand);
    const b = elector(client, 'b');
    const feed = setInterval(
      () => b.observe(structuredClone(stand.leases.get('leader')), performance.now()),
      20,
    );
    b.observe(structuredClone(stand.leases.get('leader')), performance.now());
    const run = leadFor(b, 5000);
    await new Promise((r) => setTimeout(r, 300));
    // Held and renewed: the fed reads stood for its own.
    expect(stand.leaseReads).toBe(0);
    const lastChange = x.stop();
    expect((await run).led).toBe(true);
    expect(Date.now() - lastChange).toBeGreaterThanOrEqual(400);
    // The positive control: taking it, it read the Lease and wrote it conditionally.
    expect(stand.leaseReads).toBeGreaterThan(0);
    expect(stand.leases.get('leader')?.spec?.holderIdentity).toBe('b');
    clearInterval(feed);
    await b.stop();
  });

  it('reads for itself once the reads made elsewhere stop coming', async () => {
    const { client, stand } = standIn();
    const x = heldByX(stand);
    const b = elector(client, 'b');
    b.observe(structuredClone(stand.leases.get('leader')), performance.now());
    void leadFor(b, 200);
    await until(() => stand.leaseReads > 3);
    expect(b.isLeader).toBe(false);
    x.stop();
    await b.stop();
  });
});

describe('stopping during a renewal', () => {
  it('lets the renewal finish, then gives the Lease up, and never takes it back', async () => {
    const { stand, e, run } = await leaderA({
      leaseDurationMs: 4000,
      renewDeadlineMs: 3000,
      retryPeriodMs: 20,
    });
    const { closed, open } = gate();
    stand.gate = closed;
    // The positive control: a renewal is under way when the stop comes.
    await until(() => stand.held === 1);
    const stopping = e.stop();
    setTimeout(open, 50);
    await stopping;
    await until(() => run.outcome !== undefined);
    expect(run.outcome).toBe('stopped');
    expect(stand.leases.get('leader')?.spec?.holderIdentity).toBeNull();
    expect(stand.writes.at(-1)?.spec?.holderIdentity).toBeNull();
  });
});

describe('stopping during a renewal that hangs', () => {
  it('ends stopped, not lost, and does not wait for the renewal past the renew deadline', async () => {
    const { stand, e, run } = await leaderA({
      leaseDurationMs: 1000,
      renewDeadlineMs: 300,
      retryPeriodMs: 20,
    });
    stand.gate = new Promise<void>(() => {});
    await until(() => stand.held === 1);
    await e.stop();
    await until(() => run.outcome !== undefined);
    expect(run.outcome).toBe('stopped');
  });
});

describe('a renewal that hangs', () => {
  it('is not waited for past the renew deadline: the leader gives up in time', async () => {
    const { stand, e, run } = await leaderA({
      leaseDurationMs: 3000,
      renewDeadlineMs: 1000,
      retryPeriodMs: 50,
    });
    // The API server takes the next write and never answers (a stuck connection).
    stand.gate = new Promise<void>(() => {});
    await until(() => stand.held === 1);
    const lastRenewal = stand.lastWriteAt;
    const lostAt = await until(() => run.outcome !== undefined);
    expect(run.outcome).toBe('lost');
    expect(e.isLeader).toBe(false);
    // Within the renew deadline (1 s) of the last renewal, give or take a timer's lateness: before
    // the Lease's duration (3 s), when a standby may take it.
    expect(lostAt - lastRenewal).toBeLessThan(3000);
    expect(lostAt - lastRenewal).toBeGreaterThanOrEqual(900);
  });
});

describe('a take-over answered late', () => {
  it('is not led on: the Lease is taken afresh first', async () => {
    const { client, stand } = standIn();
    const free = new Date(0).toISOString().replace('Z', '000Z');
    stand.leases.set('leader', {
      metadata: { name: 'leader', namespace: 'ops', resourceVersion: '1' },
      spec: { holderIdentity: '', leaseDurationSeconds: 1, renewTime: free, acquireTime: free },
    });
    const { closed, open } = gate();
    stand.gate = closed;
    const e = elector(client, 'a');
    let writesWhenLed = 0;
    void e.run(() => {
      writesWhenLed = stand.writes.length;
    });
    await until(() => stand.held === 1);
    // Past the renew deadline (250 ms) before the API server answers.
    setTimeout(open, 300);
    await until(() => writesWhenLed > 0);
    // The late write was given back, and it led only on a fresh one after.
    expect(writesWhenLed).toBeGreaterThanOrEqual(3);
    expect(stand.writes.map((w) => w.spec?.holderIdentity).slice(0, 3)).toEqual(['a', null, 'a']);
    await e.stop();
  });
});

describe('a leader that lost its Lease while reading it', () => {
  it('writes nothing when the read comes back: the Lease it found gone is not made again', async () => {
    const { stand, e, run } = await leaderA({
      leaseDurationMs: 1000,
      renewDeadlineMs: 300,
      retryPeriodMs: 20,
    });
    // Deleted under it: the renewal is refused, and the read that follows answers only after the
    // renew deadline, "not found".
    const { closed, open } = gate();
    stand.readGate = closed;
    const answered = stand.answered;
    stand.leases.delete('leader');
    await until(() => run.outcome !== undefined);
    expect(run.outcome).toBe('lost');
    open();
    // The positive control: the late read was answered.
    await until(() => stand.answered > answered);
    await new Promise((r) => setTimeout(r, 50));
    expect(stand.leases.has('leader')).toBe(false);
    await e.stop();
  });
});

describe('reads that lag behind', () => {
  it('do not restart the expiry clock: a stale copy fed after the holder died delays nothing', async () => {
    const { client, stand } = standIn();
    const x = heldByX(stand, 1);
    const first = structuredClone(stand.leases.get('leader') as Lease);
    const b = elector(client, 'b');
    let fed = 0;
    // Each round a copy that stops at the first version (a dead watch's cache replayed), and now
    // and then the current one.
    const feed = setInterval(() => {
      fed++;
      b.observe(
        structuredClone(fed % 5 === 0 ? (stand.leases.get('leader') as Lease) : first),
        performance.now(),
      );
    }, 20);
    const run = leadFor(b, 8000);
    await until(() => fed > 10);
    const lastChange = x.stop();
    expect((await run).led).toBe(true);
    const tookMs = Date.now() - lastChange;
    clearInterval(feed);
    expect(tookMs).toBeGreaterThanOrEqual(1000);
    // Restarted by each stale copy, it would wait twice the duration or more (it never took it).
    expect(tookMs).toBeLessThan(2000);
    await b.stop();
  });
});
