import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type FailoverObservationSpec,
  type FailoverPolicyStatus,
  failoverPolicySpec,
  type Operation,
} from '../api/v1alpha1/index.ts';
import { createLogger } from '../runtime/logger.ts';
import { leaseSettings } from './lease-settings.ts';
import type { VouchAnswer } from './peer.ts';
import {
  type GuardPorts,
  type GuardState,
  type GuardWorld,
  type LocalServer,
  SplitBrainGuard,
} from './split-brain-guard.ts';

const spec = failoverPolicySpec.parse({
  primary: 'region-a',
  standbys: ['region-b'],
  dns: {
    provider: { type: 'Route53', route53: { hostedZoneId: 'Z1' } },
    zone: 'example.test',
    name: 'db.example.test',
  },
  detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 2 },
});
const settings = leaseSettings(spec);

class FakePorts implements GuardPorts {
  apiUp = true;
  /** The control plane swallows requests without a word (a black-holed path), rather than refusing. */
  apiHangs = false;
  peerVouches = true;
  server: LocalServer = 'Primary';
  status: FailoverPolicyStatus = { activePrimary: 'region-a', epoch: 3 };
  observations: FailoverObservationSpec[] = [];
  leaseHolder: string | undefined;
  fenced: { mode: string; epoch: number; at: number }[] = [];
  unfenced = 0;
  changes = 0;

  async readWorld(): Promise<GuardWorld> {
    if (this.apiHangs) return new Promise(() => undefined);
    if (!this.apiUp) throw new Error('connect ETIMEDOUT');
    return {
      policy: { name: 'orders', spec, status: this.status },
      peers: { 'region-a': '10.0.0.1:7433', 'region-b': '10.0.0.2:7433' },
      observations: this.observations,
    };
  }
  async renewLease(_policy: string, holder: string): Promise<{ heldBy?: string }> {
    if (!this.apiUp) throw new Error('connect ETIMEDOUT');
    this.leaseHolder = holder;
    return {};
  }
  /** The look at the local server fails (a wrong socket directory, a server that runs but does not answer). */
  serverLookFails = false;
  async localServer(): Promise<LocalServer> {
    if (this.serverLookFails) throw new Error('the server runs, but nothing answers at the socket');
    return this.server;
  }
  async askPeer(): Promise<VouchAnswer> {
    return { vouched: this.peerVouches, cluster: 'region-b' };
  }
  async fence(mode: 'ReadOnly' | 'Shutdown', epoch: number): Promise<string> {
    if (this.server === 'Down') throw new Error('connect ECONNREFUSED');
    this.fenced.push({ mode, epoch, at: Date.now() });
    return 'default_transaction_read_only on';
  }
  /** Times the guard made the stopped server start read-only. */
  readOnlyAtStartCalls = 0;
  async readOnlyAtStart(): Promise<boolean> {
    this.readOnlyAtStartCalls++;
    return true;
  }
  async unfence(): Promise<string> {
    this.unfenced++;
    return 'reset';
  }
  changed(): void {
    this.changes++;
  }
  saved: GuardState | undefined;
  async saveState(state: GuardState): Promise<void> {
    this.saved = structuredClone(state);
  }
  async loadState(): Promise<GuardState | undefined> {
    return this.saved;
  }
}

const log = createLogger({ level: 'silent' });

function guardFor(cluster: string, ports: FakePorts): SplitBrainGuard {
  return new SplitBrainGuard({
    cluster,
    namespace: 'db',
    ports,
    log,
    mono: () => Date.now(),
    wall: () => new Date(),
  });
}

