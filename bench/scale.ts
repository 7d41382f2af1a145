/**
 * Benchmark: the operator at scale against real parts, one fresh control plane per size.
 *
 * Per size and scenario: N FailoverPolicies, each with a primary and a standby ReplicaCluster and
 * its own A record (RFC 2136 with TSIG) in one zone of a real BIND; the operator as a process
 * (`--leader-elect=false`) and two observers as processes (`--mode=observer`), all at the
 * policies' default probe interval.
 *
 * - healthy: every primary ReplicaCluster points at one real PostgreSQL primary, every standby
 *   at its streaming standby. Each policy names a database of its own among BENCH_SCALE_DATABASES
 *   created on the primary (replicated to the standby), shared round robin when there are fewer
 *   databases than policies (thousands of databases cost minutes and gigabytes to create). Cold
 *   ends when every object is reconciled and every policy is Ready.
 * - failing: every cluster points at 127.0.0.1:1, where nothing listens, so every probe is refused
 *   at once. Cold ends when every object is reconciled.
 *
 * Measured: creation and cold time, the operator's peak RSS (VmHWM), its heap (nodejs heap used:
 * the least seen while idle, which is close to the live heap after a collection, and the most seen
 * at all), its CPU seconds from the first create until cold ended, its API requests per object
 * (policies and clusters) until then, then, after BENCH_SCALE_SETTLE_SECONDS, its CPU and API
 * requests over BENCH_SCALE_IDLE_SECONDS, and each observer's FailoverObservation writes per minute
 * over that window against the bound observer.ts documents (policies / refreshMs).
 *
 *   make bench            (all benchmarks)
 *   BENCH_SCALE_SIZES=100 node bench/scale.ts
 *
 * Settings (environment):
 *   BENCH_SCALE_SIZES             sizes, in policies (default 100,500,1000,2000; 5000 given the memory)
 *   BENCH_SCALE_SCENARIOS         healthy,failing (default both)
 *   BENCH_SCALE_FAILING_SIZES     sizes that also run the failing scenario (default: every size)
 *   BENCH_SCALE_SETTLE_SECONDS    wait after cold before measuring idle (default 30)
 *   BENCH_SCALE_IDLE_SECONDS      the idle window (default 60)
 *   BENCH_SCALE_DATABASES         databases created on the primary, shared round robin (default 50)
 *   BENCH_SCALE_COLD_TIMEOUT_SECONDS  give up waiting for cold after this (default 900)
 *   BENCH_SCALE_OPERATOR_REF      run the operator and observers from this commit (git archive into
 *                                 .local/bench) instead of the working tree; either is bundled into
 *                                 one JavaScript module first, as the image runs it
 *   BENCH_SCALE_KEEP_LOGS         keep each run's operator and observer logs (their directory is printed)
 *   BENCH_SCALE_LOG_LEVEL         their log level (default warn; debug says why each status is written)
 *   BENCH_SCALE_FORCE             run a healthy size even where its PostgreSQL backends would not fit in
 *                                 memory (it is skipped and said so otherwise: see tooBig)
 *
 * Results: a table on stdout and .local/bench/scale.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { type FailoverPolicySpec, failoverPolicySpec } from '../operator/src/api/v1alpha1/index.ts';
import { parseOnce } from '../operator/src/api/validate.ts';
import { failoverPolicyType, replicaClusterType } from '../operator/src/controllers/resources.ts';
import { refreshMs } from '../operator/src/observer/observer.ts';
import { KubeClient, type KubeObject } from '../operator/src/runtime/kube-client.ts';
import { type BindServer, startBind } from '../test/harness/bind.ts';
import { type CompiledOperator, compileOperator, sourcesAt } from '../test/harness/compiled.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { installCrds } from '../test/harness/crds.ts';
import { OperatorProcess } from '../test/harness/operator-process.ts';
import { type PostgresPair, startPostgresPair } from '../test/harness/postgres.ts';
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

const repo = resolve(import.meta.dirname, '..');
const numbers = (text: string) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
const SIZES = numbers(process.env.BENCH_SCALE_SIZES ?? '100,500,1000,2000');
const SCENARIOS = (process.env.BENCH_SCALE_SCENARIOS ?? 'healthy,failing')
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is Scenario => s === 'healthy' || s === 'failing');
const FAILING_SIZES = process.env.BENCH_SCALE_FAILING_SIZES
  ? numbers(process.env.BENCH_SCALE_FAILING_SIZES)
  : SIZES;
const SETTLE_SECONDS = Number(process.env.BENCH_SCALE_SETTLE_SECONDS ?? 30);
const IDLE_SECONDS = Number(process.env.BENCH_SCALE_IDLE_SECONDS ?? 60);
const DATABASES = Number(process.env.BENCH_SCALE_DATABASES ?? 50);
const COLD_TIMEOUT_SECONDS = Number(process.env.BENCH_SCALE_COLD_TIMEOUT_SECONDS ?? 900);
const OPERATOR_REF = process.env.BENCH_SCALE_OPERATOR_REF;
const KEEP_LOGS = Boolean(process.env.BENCH_SCALE_KEEP_LOGS);
const LOG_LEVEL = process.env.BENCH_SCALE_LOG_LEVEL ?? 'warn';
const OBSERVERS = ['region-b', 'region-c'];
const ZONE = 'scale.test';
const ns = 'bench-scale';
/** Where nothing listens: every probe of a failing cluster is refused at once. */
const REFUSED_PORT = 1;

