import { describe, expect, it } from 'vitest';
import { Controller } from './controller.ts';
import { silentLogger } from './logger.ts';
import { Metrics } from './metrics.ts';
import { type ReconcileResult, retryAfter } from './reconcile.ts';

/** Runs a controller until `runs` reconciles of key `k` happened, returning when each started. */
async function runTimes(
  results: () => ReconcileResult | Promise<ReconcileResult>,
  runs: number,
  metrics?: Metrics,
) {
  const starts: number[] = [];
  let finished!: () => void;
  const all = new Promise<void>((r) => {
    finished = r;
  });
  const c = new Controller({
    name: 't',
    log: silentLogger,
    ...(metrics ? { metrics } : {}),
    backoff: { baseMs: 400, maxMs: 10_000 },
    reconcile: async () => {
      starts.push(performance.now());
      if (starts.length === runs) finished();
      return results();
    },
  });
  c.start();
  c.enqueue('k');
  await all;
  await c.stop(1000);
  return { starts, controller: c };
}

describe('Controller', () => {
  it('retries a failure the reconcile recorded after the delay it gives, with no backoff of its own on top', async () => {
    const metrics = new Metrics();
    const { starts, controller } = await runTimes(() => retryAfter(20, 'Unreachable', 'REFUSED'), 4, metrics);
    // The queue's own backoff (400 ms, doubling) would space these far more.
    expect((starts[3] ?? 0) - (starts[0] ?? 0)).toBeLessThan(400);
    expect(controller.queue.failuresOf('k')).toBe(0);
    const errors = await metrics.registry.getSingleMetricAsString(
      'controller_runtime_reconcile_errors_total',
    );
    expect(errors).toMatch(
      /controller_runtime_reconcile_errors_total\{controller="t",reason="Unreachable"\} [34]/,
    );
  });

  it('backs off a thrown error with the queue’s own per-key backoff', async () => {
    const { starts } = await runTimes(() => {
      throw new Error('boom');
    }, 2);
    expect((starts[1] ?? 0) - (starts[0] ?? 0)).toBeGreaterThanOrEqual(190);
  });
});