/** Ticks every renew interval for `ms`, the way the agent's loop does. */
async function run(guard: SplitBrainGuard, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // Time moves while a round waits (a hung request ends at its budget), as it does for real.
    const round = guard.tick();
    await vi.advanceTimersByTimeAsync(settings.renewMs);
    await round;
  }
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date('2026-12-01T10:00:00Z') });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the agent beside the primary', () => {
  it('holds the Lease while it can renew it, and never fences', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 30_000);
    expect(guard.report().lease).toMatchObject({ state: 'Holding', epoch: 3 });
    expect(ports.leaseHolder).toBe('region-a@3');
    expect(ports.fenced).toEqual([]);
  });

  it('goes on through the failsafe when only the control plane is lost (every standby agent vouches)', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.apiUp = false;
    await run(guard, 60_000);
    expect(guard.report().lease).toMatchObject({ state: 'Failsafe', epoch: 3 });
    expect(ports.fenced).toEqual([]);
  });

  it('goes on through the failsafe when the control plane hangs instead of refusing', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.apiHangs = true;
    await run(guard, 60_000);
    expect(guard.report().lease).toMatchObject({ state: 'Failsafe' });
    expect(ports.fenced).toEqual([]);
  });

  it('fences itself before the Lease can expire when it can neither renew nor hear a vouch', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.apiUp = false;
    ports.peerVouches = false;
    const lastConfirmed = Date.now() - settings.renewMs; // the round that last succeeded began then
    await run(guard, 10_000);
    expect(ports.fenced).toHaveLength(1);
    const fence = ports.fenced[0];
    expect(fence).toMatchObject({ mode: 'ReadOnly', epoch: 3 });
    // Not later than duration - margin after the start of the last good round.
    expect((fence?.at ?? 0) - lastConfirmed).toBeLessThanOrEqual(settings.durationMs - settings.marginMs);
    expect(guard.report().lease).toMatchObject({ state: 'SelfFenced', epoch: 3 });
  });

  it('fences at once when it reads an operation replacing it, and says which', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.status = { ...ports.status, currentOperation: failoverOf('region-a', 'region-b', 4) };
    await guard.tick();
    expect(ports.fenced).toHaveLength(1);
    expect(guard.report().lease).toMatchObject({ state: 'SelfFenced', operationId: 'failover-1' });
  });

  it('unfences only once a fresh read names it the primary at the same epoch', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.apiUp = false;
    ports.peerVouches = false;
    await run(guard, 10_000);
    expect(ports.fenced).toHaveLength(1);
    // Peers vouch again, but that is no confirmation: still fenced.
    ports.peerVouches = true;
    await run(guard, 5_000);
    expect(ports.unfenced).toBe(0);
    ports.apiUp = true;
    await guard.tick();
    expect(ports.unfenced).toBe(1);
    expect(guard.report().lease).toMatchObject({ state: 'Holding', epoch: 3 });
  });

  it('does not unfence on a policy read older than its Lease write (an operation written meanwhile)', async () => {
    const ports = new FakePorts();
    const realRenew = ports.renewLease.bind(ports);
    let hold: Promise<void> | undefined;
    ports.renewLease = async (policy: string, holder: string) => {
      await hold;
      return realRenew(policy, holder);
    };
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.apiUp = false;
    ports.peerVouches = false;
    await run(guard, 5_000);
    expect(ports.fenced).toHaveLength(1);
    // The control plane answers again, slowly: the round reads the policy, its Lease write hangs...
    let release: () => void = () => undefined;
    hold = new Promise<void>((r) => {
      release = r;
    });
    ports.apiUp = true;
    await run(guard, settings.renewMs);
    // ...while the operator fails over from it. The write lands after that.
    ports.status = { ...ports.status, currentOperation: failoverOf('region-a', 'region-b', 4) };
    release();
    hold = undefined;
    await run(guard, 2_000);
    expect(ports.unfenced).toBe(0);
    expect(guard.report().lease?.state).toBe('SelfFenced');
  });

  it("never undoes a switchover's fence: self-fenced mid-switchover, it stays fenced until the operation ends", async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    const switchover: Operation = {
      ...failoverOf('region-a', 'region-b', 4),
      id: 'switchover-1',
      kind: 'Switchover',
      step: 'CatchingUp',
    };
    ports.status = { ...ports.status, currentOperation: switchover };
    await run(guard, 1_000);
    // The control plane is gone longer than the Lease allows, mid-switchover.
    ports.apiUp = false;
    ports.peerVouches = false;
    await run(guard, 5_000);
    expect(guard.report().lease?.state).toBe('SelfFenced');
    ports.apiUp = true;
    await run(guard, 3_000);
    expect(ports.unfenced).toBe(0);
    // The switchover rolled back (the operator unfenced its own fence): now the guard's goes too.
    ports.status = { activePrimary: 'region-a', epoch: 3 };
    await run(guard, 2_000);
    expect(ports.unfenced).toBe(1);
    expect(guard.report().lease).toMatchObject({ state: 'Holding', epoch: 3 });
  });

  it('stays fenced when the control plane names another primary (a failover happened meanwhile)', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.apiUp = false;
    ports.peerVouches = false;
    await run(guard, 10_000);
    ports.status = { activePrimary: 'region-b', epoch: 4 };
    ports.apiUp = true;
    await run(guard, 5_000);
    expect(ports.unfenced).toBe(0);
    expect(guard.report().lease?.state).toBe('SelfFenced');
    // Rejoined as a standby by reprotect: the Lease is released.
    ports.server = 'Standby';
    await guard.tick();
    expect(guard.report().lease?.state).toBe('Released');
  });

  it('does not fence a database being promoted before status names it primary', async () => {
    const ports = new FakePorts();
    ports.server = 'Standby';
    ports.status = { activePrimary: 'region-b', epoch: 4 };
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.server = 'Primary';
    ports.status = {
      activePrimary: 'region-b',
      epoch: 4,
      currentOperation: failoverOf('region-b', 'region-a', 5),
    };
    await run(guard, 10_000);
    expect(ports.fenced).toEqual([]);
  });
});

