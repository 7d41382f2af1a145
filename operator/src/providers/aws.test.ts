import { describe, expect, it } from 'vitest';
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

describe('SharedAwsClients', () => {
  const keys = { accessKeyId: 'AKIA1', secretAccessKey: 's1' };

  it('hands out one client per region, endpoint and credentials', () => {
    const pool = new SharedAwsClients((c) => new FakeClient(c));
    const a = pool.get({ region: 'eu-west-1', credentials: keys }).client;
    expect(pool.get({ region: 'eu-west-1', credentials: { ...keys } }).client).toBe(a);
    expect(pool.get({ region: 'eu-west-2', credentials: keys }).client).not.toBe(a);
    expect(
      pool.get({ region: 'eu-west-1', credentials: { ...keys, secretAccessKey: 's2' } }).client,
    ).not.toBe(a);
    expect(pool.get({ region: 'eu-west-1', credentials: { ...keys, sessionToken: 't' } }).client).not.toBe(a);
    expect(pool.get({ region: 'eu-west-1' }).client).not.toBe(a);
    expect(pool.get({ region: 'eu-west-1', endpointUrl: 'http://vpce' }).client).not.toBe(a);
    expect(pool.size).toBe(6);
    expect(a.config).toMatchObject({ region: 'eu-west-1', credentials: keys, maxAttempts: 3 });
  });

  it('destroys a client only once nobody has held it for the idle time, never one still held', () => {
    let now = 0;
    const pool = new SharedAwsClients(
      (c) => new FakeClient(c),
      60_000,
      () => now,
    );
    const kept = pool.get({ region: 'r1' }); // a cached database provider: held for good
    const check = pool.get({ region: 'r2' }); // a DNS check: released at once
    check.release();
    check.release(); // a second close changes nothing
    now += 61_000;
    const next = pool.get({ region: 'r3' }); // any get sweeps
    expect(check.client.destroyed).toBe(true);
    expect(kept.client.destroyed).toBe(false);
    expect(pool.size).toBe(2);
    // Released and taken again within the idle time: the same client.
    next.release();
    now += 30_000;
    expect(pool.get({ region: 'r3' }).client).toBe(next.client);
    now += 10 * 60_000;
    pool.get({ region: 'r4' });
    expect(kept.client.destroyed).toBe(false);
    expect(next.client.destroyed).toBe(false); // held again by the get above
  });
});
