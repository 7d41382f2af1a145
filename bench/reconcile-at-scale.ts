/**
 * Benchmark: 500 FailoverPolicies (and 1000 ReplicaClusters) created at once against a real
 * control plane and one operator process. Prints the time until every object has been
 * reconciled, the operator's peak RSS and CPU, and its CPU and API requests per minute once idle
 * (from when nothing but Leases has been written for BENCH_QUIET_SECONDS, 10 by default).
 *
 *   make bench            (all benchmarks)
 *   BENCH_POLICIES=100 node bench/reconcile-at-scale.ts
 *   BENCH_POLICIES=5000 BENCH_SHARDS=3 node bench/reconcile-at-scale.ts   (three replicas, --shards=3)
 *
 *   BENCH_POLICIES=2000 BENCH_START_LATE=1 node bench/reconcile-at-scale.ts   (timed from the operator's start)
 *
 * The operator runs bundled into one JavaScript module, as the image runs it (test/harness/compiled.ts).
 * BENCH_OPERATOR_NODE_FLAGS (space-separated) are given to the operators' Node.js, to profile them;
 * BENCH_OPERATOR_ARGS to the operators (`--max-concurrent-reconciles=16`, say). BENCH_RESTARTS (1 by
 * default, one operator only) restarts it that many times over the reconciled fleet, each measured.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { failoverPolicyType, replicaClusterType } from '../operator/src/controllers/resources.ts';
import { Informer } from '../operator/src/runtime/informer.ts';
import { KubeClient, type KubeObject } from '../operator/src/runtime/kube-client.ts';
import { silentLogger } from '../operator/src/runtime/logger.ts';
import { compileOperator } from '../test/harness/compiled.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { installCrds } from '../test/harness/crds.ts';
import { OperatorProcess } from '../test/harness/operator-process.ts';
import { installSignalCleanup } from '../test/harness/processes.ts';
import { waitFor } from '../test/harness/wait.ts';
import {
  apiserverRequests,
  cpuSeconds,
  difference,
  HeapSampler,
  peakRssMiB,
  reconcilesByController,
  requestsByMethod,
} from './process-stats.ts';

const POLICIES = Number(process.env.BENCH_POLICIES ?? 500);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
/** Idle is measured once nothing but Leases has been written for this long. */
const QUIET_SECONDS = Number(process.env.BENCH_QUIET_SECONDS ?? 10);
/** Above 1: that many operator processes, each with `--shards` of it, so each ends up holding one shard. */
const SHARDS = Number(process.env.BENCH_SHARDS ?? 1);
if (!Number.isInteger(SHARDS) || SHARDS < 1)
  throw new Error(`BENCH_SHARDS must be a whole number from 1: ${SHARDS}`);
/**
 * Restarts over the reconciled fleet, each measured on its own (one operator only): a restart's
 * peak RSS moves by tens of MiB from run to run, so a change is judged over several.
 */
const RESTARTS = Number(process.env.BENCH_RESTARTS ?? 1);
if (!Number.isInteger(RESTARTS) || RESTARTS < 0)
  throw new Error(`BENCH_RESTARTS must be a whole number from 0: ${RESTARTS}`);
/** 1: the objects are created first and the operator started after, timed from its start (a restart). */
const START_LATE = process.env.BENCH_START_LATE === '1';
const ns = 'bench';
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
/** What the operator reads DNS records for (failover_dns_reads_total's purpose label). */
const DNS_PURPOSES = ['Check', 'Discovery', 'Drill'];
const dnsSplit = (counts: number[]) =>
  `${sum(counts).toFixed(0)} (${DNS_PURPOSES.map((p, i) => `${p} ${(counts[i] ?? 0).toFixed(0)}`).join(', ')})`;
const say = (s: string) => process.stdout.write(`[bench reconcile] ${s}\n`);

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/**
 * Objects whose status does not yet answer their generation, counted from a watch: listing
 * thousands of objects every second would cost the API server, which shares the cores with the
 * operator, a good part of what is measured.
 */
