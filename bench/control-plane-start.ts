/**
 * Benchmark: start-to-ready time of one local control plane (etcd + kube-apiserver, until
 * /readyz answers ok), median of BENCH_RUNS starts. The binaries must already be built.
 */
import { ControlPlane, controlPlaneBinaries } from '../test/harness/control-plane.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
await controlPlaneBinaries();
const times: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t = performance.now();
  const cp = await ControlPlane.start({ name: `bench-start-${i}` });
  times.push((performance.now() - t) / 1000);
  await cp.stop();
}
times.sort((a, b) => a - b);
const median =
  times.length % 2
    ? times[(times.length - 1) / 2]
    : ((times[times.length / 2 - 1] ?? 0) + (times[times.length / 2] ?? 0)) / 2;
process.stdout.write(
  `[bench control plane] start to ready: median ${median?.toFixed(2)} s over ${RUNS} starts (all: ${times.map((t) => t.toFixed(2)).join(' ')})\n`,
);
