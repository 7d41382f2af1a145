/**
 * Benchmark: the way back after a failover, with every part real (PostgreSQL pair, control
 * plane, BIND, observers, the operator, a database agent beside each server).
 *
 * - Reprotect: region A writes rows region B never receives, dies, and region B is promoted; then
 *   a request rejoins region A (allowDataLoss). Timed from the request to region A streaming from
 *   region B with nothing left to replay (replay LSN ≥ region B's current LSN), and to the
 *   operation's completion: by pg_rewind (wal_log_hints on), and by a fresh pg_basebackup
 *   (wal_log_hints off, spec.reprotect.allowReclone). BENCH_REPROTECT_RUNS runs each.
 * - Switchover and failback: BENCH_FAILBACK_ROUNDS round trips A → B → A while an application
 *   writes 100 rows/s through the DNS name; each timed from the request to completed, with the
 *   longest pause between acknowledged writes, and the acknowledged writes lost (must be 0).
 */
import { ControlPlane } from '../test/harness/control-plane.ts';
import { FailoverStack, type StackCluster } from '../test/harness/failover-stack.ts';
import { installSignalCleanup } from '../test/harness/processes.ts';
import { waitFor } from '../test/harness/wait.ts';

const RUNS = Number(process.env.BENCH_REPROTECT_RUNS ?? 3);
const ROUNDS = Number(process.env.BENCH_FAILBACK_ROUNDS ?? 3);
const say = (s: string) => process.stdout.write(`[bench reprotect] ${s}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const figures = (xs: number[]) =>
  `median ${median(xs).toFixed(2)} s, min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}  all: ${xs.map((x) => x.toFixed(2)).join(' ')}`;

type Method = 'Rewind' | 'Reclone';

const cp = await ControlPlane.start({ name: 'bench-reprotect' });
let stack: FailoverStack | undefined;
installSignalCleanup(async () => {
  await stack?.stop();
  await cp.stop();
});

/** Whether region A streams from region B with nothing left to replay. */
async function caughtUp(s: FailoverStack): Promise<boolean> {
  const [row] = await s.pair.sql<{ ok: boolean }>(
    'standby',
    "SELECT state = 'streaming' AND replay_lsn >= pg_current_wal_lsn() AS ok FROM pg_stat_replication WHERE application_name = 'region-a'",
    [],
    'postgres',
  );
  return row?.ok === true;
}

/** One failover and reprotect of region A; seconds from the request to caught up, and to completed. */
async function reprotectRun(method: Method, run: number) {
  stack = await FailoverStack.start({
    name: `br${method === 'Rewind' ? 'w' : 'c'}${run}`,
    kubeConfig: cp.kubeConfig(),
    kubeconfigPath: cp.kubeconfigPath,
    namespace: `bench-reprotect-${method.toLowerCase()}-${run}`,
    mode: 'Manual',
    // pg_rewind needs wal_log_hints (or checksums); without it only a re-clone rejoins.
    pgSettings:
      method === 'Rewind' ? { wal_log_hints: 'on', full_page_writes: 'on' } : { full_page_writes: 'on' },
    ...(method === 'Reclone' ? { reprotect: { allowReclone: true } } : {}),
  });
  const s = stack;
  await s.waitUntilHealthy();
  await Promise.all([s.startAgent('region-a'), s.startAgent('region-b')]);
  await s.pair.sql(
    'primary',
    "INSERT INTO write_load (payload) SELECT 'shared' FROM generate_series(1, 1000)",
  );
  await s.pair.waitForReplayCatchUp();
  // Region A commits rows region B never receives, then dies: a rejoin must discard them.
  await s.failOverLosingWrites(5);
  const assessed = (await s.waitForAssessment()).divergence;
  const [size] = await s.pair.sql<{ mb: string }>(
    'standby',
    'SELECT round(sum(pg_database_size(oid)) / 1048576.0, 1)::text AS mb FROM pg_database',
  );

  const t = performance.now();
  await s.requestPromotion({ id: 'rejoin-a', target: 'region-a', kind: 'Reprotect', allowDataLoss: true });
  await waitFor(() => caughtUp(s).then((ok) => ok || undefined), {
    description: 'region-a streaming from region-b with nothing left to replay',
    timeoutMs: 120_000,
    intervalMs: 50,
  });
  const streamingSeconds = (performance.now() - t) / 1000;
  const done = await s.waitForPolicy(
    (st) => (st.history?.[0]?.kind === 'Reprotect' && !st.currentOperation ? st.history[0] : undefined),
    'the reprotect to finish',
  );
  const completedSeconds = (performance.now() - t) / 1000;
  const task = (await s.agentReport('region-a'))?.task;
  if (done.result !== 'Succeeded' || task?.method !== method)
    throw new Error(
      `${method} run ${run}: the reprotect ended ${done.result} by ${task?.method ?? 'no method'} (${done.message ?? task?.message ?? ''})`,
    );
  say(
    `${method.toLowerCase()} run ${run}: request → streaming, lag 0: ${streamingSeconds.toFixed(2)} s; → operation completed: ${completedSeconds.toFixed(2)} s (${assessed.divergedBytes} bytes, ${assessed.divergedTransactions ?? '?'} transactions discarded; databases ${size?.mb} MB)`,
  );
  await s.stop();
  stack = undefined;
  return { streamingSeconds, completedSeconds };
}

/** Round trips A → B → A under 100 writes/s through DNS. */
async function switchoverRounds() {
  stack = await FailoverStack.start({
    name: 'bsf',
    kubeConfig: cp.kubeConfig(),
    kubeconfigPath: cp.kubeconfigPath,
    namespace: 'bench-failback',
    pgSettings: { wal_log_hints: 'on', full_page_writes: 'on' },
  });
  const s = stack;
  await s.waitUntilHealthy();
  await Promise.all([s.startAgent('region-a'), s.startAgent('region-b')]);
  await waitFor(async () => (await s.agentReport('region-a'))?.server === 'Primary' || undefined, {
    description: 'the agent beside region-a to report',
  });
  const load = await s.startDnsWriteLoad(100);
  // The longest stretch without an acknowledged write, since the last reset.
  let lastCount = 0;
  let lastChange = performance.now();
  let longestPause = 0;
  const pauses = setInterval(() => {
    const now = performance.now();
    if (load.acknowledged.length !== lastCount) {
      lastCount = load.acknowledged.length;
      lastChange = now;
    }
    longestPause = Math.max(longestPause, now - lastChange);
  }, 5);
  const out = { switchover: [] as number[], failback: [] as number[], pauses: [] as number[] };
  try {
    await waitFor(() => load.acknowledged.length > 100 || undefined, {
      description: '100 acknowledged writes',
    });
    for (let round = 1; round <= ROUNDS; round++) {
      for (const target of ['region-b', 'region-a'] as StackCluster[]) {
        // The previous primary must be a replicating standby before it can be switched to.
        await s.waitForPolicy(
          (st) => st.conditions?.find((c) => c.type === 'Redundant' && c.status === 'True'),
          'both regions replicating',
        );
        const before = load.acknowledged.length;
        await waitFor(() => load.acknowledged.length > before + 50 || undefined, {
          description: 'writes flowing before the switchover',
        });
        longestPause = 0;
        const requestedAt = Date.now();
        const t = performance.now();
        await s.requestPromotion({
          id: `r${round}-${target}`,
          target,
          kind: 'Switchover',
          allowDataLoss: false,
        });
        const done = await s.waitForPolicy((st) => {
          const r = st.history?.[0];
          return r?.kind === 'Switchover' &&
            r.to === target &&
            Date.parse(r.startedAt) >= requestedAt - 1000 &&
            !st.currentOperation
            ? r
            : undefined;
        }, `the switchover to ${target}`);
        const seconds = (performance.now() - t) / 1000;
        if (done.result !== 'Succeeded')
          throw new Error(`switchover to ${target} ended ${done.result}: ${done.message ?? ''}`);
        const after = load.acknowledged.length;
        await waitFor(() => load.acknowledged.length > after + 50 || undefined, {
          description: `writes through DNS to ${target}`,
        });
        out[target === 'region-b' ? 'switchover' : 'failback'].push(seconds);
        out.pauses.push(longestPause / 1000);
        say(
          `round ${round}: ${target === 'region-b' ? 'switchover to region-b' : 'failback to region-a'} ${seconds.toFixed(2)} s, longest pause between acknowledged writes ${(longestPause / 1000).toFixed(2)} s`,
        );
      }
    }
  } finally {
    clearInterval(pauses);
  }
  const written = await load.stop();
  const lost = await load.missingOn('primary');
  const writable = await s.writablePrimaries();
  await s.stop();
  stack = undefined;
  return { ...out, lost, acknowledged: written.acknowledged.length, failed: written.failed, writable };
}

try {
  const reprotect = new Map<Method, { streaming: number[]; completed: number[] }>();
  for (const method of ['Rewind', 'Reclone'] as Method[]) {
    const r = { streaming: [] as number[], completed: [] as number[] };
    reprotect.set(method, r);
    for (let run = 1; run <= RUNS; run++) {
      const took = await reprotectRun(method, run);
      r.streaming.push(took.streamingSeconds);
      r.completed.push(took.completedSeconds);
    }
  }
  const sw = await switchoverRounds();

  const lines = [
    '',
    `  reprotect of a former primary that committed 5 transactions the new primary never received, ${RUNS} runs each`,
  ];
  for (const [method, r] of reprotect) {
    lines.push(
      `  ${method === 'Rewind' ? 'pg_rewind (wal_log_hints on)' : 're-clone with pg_basebackup (wal_log_hints off, allowReclone)'}`,
    );
    lines.push(`    request → streaming with lag 0: ${figures(r.streaming)}`);
    lines.push(`    request → operation completed:  ${figures(r.completed)}`);
  }
  lines.push(
    `  switchover and failback with agents under 100 writes/s through DNS, ${ROUNDS} round trips`,
    `    switchover A → B, request → completed: ${figures(sw.switchover)}`,
    `    failback B → A, request → completed:   ${figures(sw.failback)}`,
    `    longest pause between acknowledged writes per switch: ${figures(sw.pauses)}`,
    `    acknowledged writes lost: ${sw.lost} of ${sw.acknowledged} (${sw.failed} attempts failed, not acknowledged); writable at the end: ${sw.writable.join(', ')}`,
    '',
  );
  process.stdout.write(lines.join('\n'));
  if (sw.lost > 0 || sw.writable.length !== 1) process.exitCode = 1;
} finally {
  await stack?.stop();
  await cp.stop();
}