describe('the agent beside the primary, restarted', () => {
  it('restarted while cut off, keeps the deadline of the run before it (from what it saved)', async () => {
    const ports = new FakePorts();
    const first = guardFor('region-a', ports);
    await run(first, 2_000);
    first.stop();
    ports.apiUp = false;
    ports.peerVouches = false;
    vi.advanceTimersByTime(5_000); // the restart takes longer than the Lease
    const second = guardFor('region-a', ports);
    await second.load();
    await run(second, settings.renewMs * 2);
    expect(ports.fenced).toHaveLength(1);
  });

  it('restarted while only the control plane is gone, goes on through its standbys', async () => {
    const ports = new FakePorts();
    const first = guardFor('region-a', ports);
    await run(first, 2_000);
    first.stop();
    ports.apiUp = false;
    const second = guardFor('region-a', ports);
    await second.load();
    await run(second, 30_000);
    expect(ports.fenced).toEqual([]);
    expect(second.report().lease?.state).toBe('Failsafe');
  });

  it('a server that does not answer for a while keeps the deadline armed', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.server = 'Down';
    ports.apiUp = false;
    ports.peerVouches = false;
    await run(guard, 3_000);
    ports.server = 'Primary';
    await run(guard, 1_000);
    expect(ports.fenced).toHaveLength(1);
  });
});

describe('the agent beside the primary, when its look at the server fails', () => {
  it('started while its server runs but cannot be asked, never reports a failover fence owed as made', async () => {
    const ports = new FakePorts();
    ports.serverLookFails = true;
    ports.fenced = [];
    const guard = guardFor('region-a', ports);
    await run(guard, 1_000);
    ports.status = { ...ports.status, currentOperation: failoverOf('region-a', 'region-b', 4) };
    // The fence fails too (the same socket); nothing may say it was made.
    ports.fence = async () => {
      throw new Error('connect ENOENT');
    };
    ports.readOnlyAtStartCalls = 0;
    await run(guard, 2_000);
    expect(guard.report().lease?.state).not.toBe('SelfFenced');
    expect(guard.report().lease?.fenceOwed).toBeUndefined();
    expect(ports.readOnlyAtStartCalls).toBe(0);
  });

  it("an earlier run's self-fence read after this run confirmed the Lease: the deadline stays armed, and the fence is undone", async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    expect(guard.report().lease?.state).toBe('Holding');
    // The report's GET answers late, with the earlier run's self-fence, and the region is cut
    // off right then: it still fences itself on time (the deadline was not disarmed).
    guard.restore({ state: 'SelfFenced', epoch: 3 });
    ports.apiUp = false;
    ports.peerVouches = false;
    await run(guard, 5_000);
    expect(ports.fenced).toHaveLength(1);
    // Another run: the late self-fence is undone at the next round that reads the policy.
    const other = new FakePorts();
    const holding = guardFor('region-a', other);
    await run(holding, 2_000);
    holding.restore({ state: 'SelfFenced', epoch: 3 });
    await run(holding, 1_000);
    expect(other.unfenced).toBe(1);
    expect(holding.report().lease).toMatchObject({ state: 'Holding', epoch: 3 });
  });
});

