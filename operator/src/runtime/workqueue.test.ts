import { describe, expect, it } from 'vitest';
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
