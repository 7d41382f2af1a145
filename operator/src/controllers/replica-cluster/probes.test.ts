/**
 * Probes count time, not answers: a database that keeps a probe waiting fails once per interval
 * while it does, and never has more than one call pending.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ReplicaClusterSpec } from '../../api/v1alpha1/index.ts';
import type { DatabaseObservation, DatabaseProvider } from '../../providers/database/port.ts';
import type { ProviderErrorReason } from '../../providers/errors.ts';
import { ManualClock } from '../../runtime/clock.ts';
import type { KubeClient } from '../../runtime/kube-client.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { Metrics } from '../../runtime/metrics.ts';
import { ClusterProbes, failuresInARow, type ProbeRecord, type ProbeTarget } from './probes.ts';

const INTERVAL = 1_000;

const spec: ReplicaClusterSpec = {
  region: 'region-a',
  provider: { type: 'SelfManaged' },
  connection: {
    host: '10.0.0.1',
    port: 5432,
    database: 'app',
    sslMode: 'disable',
    credentialsSecretRef: { name: 'db', usernameKey: 'username', passwordKey: 'password' },
  },
  dnsTarget: '10.0.0.1',
} as ReplicaClusterSpec;

const target: ProbeTarget = {
  key: 'ns/region-a',
  namespace: 'ns',
  spec,
  primaryMaxAgeMs: 3 * INTERVAL,
  minIntervalMs: 0.8 * INTERVAL,
  timeoutMs: INTERVAL,
};

const secretClient = {
  get: async () => ({
    metadata: { name: 'db', resourceVersion: '1' },
    data: { username: btoa('failover'), password: btoa('secret') },
  }),
} as unknown as KubeClient;

const answered: DatabaseObservation = { reachable: true, role: 'Primary', lsn: '0/1', durationMs: 1 };
/** What the driver returns when it gives up on a database that never answered. */
const gaveUp: DatabaseObservation = {
  reachable: false,
  role: 'Unknown',
  failure: { reason: 'Timeout', message: 'timeout expired' },
  durationMs: 3_000,
};

/** A database whose answers the test hands out one call at a time. */
class ScriptedDatabase {
  calls = 0;
  heartbeats = 0;
  private waiting: { resolve: (o: DatabaseObservation) => void; reject: (e: Error) => void }[] = [];

  readonly provider = {
    observe: () => {
      this.calls++;
      return new Promise<DatabaseObservation>((resolve, reject) => this.waiting.push({ resolve, reject }));
    },
    writeHeartbeat: async () => {
      this.heartbeats++;
    },
    close: async () => undefined,
  } as unknown as DatabaseProvider;

  answer(observation: DatabaseObservation = answered): void {
    this.waiting.shift()?.resolve(observation);
  }

  fail(error: Error): void {
    this.waiting.shift()?.reject(error);
  }
}

let clock: ManualClock;
let db: ScriptedDatabase;
let metrics: Metrics;
let probes: ClusterProbes;

/** Moves the injected clock and the timers together, as time passes for both in production. */
async function pass(ms: number): Promise<void> {
  clock.advance(ms);
  await vi.advanceTimersByTimeAsync(ms);
}

/** A probe as a caller makes it: started now, awaited while time passes up to its deadline. */
async function probeNow(t: ProbeTarget = target) {
  let done = false;
  const record = probes.probe(t).finally(() => {
    done = true;
  });
  await vi.advanceTimersByTimeAsync(0);
  if (!done) await pass(t.timeoutMs ?? INTERVAL);
  return record;
}

