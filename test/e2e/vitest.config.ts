import { defineConfig } from 'vitest/config';

// The kind suite: its own config, so `make test` (the root config) never runs it. One cluster,
// one file, in order; real image builds and real PostgreSQL take minutes, not seconds.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 15 * 60_000,
    hookTimeout: 30 * 60_000,
  },
});
