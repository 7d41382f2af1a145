import { afterEach, describe, expect, it, vi } from 'vitest';
import { SharedAwsClients } from './aws.ts';

class FakeClient {
  readonly config: unknown;
  destroyed = false;
  constructor(config: unknown) {
    this.config = config;
  }
  destroy() {
    this.destroyed = true;
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('SharedAwsClients', () => {
  const keys = { accessKeyId: 'AKIA1', secretAccessKey: 's1' };

  it('hands out one client per region, endpoint and credentials', () => {
    const pool = new SharedAwsClients((c) => new FakeClient(c));
    const a = pool.get({ region: 'eu-west-1', credentials: keys });
    expect(pool.get({ region: 'eu-west-1', credentials: { ...keys } })).toBe(a);
    expect(pool.get({ region: 'eu-west-2', credentials: keys })).not.toBe(a);
    expect(pool.get({ region: 'eu-west-1', credentials: { ...keys, secretAccessKey: 's2' } })).not.toBe(a);
    expect(pool.get({ region: 'eu-west-1', credentials: { ...keys, sessionToken: 't' } })).not.toBe(a);
    expect(pool.get({ region: 'eu-west-1' })).not.toBe(a);
    expect(pool.get({ region: 'eu-west-1', endpointUrl: 'http://vpce' })).not.toBe(a);
    expect(pool.size).toBe(6);
    expect(a.config).toMatchObject({ region: 'eu-west-1', credentials: keys, maxAttempts: 3 });
  });

  it('destroys the least recently used client past its bound, after a grace for calls in flight', () => {
    vi.useFakeTimers();
    const pool = new SharedAwsClients((c) => new FakeClient(c), 2);
    const first = pool.get({ region: 'r1' });
    const second = pool.get({ region: 'r2' });
    expect(pool.get({ region: 'r1' })).toBe(first); // r1 used again: r2 is now the oldest
    pool.get({ region: 'r3' });
    expect(pool.size).toBe(2);
    expect(second.destroyed).toBe(false);
    vi.advanceTimersByTime(120_000);
    expect(second.destroyed).toBe(true);
    expect(first.destroyed).toBe(false);
    expect(pool.get({ region: 'r2' })).not.toBe(second);
  });
});