type Scenario = 'healthy' | 'failing';
const say = (s: string) => process.stdout.write(`[bench scale] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (SIZES.length === 0 || SIZES.some((n) => !Number.isInteger(n) || n < 1))
  throw new Error(`BENCH_SCALE_SIZES must be positive integers, got ${process.env.BENCH_SCALE_SIZES}`);
if (SCENARIOS.length === 0) throw new Error('BENCH_SCALE_SCENARIOS names neither healthy nor failing');

/** One row of the table. Times in seconds, memory in MiB; null where it was not reached. */
interface Row {
  policies: number;
  scenario: Scenario;
  objects: number;
  createSeconds: number;
  reconciledSeconds: number | null;
  readySeconds: number | null;
  /** Reconciled (and, healthy, Ready) within the timeout. */
  coldDone: boolean;
  peakRssMiB: number;
  heapUsedIdleMinMiB: number | null;
  heapUsedMaxMiB: number | null;
  coldCpuSeconds: number;
  coldApiRequests: number;
  apiRequestsPerObject: number;
  idleCpuPercent: number;
  idleApiRequestsPerMinute: number;
  idleApiRequestsByMethod: Record<string, number>;
  observerIdleCpuPercent: number[];
  observationWritesPerMinute: number[];
  observationWritesBoundPerMinute: number;
  pgClientConnections: { primary: number; standby: number } | null;
  reconcileErrors: Record<string, number>;
  /** Until cold ended, per controller: reconciles and their mean seconds. */
  coldReconciles: Record<string, { count: number; meanSeconds: number }>;
  /** Per controller, a minute while idle. */
  idleReconcilesPerMinute: Record<string, number>;
  /** apiserver_request_total deltas, every client (the benchmark's LISTs too): until cold ended, and per minute idle. */
  apiserverCold: Record<string, number>;
  apiserverIdlePerMinute: Record<string, number>;
  /** While idle: probes per second (answered or timed out) against what the interval asks for. */
  probing: {
    /** Every cluster once per probe interval, in the operator and in each observer. */
    probesPerSecondNeeded: number;
    operatorProbesPerSecond: number;
    operatorProbeMeanMs: number | null;
    observerProbesPerSecond: number[];
    observerProbeMeanMs: (number | null)[];
    queueDepthAtEnd: Record<string, number>;
  };
  notes: string[];
}

/** A process's samples of a metric, summed over label sets whose labels match `filter`. */
function sumSamples(text: string, name: string, filter: (labels: string) => boolean = () => true): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$/.exec(line);
    if (m?.[1] === name && filter(m[2] ?? '')) sum += Number(m[3]);
  }
  return sum;
}

/** An observer's successful FailoverObservation writes so far: its only PATCHes and POSTs. */
function observationWrites(text: string): number {
  return sumSamples(
    text,
    'rest_client_requests_total',
    (l) => /method="(PATCH|POST)"/.test(l) && /code="2\d\d"/.test(l),
  );
}

function errorsByReason(text: string): Record<string, number> {
  const by: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^controller_runtime_reconcile_errors_total\{([^}]*)\} ([0-9.eE+-]+)$/.exec(line);
    if (!m?.[1] || Number(m[2]) === 0) continue;
    const controller = /controller="([^"]*)"/.exec(m[1])?.[1] ?? '?';
    const reason = /reason="([^"]*)"/.exec(m[1])?.[1] ?? '?';
    by[`${controller}/${reason}`] = (by[`${controller}/${reason}`] ?? 0) + Number(m[2]);
  }
  return by;
}

/** The warnings and errors a process logged, the most frequent first (messages cut at 120 chars). */
function logSummary(p: OperatorProcess): string[] {
  const counts = new Map<string, number>();
  for (const line of p.logs().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      // pino writes its level as a label (warn) or a number (40).
      const e = JSON.parse(line) as { level?: number | string; msg?: string; err?: unknown };
      const level =
        typeof e.level === 'number' ? (e.level >= 50 ? 'error' : e.level >= 40 ? 'warn' : '') : e.level;
      if (level !== 'warn' && level !== 'error' && level !== 'fatal') continue;
      const err = typeof e.err === 'string' ? ` (${e.err.slice(0, 80)})` : '';
      const key = `${level}: ${(e.msg ?? '').slice(0, 120)}${err}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch {
      // not a log line of its own
    }
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([k, n]) => `${n}× ${k}`);
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

