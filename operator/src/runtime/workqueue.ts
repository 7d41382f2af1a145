/**
 * A keyed work queue with client-go's guarantees: a key waiting twice is processed once; a key is
 * never processed by two workers at once (an add during processing is held until it finishes);
 * failures back off per key, exponentially with jitter; `addAfter` schedules a key for later.
 */
import { type BackoffPolicy, backoffDelay } from './backoff.ts';
import type { Metrics } from './metrics.ts';

export interface WorkQueueOptions {
  name: string;
  metrics?: Metrics;
  backoff?: BackoffPolicy;
}

/** The longest timer Node keeps (a longer one fires at once); a later schedule waits this long. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class WorkQueue {
  private readonly queue: string[] = [];
  /**
   * Keys waiting to be processed (client-go's dirty set), with when each was added. One map, not
   * a set and a map: each grows and shrinks with every burst of adds, and a shrinking table is a
   * new allocation.
   */
  private readonly waiting = new Map<string, number>();
  private readonly processing = new Map<string, number>();
  /** Keys scheduled for later, by when (performance.now()); `schedule` orders them. */
  private readonly delayed = new Map<string, number>();
  private readonly schedule = new DueTimes();
  /** The one timer, armed for the earliest scheduled key, and when it fires. */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
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
    const at = performance.now() + Math.min(ms, MAX_DELAY_MS);
    const pending = this.delayed.get(key);
    if (pending !== undefined && pending <= at) return;
    // An earlier schedule replaces a later one: the later one's entry stays in `schedule` until
    // its time, and is skipped then (it no longer matches `delayed`).
    this.delayed.set(key, at);
    this.schedule.push(at, key);
    if (this.schedule.size > 2 * this.delayed.size + 1024) this.schedule.rebuild(this.delayed);
    this.arm();
  }

  /** Arms the timer for the earliest scheduled key, if it is not armed for that already. */
  private arm(): void {
    const next = this.schedule.earliest();
    if (next === this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    const wait = Math.min(MAX_DELAY_MS, Math.max(1, Math.ceil(next - performance.now())));
    this.timer = setTimeout(() => this.fire(), wait);
    this.timer.unref();
  }

  /** Adds every key whose time has come, then arms the timer for the next. */
  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    for (let due = this.schedule.popDue(now); due; due = this.schedule.popDue(now)) {
      if (this.delayed.get(due.key) !== due.at) continue; // replaced by an earlier schedule
      this.delayed.delete(due.key);
      this.add(due.key);
    }
    if (!this.shuttingDown) this.arm();
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
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.delayed.clear();
    this.schedule.rebuild(this.delayed);
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  get inFlight(): number {
    return this.processing.size;
  }
}

/**
 * Due times and their keys in a binary min-heap, kept in two parallel arrays: a push or a pop
 * makes no object (but the one `popDue` returns, short-lived), however many keys wait.
 */
class DueTimes {
  private readonly at: number[] = [];
  private readonly keys: string[] = [];

  get size(): number {
    return this.at.length;
  }

  earliest(): number {
    return this.at[0] ?? Number.POSITIVE_INFINITY;
  }

  push(at: number, key: string): void {
    let i = this.at.length;
    this.at.push(at);
    this.keys.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((this.at[parent] as number) <= at) break;
      this.move(parent, i);
      i = parent;
    }
    this.at[i] = at;
    this.keys[i] = key;
  }

  /** The earliest entry if it is due at `now`, removed; else undefined. */
  popDue(now: number): { at: number; key: string } | undefined {
    const at = this.at[0];
    if (at === undefined || at > now) return undefined;
    const key = this.keys[0] as string;
    const lastAt = this.at.pop() as number;
    const lastKey = this.keys.pop() as string;
    const n = this.at.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && (this.at[right] as number) < (this.at[left] as number) ? right : left;
        if ((this.at[child] as number) >= lastAt) break;
        this.move(child, i);
        i = child;
      }
      this.at[i] = lastAt;
      this.keys[i] = lastKey;
    }
    return { at, key };
  }

  /** Starts again from the schedules that still count (dropping the replaced ones). */
  rebuild(current: ReadonlyMap<string, number>): void {
    this.at.length = 0;
    this.keys.length = 0;
    for (const [key, at] of current) this.push(at, key);
  }

  private move(from: number, to: number): void {
    this.at[to] = this.at[from] as number;
    this.keys[to] = this.keys[from] as string;
  }
}
