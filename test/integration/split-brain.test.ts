/**
 * An isolated primary fences itself: no moment with two writable primaries, with real parts.
 *
 * Region A (the primary) is a network namespace; its agent and region B's reach the API server
 * each through a path of their own, and region A's agent reaches region B's agent (the failsafe
 * question) through another, so a test cuts exactly the paths a partition would. A client in
 * each region writes into its own database every ~50 ms over the server's Unix socket (no cut
 * reaches that), and from their acknowledgements the test tells whether both ever took writes.
 *
 * - full isolation of region A → A refuses writes before B is promoted; A acknowledged nothing
 *   after B could first have taken writes; healed, A rejoins through reprotect (1 s and 5 s probes);
 * - the control plane lost, regions healthy → A keeps taking writes (B's agent vouches), no
 *   failover; and with B's agent out of reach too, A fences itself, and unfences once the
 *   control plane says it is still the primary at the same epoch;
 * - A cut from the control plane only → keeps taking writes, no failover;
 * - A's agent killed, then A isolated → documented: the database alone cannot fence itself; the
 *   operator says the protection is gone (SplitBrainProtection False) before, and fails over
 *   without waiting; A, healed, is fenced by the operator and rejoined.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { primaryLeaseName } from '../../operator/src/agent/lease-settings.ts';
import type { FailoverPolicyStatus } from '../../operator/src/api/v1alpha1/index.ts';
import type { KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { leaseType } from '../../operator/src/runtime/leader-election.ts';
import type { FailoverStack } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { judgeSplitBrain, WriteSampler } from '../harness/write-sampler.ts';
import { stackStarter } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;
let samplers: WriteSampler[] = [];

afterEach(async () => {
  await Promise.all(samplers.map((s) => s.stop()));
  samplers = [];
  await stack?.stop();
  stack = undefined;
});

const start = stackStarter('split');
const THRESHOLD = 3;

async function protectedStack(interval: number): Promise<FailoverStack> {
  stack = await start({
    primaryNetwork: 'netns',
    probeIntervalSeconds: interval,
    failureThreshold: THRESHOLD,
    quorum: 2,
    // autovacuum stays on: its commits on a fenced old primary grow what the rejoin was assessed
    // to discard, which an automatic reprotect must take in its stride.
    pgSettings: { wal_log_hints: 'on', full_page_writes: 'on' },
    // The writes region-a took between the cut and its fence are discarded by its rejoin.
    reprotect: { mode: 'Automatic' },
    // Region A's agent beside its server, inside its namespace: a cut region loses it too.
    agentsInRegion: true,
  });
  const s = stack;
  await s.waitUntilHealthy();
  await Promise.all([
    s.startAgent('region-a', { peer: true, apiProxy: true }),
    s.startAgent('region-b', { peer: true, apiProxy: true }),
  ]);
  await s.waitForPolicy(
    (st) => condition(st, 'SplitBrainProtection')?.status === 'True' || undefined,
    'region-a protected by its Lease',
  );
  // Each agent knows where to ask the other before any path is cut (the failsafe needs it).
  for (const [cluster, other] of [
    ['region-a', 'region-b'],
    ['region-b', 'region-a'],
  ] as const)
    await waitFor(
      () =>
        s.agents
          .get(cluster)
          ?.logEntries()
          .some(
            (e) =>
              e.msg === 'split-brain guard: the agents it asks when the control plane is gone' &&
              (e.peers as Record<string, string | undefined>)?.[other],
          ) || undefined,
      { description: `the agent beside ${cluster} to know where ${other}'s agent answers` },
    );
  // Last: the standby's lag must be known (in seconds too) when the cut comes, or the RPO budget
  // rightly refuses to promote it.
  await s.waitUntilFailoverReady();
  return s;
}

function condition(st: FailoverPolicyStatus, type: string) {
  return st.conditions?.find((c) => c.type === type);
}

function sample(s: FailoverStack): { a: WriteSampler; b: WriteSampler } {
  const of = (label: string, node: 'primary' | 'standby') => {
    const server = s.pair.server(node);
    const w = new WriteSampler(label, {
      socketDir: server.socketDir,
      port: server.port,
      database: s.pair.database,
      user: 'postgres',
    }).start();
    samplers.push(w);
    return w;
  };
  return { a: of('region-a', 'primary'), b: of('region-b', 'standby') };
}

async function leaseOf(s: FailoverStack): Promise<{ holderIdentity?: string; renewTime?: string }> {
  const lease = await s.client.find<KubeObject>(leaseType, s.options.namespace, primaryLeaseName('orders'));
  return (lease?.spec ?? {}) as { holderIdentity?: string; renewTime?: string };
}

/** Writes acknowledged by `w` after `from`, waited for until there are `n`. */
async function acksAfter(w: WriteSampler, from: number, n: number, description: string): Promise<void> {
  await waitFor(() => w.acknowledged.filter((a) => a.sentAt >= from).length >= n || undefined, {
    description,
    timeoutMs: 60_000,
  }).catch(async (err: Error) => {
    // Say why: what the policy and the operator last said, and the writer's last answer.
    const status = await stack?.policy().then(
      (p) => p.status,
      () => undefined,
    );
    const last = w.attempts.at(-1);
    const logTail = stack?.operator?.logs().split('\n').slice(-25).join('\n') ?? '(no operator)';
    const standby = await stack?.clusterStatus('region-b').catch(() => undefined);
    throw new Error(
      `${err.message}\nlast write: ${JSON.stringify(last)}\nlast status: ${JSON.stringify(status)}\nregion-b: ${JSON.stringify(standby)}\noperator log tail:\n${logTail}`,
    );
  });
}

