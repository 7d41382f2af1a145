/**
 * Benchmark: what probing costs.
 *
 * 1. One probe cycle of one cluster against a real PostgreSQL primary and standby: time per probe
 *    (pooled connection, steady state) and the connections it holds open.
 * 2. The operator process probing 200 clusters every 2 s (100 policies, each a primary and a
 *    standby pointed at the same real pair): its CPU use and memory over BENCH_PROBE_SECONDS.
 *    BENCH_CLUSTERS and BENCH_PROBE_INTERVAL_SECONDS change the fleet and the interval (each
 *    cluster holds one session: the server is given max_connections for them). Each policy has
 *    a database of its own on the pair, as it has a server of its own in production (a copy of
 *    template1, ~7.5 MB on each server: ~1.5 GB for the default fleet); BENCH_DATABASES=N makes
 *    N, shared round robin. The figures are taken once the operator has gone BENCH_QUIET_SECONDS
 *    (default: two probe intervals and 5 s, at least 15 s) without an API write (when the last
 *    write was seen is printed), and at least BENCH_SETTLE_SECONDS after it started. BENCH_PROBE_RTT_MS
 *    puts that round trip between the operator and both servers (a delaying proxy).
 * 3. BENCH_STORM_SESSIONS (default 300) providers of one server (as ClusterProbes makes them: a
 *    3 s connect timeout) probed together every 5 s, as a restarted operator, or one whose
 *    partition healed, asks for its first sessions: how many answer in each round. The server and
 *    this process share the cores, so it is the server's rate of new sessions that shows.
 *
 * Each policy's A record is in a zone of a real BIND, changed over RFC 2136 with TSIG: the
 * operator writes it on the first check and reads it every five minutes after, so a healthy
 * policy goes quiet (failover-policy/quiet.ts) as it would in production. (The provider was
 * Route 53 without credentials before: every check failed, was retried and put off for the read
 * budget, and no policy ever went quiet: 50 policy reconciles a second at 100 policies.)
 *
 * BENCH_OPERATOR_REF=<commit> measures that commit's operator too, on the same fleet, in turn
 * with the working tree's (before, after; after, before; ...), BENCH_ROUNDS times each: the
 * machine's load moves a run's figure by more than most changes do, so a change is judged by
 * operators measured side by side, not by runs on different days. The fleet's first start (every
 * status and DNS record written) comes before, by the working tree's operator and not measured,
 * so that neither build meets it.
 *
 * BENCH_SECRETS=cluster gives each cluster a credentials Secret of its own (as production often
 * does) instead of one shared by all: the operator then reads each again every 5 minutes, which a
 * window of more than 300 s shows, unless it runs with `--watch-secrets=true` (BENCH_OPERATOR_ARGS,
 * space-separated flags for the working tree's operator; BENCH_OPERATOR_REF's gets none).
 *
 * BENCH_OPERATOR_NODE_FLAGS (space-separated) are given to the operator's Node.js, to profile it:
 * `BENCH_OPERATOR_NODE_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof'` writes a .cpuprofile of its
 * whole run (start and settling included) when it stops. BENCH_LOG_LEVEL=debug runs it at debug
 * level and prints why the window's statuses were written (a cluster's `why`, a policy's changed
 * fields and conditions); its CPU figure is not comparable with a run at the default level.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import pg from 'pg';
import { QUIET_RESYNC_MS } from '../operator/src/controllers/failover-policy/quiet.ts';
import { ClusterProbes } from '../operator/src/controllers/replica-cluster/probes.ts';
import { failoverPolicyType, replicaClusterType } from '../operator/src/controllers/resources.ts';
import { PostgresSql } from '../operator/src/providers/database/postgres-sql.ts';
import { systemClock } from '../operator/src/runtime/clock.ts';
import { KubeClient } from '../operator/src/runtime/kube-client.ts';
import { silentLogger } from '../operator/src/runtime/logger.ts';
import { startBind } from '../test/harness/bind.ts';
import { compileOperator, sourcesAt } from '../test/harness/compiled.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { installCrds } from '../test/harness/crds.ts';
import { OperatorProcess } from '../test/harness/operator-process.ts';
import { startPostgresPair } from '../test/harness/postgres.ts';
import { installSignalCleanup } from '../test/harness/processes.ts';
import { TcpProxy } from '../test/harness/tcp-proxy.ts';
import { waitFor } from '../test/harness/wait.ts';
import { cpuSeconds, median, probeFailuresByReason, requestsByMethod } from './process-stats.ts';

const CLUSTERS = Number(process.env.BENCH_CLUSTERS ?? 200);
// BENCH_CLUSTERS=4000 BENCH_PROBE_INTERVAL_SECONDS=5: 2,000 healthy policies at the default interval.
const INTERVAL_S = Number(process.env.BENCH_PROBE_INTERVAL_SECONDS ?? 2);
// BENCH_PROBE_RTT_MS=80: the operator reaches both servers through a proxy that holds every chunk
// half of that each way, as a prober in a third region reaches databases in two others.
const RTT_MS = Number(process.env.BENCH_PROBE_RTT_MS ?? 0);
const DATABASES = Number(process.env.BENCH_DATABASES ?? CLUSTERS / 2);
if (!Number.isInteger(DATABASES) || DATABASES < 1 || DATABASES > CLUSTERS / 2)
  throw new Error(`BENCH_DATABASES must be a whole number from 1 to ${CLUSTERS / 2} (one a policy)`);
const SECONDS = Number(process.env.BENCH_PROBE_SECONDS ?? 60);
const SETTLE_SECONDS = Number(process.env.BENCH_SETTLE_SECONDS ?? 30);
// Longer than two probe intervals: a standby's first lag takes a few (it needs a primary read
// after its own), and 15 s without a write at a 20 s interval was not the end of the start.
const QUIET_SECONDS = Number(process.env.BENCH_QUIET_SECONDS ?? Math.max(15, 2 * INTERVAL_S + 5));
const SETTLE_MAX_SECONDS = Number(process.env.BENCH_SETTLE_MAX_SECONDS ?? 900);
// BENCH_LOG_LEVEL=debug: the operator's log says why each status is written (counted after the window).
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'error';
const SECRET_PER_CLUSTER = process.env.BENCH_SECRETS === 'cluster';
const OPERATOR_ARGS = process.env.BENCH_OPERATOR_ARGS?.split(' ').filter(Boolean) ?? [];
// BENCH_OPERATOR_REF=<commit>: that commit's operator measured too, in turn with the working
// tree's, BENCH_ROUNDS times each (default 1; 2 without a ref is two runs of the one operator).
const OPERATOR_REF = process.env.BENCH_OPERATOR_REF;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('BENCH_ROUNDS must be a whole number from 1');
// 3. A storm of first sessions: BENCH_STORM_SESSIONS providers of one server probed together.
const STORM_SESSIONS = Number(process.env.BENCH_STORM_SESSIONS ?? 300);
const STORM_INTERVAL_S = 5;
const STORM_ROUNDS = 8;
const say = (s: string) => process.stdout.write(`[bench probes] ${s}\n`);
const ns = 'bench-probes';

// The operator as the image runs it: bundled into one JavaScript module (hack/build-operator.ts).
const compiled = await compileOperator();
// Whatever ends the run (a failed start included), the copy goes with the process.
process.on('exit', () => compiled.remove());
const BEFORE = OPERATOR_REF
  ? await (async () => {
      const { dir: sources, sha } = sourcesAt(OPERATOR_REF);
      const made = await compileOperator(sources);
      process.on('exit', () => made.remove());
      return { label: `${OPERATOR_REF} (${sha.slice(0, 12)})`, compiled: made };
    })()
  : undefined;
const cp = await ControlPlane.start({ name: 'bench-probes' });
const ZONE = 'bench.test';
const bind = await startBind({ name: 'bench-probes', zone: ZONE });
const pair = await startPostgresPair({
  name: 'bench-probes',
  settings: { max_connections: Math.max(CLUSTERS * 2, STORM_SESSIONS) + 50 },
});
const dir = mkdtempSync(join(tmpdir(), 'failover-bench-probes-'));
let op: OperatorProcess | undefined;
const proxies: TcpProxy[] = [];
installSignalCleanup(async () => {
  await op?.stop();
  await pair.stop();
  await bind.stop();
  await cp.stop();
  compiled.remove();
});

const memory = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    rss: Number(/VmRSS:\s+(\d+)/.exec(s)?.[1]) / 1024,
    hwm: Number(/VmHWM:\s+(\d+)/.exec(s)?.[1]) / 1024,
  };
};
const connections = async (app: string) =>
  Number(
    (
      await pair.primary.query<{ n: string }>(
        'SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = $1',
        [app],
      )
    )[0]?.n ?? 0,
  ) +
  Number(
    (
      await pair.standby.query<{ n: string }>(
        'SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = $1',
        [app],
      )
    )[0]?.n ?? 0,
  );

try {
  const kc = cp.kubeConfig();
  await installCrds(kc);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'pg' }, stringData: { username: pair.user, password: pair.password } },
  });
  await core.createNamespacedSecret({
    namespace: ns,
    body: bind.tsigSecret(),
  });
  const client = new KubeClient(kc);
  const clusterSpec = (
    node: 'primary' | 'standby',
    region: string,
    port = pair.server(node).port,
    database = pair.database,
    secret = 'pg',
  ) => ({
    region,
    provider: { type: 'SelfManaged' as const },
    connection: {
      host: '127.0.0.1',
      port,
      database,
      sslMode: 'disable' as const,
      credentialsSecretRef: { name: secret, usernameKey: 'username', passwordKey: 'password' },
    },
    dnsTarget: '127.0.0.1',
  });

  // 1. One cluster, probed in a loop, in this process.
  const probes = new ClusterProbes({
    client,
    clock: systemClock,
    log: silentLogger,
    factoryOptions: { applicationName: 'bench-single' },
  });
  const times: number[] = [];
  for (let i = 0; i < 220; i++) {
    for (const [key, node] of [
      ['p', 'primary'],
      ['s', 'standby'],
    ] as const) {
      const t = performance.now();
      await probes.probe({
        key: `${ns}/${key}`,
        namespace: ns,
        spec: clusterSpec(node, key),
        activePrimaryKey: `${ns}/p`,
        ...(node === 'primary' ? { heartbeatEpoch: 0 } : {}),
        primaryMaxAgeMs: 5000,
      });
      if (i >= 20) times.push(performance.now() - t);
    }
  }
  times.sort((a, b) => a - b);
  const held = await connections('bench-single');
  await probes.closeAll();
  const pct = (p: number) => (times[Math.floor((times.length - 1) * p)] ?? 0).toFixed(2);
  say(
    `one probe cycle (steady state, pooled): p50 ${pct(0.5)} ms, p90 ${pct(0.9)} ms, p99 ${pct(0.99)} ms; connections held: ${held / 2} per cluster (${held} for a primary and a standby)`,
  );

  // 2. The operator probing CLUSTERS clusters every INTERVAL_S, RTT_MS away.
  const via = async (node: 'primary' | 'standby') => {
    if (RTT_MS <= 0) return pair.server(node).port;
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: pair.server(node).port }, '127.0.0.1', {
      delayMs: RTT_MS / 2,
    });
    proxies.push(proxy);
    return proxy.port;
  };
  const ports = { primary: await via('primary'), standby: await via('standby') };
  say(
    `creating ${DATABASES} databases for ${CLUSTERS / 2} policies, and waiting for the standby to replay them`,
  );
  const databaseOf = (i: number) => `db_${i % DATABASES}`;
  const [version] = await pair.primary.query<{ n: string }>(
    "SELECT current_setting('server_version_num') AS n",
  );
  // From 15, FILE_COPY keeps the copies out of the WAL (14 always copies the files).
  const strategy = Number(version?.n) >= 150000 ? ' STRATEGY FILE_COPY' : '';
  for (let i = 0; i < DATABASES; i++)
    await pair.primary.query(
      `CREATE DATABASE ${databaseOf(i)} OWNER ${pg.escapeIdentifier(pair.user)}${strategy}`,
    );
  await pair.waitForReplayCatchUp({ timeoutMs: 600_000 });
  // The copies are dirty pages (fsync is off): written out now, not by the kernel in the measured
  // window on the cores the operator shares.
  execFileSync('sync', ['-f', pair.dir], { timeout: 300_000 });
  say(`creating ${CLUSTERS / 2} policies with ${CLUSTERS} clusters at a ${INTERVAL_S} s probe interval`);
  const secretOf = async (cluster: string) => {
    if (!SECRET_PER_CLUSTER) return 'pg';
    await core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: `pg-${cluster}` },
        stringData: { username: pair.user, password: pair.password },
      },
    });
    return `pg-${cluster}`;
  };
  for (let i = 0; i < CLUSTERS / 2; i++) {
    await client.create(replicaClusterType, ns, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'ReplicaCluster',
      metadata: { name: `db-${i}-p`, namespace: ns },
      spec: clusterSpec('primary', 'region-a', ports.primary, databaseOf(i), await secretOf(`db-${i}-p`)),
    });
    await client.create(replicaClusterType, ns, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'ReplicaCluster',
      metadata: { name: `db-${i}-s`, namespace: ns },
      spec: clusterSpec('standby', 'region-b', ports.standby, databaseOf(i), await secretOf(`db-${i}-s`)),
    });
    await client.create(failoverPolicyType, ns, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name: `db-${i}`, namespace: ns },
      spec: {
        primary: `db-${i}-p`,
        standbys: [`db-${i}-s`],
        dns: {
          provider: bind.rfc2136Provider(),
          zone: ZONE,
          name: `db-${i}.${ZONE}`,
          type: 'A',
        },
        detection: { probeIntervalSeconds: INTERVAL_S },
        promotion: { mode: 'Manual' },
      },
    });
  }
  /** The operator of `build` started on the fleet, settled and measured; its CPU in cores. */
  const measure = async (
    build: { label: string; entry: string },
    run: number,
    window = true,
  ): Promise<number> => {
    const opStarted = performance.now();
    op = await OperatorProcess.start({
      name: `bench-probes-operator-${run}`,
      kubeconfig: cp.kubeconfigPath,
      dir,
      entry: build.entry,
      args: [
        `--namespace=${ns}`,
        '--leader-elect=false',
        `--log-level=${LOG_LEVEL}`,
        // The working tree's only: an older operator may not know them.
        ...(build.entry === compiled.entry ? OPERATOR_ARGS : []),
      ],
      nodeFlags: process.env.BENCH_OPERATOR_NODE_FLAGS?.split(' ').filter(Boolean) ?? [],
    });
    const pid = op.pid as number;
    const operator = op;
    await waitFor(
      async () => (await operator.metric('failover_probe_duration_seconds_count')) >= CLUSTERS * 2,
      // Each first probe opens a session (a backend fork and a SCRAM exchange on the server):
      // thousands of them take minutes on 2 cores.
      { description: 'every cluster probed twice', timeoutMs: Math.max(300_000, CLUSTERS * 200) },
    );
    // The first reconciles (discovery, conditions, their Events) take minutes at hundreds of
    // healthy policies here.
    const who = build.label
      ? ` (${build.label}${window ? '' : ", a warm-up: the fleet's first start, not measured"})`
      : '';
    say(
      `settling${who}: waiting for ${QUIET_SECONDS} s without an API write (at most ${SETTLE_MAX_SECONDS} s)`,
    );
    const writes = async () => {
      const by = requestsByMethod(await operator.metrics(['rest_client_requests_total']));
      return (by.get('POST') ?? 0) + (by.get('PATCH') ?? 0) + (by.get('PUT') ?? 0) + (by.get('DELETE') ?? 0);
    };
    let lastWrites = -1;
    let lastWriteSeenAt: number | undefined;
    const quiet = await waitFor(
      async () => {
        const n = await writes();
        if (n !== lastWrites) [lastWrites, lastWriteSeenAt] = [n, performance.now()];
        return performance.now() - (lastWriteSeenAt ?? performance.now()) >= QUIET_SECONDS * 1000
          ? 'quiet'
          : undefined;
      },
      { description: 'no API write', timeoutMs: SETTLE_MAX_SECONDS * 1000, intervalMs: 1000 },
    ).catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    const settled =
      quiet === 'quiet'
        ? `last API write of the start seen ${(((lastWriteSeenAt ?? opStarted) - opStarted) / 1000).toFixed(0)} s after the operator started`
        : `not quiet ${((performance.now() - opStarted) / 1000).toFixed(0)} s after the operator started (${quiet})`;
    say(`settled${who}: ${settled}`);
    if (!window) {
      await op.stop();
      op = undefined;
      return Number.NaN;
    }
    const leftMs = SETTLE_SECONDS * 1000 - (performance.now() - opStarted);
    if (leftMs > 0) await new Promise((r) => setTimeout(r, leftMs));
    const probesBefore = await op.metric('failover_probe_duration_seconds_count');
    const failuresBefore = await op.metric('failover_probe_failures_total');
    const policyReconciles = () =>
      operator.metric('controller_runtime_reconcile_total', { controller: 'failoverpolicy' });
    const policyReconcilesBefore = await policyReconciles();
    const dnsReadsBefore = await op.metric('failover_dns_reads_total');
    const requestsBefore = requestsByMethod(await op.metrics());
    const cpuBefore = cpuSeconds(pid);
    const t = performance.now();
    const windowFrom = Date.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const windowTo = Date.now();
    const elapsed = (performance.now() - t) / 1000;
    const cpu = (cpuSeconds(pid) - cpuBefore) / elapsed;
    const probesDone = (await op.metric('failover_probe_duration_seconds_count')) - probesBefore;
    const failures = await op.metric('failover_probe_failures_total');
    const policyRate = ((await policyReconciles()) - policyReconcilesBefore) / elapsed;
    const dnsReads = (await op.metric('failover_dns_reads_total')) - dnsReadsBefore;
    const requestsAfter = requestsByMethod(await op.metrics());
    const requestRates = [...requestsAfter]
      .map(([method, n]) => `${method} ${((n - (requestsBefore.get(method) ?? 0)) / elapsed).toFixed(1)}`)
      .join(', ');
    const mem = memory(pid);
    if (process.env.BENCH_DEBUG) {
      const m = (await cp.get('/metrics')).body
        .split('\n')
        .filter((l) => l.startsWith('apiserver_request_total{') && /failover|replica|events|leases/.test(l));
      process.stdout.write(`${m.join('\n')}\n`);
      // In pages: after a cold start of thousands of objects one LIST of them all times out.
      const core = cp.kubeConfig().makeApiClient(CoreV1Api);
      const events = [];
      for (let next: string | undefined = ''; next !== undefined; ) {
        const page = await core.listNamespacedEvent({
          namespace: ns,
          limit: 500,
          ...(next ? { _continue: next } : {}),
        });
        events.push(...page.items);
        next = page.metadata?._continue || undefined;
      }
      const reasons = new Map<string, number>();
      for (const e of events) {
        // Events of the measured window only: what a steady state keeps announcing.
        const at = new Date(e.eventTime ?? e.lastTimestamp ?? e.firstTimestamp ?? 0).getTime();
        if (at < windowFrom || at > windowTo) continue;
        const k = `${e.involvedObject.kind} ${e.reason}: ${(e.message ?? '').slice(0, 100)}`;
        reasons.set(k, (reasons.get(k) ?? 0) + (e.count ?? 1));
      }
      for (const [k, n] of [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 15))
        process.stdout.write(`${n} ${k}\n`);
    }
    if (LOG_LEVEL === 'debug') {
      // Why the window's statuses were written, figures blanked so like counts with like.
      const whys = new Map<string, number>();
      for (const e of operator.logEntries()) {
        const at = new Date(String(e.time)).getTime();
        if (at < windowFrom || at > windowTo) continue;
        let k: string;
        if (e.msg === 'writing status') k = `a cluster's: ${String(e.why).replace(/[0-9.]+/g, 'N')}`;
        else if (e.msg === 'status written')
          k = `a policy's: ${(e.fields as string[]).join(', ')}; ${((e.said as string[] | undefined) ?? []).join('; ').replace(/[0-9.:TZ-]{2,}/g, 'N')}`;
        else continue;
        whys.set(k, (whys.get(k) ?? 0) + 1);
      }
      for (const [k, n] of [...whys].sort((a, b) => b[1] - a[1]).slice(0, 15))
        process.stdout.write(`${n} status writes, ${k}\n`);
    }
    const failureReasons = probeFailuresByReason(await op.metrics(['failover_probe_failures_total']));
    process.stdout.write(
      [
        '',
        `  operator${build.label ? ` (${build.label})` : ''} probing ${CLUSTERS} clusters every ${INTERVAL_S} s${RTT_MS > 0 ? ` ${RTT_MS} ms away (round trip)` : ''}, measured over ${elapsed.toFixed(0)} s:`,
        `    settled:             ${settled}`,
        `    probes per second:   ${(probesDone / elapsed).toFixed(1)} (target ${CLUSTERS / INTERVAL_S})`,
        `    CPU:                 ${(cpu * 100).toFixed(1)} % of one core, ${((cpu * 1e6 * elapsed) / Math.max(1, probesDone)).toFixed(0)} µs per probe`,
        `    API requests/s:      ${requestRates || 'none'}`,
        `    policy reconciles/s: ${policyRate.toFixed(1)} (${CLUSTERS / 2} policies; a quiet one every ${QUIET_RESYNC_MS / 1000} s), DNS reads ${dnsReads} in the window`,
        `    memory:              RSS ${mem.rss.toFixed(0)} MiB, peak ${mem.hwm.toFixed(0)} MiB`,
        `    database connections: ${await connections('failover-operator')}`,
        `    probe failures:      ${failures - failuresBefore} in the window; ${failures} since the start${failures > 0 ? ` (${failureReasons})` : ''}`,
        '',
      ].join('\n'),
    );
    await op.stop();
    op = undefined;
    return cpu;
  };
  const builds = [{ label: BEFORE ? 'working tree' : '', entry: compiled.entry }];
  if (BEFORE) builds.unshift({ label: BEFORE.label, entry: BEFORE.compiled.entry });
  process.stdout.write(
    `\n  one probe cycle: p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, ${held / 2} pooled connection per cluster\n`,
  );
  const cpuOf = new Map<string, number[]>();
  let runs = 0;
  // The first start writes every status and DNS record: not measured, so neither build meets it.
  if (BEFORE && builds[1]) await measure(builds[1], runs++, false);
  for (let round = 0; round < ROUNDS; round++) {
    // before, after; after, before; ...: a drift of the machine's load falls on both alike.
    for (const build of round % 2 === 0 ? builds : [...builds].reverse()) {
      const cpu = await measure(build, runs++);
      cpuOf.set(build.label, [...(cpuOf.get(build.label) ?? []), cpu]);
    }
  }
  if (cpuOf.size > 1 || ROUNDS > 1) {
    process.stdout.write(`  operator CPU over ${ROUNDS} round(s), in turn:\n`);
    for (const [label, cpus] of cpuOf)
      process.stdout.write(
        `    ${(label || 'operator').padEnd(22)} ${cpus.map((c) => `${(c * 100).toFixed(1)} %`).join(', ')} (median ${(median(cpus) * 100).toFixed(1)} %)\n`,
      );
    process.stdout.write('\n');
  }

  // 3. STORM_SESSIONS probers' first sessions asked of one server at once.
  say(`asking the primary for ${STORM_SESSIONS} sessions at once, then every ${STORM_INTERVAL_S} s`);
  const storm = Array.from(
    { length: STORM_SESSIONS },
    // What ClusterProbes gives each cluster's provider.
    () =>
      new PostgresSql(pair.connection('primary'), {
        connectTimeoutMs: 3_000,
        statementTimeoutMs: 5_000,
        applicationName: 'bench-storm',
      }),
  );
  const answered: number[] = [];
  const stormCpu = process.cpuUsage();
  try {
    for (let round = 0; round < STORM_ROUNDS; round++) {
      const started = performance.now();
      const seen = await Promise.all(storm.map((sql) => sql.observe()));
      answered.push(seen.filter((o) => o.reachable).length);
      if (answered.at(-1) === STORM_SESSIONS) break;
      const left = STORM_INTERVAL_S * 1000 - (performance.now() - started);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
    }
  } finally {
    await Promise.all(storm.map((sql) => sql.close()));
  }
  const used = process.cpuUsage(stormCpu);
  process.stdout.write(
    [
      `  ${STORM_SESSIONS} sessions asked of one server at once (a restart, a healed partition), every ${STORM_INTERVAL_S} s:`,
      `    answered per round:  ${answered.join(', ')}${answered.at(-1) === STORM_SESSIONS ? '' : ` (not all after ${STORM_ROUNDS} rounds)`}`,
      `    client CPU:          ${((used.user + used.system) / 1e6).toFixed(1)} s (this process; the server shares the cores)`,
      '',
    ].join('\n'),
  );
} finally {
  await op?.stop();
  await Promise.all(proxies.map((p) => p.stop()));
  await pair.stop();
  await bind.stop();
  await cp.stop();
  rmSync(dir, { recursive: true, force: true });
  compiled.remove();
}