describe('the agent beside the primary, edge cases', () => {
  it('started cut off, fences at the epoch the policy names (not an older one the database would refuse)', async () => {
    const ports = new FakePorts();
    ports.status = { activePrimary: 'region-a', epoch: 4 };
    const guard = guardFor('region-a', ports);
    await guard.tick();
    ports.apiUp = false;
    ports.peerVouches = false;
    await run(guard, 10_000);
    expect(ports.fenced.map((f) => f.epoch)).toEqual([4]);
  });

  it('with primaryLease.enabled false, never fences', async () => {
    const ports = new FakePorts();
    const off = failoverPolicySpec.parse({ ...spec, primaryLease: { enabled: false } });
    ports.readWorld = async () => {
      if (!ports.apiUp) throw new Error('down');
      return { policy: { name: 'orders', spec: off, status: ports.status }, peers: {}, observations: [] };
    };
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.apiUp = false;
    ports.peerVouches = false;
    await run(guard, 20_000);
    expect(ports.fenced).toEqual([]);
  });

  it('a primary restarting (not answering) keeps its Lease while the policy names it, and is not fenced', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.server = 'Down';
    await run(guard, 15_000);
    ports.server = 'Primary';
    await run(guard, 2_000);
    expect(ports.fenced).toEqual([]);
  });

  it('a crashed primary counts as fenced for the failover at once, and is fenced when it runs again', async () => {
    const ports = new FakePorts();
    const guard = guardFor('region-a', ports);
    await run(guard, 2_000);
    ports.server = 'Down';
    await run(guard, 2_000);
    ports.status = { ...ports.status, currentOperation: failoverOf('region-a', 'region-b', 4) };
    await run(guard, 1_000);
    // Reported fenced for the operation (the operator's wait ends), though nothing could be done yet.
    expect(guard.report().lease).toMatchObject({ state: 'SelfFenced', operationId: 'failover-1' });
    expect(ports.fenced).toEqual([]);
    ports.server = 'Primary';
    await run(guard, 2_000);
    expect(ports.fenced).toHaveLength(1);
  });

  it('a fence owed to a database that was down is still owed by the next run of the agent, and made when it runs', async () => {
    const ports = new FakePorts();
    const first = guardFor('region-a', ports);
    await run(first, 2_000);
    ports.server = 'Down';
    await run(first, 2_000);
    ports.status = { ...ports.status, currentOperation: failoverOf('region-a', 'region-b', 4) };
    await run(first, 1_000);
    const reported = first.report().lease;
    expect(reported).toMatchObject({ state: 'SelfFenced', operationId: 'failover-1', fenceOwed: true });
    expect(ports.fenced).toEqual([]);
    // The agent restarts before its database is back; the failover completes meanwhile.
    first.stop();
    ports.status = { activePrimary: 'region-b', epoch: 4 };
    const second = guardFor('region-a', ports);
    await second.load();
    second.restore(reported);
    await run(second, 1_000);
    expect(ports.fenced).toEqual([]);
    // While it is down, it is made to start read-only (the first run did so too).
    expect(ports.readOnlyAtStartCalls).toBeGreaterThan(0);
    // The database comes back as it went down: a writable primary. Fenced at once.
    ports.server = 'Primary';
    await run(second, 1_000);
    expect(ports.fenced).toHaveLength(1);
    expect(second.report().lease).toMatchObject({ state: 'SelfFenced' });
    expect(second.report().lease?.fenceOwed).toBeUndefined();
    // From the saved state alone (no report read: the control plane is gone at the restart) too.
    const third = guardFor('region-a', ports);
    ports.saved = { world: (ports.saved as GuardState).world, lease: reported };
    ports.fenced = [];
    await third.load();
    await run(third, 1_000);
    expect(ports.fenced).toHaveLength(1);
  });

  it('a self-fence in the last report wins over a saved state that lags it', async () => {
    const ports = new FakePorts();
    const first = guardFor('region-a', ports);
    await run(first, 2_000);
    first.stop();
    const second = guardFor('region-a', ports);
    await second.load();
    second.restore({ state: 'SelfFenced', epoch: 3 });
    await second.tick();
    expect(ports.unfenced).toBe(1);
    expect(second.report().lease?.state).toBe('Holding');
  });
});