describe('an isolated primary fences itself before the standby is promoted', () => {
  it.each([1, 5])(
    'full isolation of the primary region, probing every %i s',
    { timeout: 420_000 },
    async (interval) => {
      const s = await protectedStack(interval);
      const { a, b } = sample(s);
      await acksAfter(a, 0, 20, 'writes into region-a before the cut');

      const cutAt = performance.now();
      s.isolatePrimary();
      s.apiPaths.get('region-a')?.silence();
      s.peerPaths.get('region-b')?.silence();

      await acksAfter(b, cutAt, 5, 'writes into region-b, promoted');
      const report = await s.waitForPolicy(
        (st) => (st.history?.[0]?.kind === 'Failover' && !st.currentOperation ? st.history[0] : undefined),
        'the failover report',
      );
      const verdict = judgeSplitBrain(a, b, cutAt);
      const selfFenceMs = (verdict.oldLastAckAt ?? cutAt) - cutAt;
      const writableMs = (verdict.newFirstAckAt ?? cutAt) - cutAt;
      process.stdout.write(
        `[split brain] full isolation, probe ${interval} s: region-a refused writes after ${(selfFenceMs / 1000).toFixed(2)} s, ` +
          `region-b took writes after ${(writableMs / 1000).toFixed(2)} s; RTO ${report.rtoSeconds} s, ` +
          `waited for the Lease ${report.waitedForLeaseSeconds} s; old primary's writes after the promotion: ` +
          `${verdict.oldAcksAfterPromotion}; moments with two writable primaries: ${verdict.overlaps}\n`,
      );
      expect(report).toMatchObject({
        from: 'region-a',
        to: 'region-b',
        result: 'Succeeded',
        protection: 'Lease',
      });
      expect(report.waitedForLeaseSeconds).toBeGreaterThanOrEqual(0);
      expect(verdict.oldAcksAfterPromotion).toBe(0);
      expect(verdict.overlaps).toBe(0);
      expect(verdict.oldLastAckAt).toBeLessThan(verdict.newPossiblyWritableFrom ?? 0);
      // Positive control: region-a took writes after the cut (the client inside it), and stopped
      // because its own agent fenced it — the operator could not reach it.
      expect(a.acknowledged.some((x) => x.sentAt > cutAt)).toBe(true);

      s.reconnectPrimary();
      s.apiPaths.get('region-a')?.restore();
      s.peerPaths.get('region-b')?.restore();
      // Its own agent fenced it (the operator never reached it): the agent's log says so.
      expect(s.agents.get('region-a')?.logs()).toMatch(/split-brain guard: fenced this database/);
      // Healed: region-a stays read-only (region-b is the primary at a later epoch, so its agent
      // does not unfence it), and rejoins as region-b's standby through reprotect (a rewind
      // discards what it took between the cut and its fence).
      const rejoined = await s.waitForPolicy(
        (st) =>
          st.history?.find(
            (h) => h.kind === 'Reprotect' && h.from === 'region-a' && h.result === 'Succeeded',
          ),
        'region-a rejoined through reprotect',
        180_000,
      );
      // What it discarded is recorded, at least what region-a's clients saw acknowledged after the cut.
      expect(rejoined.discardedTransactions).toBeGreaterThanOrEqual(
        a.acknowledged.filter((x) => x.sentAt > cutAt).length,
      );
      expect(await s.writablePrimaries()).toEqual(['standby']);
      expect((await s.policy()).status).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
      // A standby now: its agent keeps no Lease.
      await waitFor(
        async () => (await s.clusterStatus('region-a')).agent?.lease?.state === 'Released' || undefined,
        {
          description: "region-a's agent to release the Lease",
        },
      );
    },
  );
});

