import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { allInOrder, settledWithin } from './promises.ts';

const later = <T>(ms: number, value: T, fail = false) =>
  new Promise<T>((resolve, reject) =>
    setTimeout(() => (fail ? reject(new Error(String(value))) : resolve(value)), ms),
  );

describe('allInOrder', () => {
  it('resolves as Promise.all does', async () => {
    expect(await allInOrder([later(5, 'a'), later(1, 2)] as const)).toEqual(['a', 2]);
  });

  it('fails with the first failure in the list, whichever arrived first', async () => {
    for (let i = 0; i < 5; i++)
      await expect(allInOrder([later(10, 'record', true), later(1, 'txt', true)])).rejects.toThrow('record');
    await expect(allInOrder([later(10, 'record'), later(1, 'txt', true)])).rejects.toThrow('txt');
  });
});

/** Holds the event loop, as a long GC or a busy reconcile does. */
const stall = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

describe('settledWithin', () => {
  it('gives the answer, the failure, or nothing once the time is up', async () => {
    expect(await settledWithin(later(1, 'a'), 500)).toBe('a');
    await expect(settledWithin(later(1, 'bad', true), 500)).rejects.toThrow('bad');
    const started = performance.now();
    expect(await settledWithin(new Promise(() => undefined), 50)).toBeUndefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(49);
  });

  it('takes an answer that arrived while this process stood still past the deadline for an answer', async () => {
    let arrived = 0;
    for (let i = 0; i < 3; i++) {
      // Another process answers 20 ms in; this one is busy for 800 ms, well past the 100 ms deadline.
      const child = spawn('sh', ['-c', 'sleep 0.02; echo pong'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const answer = new Promise<string>((resolve) =>
        child.stdout.once('data', (d: Buffer) => resolve(`${d}`.trim())),
      );
      const verdict = settledWithin(answer, 100);
      await new Promise((r) => setTimeout(r, 0)); // the child is running
      // Busy in the check phase: the next loop turn runs its timers before it reads the pipe.
      await new Promise((r) => setImmediate(r));
      stall(800);
      if ((await verdict) === 'pong') arrived++;
      await new Promise((r) => child.once('close', r));
    }
    expect(arrived).toBe(3);
  });
});
