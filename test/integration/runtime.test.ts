/**
 * The operator's runtime against a real control plane: watches that survive an API server
 * outage, 410 Gone, and reconcile errors that are retried with backoff and counted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failoverPolicyType, replicaClusterType } from '../../operator/src/controllers/resources.ts';
import { operatorRules } from '../../operator/src/rbac.ts';
import { Informer } from '../../operator/src/runtime/informer.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { silentLogger } from '../../operator/src/runtime/logger.ts';
import { Metrics } from '../../operator/src/runtime/metrics.ts';
import { ControlPlane } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { waitFor } from '../harness/wait.ts';

let cp: ControlPlane;
let dir: string;
const operators: OperatorProcess[] = [];

beforeAll(async () => {
  cp = await ControlPlane.start({ name: 'runtime' });
  dir = mkdtempSync(join(tmpdir(), 'failover-runtime-'));
  await installCrds(cp.kubeConfig());
});

afterAll(async () => {
  await Promise.all(operators.map((o) => o.stop()));
  await cp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const cluster = (namespace: string, name: string): KubeObject => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'ReplicaCluster',
  metadata: { name, namespace },
  spec: {
    region: name,
    provider: { type: 'SelfManaged' },
    connection: { host: '127.0.0.1', credentialsSecretRef: { name: 'pg' } },
    dnsTarget: '127.0.0.1',
  },
});

/** A policy of clusters `a` and `b` (or others: a cluster belongs to one policy). */
const policy = (
  namespace: string,
  name: string,
  quorum = 2,
  [primary, standby] = ['a', 'b'],
): KubeObject => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'FailoverPolicy',
  metadata: { name, namespace },
  spec: {
    primary,
    standbys: [standby],
    detection: { quorum },
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

async function namespace(kc: KubeConfig, name: string): Promise<string> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

/** Resolves once the object's status says its current generation was reconciled. */
function reconciled(client: KubeClient, type: typeof failoverPolicyType, ns: string, name: string) {
  return waitFor(
    async () => {
      const o = await client.get(type, ns, name);
      const status = o.status as { observedGeneration?: number } | undefined;
      return status?.observedGeneration === o.metadata.generation ? o : undefined;
    },
    { description: `${type.kind} ${ns}/${name} to be reconciled`, timeoutMs: 90_000 },
  );
}

describe('an API server outage', () => {
  it('is survived, and changes made while the operator could not watch are reconciled', async () => {
    const ns = await namespace(cp.kubeConfig(), 'outage');
    const client = new KubeClient(cp.kubeConfig());
    for (const c of ['a', 'b', 'c', 'd']) await client.create(replicaClusterType, ns, cluster(ns, c));
    await client.create(failoverPolicyType, ns, policy(ns, 'before'));

    const op = await OperatorProcess.start({
      name: 'op-outage',
      kubeconfig: cp.kubeconfigPath,
      dir,
      args: ['--leader-elect=false', `--namespace=${ns}`],
    });
    operators.push(op);
    await reconciled(client, failoverPolicyType, ns, 'before');
    // The operator read its kubeconfig itself (token, CA file), without loading client-node.
    expect(op.logEntries().find((e) => e.msg === 'starting')).toMatchObject({
      kubeconfig: cp.kubeconfigPath,
    });

    // A second API server on the same etcd: the world keeps changing while the operator's is down.
    const other = await cp.addApiServer();
    const otherClient = new KubeClient(other.kubeConfig());
    await cp.stopApiServer();
    await otherClient.create(failoverPolicyType, ns, policy(ns, 'during', 2, ['c', 'd']));
    await otherClient.mergePatch(failoverPolicyType, ns, 'before', { spec: { detection: { quorum: 3 } } });
    await waitFor(async () => (await op.metric('failover_informer_restarts_total', { cause: 'error' })) > 0, {
      description: 'the operator to notice its API server is gone',
    });
    await cp.startApiServer();

    const during = await reconciled(client, failoverPolicyType, ns, 'during');
    const before = await reconciled(client, failoverPolicyType, ns, 'before');
    expect(during.metadata.generation).toBe(1);
    expect(before.metadata.generation).toBe(2);
    expect(op.running).toBe(true);
    await other.stop();
  });
});

describe('an expired watch (410 Gone)', () => {
  it('leads to a relist that brings the cache up to date', async () => {
    const ns = await namespace(cp.kubeConfig(), 'gone');
    const client = new KubeClient(cp.kubeConfig());
    const metrics = new Metrics();
    const informer = new Informer<KubeObject>({
      client,
      type: replicaClusterType,
      namespace: ns,
      log: silentLogger,
      metrics,
      // One object a page, so the relist below reads several.
      pageSize: 1,
    });
    informer.start();
    try {
      await informer.waitForSync();
      expect(await metricValue(metrics, 'failover_informer_relists_total')).toBe(1);
      await client.create(replicaClusterType, ns, cluster(ns, 'x'));
      await waitFor(() => informer.get(`${ns}/x`), { description: 'x in the cache' });
      // The cache keeps no server-side apply bookkeeping (the API server sent some: it always does).
      const stored = await client.get<KubeObject>(replicaClusterType, ns, 'x');
      expect((stored.metadata as { managedFields?: unknown[] }).managedFields?.length).toBeGreaterThan(0);
      expect(informer.get(`${ns}/x`)?.metadata).not.toHaveProperty('managedFields');

      await client.create(replicaClusterType, ns, cluster(ns, 'w'));
      await waitFor(() => informer.get(`${ns}/w`), { description: 'w in the cache' });
      const specOfX = informer.get(`${ns}/x`)?.spec;

      // Resume from a resourceVersion long compacted away: the API server answers 410 Gone.
      informer.restartWatchFrom('1');
      await waitFor(async () => (await metricValue(metrics, 'failover_informer_relists_total')) === 2, {
        description: 'a relist after 410 Gone',
      });
      expect(
        await metricValue(metrics, 'failover_informer_restarts_total', 'expired'),
      ).toBeGreaterThanOrEqual(1);
      await client.create(replicaClusterType, ns, cluster(ns, 'y'));
      await waitFor(() => informer.get(`${ns}/y`), {
        description: 'the watch to work again after the relist',
      });
      expect(
        informer
          .list()
          .map((o) => o.metadata.name)
          .sort(),
      ).toEqual(['w', 'x', 'y']);
      // What the relist read was leaned as the watch's objects are: no managedFields, and the
      // unchanged spec is the object the cache had (its parse stays memoised).
      for (const o of informer.list()) expect(o.metadata).not.toHaveProperty('managedFields');
      expect(informer.get(`${ns}/x`)?.spec).toBe(specOfX);
    } finally {
      await informer.stop();
    }
  });
});

describe('the cache across writes', () => {
  it('keeps the spec object it has through a status write, and takes a changed spec', async () => {
    const ns = await namespace(cp.kubeConfig(), 'cache-spec');
    const client = new KubeClient(cp.kubeConfig());
    const informer = new Informer<KubeObject>({
      client,
      type: replicaClusterType,
      namespace: ns,
      log: silentLogger,
    });
    informer.start();
    try {
      await informer.waitForSync();
      await client.create(replicaClusterType, ns, cluster(ns, 'x'));
      const first = await waitFor(() => informer.get(`${ns}/x`), { description: 'x in the cache' });
      await client.mergePatch(replicaClusterType, ns, 'x', { status: { role: 'Primary' } }, 'status');
      const afterStatus = await waitFor(
        () => {
          const o = informer.get(`${ns}/x`);
          return o && o.metadata.resourceVersion !== first.metadata.resourceVersion ? o : undefined;
        },
        { description: 'the status write in the cache' },
      );
      expect(afterStatus).not.toBe(first);
      expect(afterStatus.status).toMatchObject({ role: 'Primary' });
      // Same generation, equal spec: the object cached before, so its parse is kept.
      expect(afterStatus.spec).toBe(first.spec);

      await client.mergePatch(replicaClusterType, ns, 'x', { spec: { dnsTarget: '127.0.0.2' } });
      const afterSpec = await waitFor(
        () => {
          const o = informer.get(`${ns}/x`);
          return o && o.metadata.generation !== first.metadata.generation ? o : undefined;
        },
        { description: 'the spec change in the cache' },
      );
      expect(afterSpec.spec).not.toBe(first.spec);
      expect(afterSpec.spec).toMatchObject({ dnsTarget: '127.0.0.2' });
    } finally {
      await informer.stop();
    }
  });
});

describe('a reconcile error', () => {
  it('is retried with growing backoff, counted in the metrics, and clears when the cause is fixed', async () => {
    const ns = await namespace(cp.kubeConfig(), 'errors');
    const client = new KubeClient(cp.kubeConfig());
    for (const c of ['a', 'b']) await client.create(replicaClusterType, ns, cluster(ns, c));
    await client.create(failoverPolicyType, ns, policy(ns, 'denied'));

    // The operator's own least-privilege rules, minus the right to write policy status.
    const { op, rbac } = await operatorWithout(ns, 'failoverpolicies/status', 'errors');

    await waitFor(
      async () =>
        (await op.metric('controller_runtime_reconcile_errors_total', { controller: 'failoverpolicy' })) >= 4,
      {
        description: 'four failed reconciles',
        timeoutMs: 90_000,
      },
    );
    expect(await op.metric('workqueue_retries_total', { name: 'failoverpolicy' })).toBeGreaterThanOrEqual(4);
    expect(
      await op.metric('controller_runtime_reconcile_total', {
        controller: 'failoverpolicy',
        result: 'error',
      }),
    ).toBeGreaterThanOrEqual(4);
    const delays = op
      .logEntries()
      .filter((e) => e.msg === 'reconcile failed; retrying with backoff' && e.key === `${ns}/denied`)
      .map((e) => ({ delay: Number(e.retryInMs), attempt: Number(e.attempt), reason: e.reason }));
    expect(delays[0]?.reason).toBe('Forbidden');
    // Each retry waits at least half of twice the previous step: exponential, with jitter.
    for (let i = 1; i < delays.length; i++) {
      expect(delays[i]?.attempt).toBe((delays[i - 1]?.attempt ?? 0) + 1);
    }
    const last = delays.at(-1);
    expect(last?.delay).toBeGreaterThanOrEqual(250 * 2 ** ((last?.attempt ?? 1) - 1));

    // Fix the cause: the next retry succeeds and the errors stop.
    await rbac.patchClusterRole({
      name: 'operator-errors',
      body: [{ op: 'replace', path: '/rules', value: operatorRules.filter((r) => !r.when) }],
    });
    await reconciled(client, failoverPolicyType, ns, 'denied');
    const errorsAfterFix = await op.metric('controller_runtime_reconcile_errors_total', {
      controller: 'failoverpolicy',
    });
    // A policy reconcile that succeeds asks to look again after the probe interval. It is counted
    // when the reconcile returns, just after the status write reconciled() saw.
    await waitFor(
      async () =>
        (await op.metric('controller_runtime_reconcile_total', {
          controller: 'failoverpolicy',
          result: 'requeue_after',
        })) > 0 || undefined,
      { description: 'a successful reconcile counted as requeue_after' },
    );
    await op.stop();
    expect(errorsAfterFix).toBeGreaterThanOrEqual(4);
  });
});

describe('caches that cannot sync', () => {
  it('hold back every reconcile, so nothing is decided on a partial view', async () => {
    const ns = await namespace(cp.kubeConfig(), 'unsynced');
    const client = new KubeClient(cp.kubeConfig());
    for (const c of ['a', 'b']) await client.create(replicaClusterType, ns, cluster(ns, c));
    await client.create(failoverPolicyType, ns, policy(ns, 'orders'));

    // The operator's rules minus reading ReplicaClusters: that cache cannot fill.
    const { op, rbac } = await operatorWithout(ns, 'replicaclusters', 'unsynced');

    // The policy cache filled long ago and the cluster list was refused twice: an operator that
    // did not wait would have reconciled the policy by now, and called its clusters missing.
    await waitFor(
      async () =>
        (await op.metric('failover_informer_relists_total', { resource: 'failoverpolicies' })) >= 1 &&
        (await op.metric('failover_informer_restarts_total', {
          resource: 'replicaclusters',
          cause: 'error',
        })) >= 2,
      { description: 'the policy cache synced and two refused cluster lists', timeoutMs: 90_000 },
    );
    expect(await op.ready()).toBe(false);
    expect(await op.metric('controller_runtime_reconcile_total', { controller: 'failoverpolicy' })).toBe(0);
    expect((await client.get(failoverPolicyType, ns, 'orders')).status).toBeUndefined();

    // Allowed to list clusters, the cache fills at the next retry and the first reconcile sees both.
    await rbac.patchClusterRole({
      name: 'operator-unsynced',
      body: [{ op: 'replace', path: '/rules', value: operatorRules.filter((r) => !r.when) }],
    });
    const reconciledPolicy = await reconciled(client, failoverPolicyType, ns, 'orders');
    const conditions = (reconciledPolicy.status as { conditions?: { type: string; status: string }[] })
      .conditions;
    expect(conditions?.find((c) => c.type === 'ClustersResolved')?.status).toBe('True');
    expect(await op.ready()).toBe(true);
    await op.stop();
  });
});

/**
 * An operator process running as a ServiceAccount bound to the operator's own rules minus one
 * resource, through the ClusterRole operator-<name> (patch it to give the resource back).
 */
async function operatorWithout(ns: string, resource: string, name: string) {
  const rbac = cp.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
  const rules = operatorRules
    .filter((r) => !r.when)
    .map((r) => ({ ...r, resources: r.resources.filter((x) => x !== resource) }));
  await rbac.createClusterRole({ body: { metadata: { name: `operator-${name}` }, rules } });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: `operator-${name}` },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `operator-${name}` },
      subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: ns }],
    },
  });
  const token = await cp.mintServiceAccountToken(ns, 'operator');
  const kubeconfig = cp.writeKubeconfig(join(dir, `operator-${name}.kubeconfig`), 'operator', token);
  const op = await OperatorProcess.start({
    name: `op-${name}`,
    kubeconfig,
    dir,
    args: ['--leader-elect=false', `--namespace=${ns}`],
  });
  operators.push(op);
  return { op, rbac };
}

async function metricValue(metrics: Metrics, name: string, cause?: string): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values ?? [])
    .filter((v) => cause === undefined || v.labels.cause === cause)
    .reduce((sum, v) => sum + Number(v.value), 0);
}