// ---- what runs the operator ---------------------------------------------------------------------

/**
 * The operator's main module as the image runs it, bundled (test/harness/compiled.ts): from the
 * working tree, or from a commit's copy (BENCH_SCALE_OPERATOR_REF), bundled by this tree's
 * hack/build-operator.ts whatever the commit's own build step was.
 */
let compiled: CompiledOperator | undefined;
async function operatorEntry(): Promise<string> {
  let sources = repo;
  if (OPERATOR_REF) {
    const { dir, sha } = sourcesAt(OPERATOR_REF);
    sources = dir;
    say(`operator and observers run from ${sha.slice(0, 12)} (${OPERATOR_REF}), copied to ${sources}`);
  }
  const made = await compileOperator(sources);
  // Whatever ends the run (a failed start included), the copy goes with the process.
  process.on('exit', () => made.remove());
  compiled = made;
  return made.entry;
}

// ---- PostgreSQL: one pair, shared by the healthy runs -------------------------------------------

const dbName = (i: number) => `scale_${i % DATABASES}`;
const DATABASE_COUNT = Math.min(DATABASES, Math.max(...SIZES));

/**
 * Each cluster holds up to two pooled connections in the operator and in each observer (probes.ts,
 * postgres-sql.ts: max 2, idle 5 min); each server serves one cluster of every policy.
 */
const MAX_CONNECTIONS = (1 + OBSERVERS.length) * 2 * Math.max(...SIZES) + 100;

/**
 * What one idle PostgreSQL 15 backend costs, measured here: 600 connections that had run a
 * probe's kind of query took 1.8 GiB (3.0 MiB each); a little more for what probes touch.
 */
const PG_MIB_PER_CONNECTION = 3.5;
const FORCE = Boolean(process.env.BENCH_SCALE_FORCE);

function memAvailableMiB(): number {
  return Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024;
}

/**
 * Why a healthy run of n policies would not fit in this machine's memory, if it would not: every
 * cluster is one backend per process that probes it (operator and observers) on its server. A
 * machine out of memory kills processes at random, others' too; BENCH_SCALE_FORCE runs it anyway.
 */
function tooBig(n: number): string | undefined {
  const connections = (1 + OBSERVERS.length) * 2 * n;
  // The control plane, the operator and observers, BIND and this process: about 2 GiB at most sizes here.
  const needMiB = connections * PG_MIB_PER_CONNECTION + 2048;
  const availableMiB = memAvailableMiB();
  if (FORCE || needMiB < availableMiB) return undefined;
  return `needs about ${(needMiB / 1024).toFixed(1)} GiB (${connections} PostgreSQL backends at ~${PG_MIB_PER_CONNECTION} MiB, plus 2 GiB), ${(availableMiB / 1024).toFixed(1)} GiB available; BENCH_SCALE_FORCE=1 runs it anyway`;
}

let pair: PostgresPair | undefined;

async function startPostgres(): Promise<PostgresPair> {
  const t = performance.now();
  say(`starting PostgreSQL primary and standby (max_connections ${MAX_CONNECTIONS})`);
  const p = await startPostgresPair({
    name: 'bench-scale',
    settings: { max_connections: MAX_CONNECTIONS },
  });
  const existing = new Set(
    (await p.primary.query<{ datname: string }>('SELECT datname FROM pg_database')).map((r) => r.datname),
  );
  let created = 0;
  for (let i = 0; i < DATABASE_COUNT; i++) {
    const name = dbName(i);
    if (existing.has(name)) continue;
    await p.primary.query(`CREATE DATABASE ${name} OWNER ${p.user}`);
    created++;
  }
  await p.waitForReplayCatchUp({ timeoutMs: 300_000 });
  say(
    `PostgreSQL up with ${created} databases created (${((performance.now() - t) / 1000).toFixed(1)} s): ` +
      `primary 127.0.0.1:${p.primary.port}, standby 127.0.0.1:${p.standby.port}`,
  );
  return p;
}

/** Removes what an earlier run's operator wrote (heartbeat rows, fence records), so each run is cold. */
async function resetPostgres(p: PostgresPair): Promise<void> {
  for (const db of ['postgres', p.database, ...Array.from({ length: DATABASE_COUNT }, (_, i) => dbName(i))]) {
    await p.primary.query('DROP SCHEMA IF EXISTS regionfailover CASCADE', [], db);
  }
  await p.waitForReplayCatchUp({ timeoutMs: 120_000 });
}

async function clientConnections(p: PostgresPair): Promise<{ primary: number; standby: number }> {
  const count = async (node: 'primary' | 'standby') =>
    Number(
      (
        await p
          .server(node)
          .query<{ n: string }>(
            "SELECT count(*)::text AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
          )
      )[0]?.n ?? 0,
    );
  return { primary: await count('primary'), standby: await count('standby') };
}

// ---- one run: a size and a scenario -------------------------------------------------------------