async function failuresCounted(reason: string): Promise<number> {
  const metric = await metrics.probeFailures.get();
  return metric.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

beforeEach(() => {
  vi.useFakeTimers();
  clock = new ManualClock('2026-01-05T03:00:00Z');
  db = new ScriptedDatabase();
  metrics = new Metrics();
  probes = new ClusterProbes({
    client: secretClient,
    clock,
    log: silentLogger,
    metrics,
    factory: () => db.provider,
  });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('a probe that gets no answer', () => {
  it('counts a Timeout failure at the deadline, then one more per interval while the call is pending', async () => {
    const first = probes.probe(target);
    await vi.advanceTimersByTimeAsync(0);
    db.answer();
    const seen = await first;
    expect(seen).toMatchObject({ consecutiveFailures: 0, lastReachableAt: clock.now() });
    const lastSeen = seen.lastReachableAt;

    await pass(INTERVAL);
    const silentSince = clock.now();
    const timedOut = await probeNow();
    expect(timedOut.observation).toMatchObject({
      reachable: false,
      failure: { reason: 'Timeout', message: 'no answer within the 1 s probe interval' },
    });
    expect(timedOut.consecutiveFailures).toBe(1);
    expect(timedOut.lastReachableAt).toEqual(lastSeen);
    // The verdict is reached at the deadline, and the record says so.
    expect(timedOut.at.getTime()).toBe(silentSince.getTime() + INTERVAL);

    for (const expected of [2, 3, 4]) {
      await pass(INTERVAL);
      const record = await probes.probe(target);
      expect(record.consecutiveFailures).toBe(expected);
      expect(record.observation.failure).toMatchObject({ reason: 'Timeout' });
      expect(record.observation.failure?.message).toBe(
        `no answer for ${expected} s (a probe is still pending)`,
      );
      expect(record.lastReachableAt).toEqual(lastSeen);
    }
    // One call to the database all along: the silent one was never joined by others.
    expect(db.calls).toBe(2);
    expect(await failuresCounted('Timeout')).toBe(4);
  });

  it('keeps counting when the silent call gives up: one more failure at once, and one new call in the background', async () => {
    await probeNow();
    await pass(INTERVAL);
    expect((await probes.probe(target)).consecutiveFailures).toBe(2);
    // The silent call finally gives up (a driver timeout): still no answer from the database.
    db.answer(gaveUp);
    await vi.advanceTimersByTimeAsync(0);

    await pass(INTERVAL);
    // Not waited for: the silence goes on, and a new call is asked in the background.
    const third = await probes.probe(target);
    expect(third.consecutiveFailures).toBe(3);
    expect(third.observation.failure?.message).toBe('no answer for 3 s (the last probe gave up)');
    await vi.advanceTimersByTimeAsync(0);
    expect(db.calls).toBe(2);
    await pass(INTERVAL);
    // That call is pending in its turn: one more, and still only one call at a time.
    expect((await probes.probe(target)).consecutiveFailures).toBe(4);
    expect(db.calls).toBe(2);
  });

  it('ends the silence with any answer, however late: the next probe waits for a fresh one, and a success resets the count', async () => {
    await probeNow();
    db.answer();
    await vi.advanceTimersByTimeAsync(0);

    await pass(INTERVAL);
    const next = probes.probe(target);
    await vi.advanceTimersByTimeAsync(0);
    expect(db.calls).toBe(2);
    db.answer();
    const record = await next;
    expect(record).toMatchObject({ consecutiveFailures: 0, observation: { reachable: true } });
    expect(record.lastReachableAt).toEqual(clock.now());
  });

  it('counts an answer that arrives in time, even a failure, when it arrives: no silence to carry on', async () => {
    const record = probes.probe(target);
    await pass(INTERVAL / 2);
    db.answer(gaveUp);
    expect((await record).consecutiveFailures).toBe(1);
    await pass(INTERVAL);
    const next = probes.probe(target);
    await vi.advanceTimersByTimeAsync(0);
    // A fresh call, waited for: an answer in time is no silence.
    expect(db.calls).toBe(2);
    db.answer();
    expect((await next).consecutiveFailures).toBe(0);
  });

  it('does not count failures faster than the interval floor allows', async () => {
    const timedOut = await probeNow();
    expect(timedOut.consecutiveFailures).toBe(1);
    // An event-driven reconcile right after the verdict gets the same record back.
    await pass(100);
    expect(await probes.probe(target)).toBe(timedOut);
    expect(db.calls).toBe(1);
  });

  it('gives a caller that comes while the first waits out its deadline the same verdict', async () => {
    const first = probes.probe(target);
    await pass(INTERVAL / 2);
    // Past the floor of a (shorter) caller, before the deadline of the first.
    const second = probes.probe({ ...target, minIntervalMs: 100 });
    await pass(INTERVAL / 2);
    const [a, b] = await Promise.all([first, second]);
    expect(a).toBe(b);
    expect(a.consecutiveFailures).toBe(1);
    expect(db.calls).toBe(1);
  });

  it('bounds the heartbeat write too', async () => {
    const heartbeat: ProbeTarget = { ...target, heartbeatEpoch: 3 };
    db.provider.writeHeartbeat = () => new Promise<void>(() => undefined);
    const record = probes.probe(heartbeat);
    await vi.advanceTimersByTimeAsync(0);
    db.answer();
    await pass(INTERVAL);
    expect((await record).observation.failure?.reason).toBe('Timeout');
  });

  it('lets no rejection escape from a call it stopped waiting for', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      expect((await probeNow()).consecutiveFailures).toBe(1);
      db.fail(new Error('connection terminated unexpectedly'));
      await vi.advanceTimersByTimeAsync(0);
      await pass(INTERVAL);
      // The next call runs in the background, and nobody waits for it when it fails too.
      expect((await probes.probe(target)).consecutiveFailures).toBe(2);
      db.fail(new Error('connection terminated unexpectedly'));
      await vi.advanceTimersByTimeAsync(0);
      expect(db.calls).toBe(2);
      // Unhandled rejections are reported on a later turn of the real event loop.
      vi.useRealTimers();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('takes its deadline from the interval the floor was set from when the caller gives none', async () => {
    const { timeoutMs: _, ...withoutTimeout } = target;
    const slow = { ...withoutTimeout, minIntervalMs: 4_000 };
    const record = probes.probe(slow);
    await pass(4_999);
    let settled = false;
    void record.then(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(settled).toBe(false);
    await pass(1);
    expect((await record).observation.failure?.message).toBe('no answer within the 5 s probe interval');
  });
});

describe('a probe that gets an answer', () => {
  it('records it as before: reachable, the failure run reset, heartbeat written on the active primary', async () => {
    const record = probes.probe({ ...target, heartbeatEpoch: 2 });
    await vi.advanceTimersByTimeAsync(0);
    db.answer();
    expect(await record).toMatchObject({ consecutiveFailures: 0, observation: { reachable: true } });
    expect(db.heartbeats).toBe(1);
    const metric = await metrics.probeDuration.get();
    expect(metric.values.find((v) => v.metricName?.endsWith('_count'))?.value).toBe(1);
  });

  it('asks observe and heartbeat as one call where the adapter can, and a refused heartbeat leaves the answer standing', async () => {
    const asked: [number, Date][] = [];
    let plainObserves = 0;
    const combined = new ClusterProbes({
      client: secretClient,
      clock,
      log: silentLogger,
      factory: () =>
        ({
          observe: async () => {
            plainObserves++;
            return answered;
          },
          writeHeartbeat: async () => {
            throw new Error('not this way');
          },
          observeWithHeartbeat: async (epoch: number, at: Date) => {
            asked.push([epoch, at]);
            return { observation: answered, heartbeatError: new Error('epoch 5, newer than 2') };
          },
          close: async () => undefined,
        }) as unknown as DatabaseProvider,
    });
    const record = await combined.probe({ ...target, heartbeatEpoch: 2 });
    expect(record).toMatchObject({
      consecutiveFailures: 0,
      observation: { reachable: true, role: 'Primary' },
    });
    expect(asked).toEqual([[2, clock.now()]]);
    expect(plainObserves).toBe(0);
    // Not the active primary: a plain observation, no heartbeat.
    await combined.probe({ ...target, key: 'ns/other' });
    expect(plainObserves).toBe(1);
    expect(asked).toHaveLength(1);
  });

  it('counts an answer that says unreachable as a failure at once', async () => {
    const record = probes.probe(target);
    await vi.advanceTimersByTimeAsync(0);
    db.answer({
      reachable: false,
      role: 'Unknown',
      failure: { reason: 'Unreachable', message: 'refused' },
      durationMs: 1,
    });
    expect((await record).consecutiveFailures).toBe(1);
    expect(await failuresCounted('Unreachable')).toBe(1);
  });
});

describe('a standby’s lag', () => {
  /** Probes whose databases answer what `observe` says for their host. */
  const probesObserving = (observe: (host: string) => Promise<DatabaseObservation>) =>
    new ClusterProbes({
      client: secretClient,
      clock,
      log: silentLogger,
      factory: (s) =>
        ({
          observe: () => observe(s.connection.host),
          writeHeartbeat: async () => undefined,
          close: async () => undefined,
        }) as unknown as DatabaseProvider,
    });

  /** The primary or the standby of one policy, probed whenever asked. */
  const at = (host: string, key: string): ProbeTarget => ({
    ...target,
    key,
    spec: { ...spec, connection: { ...spec.connection, host } },
    activePrimaryKey: 'ns/primary',
    minIntervalMs: 0,
  });

  it('is measured when the primary is read after the standby, so a stale primary position never understates it', async () => {
    vi.useRealTimers();
    const positions = { primary: '0/1000', standby: '0/1000' };
    const observation = (role: 'Primary' | 'Standby'): DatabaseObservation => ({
      reachable: true,
      role,
      lsn: role === 'Primary' ? positions.primary : positions.standby,
      durationMs: 1,
    });
    const lagProbes = probesObserving(async (host) =>
      observation(host === 'primary' ? 'Primary' : 'Standby'),
    );
    await lagProbes.probe(at('primary', 'ns/primary'));
    // The primary then writes 0x3000 bytes; the standby, read next, has replayed past the
    // position the primary was last read at, but not all of it.
    positions.primary = '0/4000';
    positions.standby = '0/2000';
    clock.advance(300);
    const standby = await lagProbes.probe(at('standby', 'ns/standby'));
    expect(standby.lag).toBeUndefined();
    clock.advance(300);
    await lagProbes.probe(at('primary', 'ns/primary'));
    // The primary wrote 0x3000 bytes in the 600 ms between its reads: what the skew moves it by.
    expect(lagProbes.latest('ns/standby')?.lag).toMatchObject({
      bytes: 0x2000,
      at: standby.at,
      walBytesPerSecond: 20480,
    });
  });

  it.each([
    ['another timeline', { timeline: 2, lsn: '0/4000' }],
    ['a position behind the one before (a primary restored or replaced)', { timeline: 1, lsn: '0/800' }],
  ])('has no WAL rate when the primary read is on %s', async (_, second) => {
    vi.useRealTimers();
    const primary = { timeline: 1, lsn: '0/1000' };
    const lagProbes = probesObserving(async (host) =>
      host === 'primary'
        ? { reachable: true, role: 'Primary', ...primary, durationMs: 1 }
        : { reachable: true, role: 'Standby', timeline: 1, lsn: '0/400', durationMs: 1 },
    );
    await lagProbes.probe(at('primary', 'ns/primary'));
    clock.advance(300);
    await lagProbes.probe(at('standby', 'ns/standby'));
    Object.assign(primary, second);
    clock.advance(300);
    await lagProbes.probe(at('primary', 'ns/primary'));
    const lag = lagProbes.latest('ns/standby')?.lag;
    // Measured, but without a rate: the step is the budget's.
    expect(lag).toBeDefined();
    expect(lag?.walBytesPerSecond).toBeUndefined();
  });

  it.each([
    ['the newest shows the same standby further on', { timeline: 1, lsn: '0/2000' }, { bytes: 0x3000 }],
    ['not when the newest is on another timeline', { timeline: 2, lsn: '0/2000' }, undefined],
    ['not when the newest replayed less (restarted behind)', { timeline: 1, lsn: '0/1000' }, undefined],
  ])(
    'is measured against the standby read before, when the newest began after the primary read began: %s',
    async (_, newest, expected) => {
      vi.useRealTimers();
      let releasePrimary: (() => void) | undefined;
      let standbyRead: DatabaseObservation = {
        reachable: true,
        role: 'Standby',
        lsn: '0/2000',
        timeline: 1,
        durationMs: 1,
      };
      const lagProbes = probesObserving(async (host) => {
        if (host !== 'primary') return standbyRead;
        // The primary answers late (its heartbeat write), after the standby's next read.
        await new Promise<void>((r) => {
          releasePrimary = r;
        });
        return { reachable: true, role: 'Primary', lsn: '0/5000', timeline: 1, durationMs: 1 };
      });
      const first = await lagProbes.probe(at('standby', 'ns/standby'));
      clock.advance(1000);
      const primary = lagProbes.probe(at('primary', 'ns/primary'));
      await new Promise((r) => setImmediate(r));
      clock.advance(50);
      standbyRead = { ...standbyRead, ...newest };
      await lagProbes.probe(at('standby', 'ns/standby'));
      releasePrimary?.();
      await primary;
      const lag = lagProbes.latest('ns/standby')?.lag;
      if (expected) expect(lag).toMatchObject({ ...expected, at: first.at });
      else expect(lag).toBeUndefined();
    },
  );
});

describe('the provider cache', () => {
  it('builds one provider for callers that come together after a Secret rotation, closes the old once, and caches none for a cluster forgotten meanwhile', async () => {
    let version = 1;
    const rotating = {
      get: async () => ({
        metadata: { name: 'db', resourceVersion: String(version) },
        data: { username: btoa('failover'), password: btoa(`secret-${version}`) },
      }),
    } as unknown as KubeClient;
    const made: { closed: number }[] = [];
    const cache = new ClusterProbes({
      client: rotating,
      clock,
      log: silentLogger,
      factory: () => {
        const p = { closed: 0 };
        made.push(p);
        return {
          close: async () => {
            p.closed++;
          },
        } as unknown as DatabaseProvider;
      },
    });
    const first = await cache.providerFor(target);
    version = 2;
    (cache as unknown as { forgetCredentials(t: ProbeTarget): void }).forgetCredentials(target);
    const [a, b] = await Promise.all([cache.providerFor(target), cache.providerFor(target)]);
    expect(a).toBe(b);
    expect(a).not.toBe(first);
    expect(made.map((p) => p.closed)).toEqual([1, 0]);
    // Forgotten while a caller still reads the Secret: that caller is refused, nothing is kept.
    const pending = cache.providerFor({ ...target, key: 'ns/gone' });
    await cache.forget('ns/gone');
    await expect(pending).rejects.toThrow(/ns\/gone was removed/);
    await cache.closeAll();
    expect(made.map((p) => p.closed)).toEqual([1, 1]);
  });

  it('keeps the provider while the connection, the provider and the Secrets stay the same, in whatever object they come', async () => {
    let made = 0;
    const cache = new ClusterProbes({
      client: secretClient,
      clock,
      log: silentLogger,
      factory: () => {
        made++;
        return { close: async () => undefined } as unknown as DatabaseProvider;
      },
    });
    const first = await cache.providerFor(target);
    expect(await cache.providerFor(target)).toBe(first);
    // The ReplicaCluster changed elsewhere (its region): a new parsed spec, equal settings.
    const copy = structuredClone(spec);
    expect(await cache.providerFor({ ...target, spec: { ...copy, region: 'region-z' } })).toBe(first);
    expect(await cache.providerFor(target)).toBe(first);
    expect(made).toBe(1);
    const moved = { ...spec, connection: { ...spec.connection, port: 5433 } };
    const second = await cache.providerFor({ ...target, spec: moved });
    expect(second).not.toBe(first);
    expect(await cache.providerFor({ ...target, spec: structuredClone(moved) })).toBe(second);
    const rds = {
      ...moved,
      provider: { type: 'AwsRds', awsRds: { region: 'eu-west-1', dbInstanceIdentifier: 'db-1' } },
    } as ReplicaClusterSpec;
    const third = await cache.providerFor({ ...target, spec: rds });
    expect(third).not.toBe(second);
    expect(await cache.providerFor({ ...target, spec: structuredClone(rds) })).toBe(third);
    expect(made).toBe(3);
    await cache.closeAll();
  });
});

describe('the server a cluster answers from', () => {
  it('is kept through failed probes with when it first answered, follows a restart, and is forgotten with the connection', async () => {
    const from = (server: string, timeline = 1): DatabaseObservation => ({ ...answered, server, timeline });
    const probeAnswering = async (o: DatabaseObservation, t: ProbeTarget = target) => {
      const pending = probeNow(t);
      await vi.advanceTimersByTimeAsync(0);
      db.answer(o);
      return pending;
    };
    const first = await probeAnswering(from('100.5'));
    expect(first.server).toEqual({ id: '100.5', since: first.at, timeline: 1 });
    await pass(INTERVAL);
    const failed = await probeAnswering(gaveUp);
    expect(failed.observation.reachable).toBe(false);
    expect(failed.server).toEqual(first.server);
    await pass(INTERVAL);
    // Promoted in place: the same server, since as before, on its new timeline.
    const promoted = await probeAnswering(from('100.5', 2));
    expect(promoted.server).toEqual({ id: '100.5', since: first.at, timeline: 2 });
    await pass(INTERVAL);
    const restarted = await probeAnswering(from('200.25', 2));
    expect(restarted.server).toEqual({ id: '200.25', since: restarted.at, timeline: 2 });
    // Another host: what the old one answered from is not this cluster's any more.
    const moved = { ...target, spec: { ...spec, connection: { ...spec.connection, host: '10.0.0.2' } } };
    await probes.providerFor(moved);
    expect(probes.latest(target.key)?.server).toBeUndefined();
  });
});

describe('failures in a row', () => {
  const failed = (reason: ProviderErrorReason): DatabaseObservation => ({
    reachable: false,
    role: 'Unknown',
    failure: { reason, message: reason },
    durationMs: 1,
  });
  const record = (observation: DatabaseObservation, consecutiveFailures: number): ProbeRecord => ({
    observation,
    at: new Date(0),
    consecutiveFailures,
  });

  it('runs on while the failures are of one kind', () => {
    expect(failuresInARow(undefined, failed('Timeout'))).toBe(1);
    expect(failuresInARow(record(failed('Timeout'), 4), failed('Unreachable'))).toBe(5);
    expect(failuresInARow(record(failed('AuthenticationFailed'), 4), failed('TlsFailed'))).toBe(5);
  });

  it('starts over when a refusal follows an outage or an outage a refusal: one timeout after an hour of a wrong password is one', () => {
    expect(failuresInARow(record(failed('AuthenticationFailed'), 720), failed('Timeout'))).toBe(1);
    expect(failuresInARow(record(failed('Timeout'), 9), failed('CredentialsMissing'))).toBe(1);
  });
});
