/**
 * A controller: a work queue of keys fed by informers, and workers that run the reconcile
 * function for one key at a time. Like controller-runtime's: errors back off per key,
 * `requeueAfter` schedules the next look, and `retryAfter` (a failure the reconcile recorded with
 * its own backoff) is counted as an error without a second backoff from the queue.
 */
import { isConflict } from './kube-client.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { errorReason, type ReconcileResult } from './reconcile.ts';
import { WorkQueue } from './workqueue.ts';

export interface ControllerOptions {
  name: string;
  reconcile: (key: string) => Promise<ReconcileResult>;
  log: Logger;
  metrics?: Metrics;
  concurrency?: number;
  /** Per-key backoff for failed reconciles. */
  backoff?: { baseMs: number; maxMs: number };
  /**
   * Whether this replica reconciles `key` now (sharding: the key's shard Lease is held here).
   * Checked as a key leaves the queue; a key not owned is dropped, and enqueued again when its
   * shard is taken.
   */
  owns?: (key: string) => boolean;
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly opts: ControllerOptions;
  private readonly concurrency: number;
  private workers: Promise<void>[] = [];
  private progressTimer: NodeJS.Timeout | undefined;
  private running = false;
  /** Keys being reconciled now, so a shard is given up only once its reconciles have finished. */
  private readonly processing = new Set<string>();
  private readonly idle: (() => void)[] = [];

  constructor(options: ControllerOptions) {
    this.opts = options;
    this.name = options.name;
    this.concurrency = options.concurrency ?? 4;
    this.queue = new WorkQueue({
      name: options.name,
      metrics: options.metrics,
      backoff: options.backoff ?? { baseMs: 500, maxMs: 5 * 60_000 },
    });
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.opts.metrics?.maxConcurrentReconciles.set({ controller: this.name }, this.concurrency);
    this.opts.metrics?.activeWorkers.set({ controller: this.name }, 0);
    this.progressTimer = setInterval(() => this.queue.updateProgressMetrics(), 1000).unref();
    for (let i = 0; i < this.concurrency; i++) this.workers.push(this.worker());
  }

  /** Stops taking work and waits (up to `graceMs`) for reconciles in progress to finish their step. */
  async stop(graceMs = 20_000): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.queue.shutDown();
    clearInterval(this.progressTimer);
    await Promise.race([Promise.all(this.workers), new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  /**
   * Resolves once no key matching `which` is being reconciled. The caller has already stopped
   * owning those keys, so none starts meanwhile: after this, another replica may take them.
   */
  async drain(which: (key: string) => boolean): Promise<void> {
    while ([...this.processing].some(which)) await new Promise<void>((r) => this.idle.push(r));
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      if (this.opts.owns && !this.opts.owns(key)) {
        this.queue.forget(key);
        this.queue.done(key);
        continue;
      }
      this.processing.add(key);
      this.opts.metrics?.activeWorkers.inc({ controller: this.name });
      try {
        await this.process(key);
      } finally {
        this.opts.metrics?.activeWorkers.dec({ controller: this.name });
        this.processing.delete(key);
        this.queue.done(key);
        for (const wake of this.idle.splice(0)) wake();
      }
    }
  }

  private async process(key: string): Promise<void> {
    const m = this.opts.metrics;
    const labels = { controller: this.name };
    const end = m?.reconcileTime.startTimer(labels);
    // Debug only: which replica reconciled which key when (the sharding test reads these).
    this.opts.log.debug({ controller: this.name, key }, 'reconciling');
    try {
      const result = await this.opts.reconcile(key);
      this.queue.forget(key);
      if (result.kind === 'retryAfter') {
        // Already recorded with its own backoff: count it, and come back when that says.
        this.queue.addAfter(key, result.ms);
        m?.reconcileTotal.inc({ ...labels, result: 'error' });
        m?.reconcileErrors.inc({ ...labels, reason: result.reason });
        this.opts.log.warn(
          { controller: this.name, key, reason: result.reason, err: result.message, retryInMs: result.ms },
          'reconcile failed; retrying after the backoff it recorded',
        );
      } else if (result.kind === 'requeueAfter') {
        this.queue.addAfter(key, result.ms);
        m?.reconcileTotal.inc({ ...labels, result: 'requeue_after' });
      } else {
        m?.reconcileTotal.inc({ ...labels, result: 'success' });
      }
    } catch (err) {
      m?.reconcileTotal.inc({ ...labels, result: 'error' });
      const reason = errorReason(err);
      m?.reconcileErrors.inc({ ...labels, reason });
      // A conflict only means our copy was a moment old: look again soon, without growing the backoff.
      if (isConflict(err)) {
        this.queue.addAfter(key, 100 + Math.round(Math.random() * 400));
        this.opts.log.debug({ controller: this.name, key }, 'conflict writing; retrying with a fresh read');
        return;
      }
      const delay = this.queue.addRateLimited(key);
      this.opts.log.warn(
        {
          controller: this.name,
          key,
          reason,
          err: (err as Error).message,
          retryInMs: delay,
          attempt: this.queue.failuresOf(key),
        },
        'reconcile failed; retrying with backoff',
      );
    } finally {
      end?.();
      this.opts.log.debug({ controller: this.name, key }, 'reconciled');
    }
  }
}
