/**
 * Sharding with real operator processes (--shards=3): three replicas spread the shards one each,
 * every policy is reconciled by the one replica holding its shard, never by two at once; a
 * SIGKILLed replica's shard is taken over within a lease period, an operation under way finished
 * once and a hold-down under way kept; `kubectl failover status` shows each policy's shard and
 * holder.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { failoverPolicyType, replicaClusterType } from '../../operator/src/controllers/resources.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { leaseType, WATCH_NAMESPACE_LABEL } from '../../operator/src/runtime/leader-election.ts';
import { shardOf } from '../../operator/src/runtime/shards.ts';
import { installCrds } from '../harness/crds.ts';
import type { FailoverStack } from '../harness/failover-stack.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { waitFor } from '../harness/wait.ts';
import { stackStarter } from './failover-fixtures.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const ns = `sharding-${process.pid}`;
const SHARDS = 3;
const POLICIES = 24;
const LEASE_SECONDS = 6;
const repoRoot = join(import.meta.dirname, '..', '..');
let dir: string;
let client: KubeClient;
const operators: OperatorProcess[] = [];
const policyNames = Array.from({ length: POLICIES }, (_, i) => `db-${i}`);
const shardOfPolicy = (name: string) => shardOf(`${ns}/${name}`, SHARDS);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'failover-sharding-'));
  const kc = sharedKubeConfig();
  await installCrds(kc);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  client = new KubeClient(kc);
  for (const name of policyNames) {
    for (const role of ['p', 's'])
      await client.create(replicaClusterType, ns, {
        apiVersion: 'regionfailover.io/v1alpha1',
        kind: 'ReplicaCluster',
        metadata: { name: `${name}-${role}`, namespace: ns },
        spec: {
          region: role === 'p' ? 'region-a' : 'region-b',
          provider: { type: 'SelfManaged' },
          // Nothing listens on port 1: probes are refused at once, the policies stay unhealthy.
          connection: { host: '127.0.0.1', port: 1, credentialsSecretRef: { name: 'pg' } },
          dnsTarget: `${name}-${role}.internal`,
        },
      });
    await client.create(failoverPolicyType, ns, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name, namespace: ns },
      spec: {
        primary: `${name}-p`,
        standbys: [`${name}-s`],
        dns: {
          provider: { type: 'Route53', route53: { hostedZoneId: 'ZSHARDS' } },
          zone: 'example.com',
          name: `${name}.example.com`,
        },
      },
    });
  }
});

const stacks: FailoverStack[] = [];
const stackOperators: OperatorProcess[] = [];
afterAll(async () => {
  await Promise.all([...operators, ...stackOperators].map((o) => o.stop()));
  await Promise.all(stacks.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

function startReplica(name: string, namespace = ns, shards = SHARDS) {
  return OperatorProcess.start({
    name,
    kubeconfig: inject('controlPlane').kubeconfigPath,
    dir,
    args: [
      `--namespace=${namespace}`,
      `--leader-election-namespace=${namespace}`,
      `--shards=${shards}`,
      `--lease-duration-seconds=${LEASE_SECONDS}`,
      '--renew-deadline-seconds=4',
      '--retry-period-seconds=1',
      '--log-level=debug',
    ],
  });
}

/** The shards a replica says, on its /metrics, it holds. */
async function owned(op: OperatorProcess): Promise<number[]> {
  if (!op.running) return [];
  const text = await op.metrics().catch(() => '');
  return [...text.matchAll(/^failover_operator_shard_owned\{shard="(\d+)"\} 1$/gm)].map((m) => Number(m[1]));
}

/** Every running replica's shards, once each shard has exactly one holder. */
async function assignment(): Promise<Map<number, OperatorProcess> | undefined> {
  const holders = new Map<number, OperatorProcess>();
  for (const op of operators.filter((o) => o.running))
    for (const s of await owned(op)) {
      if (holders.has(s)) return undefined;
      holders.set(s, op);
    }
  return holders.size === SHARDS ? holders : undefined;
}

/** Reconciles of policies in a replica's log: key, start and end (ms), from the debug lines. */
function reconciles(op: OperatorProcess, from = 0) {
  const open = new Map<string, number>();
  const out: { key: string; start: number; end: number }[] = [];
  for (const e of op.logEntries().slice(from)) {
    if (e.controller !== 'failoverpolicy') continue;
    const key = e.key as string;
    const at = Date.parse(e.time as string);
    if (e.msg === 'reconciling') open.set(key, at);
    if (e.msg === 'reconciled') {
      out.push({ key, start: open.get(key) ?? at, end: at });
      open.delete(key);
    }
  }
  // One still under way when the log was read (or when the process was killed) runs to the end.
  for (const [key, start] of open) out.push({ key, start, end: Number.POSITIVE_INFINITY });
  return out;
}

