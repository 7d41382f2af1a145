import { defineConfig } from 'vitest/config';

// Unit tests sit beside the code they test; integration tests talk to real parts (a real
// kube-apiserver and etcd, later PostgreSQL, BIND and moto) and live under test/integration; the
// cluster suite (test/cluster) installs the chart into a local cluster that runs pods.
export default defineConfig({
  test: {
    // Forks, not threads: child processes get a parent-death signal tied to the spawning
    // thread, and each test file's servers must die with its own process.
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: [
            'operator/src/**/*.test.ts',
            'infra/**/*.test.ts',
            'test/harness/**/*.test.ts',
            'hack/**/*.test.ts',
          ],
          // Property and model tests run thousands of decisions: on 2 busy cores, seconds each.
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          // Unit tests run first and fast; integration tests after, two files at a time.
          sequence: { groupOrder: 1 },
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/global-setup.ts'],
          // Real servers on 2 cores: generous deadlines; tests wait on conditions, not time.
          testTimeout: 180_000,
          hookTimeout: 240_000,
          maxWorkers: 2,
        },
      },
      {
        extends: true,
        test: {
          name: 'cluster',
          // Last and alone: a whole cluster (kubelet, containerd, the chart's pods) on 2 cores.
          sequence: { groupOrder: 2 },
          include: ['test/cluster/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 1_200_000,
          maxWorkers: 1,
        },
      },
    ],
  },
});
