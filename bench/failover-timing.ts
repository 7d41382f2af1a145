/**
 * Benchmark: how fast a failover is, and what it loses, with every part real.
 *
 * With a 1 s probe interval (BENCH_INTERVAL) and a failure threshold of 3, take the primary away
 * in each mode (BENCH_MODES, comma-separated) and time, from the fault, (a) the standby accepting
 * writes and (b) BIND answering the standby's address; BENCH_RUNS runs per mode, median, min, max.
 *
 * - kill: SIGKILL the primary (connections are refused at once), under 100 tx/s, counting the
 *   committed transactions lost by a failover inside the budget;
 * - blackhole: region A's network drops every packet (a network namespace; needs root);
 * - sigstop: the primary's postmaster and backends are frozen, so even open connections hang.
 *
 * Then a switchover under the same load: nothing committed may be lost.
 */
import { ControlPlane } from '../test/harness/control-plane.ts';
import { FailoverStack } from '../test/harness/failover-stack.ts';
import { installSignalCleanup } from '../test/harness/processes.ts';
import { waitFor } from '../test/harness/wait.ts';
import { median } from './process-stats.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const INTERVAL = Number(process.env.BENCH_INTERVAL ?? 1);
const THRESHOLD = 3;
const MODES = (process.env.BENCH_MODES ?? 'kill,blackhole,sigstop').split(',').filter(Boolean) as Mode[];
const say = (s: string) => process.stdout.write(`[bench failover] ${s}\n`);
const figures = (xs: number[]) =>
  `median ${median(xs).toFixed(2)} s (beyond the window ${(median(xs) - INTERVAL * THRESHOLD).toFixed(2)} s), ` +
  `min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}  all: ${xs.map((x) => x.toFixed(2)).join(' ')}`;

type Mode = 'kill' | 'blackhole' | 'sigstop';
const faults: Record<Mode, { title: string; cut: (s: FailoverStack) => Promise<void> | void }> = {
  kill: { title: 'kill (SIGKILL, refused)', cut: (s) => s.pair.killPrimary() },
  blackhole: { title: 'blackhole (packets dropped)', cut: (s) => s.isolatePrimary() },
  sigstop: { title: 'SIGSTOP (server hangs)', cut: (s) => s.pair.primary.freeze() },
};
for (const mode of MODES) {
  if (!(mode in faults))
    throw new Error(`BENCH_MODES: unknown mode "${mode}"; use ${Object.keys(faults).join(', ')}`);
}

const cp = await ControlPlane.start({ name: 'bench-failover' });
let stack: FailoverStack | undefined;
installSignalCleanup(async () => {
  await stack?.stop();
  await cp.stop();
});

const results = new Map<Mode, { writable: number[]; answering: number[]; losses: number[] }>();
try {
  for (const mode of MODES) {
    const result = { writable: [] as number[], answering: [] as number[], losses: [] as number[] };
    results.set(mode, result);
    for (let run = 1; run <= RUNS; run++) {
      stack = await FailoverStack.start({
        name: `bf${mode.slice(0, 2)}${run}`,
        kubeConfig: cp.kubeConfig(),
        kubeconfigPath: cp.kubeconfigPath,
        namespace: `bench-failover-${mode}-${run}`,
        probeIntervalSeconds: INTERVAL,
        failureThreshold: THRESHOLD,
        primaryNetwork: mode === 'blackhole' ? 'netns' : 'loopback',
      });
      await stack.waitUntilHealthy();
      // Under load only where the primary refuses: an insert held by a silent primary would
      // hang until its own timeout and say nothing about the failover.
      const load = mode === 'kill' ? stack.pair.startWriteLoad({ ratePerSecond: 100 }) : undefined;
      if (load) await waitFor(() => load.progress().committed > 100, { description: 'load' });
      const faultAt = performance.now();
      await faults[mode].cut(stack);
      const took = await stack.timeStandbyTakeover(faultAt);
      result.writable.push(took.writableMs / 1000);
      result.answering.push(took.dnsMs / 1000);
      let lossNote = '';
      if (load) {
        const written = await load.stop();
        const [row] = await stack.pair.standby.query<{ n: string }>(
          'SELECT count(*)::text AS n FROM write_load',
          [],
          stack.pair.database,
        );
        const lost = Math.max(0, written.committed - Number(row?.n ?? 0));
        result.losses.push(lost);
        lossNote = `, committed transactions lost: ${lost}`;
      }
      say(
        `${mode} run ${run}: standby writable after ${(took.writableMs / 1000).toFixed(2)} s, BIND answers it after ${(took.dnsMs / 1000).toFixed(2)} s${lossNote}`,
      );
      await stack.stop();
      stack = undefined;
    }
  }

  // A switchover under the same load: nothing committed may be lost.
  stack = await FailoverStack.start({
    name: 'bsw',
    kubeConfig: cp.kubeConfig(),
    kubeconfigPath: cp.kubeconfigPath,
    namespace: 'bench-switchover',
  });
  await stack.waitUntilHealthy();
  const load = stack.pair.startWriteLoad({ ratePerSecond: 100 });
  await waitFor(() => load.progress().committed > 100, { description: 'load' });
  const t = performance.now();
  await stack.requestPromotion({ id: 'bench-switch', target: 'region-b', kind: 'Switchover' });
  await stack.waitForPolicy((st) => st.history?.[0], 'the switchover');
  const switchSeconds = (performance.now() - t) / 1000;
  const result = await load.stop();
  // Rows on the new primary against inserts the old one acknowledged: nothing may be missing.
  const present = Number(
    (
      await stack.pair.standby.query<{ n: string }>(
        'SELECT count(*)::text AS n FROM write_load',
        [],
        stack.pair.database,
      )
    )[0]?.n ?? 0,
  );
  const switchLost = Math.max(0, result.committed - present);

  const window = INTERVAL * THRESHOLD;
  const lines = [
    '',
    `  failover, probe interval ${INTERVAL} s, failure threshold ${THRESHOLD} (detection window ${window} s), ${RUNS} runs per fault`,
  ];
  for (const [mode, r] of results) {
    lines.push(`  ${faults[mode].title}`);
    lines.push(`    fault → standby accepts writes:   ${figures(r.writable)}`);
    lines.push(`    fault → BIND answers the standby: ${figures(r.answering)}`);
    if (r.losses.length)
      lines.push(
        `    committed transactions lost (failover within the RPO budget, 100 tx/s): ${r.losses.join(' ')}`,
      );
  }
  lines.push(
    `  switchover under 100 tx/s: ${switchSeconds.toFixed(2)} s from request to completion; committed transactions lost: ${switchLost}`,
    '',
  );
  process.stdout.write(lines.join('\n'));
} finally {
  await stack?.stop();
  await cp.stop();
}