/** Changes every given policy's spec and waits until each has been reconciled at its new generation. */
async function touch(names: string[], interval: number) {
  for (const name of names)
    await client.mergePatch(failoverPolicyType, ns, name, {
      spec: { detection: { probeIntervalSeconds: interval } },
    });
  await waitFor(
    async () => {
      for (const name of names) {
        const p = await client.get<KubeObject>(failoverPolicyType, ns, name);
        const observed = (p.status as { observedGeneration?: number } | undefined)?.observedGeneration;
        if (observed !== p.metadata.generation) return false;
      }
      return true;
    },
    { description: 'every touched policy reconciled at its new generation', timeoutMs: 60_000 },
  );
}

describe(`${SHARDS} shards over three replicas`, () => {
  it('spread one shard each, and each policy is reconciled only by its shard holder', {
    timeout: 180_000,
  }, async () => {
    operators.push(
      ...(await Promise.all(
        ['shard-replica-0', 'shard-replica-1', 'shard-replica-2'].map((n) => startReplica(n)),
      )),
    );
    // Whoever starts first may take every shard; it gives back what is above its share.
    const holders = await waitFor(
      async () => {
        const a = await assignment();
        return a && new Set(a.values()).size === 3 ? a : undefined;
      },
      { description: 'one shard held by each replica', timeoutMs: 90_000 },
    );
    const offsets = operators.map((o) => o.logEntries().length);
    await touch(policyNames, 6);
    for (const [i, op] of operators.entries()) {
      const mine = [...holders].filter(([, o]) => o === op).map(([s]) => s);
      const keys = new Set(reconciles(op, offsets[i]).map((r) => r.key));
      for (const key of keys) expect(mine, `${op.name} reconciled ${key}`).toContain(shardOf(key, SHARDS));
    }
    // Every policy reconciled after the change, each by exactly one replica.
    for (const name of policyNames) {
      const by = operators.filter((op, i) =>
        reconciles(op, offsets[i]).some((r) => r.key === `${ns}/${name}`),
      );
      expect(
        by.map((o) => o.name),
        name,
      ).toEqual([holders.get(shardOfPolicy(name))?.name]);
    }
  });

  it('take over a SIGKILLed replica shard within a lease period, never reconciling a policy twice at once', {
    timeout: 180_000,
  }, async () => {
    const before = (await assignment()) as Map<number, OperatorProcess>;
    const [shard, victim] = [...before].find(([s]) => policyNames.some((n) => shardOfPolicy(n) === s)) as [
      number,
      OperatorProcess,
    ];
    await victim.kill();
    const killedAt = Date.now();
    const successor = await waitFor(
      async () => {
        const a = await assignment();
        const h = a?.get(shard);
        return h && h !== victim ? h : undefined;
      },
      { description: `another replica to take shard ${shard}`, timeoutMs: 60_000 },
    );
    const takeoverMs = Date.now() - killedAt;
    // The Lease must first expire (a lease duration after its last renewal), then the next look takes it.
    expect(takeoverMs).toBeLessThan((LEASE_SECONDS + 4) * 1000);
    // And not before the Lease could have expired (a lease duration after its last renewal, which
    // came at most a retry period before the kill).
    expect(takeoverMs).toBeGreaterThan((LEASE_SECONDS - 1) * 1000);
    const offsets = operators.map((o) => o.logEntries().length);
    const inShard = policyNames.filter((n) => shardOfPolicy(n) === shard);
    await touch(inShard, 7);
    for (const name of inShard) {
      const by = operators.filter(
        (op, i) => op.running && reconciles(op, offsets[i]).some((r) => r.key === `${ns}/${name}`),
      );
      expect(
        by.map((o) => o.name),
        name,
      ).toEqual([successor.name]);
    }
    // Across the whole run (the start, where shards were given back, and the kill): no policy was
    // ever being reconciled by two replicas at the same time.
    const all = operators.flatMap((op) => reconciles(op).map((r) => ({ ...r, by: op.name })));
    let compared = 0;
    for (const a of all)
      for (const b of all) {
        if (a.key !== b.key || a.by >= b.by) continue;
        compared++;
        expect(a.end < b.start || b.end < a.start, `${a.key}: ${a.by} and ${b.by} at once`).toBe(true);
      }
    // Positive control: the same policies were reconciled by different replicas over the run.
    expect(compared).toBeGreaterThan(0);
    // Two replicas left: all three shards held, two by one of them.
    const after = (await assignment()) as Map<number, OperatorProcess>;
    expect(new Set(after.values()).size).toBe(2);
  });

  it('kubectl failover status shows each policy shard and its holder', { timeout: 60_000 }, async () => {
    const a = (await assignment()) as Map<number, OperatorProcess>;
    const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
      execFile(
        join(repoRoot, 'bin', 'kubectl-failover'),
        ['status', '-n', ns],
        { env: { ...process.env, KUBECONFIG: inject('controlPlane').kubeconfigPath }, timeout: 60_000 },
        (err, out, errOut) =>
          err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve({ stdout: out, stderr: errOut }),
      ),
    );
    expect(stderr).not.toMatch(/no operator replica holds/);
    expect(stdout.split('\n')[0]).toContain('SHARD');
    for (const name of policyNames) {
      const line = stdout.split('\n').find((l) => l.startsWith(`${name} `));
      const s = shardOfPolicy(name);
      expect(line, name).toContain(`${s}/${SHARDS} ${a.get(s)?.name}`);
    }
  });
});