describe('the agent beside a standby', () => {
  it('vouches while the primary is seen, withholds once a quorum of observers cannot reach it', async () => {
    const ports = new FakePorts();
    ports.server = 'Standby';
    const guard = guardFor('region-b', ports);
    await guard.tick();
    const q = { namespace: 'db', policy: 'orders', primary: 'region-a', epoch: 3 };
    expect(await guard.answer(q)).toMatchObject({ vouched: true });
    expect(guard.report().vouch).toMatchObject({ primary: 'region-a', epoch: 3, withholding: false });

    ports.observations = [observation('b', false), observation('c', false)];
    await guard.tick();
    expect(await guard.answer(q)).toMatchObject({ vouched: false });
    const since = guard.report().vouch?.since;
    expect(guard.report().vouch).toMatchObject({ withholding: true });

    // The operation is seen later: the count goes on from the same moment, and it is for good.
    vi.advanceTimersByTime(2_000);
    ports.status = { ...ports.status, currentOperation: failoverOf('region-a', 'region-b', 4) };
    await guard.tick();
    expect(guard.report().vouch).toMatchObject({ withholding: true, since, operationId: 'failover-1' });
    ports.observations = [observation('b', true), observation('c', true)];
    ports.status = { activePrimary: 'region-a', epoch: 3 };
    await guard.tick();
    expect(await guard.answer(q)).toMatchObject({ vouched: false });
  });

  it('keeps vouching while the observers are only refused by the primary (a wrong password): they cannot say it is gone', async () => {
    const ports = new FakePorts();
    ports.server = 'Standby';
    const guard = guardFor('region-b', ports);
    const q = { namespace: 'db', policy: 'orders', primary: 'region-a', epoch: 3 };
    ports.observations = [
      observation('b', false, 'AuthenticationFailed'),
      observation('c', false, 'TlsFailed'),
    ];
    await guard.tick();
    expect(await guard.answer(q)).toMatchObject({ vouched: true });
    // Positive control: the same observers losing it withholds.
    ports.observations = [observation('b', false, 'Timeout'), observation('c', false, 'Unreachable')];
    await guard.tick();
    expect(await guard.answer(q)).toMatchObject({ vouched: false });
  });

  it('never vouches once its own database was promoted, nor for another epoch', async () => {
    const ports = new FakePorts();
    ports.server = 'Standby';
    const guard = guardFor('region-b', ports);
    await guard.tick();
    expect(
      await guard.answer({ namespace: 'db', policy: 'orders', primary: 'region-a', epoch: 2 }),
    ).toMatchObject({
      vouched: false,
    });
    ports.server = 'Primary';
    expect(
      await guard.answer({ namespace: 'db', policy: 'orders', primary: 'region-a', epoch: 3 }),
    ).toMatchObject({
      vouched: false,
      reason: 'this database was promoted',
    });
  });

  it('answers from what it last read when the control plane is gone (failsafe needs that)', async () => {
    const ports = new FakePorts();
    ports.server = 'Standby';
    const guard = guardFor('region-b', ports);
    await guard.tick();
    ports.apiUp = false;
    await run(guard, 30_000);
    expect(
      await guard.answer({ namespace: 'db', policy: 'orders', primary: 'region-a', epoch: 3 }),
    ).toMatchObject({
      vouched: true,
    });
  });
});

function failoverOf(from: string, to: string, epoch: number): Operation {
  const at = new Date().toISOString();
  return {
    id: 'failover-1',
    kind: 'Failover',
    trigger: 'Automatic',
    from,
    to,
    epoch,
    step: 'Fencing',
    startedAt: at,
    stepStartedAt: at,
  };
}

function observation(observer: string, reachable: boolean, failureReason?: string): FailoverObservationSpec {
  return {
    policy: 'orders',
    observer,
    observedAt: new Date().toISOString(),
    probeIntervalSeconds: 1,
    clusters: [
      {
        name: 'region-a',
        reachable,
        role: reachable ? 'Primary' : 'Unknown',
        consecutiveFailures: reachable ? 0 : 1,
        ...(failureReason ? { failureReason } : {}),
      },
    ],
  };
}
