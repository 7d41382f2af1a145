import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue } from './workqueue.ts';

describe('WorkQueue', () => {
  it('hands out a key added twice only once', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never gives a key to two workers at once: an add while processing waits for done', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    const first = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    const second = q.get();
    let handedOut = false;
    void second.then(() => {
      handedOut = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(handedOut).toBe(false);
    q.done(first as string);
    expect(await second).toBe('a');
  });

  it('backs off per key, growing with each failure, and forgets on success', () => {
    const q = new WorkQueue({ name: 't', backoff: { baseMs: 100, maxMs: 100_000 } });
    const delays = [q.addRateLimited('a'), q.addRateLimited('a'), q.addRateLimited('a')];
    expect(delays[0]).toBeGreaterThanOrEqual(50);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[2]).toBeGreaterThanOrEqual(200);
    expect(delays[2]).toBeLessThanOrEqual(400);
    expect(q.failuresOf('a')).toBe(3);
    q.forget('a');
    expect(q.failuresOf('a')).toBe(0);
    expect(q.failuresOf('b')).toBe(0);
    q.shutDown();
  });

  it('keeps the earliest of two scheduled adds', async () => {
    const q = new WorkQueue({ name: 't' });
    q.addAfter('a', 60_000);
    q.addAfter('a', 1);
    expect(await q.get()).toBe('a');
    q.shutDown();
  });

  it('releases waiting workers on shutdown', async () => {
    const q = new WorkQueue({ name: 't' });
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
  });
});

describe('WorkQueue schedules (addAfter)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Fake timers, and the monotonic clock the queue schedules by. */
  const fakeTime = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });

  /** Takes every key handed out now, in order, marking each done. */
  async function drain(q: WorkQueue): Promise<string[]> {
    const out: string[] = [];
    while (q.length > 0) {
      const key = await q.get();
      if (key === undefined) break;
      out.push(key);
      q.done(key);
    }
    return out;
  }

  it('hands keys out in the order they fall due', async () => {
    fakeTime();
    const q = new WorkQueue({ name: 't' });
    q.addAfter('c', 30);
    q.addAfter('a', 10);
    q.addAfter('b', 20);
    vi.advanceTimersByTime(30);
    expect(await drain(q)).toEqual(['a', 'b', 'c']);
    q.shutDown();
  });

  it('keeps one timer for a fleet scheduled an interval on, however many keys', async () => {
    fakeTime();
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const q = new WorkQueue({ name: 't' });
    for (let i = 0; i < 1_000; i++) q.addAfter(`k${i}`, 5_000 + (i % 10));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(5_010);
    expect(await drain(q)).toHaveLength(1_000);
    // One arming at the first schedule and one per distinct due time after it, not one per key.
    expect(timers.mock.calls.length).toBeLessThanOrEqual(11);
    q.shutDown();
  });

  it('an earlier schedule replaces a later one, which never fires after it', async () => {
    fakeTime();
    const q = new WorkQueue({ name: 't' });
    q.addAfter('a', 200);
    q.addAfter('a', 5);
    vi.advanceTimersByTime(5);
    expect(await drain(q)).toEqual(['a']);
    vi.advanceTimersByTime(1_000);
    expect(q.length).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    q.shutDown();
  });

  it('a key that falls due while it is processed waits for done, then comes once', async () => {
    fakeTime();
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    expect(await q.get()).toBe('a');
    q.addAfter('a', 10);
    vi.advanceTimersByTime(10);
    expect(q.length).toBe(0);
    q.done('a');
    expect(await drain(q)).toEqual(['a']);
    q.shutDown();
  });

  it('a delay that is not a number comes now, and one past what a timer holds waits without spinning', async () => {
    fakeTime();
    const timers = vi.spyOn(globalThis, 'setTimeout');
    const q = new WorkQueue({ name: 't' });
    q.addAfter('now', Number.NaN);
    expect(await drain(q)).toEqual(['now']);
    q.addAfter('later', 2 ** 40);
    vi.advanceTimersByTime(60_000);
    expect(q.length).toBe(0);
    expect(timers.mock.calls.length).toBe(1);
    q.shutDown();
  });

  it('a key rescheduled earlier thousands of times comes once, at the earliest', async () => {
    fakeTime();
    const q = new WorkQueue({ name: 't' });
    q.addAfter('b', 2_500);
    // Each replaces the one before; past 1,024 replaced entries the schedule is rebuilt.
    for (let ms = 5_000; ms > 2_000; ms--) q.addAfter('a', ms);
    vi.advanceTimersByTime(2_001);
    expect(await drain(q)).toEqual(['a']);
    vi.advanceTimersByTime(10_000);
    expect(await drain(q)).toEqual(['b']);
    q.shutDown();
  });

  it('shutting down drops what was scheduled and its timer', () => {
    fakeTime();
    const q = new WorkQueue({ name: 't' });
    q.addAfter('a', 100);
    q.shutDown();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(q.length).toBe(0);
  });

  it('matches a model: each key comes once its earliest pending schedule is due, in due order', async () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('schedule' as const),
        key: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
        ms: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 1, max: 5_000 })),
      }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 60 }) }),
    );
    let replaced = 0;
    let delivered = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), async (ops) => {
        fakeTime();
        try {
          const q = new WorkQueue({ name: 't' });
          const due = new Map<string, number>();
          let now = 0;
          for (const o of ops) {
            if (o.kind === 'schedule') {
              const at = now + o.ms;
              const pending = due.get(o.key);
              if (pending !== undefined && at < pending) replaced++;
              if (pending === undefined || at < pending) due.set(o.key, at);
              q.addAfter(o.key, o.ms);
              continue;
            }
            now += o.ms;
            vi.advanceTimersByTime(o.ms);
            const expected = [...due].filter(([, at]) => at <= now).sort((x, y) => x[1] - y[1]);
            for (const [key] of expected) due.delete(key);
            const out = await drain(q);
            delivered += out.length;
            expect([...out].sort()).toEqual(expected.map(([key]) => key).sort());
            // In due order (keys due at the same time in either order).
            const times = out.map((key) => expected.find(([k]) => k === key)?.[1] ?? -1);
            expect(times).toEqual([...times].sort((x, y) => x - y));
          }
          q.shutDown();
        } finally {
          vi.useRealTimers();
        }
      }),
      { numRuns: 300 },
    );
    // The interesting cases were reached: schedules replaced by earlier ones, keys handed out.
    expect(replaced).toBeGreaterThan(50);
    expect(delivered).toBeGreaterThan(150);
  });
});