/** What the current run started, stopped in reverse order (also on SIGINT). */
let running: (() => Promise<void>)[] = [];

async function stopRun(): Promise<void> {
  const stops = running.reverse();
  running = [];
  for (const stop of stops) await stop().catch((err: Error) => say(`cleanup: ${err.message}`));
}

function policySpec(i: number, bind: BindServer) {
  return {
    primary: `db-${i}-p`,
    standbys: [`db-${i}-s`],
    dns: {
      provider: bind.rfc2136Provider(),
      zone: ZONE,
      name: `db-${i}.${ZONE}`,
      type: 'A',
    },
  };
}

function clusterSpec(i: number, role: 'p' | 's', scenario: Scenario) {
  const server = role === 'p' ? pair?.primary : pair?.standby;
  return {
    region: role === 'p' ? 'region-a' : 'region-b',
    provider: { type: 'SelfManaged' },
    connection: {
      host: '127.0.0.1',
      port: scenario === 'healthy' ? (server?.port ?? REFUSED_PORT) : REFUSED_PORT,
      database: dbName(i),
      sslMode: 'disable',
      credentialsSecretRef: { name: 'db-credentials' },
    },
    // What the A record holds while this cluster is the primary: a distinct address per side.
    dnsTarget: role === 'p' ? '127.0.0.1' : '127.0.0.2',
  };
}

interface Census {
  unreconciled: number;
  notReady: number;
  phases: Map<string, number>;
  notReadyReasons: Map<string, number>;
}

async function census(client: KubeClient): Promise<Census> {
  const [policies, clusters] = await Promise.all([
    client.list<KubeObject>(failoverPolicyType, ns),
    client.list<KubeObject>(replicaClusterType, ns),
  ]);
  const observed = (o: KubeObject) =>
    (o.status as { observedGeneration?: number } | undefined)?.observedGeneration === o.metadata.generation;
  const c: Census = {
    unreconciled: [...policies.items, ...clusters.items].filter((o) => !observed(o)).length,
    notReady: 0,
    phases: new Map(),
    notReadyReasons: new Map(),
  };
  for (const p of policies.items) {
    const status = (p.status ?? {}) as {
      phase?: string;
      conditions?: { type: string; status: string; reason?: string; message?: string }[];
    };
    c.phases.set(status.phase ?? '(none)', (c.phases.get(status.phase ?? '(none)') ?? 0) + 1);
    const ready = status.conditions?.find((x) => x.type === 'Ready');
    if (ready?.status === 'True') continue;
    c.notReady++;
    // Grouped without the names and times that differ between policies.
    const message = (ready?.message ?? '')
      .replace(/\bdb-\d+-/g, 'db-N-')
      .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>')
      .slice(0, 140);
    const why = ready ? `${ready.reason}: ${message}` : 'no Ready condition';
    c.notReadyReasons.set(why, (c.notReadyReasons.get(why) ?? 0) + 1);
  }
  return c;
}

/** The most frequent entry, with its count. */
const top = (m: Map<string, number>) => {
  const [k, n] = [...m].sort((a, b) => b[1] - a[1])[0] ?? ['none', 0];
  return `${n}× ${k}`;
};

const counts = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');

