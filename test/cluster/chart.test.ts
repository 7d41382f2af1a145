/**
 * The deployable artefact for real: the image built from the Dockerfile (make image, here with
 * podman or buildah against a locally made base) and the chart installed with helm into a
 * single-node cluster on this machine (local-cluster.ts: kubelet, containerd, runc, a CNI
 * bridge). The operator (2 replicas, leader election) and an observer run as pods with the
 * chart's securityContext; PostgreSQL, BIND and a second observer run on the host, at addresses
 * the pods reach, as other regions would. Then: a failover driven by the deployed operator, a
 * `helm upgrade` from a chart without the FailoverReport CRD, the documented way (the CRDs
 * first), after which the upgraded operator files the earlier failover, and the pods roll without
 * ever two leaders; the leader pod deleted; `helm test`; and `helm uninstall` leaving only the CRDs.
 *
 * Needs root, containerd, runc, buildah (podman optional) and the CNI plugins: `make e2e-local`.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, CoordinationV1Api, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chartPath, helm } from '../harness/chart-tools.ts';
import { FailoverStack } from '../harness/failover-stack.ts';
import { LocalCluster } from '../harness/local-cluster.ts';
import { waitFor } from '../harness/wait.ts';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..');
const SYSTEM = 'failover-system';
const RELEASE = 'failover';
const NS = 'orders';
const IMAGE = 'localhost/failover-operator:cluster-test';
const LEASE = `${RELEASE}-failover-operator-leader`;
const OPERATOR_PODS = 'app.kubernetes.io/component=operator';
const started = performance.now();
const log = (line: string) =>
  process.stderr.write(`[cluster +${((performance.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
/** Figures for the closing note: printed once at the end. */
const figures: Record<string, string> = {};

let cluster: LocalCluster;
let stack: FailoverStack | undefined;
let olderChart: string | undefined;

async function helmOk(args: string[]): Promise<string> {
  const res = await helm([...args, '--kubeconfig', cluster.kubeconfigPath]);
  if (res.code !== 0) throw new Error(`helm ${args.join(' ')} failed:\n${res.stderr}\n${res.stdout}`);
  return res.stdout;
}

const chartValues = [
  '--set',
  `image.repository=${IMAGE.split(':')[0]},image.tag=${IMAGE.split(':')[1]},image.pullPolicy=Never`,
  '--set',
  'observer.enabled=true,observer.name=region-c,observer.region=region-c',
  // Not enforced by the bridge CNI, but accepted by the API server and rolled with the release.
  '--set',
  'networkPolicy.enabled=true',
];

const core = () => cluster.controlPlane.kubeConfig().makeApiClient(CoreV1Api);

async function operatorPods(): Promise<V1Pod[]> {
  return (await core().listNamespacedPod({ namespace: SYSTEM, labelSelector: OPERATOR_PODS })).items;
}

async function leaseHolder(): Promise<string | undefined> {
  const lease = await cluster.controlPlane
    .kubeConfig()
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: LEASE, namespace: SYSTEM })
    .catch(() => undefined);
  return lease?.spec?.holderIdentity ?? undefined;
}