describe('an operation under way when its shard holder is SIGKILLed', () => {
  it('is finished once, by the replica that takes the shard over, from status', {
    timeout: 300_000,
  }, async () => {
    const s = await stackStarter('shardop')({ startOperator: false });
    stacks.push(s);
    const namespace = s.options.namespace;
    stackOperators.push(
      ...(await Promise.all(
        ['op-shard-a', 'op-shard-b', 'op-shard-c'].map((n) => startReplica(n, namespace)),
      )),
    );
    await s.waitUntilFailoverReady();
    const shard = shardOf(`${namespace}/orders`, SHARDS);
    const holderOf = async () => {
      for (const op of stackOperators) if ((await owned(op)).includes(shard)) return op;
      return undefined;
    };
    const holder = await waitFor(holderOf, { description: `a holder of shard ${shard}` });

    // DNS does not answer: the switchover stops at its record, where the holder is killed. A
    // switchover of a second or two could otherwise end between two looks at it on busy cores.
    await s.bind.freeze();
    await s.requestPromotion({ id: 'switch-sharded', target: 'region-b', kind: 'Switchover' });
    const stuck = await waitFor(
      async () => {
        const st = (await s.policy()).status;
        if (st.lastRequest?.id === 'switch-sharded' && st.lastRequest.outcome === 'Rejected') return st;
        const op = st.currentOperation;
        return op && ['RepointingDns', 'VerifyingDns'].includes(op.step) ? st : undefined;
      },
      { description: 'the switchover to wait on DNS', timeoutMs: 120_000 },
    );
    expect(stuck.lastRequest, 'the request was accepted').toMatchObject({ outcome: 'Accepted' });
    await holder.kill();
    // Positive control: the kill came while the switchover was under way, not after it ended.
    const atKill = (await s.policy()).status.currentOperation;
    expect(atKill && !['Completed', 'Aborted'].includes(atKill.step), `step ${atKill?.step}`).toBe(true);
    s.bind.thaw();

    const successor = await waitFor(
      async () => {
        const h = await holderOf();
        return h && h !== holder ? h : undefined;
      },
      { description: `another replica to take shard ${shard}`, timeoutMs: 60_000 },
    );
    const ended = await s.waitForPolicy((st) => st.history?.[0], 'the switchover to end');
    expect(ended).toMatchObject({ kind: 'Switchover', result: 'Succeeded', requestId: 'switch-sharded' });
    const { status } = await s.policy();
    // Once: one promotion (epoch 0 -> 1), one history entry, one writable primary, DNS on region B.
    expect(status).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
    expect(status.history?.filter((h) => h.requestId === 'switch-sharded')).toHaveLength(1);
    expect(status.lastRequest).toMatchObject({ id: 'switch-sharded', outcome: 'Succeeded' });
    expect(await s.writablePrimaries()).toEqual(['standby']);
    // The successor finished it: its log has the policy's reconciles after the kill.
    expect(reconciles(successor).some((r) => r.key === `${namespace}/orders`)).toBe(true);
  });
});