const unreconciled = (informer: Informer<KubeObject>) =>
  informer
    .list()
    .filter(
      (o) =>
        (o.status as { observedGeneration?: number } | undefined)?.observedGeneration !==
        o.metadata.generation,
    ).length;

// The operator as the image runs it: bundled into one JavaScript module (hack/build-operator.ts).
const compiled = await compileOperator();
// Whatever ends the run (a failed start included), the copy goes with the process.
process.on('exit', () => compiled.remove());
const cp = await ControlPlane.start({ name: 'bench' });
const dir = mkdtempSync(join(tmpdir(), 'failover-bench-'));
const ops: OperatorProcess[] = [];
let watched: Informer<KubeObject>[] = [];
let heap: HeapSampler | undefined;
const stopAll = () => Promise.all(ops.map((o) => o.stop()));
installSignalCleanup(async () => {
  await stopAll();
  await cp.stop();
  compiled.remove();
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
  watched = [failoverPolicyType, replicaClusterType].map(
    (type) => new Informer<KubeObject>({ client, type, namespace: ns, log: silentLogger }),
  );
  for (const w of watched) w.start();
  await Promise.all(watched.map((w) => w.waitForSync()));
  // Leader election on, as the chart runs it: its Lease renewals are part of the idle requests.
  const election = [`--leader-election-namespace=${ns}`, ...(SHARDS > 1 ? [`--shards=${SHARDS}`] : [])];
  const launch = (i: number) =>
    OperatorProcess.start({
      name: SHARDS > 1 ? `bench-operator-${i}` : 'bench-operator',
      kubeconfig: cp.kubeconfigPath,
      dir,
      entry: compiled.entry,
      args: [
        `--namespace=${ns}`,
        ...election,
        '--log-level=warn',
        ...(process.env.BENCH_OPERATOR_ARGS?.split(' ').filter(Boolean) ?? []),
      ],
      nodeFlags: process.env.BENCH_OPERATOR_NODE_FLAGS?.split(' ').filter(Boolean) ?? [],
    });
  const startOperators = async () => {
    // Each kept as soon as it runs, so a replica that fails to start does not leave the others behind.
    await Promise.all(Array.from({ length: SHARDS }, async (_, i) => ops.push(await launch(i))));
    for (const o of ops) await waitFor(() => o.ready(), { description: `${o.name} to be ready` });
    if (SHARDS > 1) {
      // Each replica holds exactly one shard (before the objects come, unless they are already there).
      await waitFor(
        async () => {
          const owned = await Promise.all(ops.map((o) => o.metric('failover_operator_shard_owned')));
          return owned.every((n) => n === 1);
        },
        { description: 'each replica to hold one shard', timeoutMs: 120_000 },
      );
    }
  };
  if (!START_LATE) await startOperators();

  // The largest heap in use across the replicas, from the start.
  heap = new HeapSampler(() => ops);
  say(`creating ${POLICIES} FailoverPolicies and ${POLICIES * 2} ReplicaClusters`);
  // The rest of the machine's CPU over the same span: the control plane, and this process (its
  // informers parse every write the operators make).
  const otherCpus = () => {
    const { apiserver, etcd } = cp.pids();
    return { apiserver: cpuSeconds(apiserver), etcd: cpuSeconds(etcd), bench: cpuSeconds(process.pid) };
  };
  let othersAtStart = otherCpus();
  let t0 = performance.now();
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
  let created = performance.now();
  if (START_LATE) {
    say(`created in ${((created - t0) / 1000).toFixed(1)} s with no operator running; starting it`);
    // From the process's start: what an upgrade or a restart over an existing fleet costs.
    t0 = performance.now();
    othersAtStart = otherCpus();
    await startOperators();
    created = t0;
  }
  // BENCH_APISERVER_PROFILE=<file> (with FAILOVER_APISERVER_PROFILING=1): where the API server's
  // CPU goes over the first 20 s of the pass, for `go tool pprof -top <kube-apiserver> <file>`.
  const profiling = process.env.BENCH_APISERVER_PROFILE
    ? cp.cpuProfile(20).then((p) => writeFileSync(process.env.BENCH_APISERVER_PROFILE as string, p))
    : undefined;
  say(
    START_LATE
      ? 'waiting for every object to be reconciled'
      : `created in ${((created - t0) / 1000).toFixed(1)} s; waiting for every object to be reconciled`,
  );
  let lastSaid = performance.now();
  await waitFor(
    async () => {
      const left = watched.reduce((n, w) => n + unreconciled(w), 0);
      if (performance.now() - lastSaid > 30_000) {
        lastSaid = performance.now();
        say(`${left} of ${POLICIES * 3} not reconciled yet, ${((lastSaid - t0) / 1000).toFixed(0)} s in`);
      }
      return left === 0;
    },
    { description: 'every object reconciled', timeoutMs: 1_200_000, intervalMs: 250 },
  );
  const reconciledMs = performance.now() - t0;
  await profiling;
  // Events are written after the reconciles that record them (a queue of their own): the pass
  // is over, for the figures below, once they are all written too.
  await waitFor(
    async () => (await Promise.all(ops.map((o) => o.metric('failover_events_queued')))).every((n) => n === 0),
    { description: 'every Event written', timeoutMs: 600_000, intervalMs: 250 },
  );
  const eventsWrittenMs = performance.now() - t0;
  heap.stop();
  // What the API server encodes, validates and stores at each write of a failing object: the
  // status and the managed fields tracking it grow its cost per write.
  const sample = await Promise.all([
    client.get(failoverPolicyType, ns, 'db-0'),
    client.get(replicaClusterType, ns, 'db-0-p'),
  ]);
  const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v ?? null));
  const storedSizes = sample.map(
    (o) =>
      `one failing ${o.kind === 'FailoverPolicy' ? 'policy' : 'cluster'} ${bytes(o)} B (status ${bytes(o.status)} B, managedFields ${bytes(o.metadata.managedFields)} B)`,
  );
  if (process.env.BENCH_DEBUG)
    for (const o of sample) process.stdout.write(`${JSON.stringify(o, null, 1)}\n`);
  // Where the cold time went: reconciles per controller and how long one took on average.
  const reconciles = new Map<string, { count: number; seconds: number }>();
  for (const text of await Promise.all(ops.map((o) => o.metrics())))
    for (const [controller, e] of reconcilesByController(text)) {
      const all = reconciles.get(controller) ?? { count: 0, seconds: 0 };
      reconciles.set(controller, { count: all.count + e.count, seconds: all.seconds + e.seconds });
    }
  // The API requests the first pass made, by method, per object (policies and clusters).
  const coldRequests = new Map<string, number>();
  for (const text of await Promise.all(ops.map((o) => o.metrics())))
    for (const [method, n] of requestsByMethod(text))
      coldRequests.set(method, (coldRequests.get(method) ?? 0) + n);
  const perObject = [...coldRequests]
    .sort((a, b) => b[1] - a[1])
    .map(([method, n]) => `${method} ${(n / (POLICIES * 3)).toFixed(2)}`);
  const perController = [...reconciles].map(
    ([controller, e]) =>
      `${controller} ${e.count} (${((e.seconds * 1000) / Math.max(e.count, 1)).toFixed(0)} ms each)`,
  );
  const coldCpus = ops.map((o) => cpuSeconds(o.pid));
  const othersCold = otherCpus();
  const othersSpent = (k: keyof typeof othersCold) => (othersCold[k] - othersAtStart[k]).toFixed(1);

  // Reconciled is not yet quiet: a policy made before its clusters were first probed says so, and
  // says what the probes found a few seconds later. Idle starts once nothing but Leases has been
  // written for QUIET_SECONDS.
  say(`all reconciled; waiting for ${QUIET_SECONDS} s without writes`);
  const writes = (by: Map<string, number>) =>
    sum(
      [...by]
        .filter(([k]) => /^(PATCH|POST|PUT|DELETE) /.test(k) && !k.endsWith(' leases'))
        .map(([, v]) => v),
    );
  const settleFrom = performance.now();
  const writesAtReconciled = writes(await apiserverRequests(cp));
  let lastWrites = writesAtReconciled;
  let quietSince = performance.now();
  // Five minutes at most: an operator that never stops writing is measured as it is, and said so.
  const quiet = await waitFor(
    async () => {
      const now = writes(await apiserverRequests(cp));
      if (now !== lastWrites) {
        lastWrites = now;
        quietSince = performance.now();
      }
      return performance.now() - quietSince >= QUIET_SECONDS * 1000;
    },
    { timeoutMs: 300_000, intervalMs: 1000, description: `${QUIET_SECONDS} s without writes` },
  ).then(
    () => true,
    () => false,
  );
  const settled = `${((quietSince - settleFrom) / 1000).toFixed(1)} s after all were reconciled, ${lastWrites - writesAtReconciled} writes meanwhile${quiet ? '' : `; never ${QUIET_SECONDS} s without one in 300 s`}`;
  say(`measuring API requests for ${IDLE_SECONDS} s of idleness`);
  const requests = () => Promise.all(ops.map((o) => o.metric('rest_client_requests_total')));
  // DNS reads (every one a Route 53 request in a real account): none answer here, as no database does.
  const dnsReads = async () =>
    Promise.all(
      DNS_PURPOSES.map(async (purpose) =>
        sum(await Promise.all(ops.map((o) => o.metric('failover_dns_reads_total', { purpose })))),
      ),
    );
  const dnsBefore = await dnsReads();
  const before = await requests();
  const apiserverBefore = await apiserverRequests(cp);
  await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
  const idleRequestsEach = (await requests()).map((n, i) => n - (before[i] ?? 0));
  const idleRequests = sum(idleRequestsEach);
  const idleDnsReads = (await dnsReads()).map((n, i) => (n - (dnsBefore[i] ?? 0)) * (60 / IDLE_SECONDS));
  // What they were, as the API server counts them: Leases (leader election, shards) apart.
  const idleByResource = difference(await apiserverRequests(cp), apiserverBefore, 60 / IDLE_SECONDS);
  const leaseRequests = Object.entries(idleByResource).filter(([k]) => k.endsWith(' leases'));
  const idleLeases = sum(leaseRequests.map(([, v]) => v));
  const leaseVerbs = leaseRequests.map(([k, v]) => `${k.split(' ')[0]} ${v.toFixed(1)}`).join(', ');
  const idleOther = Object.entries(idleByResource).filter(
    ([k]) => !k.endsWith(' leases') && !k.startsWith('WATCH '),
  );
  const idleCpus = ops.map((o, i) => cpuSeconds(o.pid) - (coldCpus[i] ?? 0));
  if (process.env.BENCH_DEBUG) {
    const m = (await cp.get('/metrics')).body
      .split('\n')
      .filter((l) => l.startsWith('apiserver_request_total{') && /failover|secrets|events|leases/.test(l));
    process.stdout.write(`${m.join('\n')}\n`);
  }
  const rss = ops.map((o) => peakRssMiB(o.pid));
  const errors = sum(
    await Promise.all(ops.map((o) => o.metric('controller_runtime_reconcile_errors_total'))),
  );
  // A restart over the fleet it has reconciled (an upgrade, a rescheduled pod): every object is
  // reconciled once more, from an empty cache, and should need no write.
  const restart: string[] = [];
  for (let round = 1; SHARDS === 1 && round <= RESTARTS; round++) {
    const which = RESTARTS > 1 ? ` (${round} of ${RESTARTS})` : '';
    say(`restarting the operator over the reconciled fleet${which}`);
    await stopAll();
    ops.length = 0;
    const before = await apiserverRequests(cp);
    const othersBefore = otherCpus();
    const started = performance.now();
    const op = await launch(0);
    ops.push(op);
    await waitFor(
      async () => {
        const [policies, clusters, depth] = await Promise.all([
          op.metric('controller_runtime_reconcile_total', { controller: 'failoverpolicy' }),
          op.metric('controller_runtime_reconcile_total', { controller: 'replicacluster' }),
          op.metric('workqueue_depth'),
        ]);
        return policies >= POLICIES && clusters >= POLICIES * 2 && depth === 0;
      },
      { description: 'every object reconciled again', timeoutMs: 600_000, intervalMs: 250 },
    );
    const seconds = (performance.now() - started) / 1000;
    // Writes are counted past the operator's first-probes grace (30 s) and a probe interval: a
    // status it held back while its probes began would be written by then.
    await new Promise((r) => setTimeout(r, Math.max(0, started + 40_000 - performance.now())));
    const writes = Object.entries(difference(await apiserverRequests(cp), before, 1)).filter(
      ([k]) =>
        !k.endsWith(' leases') && !k.startsWith('WATCH ') && !k.startsWith('LIST ') && !k.startsWith('GET '),
    );
    const others = otherCpus();
    const restartDnsReads = await Promise.all(
      DNS_PURPOSES.map((purpose) => op.metric('failover_dns_reads_total', { purpose })),
    );
    restart.push(
      `  restart over the reconciled fleet:   ${seconds.toFixed(1)} s until each object was reconciled again and the queues empty${which}`,
      `    its peak RSS, CPU:                 ${peakRssMiB(op.pid).toFixed(0)} MiB, ${cpuSeconds(op.pid).toFixed(1)} s (kube-apiserver ${(others.apiserver - othersBefore.apiserver).toFixed(1)} s)`,
      `    its writes in its first 40 s:      ${writes.map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
      `    its DNS reads in its first 40 s:   ${dnsSplit(restartDnsReads)}`,
    );
  }

  const each = (xs: number[], digits: number, unit: string) =>
    SHARDS > 1 ? ` (each: ${xs.map((x) => x.toFixed(digits)).join(', ')}${unit})` : '';
  const idlePercent = idleCpus.map((c) => (c * 100) / IDLE_SECONDS);

  say('results');
  process.stdout.write(
    [
      `  policies / clusters:                 ${POLICIES} / ${POLICIES * 2}`,
      `  operator replicas (shards):          ${SHARDS}`,
      START_LATE
        ? `  time until all reconciled:           ${(reconciledMs / 1000).toFixed(1)} s from the operator's start (objects made before it)`
        : `  time until all reconciled:           ${(reconciledMs / 1000).toFixed(1)} s (creation alone ${((created - t0) / 1000).toFixed(1)} s)`,
      `  Events all written:                  ${(eventsWrittenMs / 1000).toFixed(1)} s (the figures below count up to here)`,
      `  operator peak RSS (VmHWM):           ${Math.max(...rss).toFixed(0)} MiB${SHARDS > 1 ? ' the largest' : ''}${each(rss, 0, ' MiB')}`,
      `  largest heap in use while cold:      ${(heap.maxBytes / 2 ** 20).toFixed(0)} MiB (sampled every 2 s)`,
      `  reconciles until Events written:     ${perController.join(', ')}`,
      `  API requests per object until then:  ${perObject.join(', ')}`,
      `  stored, as JSON:                     ${storedSizes.join('; ')}`,
      `  operator CPU until Events written:   ${sum(coldCpus).toFixed(1)} s${SHARDS > 1 ? ' in all' : ''}${each(coldCpus, 1, ' s')}`,
      `  the rest of the machine's CPU then:  kube-apiserver ${othersSpent('apiserver')} s, etcd ${othersSpent('etcd')} s, this benchmark ${othersSpent('bench')} s`,
      `  last write before idle:              ${settled}`,
      `  operator CPU when idle:              ${sum(idlePercent).toFixed(1)} % of a core (failing probes)${each(idlePercent, 1, ' %')}`,
      `  API requests per minute when idle:   ${((idleRequests * 60) / IDLE_SECONDS).toFixed(1)} by the operator${each(
        idleRequestsEach.map((n) => (n * 60) / IDLE_SECONDS),
        1,
        '',
      )}; as the API server counts them, Leases ${idleLeases.toFixed(1)} (${leaseVerbs || 'none'}; the API server renews its own identity Lease too, 6 a minute), the rest: ${idleOther.map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`,
      `  DNS reads per minute when idle:      ${dnsSplit(idleDnsReads)}`,
      `  reconcile errors (conflicts etc.):   ${errors}`,
      ...restart,
      '',
    ].join('\n'),
  );
} finally {
  heap?.stop();
  await Promise.all(watched.map((w) => w.stop()));
  await stopAll();
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
  compiled.remove();
}