describe('a primary that only lost the control plane keeps taking writes', () => {
  it('control plane lost for both regions: the standby agent vouches; without it, the primary fences and later unfences', async () => {
    const s = await protectedStack(1);
    const { a, b } = sample(s);
    await acksAfter(a, 0, 10, 'writes into region-a');
    const before = await leaseOf(s);

    // Neither agent reaches the API server; the operator and the observers are frozen with it.
    const cutAt = performance.now();
    s.apiPaths.get('region-a')?.silence();
    s.apiPaths.get('region-b')?.silence();
    await s.operator?.freeze();
    await Promise.all([...s.observers.values()].map((o) => o.freeze()));
    // Well past the Lease (2.5 s here): still writing, through the failsafe.
    await acksAfter(a, cutAt + 8_000, 20, 'writes into region-a 8 s into the outage');
    expect(a.attempts.filter((x) => x.sentAt > cutAt && !x.ok)).toEqual([]);
    expect(b.acknowledged).toEqual([]);
    expect(s.agents.get('region-a')?.logs()).toMatch(/failsafe: every standby agent vouched/);

    // The standby's agent out of reach too: nobody vouches, so region-a fences itself in time.
    const peerCutAt = performance.now();
    s.peerPaths.get('region-b')?.silence();
    const readOnly = (x: { sentAt: number; ok: boolean; error?: string }) =>
      x.sentAt > peerCutAt && !x.ok && /read-only/.test(x.error ?? '');
    await waitFor(() => a.attempts.some(readOnly) || undefined, {
      description: 'region-a to fence itself (read-only)',
      timeoutMs: 20_000,
    });
    const fencedAfter = (a.attempts.find(readOnly)?.sentAt ?? 0) - peerCutAt;
    process.stdout.write(
      `[split brain] control plane and peer lost: region-a fenced itself ${(fencedAfter / 1000).toFixed(2)} s after its standby's agent went out of reach\n`,
    );
    expect(fencedAfter).toBeLessThan(3_000);

    // Back: the operator still names region-a the primary at epoch 0, so its agent unfences it.
    s.thawAll();
    s.apiPaths.get('region-a')?.restore();
    s.apiPaths.get('region-b')?.restore();
    s.peerPaths.get('region-b')?.restore();
    const healedAt = performance.now();
    await acksAfter(a, healedAt, 10, 'region-a taking writes again');
    // (An operator frozen past its leader lease may exit meanwhile, as a pod would restart.)
    const { status } = await s.policy();
    expect(status).toMatchObject({ activePrimary: 'region-a', epoch: 0 });
    expect(status.history?.find((h) => h.kind === 'Failover')).toBeUndefined();
    expect(b.acknowledged).toEqual([]);
    const after = await leaseOf(s);
    expect(after.holderIdentity).toBe('region-a@0');
    expect(after.renewTime).not.toBe(before.renewTime);
  });

  it('region-a cut from the control plane only: observers and the standby still reach it, no failover', async () => {
    const s = await protectedStack(1);
    const { a, b } = sample(s);
    await acksAfter(a, 0, 10, 'writes into region-a');
    const cutAt = performance.now();
    s.apiPaths.get('region-a')?.silence();
    const frozen = (await leaseOf(s)).renewTime;
    await acksAfter(a, cutAt + 8_000, 20, 'writes into region-a 8 s into the cut');
    // Positive control: the Lease really stopped being renewed, and the agent went failsafe.
    expect((await leaseOf(s)).renewTime).toBe(frozen);
    expect(s.agents.get('region-a')?.logs()).toMatch(/failsafe: every standby agent vouched/);
    expect(a.attempts.filter((x) => x.sentAt > cutAt && !x.ok)).toEqual([]);
    expect(b.acknowledged).toEqual([]);
    expect((await s.policy()).status).toMatchObject({ activePrimary: 'region-a', epoch: 0 });
    s.apiPaths.get('region-a')?.restore();
    await waitFor(async () => (await leaseOf(s)).renewTime !== frozen || undefined, {
      description: 'the Lease renewed again',
    });
  });
});

