import { createRequire } from 'node:module';
import { ListResourceRecordSetsCommand, Route53Client } from '@aws-sdk/client-route-53';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { awsClientConfig, IDENTITY_FAILURE_MS, rememberingFailure, SharedAwsClients } from './aws.ts';

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

describe('the pod identity', () => {
  it('is the same credentials chain the SDK clients would load themselves (one copy installed)', () => {
    const here = createRequire(import.meta.url);
    for (const client of ['@aws-sdk/client-route-53', '@aws-sdk/client-rds'])
      expect(createRequire(here.resolve(client)).resolve('@aws-sdk/credential-provider-node')).toBe(
        here.resolve('@aws-sdk/credential-provider-node'),
      );
  });

  it('gives a failure back at once for a few seconds, then asks again; a success is not held here', async () => {
    let now = 0;
    let calls = 0;
    let fail = true;
    let stsError = false;
    const chain = async () => {
      calls++;
      if (stsError) throw Object.assign(new Error(`throttled (${calls})`), { name: 'Throttling' });
      if (fail)
        throw Object.assign(new Error(`no identity (${calls})`), { name: 'CredentialsProviderError' });
      return { accessKeyId: 'A', secretAccessKey: 'S' };
    };
    const provider = rememberingFailure(chain, 5_000, () => now);
    await expect(provider()).rejects.toThrow('no identity (1)');
    now = 4_999;
    await expect(provider()).rejects.toThrow('no identity (1)');
    expect(calls).toBe(1);
    now = 5_000;
    fail = false;
    await expect(provider()).resolves.toMatchObject({ accessKeyId: 'A' });
    await provider();
    expect(calls).toBe(3);
    // Anything but "no identity" (STS throttling, say) goes to the caller's retry, not remembered.
    stsError = true;
    await expect(provider()).rejects.toThrow('throttled (4)');
    await expect(provider()).rejects.toThrow('throttled (5)');
  });

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('keeps each command class its middleware chain, built once instead of on every send', async () => {
    const client = new Route53Client(
      awsClientConfig({
        region: 'us-east-1',
        // Nothing listens there: each send fails at once, after its chain was resolved.
        endpointUrl: 'http://127.0.0.1:1',
        credentials: { accessKeyId: 'A', secretAccessKey: 'S' },
        maxAttempts: 1,
      }),
    );
    const resolved = vi.spyOn(ListResourceRecordSetsCommand.prototype, 'resolveMiddleware');
    try {
      for (let i = 0; i < 3; i++)
        await expect(
          client.send(new ListResourceRecordSetsCommand({ HostedZoneId: 'Z1' })),
        ).rejects.toThrow();
      expect(resolved).toHaveBeenCalledTimes(1);
    } finally {
      resolved.mockRestore();
      client.destroy();
    }
  });

  it("is what a real SDK client without credentials uses: the chain's failure is answered again at once", async () => {
    // No identity anywhere, and the metadata service off so the chain fails at once.
    for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) vi.stubEnv(k, undefined);
    vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
    vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/config');
    vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/credentials');
    const client = new Route53Client(awsClientConfig({ region: 'us-east-1' }));
    const resolve = client.config.credentials as () => Promise<unknown>;
    const first = await resolve().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(first).toMatchObject({ name: 'CredentialsProviderError' });
    const second = await resolve().then(
      () => undefined,
      (err: unknown) => err,
    );
    // The same error object: the chain was not run again.
    expect(second).toBe(first);
    expect(IDENTITY_FAILURE_MS).toBeLessThanOrEqual(10_000);
    client.destroy();
    // With credentials given, the SDK's chain is not involved at all.
    expect(
      awsClientConfig({ region: 'us-east-1', credentials: { accessKeyId: 'A', secretAccessKey: 'S' } }),
    ).not.toHaveProperty('credentialDefaultProvider');
  });
});