async function run(n: number, scenario: Scenario, entry: string): Promise<Row> {
  const label = `${n} ${scenario}`;
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'failover-bench-scale-'));
  running.push(async () => {
    if (KEEP_LOGS) say(`${label}: logs kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  });
  if (scenario === 'healthy' && pair) await resetPostgres(pair);

  const [bind, cp] = await Promise.all([
    startBind({ name: `scale-${n}`, zone: ZONE }),
    ControlPlane.start({ name: `bench-scale-${n}` }),
  ]);
  running.push(() => bind.stop());
  running.push(() => cp.stop());
  const kc = cp.kubeConfig();
  await installCrds(kc);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: { name: 'db-credentials' },
      stringData: { username: pair?.user ?? 'failover', password: pair?.password ?? 'not-used' },
    },
  });
  await core.createNamespacedSecret({
    namespace: ns,
    body: bind.tsigSecret(),
  });
  // Listing thousands of policies with their status takes a while: a longer timeout than the operator's.
  const client = new KubeClient(kc, undefined, { requestTimeoutMs: 120_000, userAgent: 'bench-scale' });

  const start = (name: string, args: string[]) =>
    OperatorProcess.start({
      name,
      kubeconfig: cp.kubeconfigPath,
      dir,
      entry,
      args: [`--namespace=${ns}`, `--log-level=${LOG_LEVEL}`, ...args],
    });
  const [op, ...observers] = await Promise.all([
    start(`scale-operator-${n}`, ['--leader-elect=false']),
    ...OBSERVERS.map((o) =>
      start(`scale-observer-${o}-${n}`, [
        '--mode=observer',
        `--observer-name=${o}`,
        `--observer-region=${o}`,
      ]),
    ),
  ]);
  if (!op) throw new Error('the operator did not start');
  running.push(() => op.stop());
  for (const o of observers) running.push(() => o.stop());
  await waitFor(async () => (await Promise.all([op, ...observers].map((p) => p.ready()))).every(Boolean), {
    description: 'the operator and observers to be ready',
    timeoutMs: 120_000,
  });

  // Heap samples all along: the most, and the least seen in the idle window.
  const heap = new HeapSampler(() => [op]);
  running.push(async () => heap.stop());

  const requestsAtStart = await op.metric('rest_client_requests_total');
  const apiserverAtStart = await apiserverRequests(cp);
  const reconcilesAtStart = reconcilesByController(await op.metrics());
  const cpuAtStart = cpuSeconds(op.pid);
  say(`${label}: creating ${n} FailoverPolicies and ${n * 2} ReplicaClusters`);
  const t0 = performance.now();
  await inParallel(
    Array.from({ length: n }, (_, i) => i),
    16,
    async (i) => {
      for (const role of ['p', 's'] as const) {
        await client.create(replicaClusterType, ns, {
          apiVersion: 'regionfailover.io/v1alpha1',
          kind: 'ReplicaCluster',
          metadata: { name: `db-${i}-${role}`, namespace: ns },
          spec: clusterSpec(i, role, scenario),
        });
      }
      await client.create(failoverPolicyType, ns, {
        apiVersion: 'regionfailover.io/v1alpha1',
        kind: 'FailoverPolicy',
        metadata: { name: `db-${i}`, namespace: ns },
        spec: policySpec(i, bind),
      });
    },
  );
  const createSeconds = (performance.now() - t0) / 1000;
  say(`${label}: created in ${createSeconds.toFixed(1)} s; waiting for every object to be reconciled`);

  // Polled, not watched; a list of thousands of objects every poll would weigh on two cores.
  const pollMs = Math.max(1_000, n);
  let reconciledSeconds: number | null = null;
  let readySeconds: number | null = null;
  let last: Census | undefined;
  let lastSaid = performance.now();
  const deadline = t0 + COLD_TIMEOUT_SECONDS * 1000;
  let busy = 0;
  for (;;) {
    // An API server too busy to answer the list in time (504) is part of what is measured: noted,
    // and asked again at the next poll.
    const seen = await census(client).catch((err: unknown) => {
      if ((err as { status?: number }).status !== 504) throw err;
      busy++;
      return undefined;
    });
    if (seen) last = seen;
    const now = performance.now();
    if (!last) {
      if (now > deadline) break;
      await sleep(pollMs);
      continue;
    }
    if (reconciledSeconds === null && last.unreconciled === 0) reconciledSeconds = (now - t0) / 1000;
    if (readySeconds === null && last.notReady === 0) readySeconds = (now - t0) / 1000;
    if (reconciledSeconds !== null && (scenario === 'failing' || readySeconds !== null)) break;
    if (now > deadline) break;
    if (now - lastSaid > 15_000) {
      lastSaid = now;
      say(
        `${label}: ${((now - t0) / 1000).toFixed(0)} s: ${last.unreconciled} of ${n * 3} objects not reconciled, ` +
          `${last.notReady} of ${n} policies not Ready; phases: ${counts(last.phases)}` +
          (last.notReady ? `; most not Ready (${top(last.notReadyReasons)})` : ''),
      );
    }
    await sleep(pollMs);
  }
  const coldEnd = performance.now();
  if (busy) {
    const why = `the API server answered ${busy} of this bench's status lists with 504 (too busy) during cold`;
    notes.push(why);
    say(`${label}: ${why}`);
  }
  const coldCpuSeconds = cpuSeconds(op.pid) - cpuAtStart;
  const coldApiRequests = (await op.metric('rest_client_requests_total')) - requestsAtStart;
  const apiserverCold = difference(await apiserverRequests(cp), apiserverAtStart);
  const coldReconciles: Row['coldReconciles'] = {};
  for (const [controller, e] of reconcilesByController(await op.metrics())) {
    const b = reconcilesAtStart.get(controller) ?? { count: 0, seconds: 0 };
    const count = e.count - b.count;
    if (count > 0) coldReconciles[controller] = { count, meanSeconds: (e.seconds - b.seconds) / count };
  }
  const coldDone = reconciledSeconds !== null && (scenario === 'failing' || readySeconds !== null);
  if (!coldDone) {
    const why = `cold not done after ${COLD_TIMEOUT_SECONDS} s: ${last?.unreconciled} objects not reconciled, ${last?.notReady} policies not Ready (${counts(last?.notReadyReasons ?? new Map()).slice(0, 400)})`;
    notes.push(why);
    say(`${label}: ${why}`);
  }
  say(
    `${label}: ${coldDone ? 'cold in' : 'stopped waiting after'} ${((coldEnd - t0) / 1000).toFixed(1)} s (phases: ${counts(last?.phases ?? new Map())}); ` +
      `settling for ${SETTLE_SECONDS} s`,
  );
  await sleep(SETTLE_SECONDS * 1000);

  say(`${label}: measuring idle for ${IDLE_SECONDS} s`);
  heap.idle = true;
  const observerText = () => Promise.all(observers.map((o) => o.metrics()));
  const before = {
    apiserver: await apiserverRequests(cp),
    op: await op.metrics(),
    cpu: cpuSeconds(op.pid),
    observers: await observerText(),
    observerCpu: observers.map((o) => cpuSeconds(o.pid)),
  };
  const tIdle = performance.now();
  await sleep(IDLE_SECONDS * 1000);
  const elapsed = (performance.now() - tIdle) / 1000;
  const apiserverIdlePerMinute = difference(await apiserverRequests(cp), before.apiserver, 60 / elapsed);
  const opMetrics = await op.metrics();
  const observerMetrics = await observerText();
  const idleCpuPercent = ((cpuSeconds(op.pid) - before.cpu) * 100) / elapsed;
  const observerIdleCpuPercent = observers.map(
    (o, k) => ((cpuSeconds(o.pid) - (before.observerCpu[k] ?? 0)) * 100) / elapsed,
  );
  // Reconciles a minute per controller while idle: policies are looked at on a change and every
  // 30 s when quiet (failover-policy/quiet.ts), clusters once a probe.
  const reconcilesBefore = reconcilesByController(before.op);
  const idleReconcilesPerMinute: Record<string, number> = {};
  for (const [controller, e] of reconcilesByController(opMetrics)) {
    const d = e.count - (reconcilesBefore.get(controller)?.count ?? 0);
    if (d > 0) idleReconcilesPerMinute[controller] = Number(((d * 60) / elapsed).toFixed(1));
  }
  const requestsBefore = requestsByMethod(before.op);
  const idleApiRequestsByMethod: Record<string, number> = {};
  let idleRequests = 0;
  for (const [method, count] of requestsByMethod(opMetrics)) {
    const d = count - (requestsBefore.get(method) ?? 0);
    if (d > 0) idleApiRequestsByMethod[method] = Number(((d * 60) / elapsed).toFixed(1));
    idleRequests += d;
  }
  const observationWritesPerMinute = observerMetrics.map(
    (text, k) => ((observationWrites(text) - observationWrites(before.observers[k] ?? '')) * 60) / elapsed,
  );
  // The bound observer.ts documents for a healthy observer: every policy once per refresh period.
  const parsed = parseOnce(failoverPolicySpec, policySpec(0, bind));
  if (!parsed.ok) throw new Error('the policy spec does not parse');
  const refresh = refreshMs(parsed.value as FailoverPolicySpec);
  const interval = parsed.value.detection.probeIntervalSeconds;
  const observationWritesBoundPerMinute = (n * 60_000) / refresh;
  // Whether probing keeps up: probes per second while idle, against what
  // the policies' interval asks for, and what is still queued at the end.
  const rate = (after: string, earlier: string, name: string, filter?: (labels: string) => boolean) =>
    (sumSamples(after, name, filter) - sumSamples(earlier, name, filter)) / elapsed;
  const probeMeanMs = (after: string, earlier: string) => {
    const count = rate(after, earlier, 'failover_probe_duration_seconds_count');
    return count > 0 ? (rate(after, earlier, 'failover_probe_duration_seconds_sum') * 1000) / count : null;
  };
  const probing: Row['probing'] = {
    probesPerSecondNeeded: (2 * n) / interval,
    operatorProbesPerSecond: rate(opMetrics, before.op, 'failover_probe_duration_seconds_count'),
    operatorProbeMeanMs: probeMeanMs(opMetrics, before.op),
    observerProbesPerSecond: observerMetrics.map((text, k) =>
      rate(text, before.observers[k] ?? '', 'failover_probe_duration_seconds_count'),
    ),
    observerProbeMeanMs: observerMetrics.map((text, k) => probeMeanMs(text, before.observers[k] ?? '')),
    queueDepthAtEnd: {
      ...Object.fromEntries(
        ['failoverpolicy', 'replicacluster'].map((c) => [
          `operator ${c}`,
          sumSamples(opMetrics, 'workqueue_depth', (l) => l.includes(`name="${c}"`)),
        ]),
      ),
      ...Object.fromEntries(
        observerMetrics.map((text, k) => [`observer ${OBSERVERS[k]}`, sumSamples(text, 'workqueue_depth')]),
      ),
    },
  };
  heap.idle = false;
  const failures = [
    ...opMetrics.matchAll(/^failover_probe_failures_total\{[^}]*reason="([^"]*)"[^}]*\} (\S+)$/gm),
  ]
    .filter((m) => Number(m[2]) > 0)
    .map((m) => `${m[1]} ${m[2]}`);
  if (scenario === 'healthy' && failures.length)
    notes.push(`failed probes by the operator in a healthy run, since it started: ${failures.join(', ')}`);
  const reconcileErrors = errorsByReason(opMetrics);
  for (const [who, p] of [
    ['operator', op],
    ...observers.map((o, k) => [`observer ${OBSERVERS[k]}`, o] as const),
  ] as const) {
    const lines = logSummary(p);
    if (lines.length) notes.push(`${who} logged: ${lines.join(' | ')}`);
  }
  const row: Row = {
    policies: n,
    scenario,
    objects: n * 3,
    createSeconds,
    reconciledSeconds,
    readySeconds: scenario === 'healthy' ? readySeconds : null,
    coldDone,
    peakRssMiB: peakRssMiB(op.pid),
    heapUsedIdleMinMiB: Number.isFinite(heap.idleMinBytes) ? heap.idleMinBytes / 2 ** 20 : null,
    heapUsedMaxMiB: heap.maxBytes > 0 ? heap.maxBytes / 2 ** 20 : null,
    coldCpuSeconds,
    coldApiRequests,
    apiRequestsPerObject: coldApiRequests / (n * 3),
    idleCpuPercent,
    idleApiRequestsPerMinute: (idleRequests * 60) / elapsed,
    idleApiRequestsByMethod,
    idleReconcilesPerMinute,
    observerIdleCpuPercent,
    observationWritesPerMinute,
    observationWritesBoundPerMinute,
    pgClientConnections: scenario === 'healthy' && pair ? await clientConnections(pair) : null,
    reconcileErrors,
    coldReconciles,
    apiserverCold,
    apiserverIdlePerMinute,
    probing,
    notes,
  };
  say(`${label}: done; stopping its control plane, operator, observers and BIND`);
  await stopRun();
  return row;
}

