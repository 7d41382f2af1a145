/**
 * Keys with one time each, on one timer: when a key's time comes, `onDue(key)`. Setting a key
 * again keeps the earliest time (`keep: 'earliest'`, the work queue's delayed adds) or the latest
 * (`keep: 'latest'`, a deadline that a refresh moves on). Times are performance.now() values.
 */

/** The longest timer Node keeps (a longer one fires at once); a later time waits this long. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class Schedule {
  /** Each key's time; the heap's entries that no longer match it are skipped when due. */
  private readonly times = new Map<string, number>();
  private readonly heap = new DueTimes();
  /** The one timer, armed for the earliest time, and when it fires. */
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly onDue: (key: string) => void;
  private readonly keep: 'earliest' | 'latest';

  constructor(onDue: (key: string) => void, keep: 'earliest' | 'latest') {
    this.onDue = onDue;
    this.keep = keep;
  }

  set(key: string, at: number): void {
    const pending = this.times.get(key);
    if (pending !== undefined && (this.keep === 'earliest' ? pending <= at : pending >= at)) return;
    this.put(key, at, pending);
  }

  /**
   * Sets `key` to `at` whatever it was set to (a deadline worked out again, perhaps sooner); a
   * time within `toleranceMs` of the one set is left as it is.
   */
  replace(key: string, at: number, toleranceMs = 0): void {
    const pending = this.times.get(key);
    if (pending === undefined || Math.abs(pending - at) > toleranceMs) this.put(key, at, pending);
  }

  private put(key: string, rawAt: number, pending: number | undefined): void {
    if (Number.isNaN(rawAt)) return;
    // Infinity too: the longest timer Node keeps, and again from there.
    const at = Math.min(rawAt, performance.now() + MAX_DELAY_MS);
    this.times.set(key, at);
    // Later than its entry in the heap: that entry, due first, moves on when it comes (fire). A
    // refresh every few seconds adds nothing to the heap and wakes no timer.
    if (pending !== undefined && at > pending) return;
    // Sooner: a new entry; the old one stays until its time and is skipped then.
    this.heap.push(at, key);
    if (this.heap.size > 2 * this.times.size + 1024) this.heap.rebuild(this.times);
    this.arm();
  }

  delete(key: string): void {
    this.times.delete(key);
  }

  /** Drops every key and stops the timer. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    this.times.clear();
    this.heap.rebuild(this.times);
  }

  /** Arms the timer for the earliest time, if it is not armed for that already. */
  private arm(): void {
    const next = this.heap.earliest();
    if (next === this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    const wait = Math.min(MAX_DELAY_MS, Math.max(1, Math.ceil(next - performance.now())));
    this.timer = setTimeout(() => this.fire(), wait);
    this.timer.unref();
  }

  /** Hands out every key whose time has come, then arms the timer for the next. */
  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    for (let due = this.heap.popDue(now); due; due = this.heap.popDue(now)) {
      const at = this.times.get(due.key);
      // Deleted, or set sooner since (that entry comes, or came, on its own).
      if (at === undefined || at < due.at) continue;
      if (at > due.at) {
        this.heap.push(at, due.key); // moved on: due then
        continue;
      }
      this.times.delete(due.key);
      this.onDue(due.key);
    }
    this.arm();
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

  /** Starts again from the times that still count (dropping the replaced ones). */
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