describe('a shard holder SIGKILLed in the middle of a hold-down', () => {
  it('leaves the successor the loss as recorded: the hold-down from the first agreement, the RPO budget judged by the lag then', {
    timeout: 300_000,
  }, async () => {
    // The operator replicas are the only observers: the successor has no vote of its own at first,
    // then failures below the threshold, and no lag can be measured against the lost primary.
    const s = await stackStarter('shardloss')({ startOperator: false, observers: [], quorum: 1 });
    stacks.push(s);
    const namespace = s.options.namespace;
    const replicas = await Promise.all(
      ['loss-shard-a', 'loss-shard-b', 'loss-shard-c'].map((n) => startReplica(n, namespace)),
    );
    stackOperators.push(...replicas);
    const shard = shardOf(`${namespace}/orders`, SHARDS);
    const holderOf = async () => {
      for (const op of replicas) if ((await owned(op)).includes(shard)) return op;
      return undefined;
    };
    // The spread settled (one shard each: nobody gives one back later), so the holder found is the
    // one that records the loss.
    await waitFor(
      async () => {
        const held = await Promise.all(replicas.map(owned));
        return held.every((h) => h.length === 1) && new Set(held.flat()).size === SHARDS;
      },
      { description: 'one shard on each replica', timeoutMs: 60_000 },
    );
    const holder = await waitFor(holderOf, { description: `a holder of shard ${shard}` });
    // A new generation, reconciled by the holder only: its own probes measured the standby's lag.
    const holdDownSeconds = 20;
    await s.client.mergePatch(failoverPolicyType, namespace, 'orders', {
      spec: { promotion: { holdDownSeconds } },
    });
    const { object } = await s.policy();
    await s.waitForPolicy(
      (st) =>
        st.observedGeneration === object.metadata.generation &&
        st.conditions?.some((c) => c.type === 'FailoverReady' && c.status === 'True'),
      'the hold-down applied, and a standby ready to be promoted',
    );

    await s.pair.killPrimary();
    const lost = await s.waitForPolicy(
      (st) => (st.primaryDownSince && st.primaryLoss ? st : undefined),
      'the holder to find the primary down',
    );
    const since = Date.parse(lost.primaryDownSince ?? '');
    await holder.kill();
    // Control: the kill came inside the hold-down, before any failover began.
    expect((await s.policy()).status.currentOperation).toBeUndefined();
    expect(Date.now()).toBeLessThan(since + holdDownSeconds * 1000);

    const successor = await waitFor(
      async () => {
        const h = await holderOf();
        return h && h !== holder ? h : undefined;
      },
      { description: `another replica to take shard ${shard}`, timeoutMs: 60_000 },
    );
    const op = await s.waitForPolicy((st) => st.currentOperation, 'the failover to start');
    expect(Date.parse(op.startedAt)).toBeGreaterThanOrEqual(since + holdDownSeconds * 1000);
    // Positive control: the holder recorded when it last reached the primary and the lag then.
    expect(lost.primaryLoss?.lastSeenAt).toBeDefined();
    expect(lost.primaryLoss?.standbyLag.map((l) => l.cluster)).toEqual(['region-b']);
    expect(op.primaryLostAt).toBe(lost.primaryLoss?.lastSeenAt);
    expect(op.estimatedLossBytes).toBe(lost.primaryLoss?.standbyLag[0]?.bytes);
    const ended = await s.waitForPolicy(
      (st) => (st.history?.[0] && !st.currentOperation ? st.history[0] : undefined),
      'the failover to end',
    );
    expect(ended).toMatchObject({ kind: 'Failover', from: 'region-a', to: 'region-b', result: 'Succeeded' });
    const { status } = await s.policy();
    // Once: one promotion, one history entry, one writable primary; the loss went with region A.
    expect(status).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
    expect(status.history).toHaveLength(1);
    expect(status.primaryLoss).toBeUndefined();
    expect(await s.writablePrimaries()).toEqual(['standby']);
    expect(reconciles(successor).some((r) => r.key === `${namespace}/orders`)).toBe(true);
    await Promise.all(replicas.map((r) => r.stop()));
  });
});

