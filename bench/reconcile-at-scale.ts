/**
 * Benchmark: 500 FailoverPolicies (and 1000 ReplicaClusters) created at once against a real
 * control plane and one operator process. Prints the time until every object has been
 * reconciled, the operator's peak RSS and CPU, and its CPU and API requests per minute once idle.
 *
 *   make bench            (all benchmarks)
 *   BENCH_POLICIES=100 node bench/reconcile-at-scale.ts
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { failoverPolicyType, replicaClusterType } from '../operator/src/controllers/resources.ts';
import { KubeClient, type KubeObject, type ResourceType } from '../operator/src/runtime/kube-client.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { installCrds } from '../test/harness/crds.ts';
import { OperatorProcess } from '../test/harness/operator-process.ts';
import { installSignalCleanup } from '../test/harness/processes.ts';
import { waitFor } from '../test/harness/wait.ts';

const POLICIES = Number(process.env.BENCH_POLICIES ?? 500);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const ns = 'bench';
const say = (s: string) => process.stdout.write(`[bench reconcile] ${s}\n`);

function peakRssMiB(pid: number | undefined): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** User + system CPU seconds the process has used (/proc/PID/stat, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number | undefined): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

async function unreconciled(client: KubeClient, type: ResourceType): Promise<number> {
  const list = await client.list<KubeObject>(type, ns);
  return list.items.filter(
    (o) =>
      (o.status as { observedGeneration?: number } | undefined)?.observedGeneration !== o.metadata.generation,
  ).length;
}

const cp = await ControlPlane.start({ name: 'bench' });
const dir = mkdtempSync(join(tmpdir(), 'failover-bench-'));
let op: OperatorProcess | undefined;
installSignalCleanup(async () => {
  await op?.stop();
  await cp.stop();
});
try {
  const kc = cp.kubeConfig();
  await installCrds(kc);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'pg' }, stringData: { username: 'failover', password: 'not-used' } },
  });
  const client = new KubeClient(kc);
  op = await OperatorProcess.start({
    name: 'bench-operator',
    kubeconfig: cp.kubeconfigPath,
    dir,
    args: [`--namespace=${ns}`, '--leader-elect=false', '--log-level=warn'],
  });
  await waitFor(() => op?.ready(), { description: 'the operator to be ready' });

  say(`creating ${POLICIES} FailoverPolicies and ${POLICIES * 2} ReplicaClusters`);
  const t0 = performance.now();
  const indexes = Array.from({ length: POLICIES }, (_, i) => i);
  await inParallel(indexes, 16, async (i) => {
    for (const role of ['p', 's']) {
      await client.create(replicaClusterType, ns, {
        apiVersion: 'regionfailover.io/v1alpha1',
        kind: 'ReplicaCluster',
        metadata: { name: `db-${i}-${role}`, namespace: ns },
        spec: {
          region: role === 'p' ? 'region-a' : 'region-b',
          provider: { type: 'SelfManaged' },
          // Nothing listens on port 1: every probe is refused at once, the same way each time.
          connection: { host: '127.0.0.1', port: 1, credentialsSecretRef: { name: 'pg' } },
          dnsTarget: `db-${i}-${role}.internal`,
        },
      });
    }
    await client.create(failoverPolicyType, ns, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name: `db-${i}`, namespace: ns },
      spec: {
        primary: `db-${i}-p`,
        standbys: [`db-${i}-s`],
        dns: {
          provider: { type: 'Route53', route53: { hostedZoneId: 'ZBENCH' } },
          zone: 'example.com',
          name: `db-${i}.example.com`,
        },
      },
    });
  });
  const created = performance.now();
  say(`created in ${((created - t0) / 1000).toFixed(1)} s; waiting for every object to be reconciled`);
  await waitFor(
    async () =>
      (await unreconciled(client, failoverPolicyType)) === 0 &&
      (await unreconciled(client, replicaClusterType)) === 0,
    { description: 'every object reconciled', timeoutMs: 600_000, intervalMs: 250 },
  );
  const reconciledMs = performance.now() - t0;
  const coldCpu = cpuSeconds(op.pid);

  say(`all reconciled; measuring API requests for ${IDLE_SECONDS} s of idleness`);
  const before = await op.metric('rest_client_requests_total');
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const idleRequests = (await op.metric('rest_client_requests_total')) - before;
  const idleCpu = cpuSeconds(op.pid) - coldCpu;
  if (process.env.BENCH_DEBUG) {
    const m = (await cp.get('/metrics')).body
      .split('\n')
      .filter((l) => l.startsWith('apiserver_request_total{') && /failover|secrets|events|leases/.test(l));
    process.stdout.write(`${m.join('\n')}\n`);
  }
  const rss = peakRssMiB(op.pid);
  const errors = await op.metric('controller_runtime_reconcile_errors_total');

  say('results');
  process.stdout.write(
    [
      `  policies / clusters:                 ${POLICIES} / ${POLICIES * 2}`,
      `  time until all reconciled:           ${(reconciledMs / 1000).toFixed(1)} s (creation alone ${((created - t0) / 1000).toFixed(1)} s)`,
      `  operator peak RSS (VmHWM):           ${rss.toFixed(0)} MiB`,
      `  operator CPU until all reconciled:   ${coldCpu.toFixed(1)} s`,
      `  operator CPU when idle:              ${((idleCpu * 100) / IDLE_SECONDS).toFixed(1)} % of a core (failing probes)`,
      `  API requests per minute when idle:   ${((idleRequests * 60) / IDLE_SECONDS).toFixed(1)}`,
      `  reconcile errors (conflicts etc.):   ${errors}`,
      '',
    ].join('\n'),
  );
} finally {
  await op?.stop();
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
}
