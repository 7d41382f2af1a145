import { describe, expect, it } from 'vitest';
import { allInOrder } from './promises.ts';

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
