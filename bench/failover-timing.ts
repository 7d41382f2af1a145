/**
 * Benchmark: how fast a failover is, and what it loses, with every part real.
 *
 * With a 1 s probe interval and a failure threshold of 3 (a 3 s detection window), kill the
 * primary and time (a) the standby accepting writes and (b) BIND answering the standby's address;
 * report the overhead beyond the detection window, median of BENCH_RUNS runs. Then count committed
 * transactions lost by a failover inside the budget and by a switchover (must be zero).
 */
import { ControlPlane } from '../test/harness/control-plane.ts';
import { FailoverStack, STANDBY_ADDRESS } from '../test/harness/failover-stack.ts';
import { installSignalCleanup } from '../test/harness/processes.ts';
import { waitFor } from '../test/harness/wait.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const say = (s: string) => process.stdout.write(`[bench failover] ${s}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[(s.length - 1) / 2] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

const cp = await ControlPlane.start({ name: 'bench-failover' });
let stack: FailoverStack | undefined;
installSignalCleanup(async () => {
  await stack?.stop();
  await cp.stop();
});

async function standbyWritable(s: FailoverStack): Promise<boolean> {
  try {
    const [row] = await s.pair.standby.query<{ w: boolean }>('SELECT NOT pg_is_in_recovery() AS w');
    return row?.w === true;
  } catch {
    return false;
  }
}

const writable: number[] = [];
const answering: number[] = [];
const losses: number[] = [];
try {
  for (let run = 1; run <= RUNS; run++) {
    stack = await FailoverStack.start({
      name: `bf${run}`,
      kubeConfig: cp.kubeConfig(),
      kubeconfigPath: cp.kubeconfigPath,
      namespace: `bench-failover-${run}`,
    });
    await stack.waitUntilHealthy();
    const load = stack.pair.startWriteLoad({ ratePerSecond: 100 });
    await waitFor(() => load.progress().committed > 100, { description: 'load' });
    const killedAt = performance.now();
    await stack.pair.killPrimary();
    let a: number | undefined;
    let b: number | undefined;
    while (a === undefined || b === undefined) {
      if (a === undefined && (await standbyWritable(stack))) a = performance.now() - killedAt;
      if (b === undefined && (await stack.dnsAnswer().catch(() => []))[0] === STANDBY_ADDRESS)
        b = performance.now() - killedAt;
      if (performance.now() - killedAt > 120_000) throw new Error('no failover within 120 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    const result = await load.stop();
    const lost =
      result.committed -
      Number(
        (
          await stack.pair.standby.query<{ n: string }>(
            'SELECT count(*)::text AS n FROM write_load',
            [],
            stack.pair.database,
          )
        )[0]?.n ?? 0,
      );
    writable.push(a / 1000);
    answering.push(b / 1000);
    losses.push(Math.max(0, lost));
    say(
      `run ${run}: standby writable after ${(a / 1000).toFixed(2)} s, BIND answers it after ${(b / 1000).toFixed(2)} s, committed transactions lost: ${Math.max(0, lost)}`,
    );
    await stack.stop();
    stack = undefined;
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

  const window = 3;
  process.stdout.write(
    [
      '',
      `  failover, probe interval 1 s, failure threshold 3 (detection window ${window} s), ${RUNS} runs`,
      `    kill → standby accepts writes:   median ${median(writable).toFixed(2)} s (overhead beyond the window ${(median(writable) - window).toFixed(2)} s)  all: ${writable.map((x) => x.toFixed(2)).join(' ')}`,
      `    kill → BIND answers the standby: median ${median(answering).toFixed(2)} s (overhead beyond the window ${(median(answering) - window).toFixed(2)} s)  all: ${answering.map((x) => x.toFixed(2)).join(' ')}`,
      `    committed transactions lost (failover within the RPO budget, 100 tx/s): ${losses.join(' ')}`,
      `  switchover under 100 tx/s: ${switchSeconds.toFixed(2)} s from request to completion; committed transactions lost: ${switchLost}`,
      '',
    ].join('\n'),
  );
} finally {
  await stack?.stop();
  await cp.stop();
}
