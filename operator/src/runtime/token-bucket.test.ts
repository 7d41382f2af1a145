import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.ts';

describe('TokenBucket', () => {
  it('gives its burst at once, then tokens at its rate, never more than the burst', () => {
    let now = 0;
    const bucket = new TokenBucket(2, 3, () => now);
    const takes = (n: number) => Array.from({ length: n }, () => bucket.take()).filter(Boolean).length;
    expect(takes(5)).toBe(3);
    now += 499;
    expect(bucket.take()).toBe(false);
    now += 1;
    expect(bucket.take()).toBe(true);
    now += 60_000;
    expect(takes(10)).toBe(3);
  });

  it('keeps a rate under one a second', () => {
    let now = 0;
    const bucket = new TokenBucket(0.5, 1, () => now);
    expect(bucket.take()).toBe(true);
    now += 1999;
    expect(bucket.take()).toBe(false);
    now += 1;
    expect(bucket.take()).toBe(true);
  });

  it('gains nothing from a clock that steps back', () => {
    let now = 10_000;
    const bucket = new TokenBucket(1, 1, () => now);
    expect(bucket.take()).toBe(true);
    now = 0;
    expect(bucket.take()).toBe(false);
    now = 1000;
    expect(bucket.take()).toBe(true);
  });

  it('lets work that cannot wait spend into debt, down to its limit, and others wait it out', () => {
    let now = 0;
    const bucket = new TokenBucket(1, 1, () => now, 3);
    for (let i = 0; i < 10; i++) bucket.spend();
    expect(bucket.available()).toBe(false);
    // Three in debt at most: four seconds to one token.
    now += 3999;
    expect(bucket.available()).toBe(false);
    now += 1;
    expect(bucket.take()).toBe(true);
  });
});