// ---- the table ----------------------------------------------------------------------------------

const f = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined ? '–' : v.toFixed(digits);

function table(rows: Row[]): string {
  const header = [
    'policies',
    'scenario',
    'create s',
    'reconciled s',
    'ready s',
    'peak RSS MiB',
    'heap MiB idle/max',
    'CPU s cold',
    'API req/object',
    'idle CPU %',
    'idle API req/min',
    'obs writes/min (each)',
    'bound/min',
    'observer CPU %',
    'probes/s op; obs (need)',
    'PG conns p/s',
    'errors',
  ];
  const body = rows.map((r) => [
    String(r.policies),
    r.scenario,
    f(r.createSeconds),
    r.reconciledSeconds === null ? 'timeout' : f(r.reconciledSeconds),
    r.scenario === 'failing' ? '–' : r.readySeconds === null ? 'timeout' : f(r.readySeconds),
    f(r.peakRssMiB, 0),
    `${f(r.heapUsedIdleMinMiB, 0)}/${f(r.heapUsedMaxMiB, 0)}`,
    f(r.coldCpuSeconds),
    f(r.apiRequestsPerObject, 2),
    f(r.idleCpuPercent),
    f(r.idleApiRequestsPerMinute),
    r.observationWritesPerMinute.map((w) => f(w, 0)).join(' / '),
    f(r.observationWritesBoundPerMinute, 0),
    r.observerIdleCpuPercent.map((c) => f(c)).join(' / '),
    `${f(r.probing.operatorProbesPerSecond, 0)}; ${r.probing.observerProbesPerSecond.map((x) => f(x, 0)).join(' / ')} (${f(r.probing.probesPerSecondNeeded, 0)})`,
    r.pgClientConnections ? `${r.pgClientConnections.primary}/${r.pgClientConnections.standby}` : '–',
    String(Object.values(r.reconcileErrors).reduce((a, b) => a + b, 0)),
  ]);
  const widths = header.map((h, k) => Math.max(h.length, ...body.map((b) => (b[k] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, k) => c.padStart(widths[k] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: repo,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'operator'], {
      cwd: repo,
      encoding: 'utf8',
    }).trim();
    return dirty && !OPERATOR_REF ? `${sha} (operator/ modified)` : sha;
  } catch {
    return 'unknown';
  }
}

// ---- main ---------------------------------------------------------------------------------------

installSignalCleanup(async () => {
  await stopRun();
  await pair?.stop();
  compiled?.remove();
});

const outDir = join(repo, '.local', 'bench');
mkdirSync(outDir, { recursive: true });
const outPath = join(outDir, 'scale.json');
const rows: Row[] = [];
const skipped: { policies: number; scenario: Scenario; reason: string }[] = [];
const startedAt = new Date().toISOString();
const benchStart = performance.now();
const settings = {
  sizes: SIZES,
  scenarios: SCENARIOS,
  failingSizes: FAILING_SIZES,
  settleSeconds: SETTLE_SECONDS,
  idleSeconds: IDLE_SECONDS,
  databases: DATABASE_COUNT,
  observers: OBSERVERS.length,
  pgMaxConnections: MAX_CONNECTIONS,
  pgMiBPerConnection: PG_MIB_PER_CONNECTION,
  coldTimeoutSeconds: COLD_TIMEOUT_SECONDS,
  operatorRef: OPERATOR_REF ?? null,
  commit: commit(),
};
const save = () =>
  writeFileSync(
    outPath,
    `${JSON.stringify({ startedAt, durationSeconds: (performance.now() - benchStart) / 1000, settings, rows, skipped }, null, 2)}\n`,
  );

try {
  const entry = await operatorEntry();
  say(
    `sizes ${SIZES.join(', ')}; scenarios ${SCENARIOS.join(', ')} (failing at ${FAILING_SIZES.join(', ')}); ` +
      `settle ${SETTLE_SECONDS} s, idle ${IDLE_SECONDS} s; ${OBSERVERS.length} observers; commit ${settings.commit}`,
  );
  if (SCENARIOS.includes('healthy')) {
    pair = await startPostgres();
    if (DATABASE_COUNT < Math.max(...SIZES))
      say(
        `${DATABASE_COUNT} databases shared round robin: policy i uses scale_<i mod ${DATABASE_COUNT}> ` +
          '(set BENCH_SCALE_DATABASES to at least the size for one database per policy)',
      );
  }
  for (const n of SIZES) {
    for (const scenario of SCENARIOS) {
      if (scenario === 'failing' && !FAILING_SIZES.includes(n)) continue;
      const why = scenario === 'healthy' ? tooBig(n) : undefined;
      if (why) {
        say(`${n} ${scenario}: skipped: ${why}`);
        skipped.push({ policies: n, scenario, reason: why });
        save();
        continue;
      }
      const t = performance.now();
      try {
        rows.push(await run(n, scenario, entry));
      } finally {
        await stopRun();
      }
      say(`${n} ${scenario}: run took ${((performance.now() - t) / 1000).toFixed(0)} s`);
      save();
    }
  }
} finally {
  await stopRun();
  await pair?.stop();
  compiled?.remove();
  save();
}

say(`results (${((performance.now() - benchStart) / 60_000).toFixed(1)} min; also in ${outPath})`);
process.stdout.write(`${table(rows)}\n`);
process.stdout.write(
  [
    '',
    '  create s: all objects created (16 at a time); reconciled s / ready s: from the first create until every',
    '  object has status.observedGeneration == metadata.generation / every policy is Ready (healthy only).',
    '  peak RSS: the operator process VmHWM over the run. heap: nodejs_heap_size_used_bytes, the least seen',
    `  while idle (close to the live heap) / the most seen. CPU s cold and API req/object (objects: policies and`,
    `  clusters) from the first create until cold ended. idle: over ${IDLE_SECONDS} s after ${SETTLE_SECONDS} s of settling.`,
    '  obs writes/min: each observer FailoverObservation writes (PATCH and POST answered 2xx) while idle;',
    '  bound/min: what observer.ts promises, policies / refreshMs (a failing cluster too, once its failures',
    '  reach failureThreshold). PG conns: client connections to each server while idle.',
    `  Databases: ${DATABASE_COUNT}, shared round robin by the policies of the healthy runs. probes/s: while idle, by the`,
    '  operator; each observer, against every cluster once per probe interval. A run that timed out (cold not done',
    `  after ${COLD_TIMEOUT_SECONDS} s) has its cold figures up to then, and its "idle" is not idle.`,
    '',
  ].join('\n'),
);
for (const s of skipped) process.stdout.write(`  ${s.policies} ${s.scenario}: skipped: ${s.reason}\n`);
for (const r of rows) {
  const errs = Object.entries(r.reconcileErrors).map(([k, v]) => `${k} ${v}`);
  const top = (o: Record<string, number>) =>
    Object.entries(o)
      .slice(0, 8)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
  const reconciles = Object.entries(r.coldReconciles)
    .map(([c, e]) => `${c} ${e.count} × ${(e.meanSeconds * 1000).toFixed(0)} ms`)
    .join(', ');
  const lines = [
    `cold: reconciles ${reconciles || 'none'}; API server (all clients) ${top(r.apiserverCold)}`,
    `idle: operator reconciles/min ${top(r.idleReconcilesPerMinute) || 'none'}; operator requests/min ${top(r.idleApiRequestsByMethod) || 'none'}; API server (all clients) per min ${top(r.apiserverIdlePerMinute) || 'none'}`,
    `idle probing: mean probe ${f(r.probing.operatorProbeMeanMs, 0)} ms (operator), ${r.probing.observerProbeMeanMs.map((x) => f(x, 0)).join(' / ')} ms (observers); queued at the end: ${top(r.probing.queueDepthAtEnd)}`,
    ...(errs.length ? [`reconcile errors: ${errs.join(', ')}`] : []),
    ...r.notes,
  ];
  for (const l of lines) process.stdout.write(`  ${r.policies} ${r.scenario}: ${l}\n`);
}
