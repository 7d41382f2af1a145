/**
 * Leader election with real operator processes: exactly one of three reconciles; SIGKILL of the
 * leader hands over within the lease duration; SIGTERM releases the lease at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { failoverPolicyType, replicaClusterType } from '../../operator/src/controllers/resources.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import {
  LEADER_LEASE_LABEL,
  leaseType,
  WATCH_NAMESPACE_LABEL,
} from '../../operator/src/runtime/leader-election.ts';
import { installCrds } from '../harness/crds.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const ns = `election-${process.pid}`;
const LEASE_SECONDS = 6;
let dir: string;
let client: KubeClient;
const operators: OperatorProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'failover-election-'));
  const kc = sharedKubeConfig();
  await installCrds(kc);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  client = new KubeClient(kc);
});

afterAll(async () => {
  await Promise.all(operators.map((o) => o.stop()));
  rmSync(dir, { recursive: true, force: true });
});

const holder = async () =>
  (
    (await client.find<KubeObject>(leaseType, ns, 'failover-operator-leader'))?.spec as
      | { holderIdentity?: string }
      | undefined
  )?.holderIdentity;

function startReplica(name: string) {
  return OperatorProcess.start({
    name,
    kubeconfig: inject('controlPlane').kubeconfigPath,
    dir,
    args: [
      `--namespace=${ns}`,
      `--leader-election-namespace=${ns}`,
      `--lease-duration-seconds=${LEASE_SECONDS}`,
      '--renew-deadline-seconds=4',
      '--retry-period-seconds=1',
    ],
  });
}

describe('three replicas', () => {
  it('elect exactly one leader, and only it reconciles', async () => {
    operators.push(...(await Promise.all(['replica-0', 'replica-1', 'replica-2'].map(startReplica))));
    const leader = await waitFor(holder, { description: 'a leader' });
    // Labelled with its role and the namespace its operator watches: how the plugin finds it.
    expect((await client.get(leaseType, ns, 'failover-operator-leader')).metadata.labels).toMatchObject({
      [LEADER_LEASE_LABEL]: 'operator',
      [WATCH_NAMESPACE_LABEL]: ns,
    });
    await client.create(replicaClusterType, ns, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'ReplicaCluster',
      metadata: { name: 'a', namespace: ns },
      spec: {
        region: 'a',
        provider: { type: 'SelfManaged' },
        connection: { host: '127.0.0.1', credentialsSecretRef: { name: 'pg' } },
        dnsTarget: '127.0.0.1',
      },
    });
    await waitFor(
      async () =>
        (
          (await client.get(replicaClusterType, ns, 'a')).status as
            | { observedGeneration?: number }
            | undefined
        )?.observedGeneration === 1,
      { description: 'the cluster to be reconciled' },
    );
    for (const op of operators) {
      const isLeader = op.name === leader;
      expect(await op.metric('leader_election_master_status'), op.name).toBe(isLeader ? 1 : 0);
      const reconciles = await op.metric('controller_runtime_reconcile_total');
      if (isLeader) expect(reconciles).toBeGreaterThan(0);
      else expect(reconciles, `${op.name} reconciled without being leader`).toBe(0);
      // Every replica keeps a warm cache and is ready, leader or not.
      expect(await op.ready()).toBe(true);
    }
  });

  it('renew with one write a round, and the standbys follow the Lease by a watch, not a read a round', async () => {
    const leaderName = await holder();
    const lead = operators.find((o) => o.name === leaderName) as OperatorProcess;
    expect(lead).toBeDefined();
    const gets = () =>
      Promise.all(operators.map((o) => o.metric('rest_client_requests_total', { method: 'GET' })));
    const puts = () => lead.metric('rest_client_requests_total', { method: 'PUT' });
    const getsBefore = await gets();
    const putsBefore = await puts();
    // The positive control: five renewals (a retry period apart) went by.
    await waitFor(async () => (await puts()) >= putsBefore + 5, { description: 'five renewals' });
    // Nobody read anything: the leader renewed from its last write, the standbys from the watch.
    expect(await gets()).toEqual(getsBefore);
  });

  it('hand over within the lease duration when the leader is killed with SIGKILL', async () => {
    const leader = (await holder()) as string;
    const victim = operators.find((o) => o.name === leader);
    await victim?.kill();
    const killedAt = Date.now();
    const next = await waitFor(
      async () => {
        const h = await holder();
        return h && h !== leader ? h : undefined;
      },
      { description: 'another replica to take the lease', timeoutMs: 60_000 },
    );
    const takeoverMs = Date.now() - killedAt;
    // The lease must first expire (LEASE_SECONDS after the last renew), then the next poll wins it.
    expect(takeoverMs).toBeLessThan((LEASE_SECONDS + 3) * 1000);
    const successor = operators.find((o) => o.name === next);
    await waitFor(async () => (await successor?.metric('leader_election_master_status')) === 1, {
      description: 'the successor to start leading',
    });
    await client.create(failoverPolicyType, ns, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name: 'after-kill', namespace: ns },
      spec: {
        primary: 'a',
        standbys: ['b'],
        dns: {
          provider: {
            type: 'RFC2136',
            rfc2136: { server: '127.0.0.1:53', tsig: { keyName: 'k', secretRef: { name: 't', key: 's' } } },
          },
          zone: 'failover.test',
          name: 'db.failover.test',
        },
      },
    });
    await waitFor(
      async () =>
        (
          (await client.get(failoverPolicyType, ns, 'after-kill')).status as
            | { observedGeneration?: number }
            | undefined
        )?.observedGeneration === 1,
      { description: 'the new leader to reconcile' },
    );
  });

  it('hand over at once when the leader stops with SIGTERM and releases the lease', async () => {
    const leader = (await holder()) as string;
    const current = operators.find((o) => o.name === leader);
    const stoppedAt = Date.now();
    await current?.stop();
    expect(current?.logs()).toContain('released the leader lease');
    const next = await waitFor(
      async () => {
        const h = await holder();
        return h && h !== leader ? h : undefined;
      },
      { description: 'the last replica to take the lease' },
    );
    // No waiting for expiry: well under the lease duration.
    expect(Date.now() - stoppedAt).toBeLessThan(LEASE_SECONDS * 1000);
    expect(operators.find((o) => o.name === next)?.running).toBe(true);
  });
});

describe('a Lease owned by the Deployment', () => {
  it('carries an owner reference to --leader-election-owner, so garbage collection removes it with the Deployment', async () => {
    const owned = `${ns}-owned`;
    const kc = sharedKubeConfig();
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: owned } } });
    const apps = { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment' };
    const labels = { app: 'operator' };
    const deployment = await client.create<KubeObject>(apps, owned, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'operator', namespace: owned },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'operator', image: 'operator' }] } },
      },
    });
    const replica = await OperatorProcess.start({
      name: 'owned-replica',
      kubeconfig: inject('controlPlane').kubeconfigPath,
      dir,
      args: [
        `--namespace=${owned}`,
        `--leader-election-namespace=${owned}`,
        '--leader-election-owner=operator',
      ],
    });
    operators.push(replica);
    const owners = await waitFor(
      async () =>
        (await client.find<KubeObject>(leaseType, owned, 'failover-operator-leader'))?.metadata
          .ownerReferences as { kind: string; name: string; uid: string }[] | undefined,
      { description: 'the Lease with an owner reference' },
    );
    expect(owners).toEqual([
      { apiVersion: 'apps/v1', kind: 'Deployment', name: 'operator', uid: deployment.metadata.uid },
    ]);
  });
});

describe('a Lease deleted under its leader', () => {
  it('is lost by the leader, and made again by another replica only a lease duration later', async () => {
    const gone = `${ns}-deleted`;
    await sharedKubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: gone } } });
    const replicas = await Promise.all(
      ['gone-a', 'gone-b'].map((name) =>
        OperatorProcess.start({
          name,
          kubeconfig: inject('controlPlane').kubeconfigPath,
          dir,
          mayExit: true,
          args: [
            `--namespace=${gone}`,
            `--leader-election-namespace=${gone}`,
            `--lease-duration-seconds=${LEASE_SECONDS}`,
            '--renew-deadline-seconds=4',
            '--retry-period-seconds=1',
          ],
        }),
      ),
    );
    operators.push(...replicas);
    const lease = () => client.find<KubeObject>(leaseType, gone, 'failover-operator-leader');
    const first = await waitFor(
      async () => ((await lease())?.spec as { holderIdentity?: string } | undefined)?.holderIdentity,
      { description: 'a leader' },
    );
    const follower = replicas.find((r) => r.name !== first);
    // The follower must have seen the Lease before it goes, as a running replica has.
    await waitFor(async () => (await follower?.metric('leader_election_master_status')) === 0, {
      description: 'the follower campaigning',
    });
    await new Promise((r) => setTimeout(r, 1500));
    await client.delete(leaseType, gone, 'failover-operator-leader');
    const deletedAt = Date.now();
    const leader = replicas.find((r) => r.name === first);
    // It cannot renew what is gone: it steps down at its renew deadline and exits (lost).
    await waitFor(async () => leader?.running === false, {
      description: 'the old leader to give up and exit',
      timeoutMs: 30_000,
    });
    expect(leader?.logs()).toContain('leader lease lost');
    const next = await waitFor(
      async () => ((await lease())?.spec as { holderIdentity?: string } | undefined)?.holderIdentity,
      { description: 'the Lease made again', timeoutMs: 30_000 },
    );
    expect(next).toBe(follower?.name);
    // Not at once: a deleted Lease is treated as an expired one.
    expect(Date.now() - deletedAt).toBeGreaterThanOrEqual(LEASE_SECONDS * 1000 - 500);
  });
});