/** Which operator pods say, on their own /metrics, that they lead (leader_election_master_status). */
async function podsLeading(): Promise<string[]> {
  const pods = await operatorPods();
  const answers = await Promise.all(
    pods.map(async (p) => {
      if (!p.status?.podIP) return undefined;
      try {
        const res = await fetch(`http://${p.status.podIP}:8080/metrics`, {
          signal: AbortSignal.timeout(2000),
        });
        const text = await res.text();
        return /^leader_election_master_status\{[^}]*\} 1$/m.test(text) ? p.metadata?.name : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  return answers.filter((n): n is string => n !== undefined);
}

/**
 * Samples every operator pod's own view of leadership until `done` settles. Two pods both
 * saying they lead in two rounds in a row is a second leader; one round alone can be a handover
 * caught between two fetches.
 */
async function watchLeaders<T>(
  done: Promise<T>,
): Promise<{ result: T; rounds: number; withOneLeader: number; overlaps: string[] }> {
  let finished = false;
  const result = done.finally(() => {
    finished = true;
  });
  let rounds = 0;
  // The positive control: rounds in which the sampler did reach a leader.
  let withOneLeader = 0;
  let previous: string[] = [];
  const overlaps: string[] = [];
  while (!finished) {
    const leading = await podsLeading();
    rounds++;
    if (leading.length === 1) withOneLeader++;
    if (leading.length > 1 && previous.length > 1 && previous.some((p) => leading.includes(p)))
      overlaps.push(`${new Date().toISOString()} ${leading.join(', ')}`);
    previous = leading;
    await new Promise((r) => setTimeout(r, 250));
  }
  return { result: await result, rounds, withOneLeader, overlaps };
}

beforeAll(async () => {
  cluster = await LocalCluster.start({ log });
  let t = performance.now();
  const { stderr } = await run('bash', [join(repo, 'hack', 'image', 'build.sh')], {
    cwd: repo,
    env: { ...process.env, IMAGE, ENGINE: LocalCluster.imageEngine },
    maxBuffer: 64 << 20,
  });
  figures['image build (make image)'] = `${((performance.now() - t) / 1000).toFixed(1)} s`;
  log(
    stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('[image'))
      .join('; '),
  );
  t = performance.now();
  await cluster.importImage(IMAGE);
  figures['image import into containerd'] = `${((performance.now() - t) / 1000).toFixed(1)} s`;

  // The release starts from an older chart: one without the FailoverReport CRD, which the
  // upgrade below brings the documented way.
  olderChart = mkdtempSync(join(tmpdir(), 'failover-older-chart-'));
  cpSync(chartPath, olderChart, { recursive: true });
  rmSync(join(olderChart, 'crds', 'regionfailover.io_failoverreports.yaml'));
  log(
    'helm install (a chart without the FailoverReport CRD): 2 operator replicas and an observer (region-c)',
  );
  t = performance.now();
  await helmOk([
    'install',
    RELEASE,
    olderChart,
    '-n',
    SYSTEM,
    '--create-namespace',
    '--wait',
    '--timeout',
    '5m',
    ...chartValues,
  ]);
  figures['helm install --wait (pods Ready)'] = `${((performance.now() - t) / 1000).toFixed(1)} s`;

  log('PostgreSQL pair, BIND and an observer (region-b) on the host, reached by the pods');
  stack = await FailoverStack.start({
    name: 'cluster',
    kubeConfig: cluster.controlPlane.kubeConfig(),
    kubeconfigPath: cluster.kubeconfigPath,
    namespace: NS,
    observers: ['region-b'],
    startOperator: false,
    installCrds: false,
    network: {
      primary: cluster.hostAddress(11),
      standby: cluster.hostAddress(12),
      dns: cluster.hostAddress(53),
      clients: ['10.244.0.0/24'],
    },
  });
}, 20 * 60_000);

/** Whether the API server serves this resource of regionfailover.io (its CRD is installed). */
async function crdServed(plural: string): Promise<boolean> {
  const res = await cluster.controlPlane.get('/apis/regionfailover.io/v1alpha1');
  return (
    res.status === 200 &&
    (JSON.parse(res.body) as { resources: { name: string }[] }).resources.some((r) => r.name === plural)
  );
}

afterAll(async () => {
  if (olderChart) rmSync(olderChart, { recursive: true, force: true });
  for (const [k, v] of Object.entries(figures)) log(`figure: ${k}: ${v}`);
  await stack?.stop();
  await cluster?.stop();
}, 5 * 60_000);

describe('the chart installed in a cluster that runs pods', () => {
  it('runs the operator pods ready and unprivileged, exactly one leading', async () => {
    const pods = await operatorPods();
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
      expect(ready?.status).toBe('True');
      const startToReady =
        (Date.parse(String(ready?.lastTransitionTime)) - Date.parse(String(p.metadata?.creationTimestamp))) /
        1000;
      figures[`pod ${p.metadata?.name} created to Ready`] = `${startToReady} s`;
      const c = p.spec?.containers[0]?.securityContext;
      expect(c).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(c?.capabilities?.drop).toEqual(['ALL']);
    }
    const holder = await waitFor(leaseHolder, { description: 'a leader lease holder', timeoutMs: 60_000 });
    expect(pods.map((p) => p.metadata?.name)).toContain(holder);
    await waitFor(async () => (await podsLeading()).join() === holder, {
      description: `only ${holder} to report itself leader`,
      timeoutMs: 30_000,
    });
    // The process really runs as the chart says: uid 1000, no capabilities, a read-only root.
    const { stdout } = await run('kubectl', [
      '--kubeconfig',
      cluster.kubeconfigPath,
      'exec',
      '-n',
      SYSTEM,
      String(holder),
      '--',
      'node',
      '-e',
      `const fs=require('fs');const s=fs.readFileSync('/proc/self/status','utf8');
       let ro=false;try{fs.writeFileSync('/probe','x')}catch(e){ro=e.code==='EROFS'}
       console.log(process.getuid(), /CapEff:\\s*(\\S+)/.exec(s)[1], ro)`,
    ]);
    expect(stdout.trim()).toBe('1000 0000000000000000 true');
  });

  it('reaches the databases and DNS from its pods: the policy becomes Healthy', async () => {
    if (!stack) throw new Error('no stack');
    await stack.waitUntilHealthy();
    await stack.waitUntilFailoverReady();
    expect(await stack.dnsAnswer()).toEqual([stack.pair.primary.host]);
  });

  it('fails over when the primary dies: DNS answers the standby', async () => {
    if (!stack) throw new Error('no stack');
    await stack.pair.killPrimary();
    const since = performance.now();
    const { writableMs, dnsMs } = await stack.timeStandbyTakeover(since, 180_000);
    figures['failover through the deployed operator'] =
      `standby writable ${(writableMs / 1000).toFixed(1)} s, DNS on the standby ${(dnsMs / 1000).toFixed(1)} s after the kill`;
    // DNS answers the standby before the operator has written the finished operation down.
    const report = await stack.waitForPolicy((st) => st.history?.[0], 'the failover in status.history');
    expect(report).toMatchObject({
      kind: 'Failover',
      from: 'region-a',
      to: 'region-b',
      result: 'Succeeded',
    });
    expect(await stack.dnsAnswer()).toEqual([stack.pair.standby.host]);
    // No incident record yet: this release's CRDs have no FailoverReport.
    expect(await crdServed('failoverreports')).toBe(false);
  });

  it('upgrades as documented (CRDs first, a new one among them), rolling the pods without ever two leaders', async () => {
    // The documented upgrade path: the chart's CRDs first (Helm never upgrades crds/), then helm.
    const crds = await helmOk(['show', 'crds', chartPath]);
    const applied = await new Promise<string>((resolve, reject) => {
      const child = execFile(
        'kubectl',
        ['--kubeconfig', cluster.kubeconfigPath, 'apply', '--server-side', '--force-conflicts', '-f', '-'],
        (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)),
      );
      child.stdin?.end(crds);
    });
    for (const crd of ['failoverpolicies', 'replicaclusters', 'failoverobservations', 'failoverreports'])
      expect(applied).toContain(`${crd}.regionfailover.io serverside-applied`);
    await waitFor(() => crdServed('failoverreports'), {
      description: 'FailoverReport served',
      timeoutMs: 30_000,
    });
    const before = new Set((await operatorPods()).map((p) => p.metadata?.uid));
    const { rounds, withOneLeader, overlaps } = await watchLeaders(
      helmOk([
        'upgrade',
        RELEASE,
        chartPath,
        '-n',
        SYSTEM,
        '--wait',
        '--timeout',
        '5m',
        ...chartValues,
        '--set',
        'operator.podAnnotations.rollout=second',
      ]),
    );
    // helm --wait returns once the new pods are ready; the old ones may still be terminating.
    const after = await waitFor(
      async () => {
        const pods = await operatorPods();
        return pods.some((p) => before.has(p.metadata?.uid)) ? undefined : pods;
      },
      { description: 'the old operator pods gone', timeoutMs: 120_000 },
    );
    expect(after).toHaveLength(2);
    expect(rounds).toBeGreaterThan(4);
    expect(withOneLeader).toBeGreaterThan(rounds / 2);
    expect(overlaps).toEqual([]);
    const holder = await waitFor(leaseHolder, {
      description: 'a leader after the upgrade',
      timeoutMs: 60_000,
    });
    expect(after.map((p) => p.metadata?.name)).toContain(holder);
    // The upgraded operator files the incident record of the failover before the upgrade.
    const filed = await waitFor(
      async () => (await stack?.reports())?.find((r) => r.spec.kind === 'Failover'),
      { description: 'the failover filed as a FailoverReport after the upgrade', timeoutMs: 120_000 },
    );
    expect(filed.spec).toMatchObject({ kind: 'Failover', result: 'Succeeded' });
  });

  it('hands over within the lease when the leader pod is deleted', async () => {
    const holder = await waitFor(leaseHolder, { description: 'a leader', timeoutMs: 60_000 });
    const since = performance.now();
    await core().deleteNamespacedPod({ name: holder, namespace: SYSTEM });
    // The deleted leader first finishes its current step (bounded by its shutdown grace), then
    // stops saying it leads and gives the lease up: the handover is counted from there.
    let stoppedLeading: number | undefined;
    const { result: next, overlaps } = await watchLeaders(
      waitFor(
        async () => {
          const leading = await podsLeading();
          if (stoppedLeading === undefined && !leading.includes(holder)) stoppedLeading = performance.now();
          const h = await leaseHolder();
          return h && h !== holder && leading.includes(h) ? h : undefined;
        },
        { description: 'another pod to lead', timeoutMs: 90_000, intervalMs: 100 },
      ),
    );
    const now = performance.now();
    const handover = (now - (stoppedLeading ?? since)) / 1000;
    figures['leader pod deleted to new leader'] =
      `${((now - since) / 1000).toFixed(1)} s (${handover.toFixed(1)} s after the old leader stopped leading)`;
    expect(next).toBeTruthy();
    expect(overlaps).toEqual([]);
    // Within the lease: duration 15 s, plus one retry period (2 s) for a replica to notice; a
    // released lease is taken at the next retry.
    expect(handover).toBeLessThan(17);
    // The Deployment brings the replica count back.
    await waitFor(
      async () => {
        const d = await cluster.controlPlane
          .kubeConfig()
          .makeApiClient(AppsV1Api)
          .readNamespacedDeployment({ name: `${RELEASE}-failover-operator-operator`, namespace: SYSTEM });
        return d.status?.readyReplicas === 2;
      },
      { description: 'two ready operator replicas again', timeoutMs: 120_000 },
    );
  });

  it('passes helm test', async () => {
    const out = await helmOk(['test', RELEASE, '-n', SYSTEM, '--timeout', '3m']);
    expect(out).toMatch(/Phase:\s+Succeeded/);
  });

  it('leaves only the CRDs after helm uninstall', async () => {
    await helmOk(['uninstall', RELEASE, '-n', SYSTEM, '--wait', '--timeout', '3m']);
    const left = async () =>
      (
        await run(
          'kubectl',
          [
            '--kubeconfig',
            cluster.kubeconfigPath,
            'get',
            'all,serviceaccounts,roles,rolebindings,leases,configmaps,secrets,poddisruptionbudgets,networkpolicies',
            '-n',
            SYSTEM,
            '-o',
            'name',
          ],
          { maxBuffer: 16 << 20 },
        )
      ).stdout
        .split('\n')
        // What every namespace has, whoever made it.
        .filter((l) => l && !['serviceaccount/default', 'configmap/kube-root-ca.crt'].includes(l));
    // Pods terminate and the Lease is garbage-collected after its Deployment: both take a moment.
    await waitFor(async () => (await left()).length === 0, {
      description: `nothing of the release left in ${SYSTEM}`,
      timeoutMs: 120_000,
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${(await left()).join(', ')}`);
    });
    const clusterWide = await run(
      'kubectl',
      [
        '--kubeconfig',
        cluster.kubeconfigPath,
        'get',
        'clusterroles,clusterrolebindings',
        '-l',
        `app.kubernetes.io/instance=${RELEASE}`,
        '-o',
        'name',
      ],
      { maxBuffer: 16 << 20 },
    );
    expect(clusterWide.stdout.trim()).toBe('');
    const crds = await run('kubectl', ['--kubeconfig', cluster.kubeconfigPath, 'get', 'crd', '-o', 'name']);
    expect(crds.stdout).toContain('failoverpolicies.regionfailover.io');
  });
});
