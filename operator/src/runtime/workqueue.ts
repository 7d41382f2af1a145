/**
 * A keyed work queue with client-go's guarantees: a key waiting twice is processed once; a key is
 * never processed by two workers at once (an add during processing is held until it finishes);
 * failures back off per key, exponentially with jitter; `addAfter` schedules a key for later.
 */
import { type BackoffPolicy, backoffDelay } from './backoff.ts';
import type { Metrics } from './metrics.ts';
import { Schedule } from './schedule.ts';

export interface WorkQueueOptions {
  name: string;
  metrics?: Metrics;
  backoff?: BackoffPolicy;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  /**
   * Keys waiting to be processed (client-go's dirty set), with when each was added. One map, not
   * a set and a map: each grows and shrinks with every burst of adds, and a shrinking table is a
   * new allocation.
   */
  private readonly waiting = new Map<string, number>();
  private readonly processing = new Map<string, number>();
  /** Keys scheduled for later (addAfter): the earliest schedule of a key wins. */
  private readonly delayed = new Schedule((key) => this.add(key), 'earliest');
  private readonly failures = new Map<string, number>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly name: string;
  private readonly metrics: Metrics | undefined;
  /** The queue's metric labels: one object for the five metric updates of every key processed. */
  private readonly labels: Readonly<{ name: string; controller: string }>;
  private readonly backoff: BackoffPolicy;
  private shuttingDown = false;
  /** The depth last published (queueDepth), undefined before the first. */
  private publishedDepth: number | undefined;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.metrics = options.metrics;
    this.labels = Object.freeze({ name: options.name, controller: options.name });
    this.backoff = options.backoff ?? { baseMs: 5, maxMs: 1000 * 1000 };
  }

  get length(): number {
    return this.queue.length;
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    this.metrics?.queueAdds.inc(this.labels);
    if (this.waiting.has(key)) return;
    this.waiting.set(key, performance.now());
    if (this.processing.has(key)) return; // re-queued by done()
    this.push(key);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(key);
    else this.queue.push(key);
    this.setDepth();
  }

  /**
   * Publishes the queue's depth when it changed: it stays 0 while workers keep up, and setting a
   * gauge hashes its labels. The depth series is this queue's alone.
   */
  private setDepth(): void {
    if (this.queue.length === this.publishedDepth) return;
    this.publishedDepth = this.queue.length;
    this.metrics?.queueDepth.set(this.labels, this.queue.length);
  }

  /**
   * Adds `key` after `ms`; an earlier pending schedule for the same key wins. One timer for all
   * keys, not one each: every probed cluster is scheduled again each interval, and a timer per
   * schedule (its Timeout, closure and record, alive for the whole interval) was old-space
   * garbage on every turn.
   */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (!(ms > 0)) {
      this.add(key); // zero, negative or NaN: now, as setTimeout would
      return;
    }
    this.delayed.set(key, performance.now() + ms);
  }

  /** Re-adds a failed key after its per-key backoff, which grows with each failure. */
  addRateLimited(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    this.metrics?.queueRetries.inc(this.labels);
    const delay = backoffDelay(n, this.backoff);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears a key's failure history after a success. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** The next key to process, or undefined once shut down. Call `done` when finished with it. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) =>
      this.waiters.push((k) => resolve(k === undefined ? undefined : this.take(k))),
    );
  }

  private take(key: string): string {
    const now = performance.now();
    this.processing.set(key, now);
    const added = this.waiting.get(key);
    if (added !== undefined) this.metrics?.queueLatency.observe(this.labels, (now - added) / 1000);
    this.waiting.delete(key);
    this.setDepth();
    return key;
  }

  done(key: string): void {
    const started = this.processing.get(key);
    this.processing.delete(key);
    if (started !== undefined)
      this.metrics?.workDuration.observe(this.labels, (performance.now() - started) / 1000);
    if (this.waiting.has(key) && !this.shuttingDown) this.push(key);
  }

  /** Publishes the in-progress gauges; called periodically. */
  updateProgressMetrics(): void {
    const now = performance.now();
    let total = 0;
    let longest = 0;
    for (const started of this.processing.values()) {
      total += now - started;
      longest = Math.max(longest, now - started);
    }
    this.metrics?.unfinishedWork.set(this.labels, total / 1000);
    this.metrics?.longestRunningProcessor.set(this.labels, longest / 1000);
  }

  /** Stops handing out keys; pending delayed adds are dropped. */
  shutDown(): void {
    this.shuttingDown = true;
    this.delayed.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  get inFlight(): number {
    return this.processing.size;
  }
}