describe('changing the layout (one leader <-> shards) is a handover, never two layouts at once', () => {
  it('with a single leader and its standby running, a sharded replica and the standby never act together', {
    timeout: 240_000,
  }, async () => {
    const namespace = `${ns}-layout`;
    await client.create({ group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace' }, undefined, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace },
    });
    const leads = async (op: OperatorProcess) =>
      op.running &&
      (await op.metric('leader_election_master_status', { name: 'failover-operator-leader' })) === 1;
    const layoutHolder = async () =>
      (
        (await client.find<KubeObject>(leaseType, namespace, 'failover-operator-leader'))?.spec as {
          holderIdentity?: string;
        }
      )?.holderIdentity;
    const leader = await startReplica('layout-leader', namespace, 1);
    stackOperators.push(leader);
    await waitFor(() => leads(leader), { description: 'the single leader to lead' });
    const standby = await startReplica('layout-standby', namespace, 1);
    const sharded = await startReplica('layout-sharded', namespace);
    stackOperators.push(standby, sharded);
    // Positive control: the sharded replica saw the leader Lease held, and says why it waits.
    await waitFor(() => /taking no shard while Leases of another layout are held/.test(sharded.logs()), {
      description: 'the sharded replica to see the leader Lease',
    });
    expect(await owned(sharded)).toEqual([]);

    // The leader goes (SIGTERM releases its Lease): its standby and the sharded replica both want it.
    await leader.stop();
    let both = 0;
    let samples = 0;
    const deadline = Date.now() + 3 * LEASE_SECONDS * 1000;
    while (Date.now() < deadline) {
      const [standbyLeads, shards] = await Promise.all([leads(standby), owned(sharded)]);
      samples++;
      if (standbyLeads && shards.length > 0) both++;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(both, `samples with both layouts acting, of ${samples}`).toBe(0);
    const winner = await layoutHolder();
    expect([`layout-standby`, `sharded/${SHARDS}`]).toContain(winner);
    if (winner === 'layout-standby') {
      expect(await owned(sharded)).toEqual([]);
      await standby.stop();
    } else {
      expect(await leads(standby)).toBe(false);
      await standby.stop();
    }
    await waitFor(async () => (await owned(sharded)).length === SHARDS, {
      description: 'the sharded replica to take every shard once no single leader is left',
      timeoutMs: 30_000,
    });
    expect(await layoutHolder()).toBe(`sharded/${SHARDS}`);

    // And back: a single leader waits while the sharded replica renews the leader Lease as its layout.
    const next = await startReplica('layout-leader-2', namespace, 1);
    stackOperators.push(next);
    await new Promise((r) => setTimeout(r, (LEASE_SECONDS + 2) * 1000));
    expect(await leads(next)).toBe(false);
    expect(await layoutHolder()).toBe(`sharded/${SHARDS}`);
    await sharded.stop();
    // The layout Lease is left to expire (other sharded replicas may still renew it), then taken.
    await waitFor(() => leads(next), {
      description: 'the single leader to lead once the sharded layout is gone',
      timeoutMs: 30_000,
    });
  });
});

describe('owned by the Deployment (--leader-election-owner)', () => {
  it('gives the layout, shard and member Leases an owner reference, so an uninstall removes them', {
    timeout: 120_000,
  }, async () => {
    const namespace = `${ns}-owner`;
    await client.create({ group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace' }, undefined, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace },
    });
    const deployment = await client.create(
      { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' },
      namespace,
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'operator', namespace },
        spec: {
          selector: { matchLabels: { app: 'op' } },
          template: {
            metadata: { labels: { app: 'op' } },
            spec: { containers: [{ name: 'op', image: 'failover-operator:local' }] },
          },
        },
      },
    );
    const op = await OperatorProcess.start({
      name: 'owned-sharded',
      kubeconfig: inject('controlPlane').kubeconfigPath,
      dir,
      args: [
        `--namespace=${namespace}`,
        `--leader-election-namespace=${namespace}`,
        '--leader-election-owner=operator',
        `--shards=${SHARDS}`,
        `--lease-duration-seconds=${LEASE_SECONDS}`,
        '--renew-deadline-seconds=4',
        '--retry-period-seconds=1',
      ],
    });
    stackOperators.push(op);
    await waitFor(async () => (await owned(op)).length === SHARDS, { description: 'every shard taken' });
    const leases = (await client.list<KubeObject>(leaseType, namespace)).items;
    expect(leases.map((l) => l.metadata.name).sort()).toEqual(
      [
        'failover-operator-leader',
        'failover-operator-leader-member-owned-sharded',
        ...Array.from({ length: SHARDS }, (_, i) => `failover-operator-leader-shard-${i}-of-${SHARDS}`),
      ].sort(),
    );
    for (const l of leases) {
      expect(
        (l.metadata.ownerReferences as { uid: string }[] | undefined)?.map((r) => r.uid),
        l.metadata.name,
      ).toEqual([deployment.metadata.uid]);
      // Whatever its role, the namespace it watches: `kubectl failover status` goes by it.
      expect(l.metadata.labels?.[WATCH_NAMESPACE_LABEL], l.metadata.name).toBe(namespace);
    }
    expect((l0(leases).spec as { holderIdentity?: string }).holderIdentity).toBe(`sharded/${SHARDS}`);
  });
});

const l0 = (leases: KubeObject[]) =>
  leases.find((l) => l.metadata.name === 'failover-operator-leader') as KubeObject;