describe('the agent beside an isolated primary is killed', () => {
  it('documented: the protection is reported gone first, nothing fences the old primary until it is seen again', {
    timeout: 420_000,
  }, async () => {
    const s = await protectedStack(1);
    const { a, b } = sample(s);
    await acksAfter(a, 0, 10, 'writes into region-a');
    await s.agents.get('region-a')?.kill();
    // Positive control: the operator sees the Lease stop while region-a answers, and says so.
    const degraded = await s.waitForPolicy((st) => {
      const c = condition(st, 'SplitBrainProtection');
      return c?.status === 'False' ? c : undefined;
    }, 'SplitBrainProtection False once the Lease is not renewed');
    expect(degraded).toMatchObject({ reason: 'DirectFence' });
    expect(degraded.message).toMatch(/stopped renewing the Lease/);

    const cutAt = performance.now();
    s.isolatePrimary();
    s.apiPaths.get('region-a')?.silence();
    s.peerPaths.get('region-b')?.silence();
    await acksAfter(b, cutAt, 5, 'writes into region-b, promoted');
    const report = await s.waitForPolicy(
      (st) => (st.history?.[0]?.kind === 'Failover' && !st.currentOperation ? st.history[0] : undefined),
      'the failover report',
    );
    // It held the Lease, and the operator cannot tell a dead agent from a cut-off one: it waits
    // as for a live one (the Lease long expired, the standby withholding), then promotes.
    expect(report.protection).toBe('Lease');
    // What the documentation says: nothing fenced region-a meanwhile; its own clients wrote on.
    const verdict = judgeSplitBrain(a, b, cutAt);
    process.stdout.write(
      `[split brain] agent killed, then isolated: region-b took writes after ${(((verdict.newFirstAckAt ?? cutAt) - cutAt) / 1000).toFixed(2)} s; ` +
        `region-a acknowledged ${verdict.oldAcksAfterPromotion} writes after that (no agent to fence it)\n`,
    );
    expect(verdict.oldAcksAfterPromotion).toBeGreaterThan(0);

    // Healed: the operator fences region-a as a stray the moment it sees it, and with its agent
    // back, reprotect rejoins it.
    s.reconnectPrimary();
    s.apiPaths.get('region-a')?.restore();
    s.peerPaths.get('region-b')?.restore();
    const healedAt = performance.now();
    await waitFor(() => a.attempts.some((x) => x.sentAt > healedAt && !x.ok) || undefined, {
      description: 'region-a fenced by the operator once reachable',
      timeoutMs: 60_000,
    });
    expect(await s.writablePrimaries()).toEqual(['standby']);
    // With its agent back, reprotect rejoins it as region-b's standby.
    await s.startAgent('region-a', { peer: true, apiProxy: true });
    const rejoined = await s.waitForPolicy(
      (st) =>
        st.history?.find((h) => h.kind === 'Reprotect' && h.from === 'region-a' && h.result === 'Succeeded'),
      'region-a rejoined through reprotect',
      180_000,
    );
    // Everything its clients wrote after the cut was discarded, and the history says how much.
    expect(rejoined.discardedTransactions).toBeGreaterThanOrEqual(
      a.acknowledged.filter((x) => x.sentAt > cutAt).length,
    );
    expect(await s.writablePrimaries()).toEqual(['standby']);
  });
});
