/**
 * The DigitalOcean DNS adapter against the local DigitalOcean API stand-in: the read-check-write
 * compare-and-swap, ownership, idempotence, and how every kind of failure is classified.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DigitalOceanDnsProvider, ThrottledError } from '../../../operator/src/providers/dns/digitalocean.ts';
import type { DnsChange, DnsRecordRef } from '../../../operator/src/providers/dns/port.ts';
import { isProviderError, type ProviderError } from '../../../operator/src/providers/errors.ts';
import { DigitalOceanApiServer } from '../../harness/digitalocean-api.ts';

const ZONE = 'example.com';
const RECORD: DnsRecordRef = { zone: ZONE, name: 'shop-db.example.com', type: 'CNAME' };
const OWNER = 'shop/orders';
const AMS = 'shop-ams3.db.example.com';
const NYC = 'shop-nyc3.db.example.com';

let api: DigitalOceanApiServer;

function provider(opts: { token?: string; timeoutMs?: number; pageSize?: number } = {}) {
  return new DigitalOceanDnsProvider({
    token: opts.token ?? api.token,
    apiUrl: api.url,
    timeoutMs: opts.timeoutMs ?? 5_000,
    ...(opts.pageSize ? { pageSize: opts.pageSize } : {}),
  });
}

function change(over: Partial<DnsChange> = {}): DnsChange {
  return { record: RECORD, value: AMS, ttl: 60, owner: OWNER, epoch: 1, ...over };
}

async function rejection(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isProviderError(err)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  return err;
}

const writes = () => api.requests.filter((r) => r.method !== 'GET');

beforeEach(async () => {
  api = await DigitalOceanApiServer.start();
  api.addDomain(ZONE);
});

afterEach(async () => {
  await api.stop();
});

describe('DigitalOcean DNS: compare-and-swap', () => {
  it('creates an absent record with its two ownership TXT records, relative to the domain', async () => {
    const dns = provider();
    expect(await dns.read(RECORD)).toEqual({});
    expect(await dns.apply(change())).toEqual({ changed: true });

    const [cname] = api.recordsAt(ZONE, 'shop-db.example.com', 'CNAME');
    expect(cname).toMatchObject({ name: 'shop-db', data: AMS, ttl: 60 });
    const txt = api.recordsAt(ZONE, '_failover.shop-db.example.com', 'TXT');
    expect(txt.map((r) => [r.name, r.data])).toEqual([
      ['_failover.shop-db', `owner=${OWNER}`],
      ['_failover.shop-db', 'epoch=1'],
    ]);
    expect(await dns.read(RECORD)).toEqual({ value: AMS, ttl: 60, owner: OWNER, epoch: 1 });
  });

  it('writes an apex record as "@" and its TXT as "_failover"', async () => {
    const apex: DnsRecordRef = { zone: ZONE, name: ZONE, type: 'A' };
    const dns = provider();
    await dns.apply(change({ record: apex, value: '192.0.2.10' }));
    expect(api.recordsAt(ZONE, ZONE, 'A').map((r) => r.name)).toEqual(['@']);
    expect(api.recordsAt(ZONE, `_failover.${ZONE}`, 'TXT').map((r) => r.name)).toEqual([
      '_failover',
      '_failover',
    ]);
    expect(await dns.read(apex)).toMatchObject({ value: '192.0.2.10', owner: OWNER, epoch: 1 });
  });

  it('swaps the value by record id when the record still holds the expected value, and bumps the epoch', async () => {
    const dns = provider();
    await dns.apply(change());
    const [before] = api.recordsAt(ZONE, RECORD.name, 'CNAME');

    expect(await dns.apply(change({ expected: AMS, value: NYC, epoch: 2 }))).toEqual({ changed: true });
    const after = api.recordsAt(ZONE, RECORD.name, 'CNAME');
    expect(after).toHaveLength(1);
    expect(after[0]?.id).toBe(before?.id);
    expect(await dns.read(RECORD)).toEqual({ value: NYC, ttl: 60, owner: OWNER, epoch: 2 });
    expect(api.requestsMatching({ method: 'PUT' })).toHaveLength(2); // the CNAME, then the epoch TXT
  });

  it('refuses with PreconditionFailed when the record was changed behind its back, writing nothing', async () => {
    const dns = provider();
    await dns.apply(change());
    const [cname] = api.recordsAt(ZONE, RECORD.name, 'CNAME');
    api.setRecordData(ZONE, cname?.id ?? 0, 'someone-else.example.net');
    api.requests.length = 0;

    const err = await rejection(dns.apply(change({ expected: AMS, value: NYC, epoch: 2 })));
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.message).toContain('someone-else.example.net');
    expect(writes()).toEqual([]);
  });

  it('refuses with PreconditionFailed when a record that must be absent exists, or one expected is gone', async () => {
    const dns = provider();
    await dns.apply(change());
    expect((await rejection(dns.apply(change({ value: NYC, epoch: 2 })))).reason).toBe('PreconditionFailed');

    const [cname] = api.recordsAt(ZONE, RECORD.name, 'CNAME');
    api.removeRecord(ZONE, cname?.id ?? 0);
    expect((await rejection(dns.apply(change({ expected: AMS, value: NYC, epoch: 2 })))).reason).toBe(
      'PreconditionFailed',
    );
  });

  it('detects a writer that races between its write and its re-read, and reports PreconditionFailed', async () => {
    const dns = provider();
    await dns.apply(change());
    const [cname] = api.recordsAt(ZONE, RECORD.name, 'CNAME');
    // Another client writes right after our PUT lands, before our confirming read.
    api.afterNext({ method: 'PUT', path: /\/records\/\d+$/ }, () =>
      api.setRecordData(ZONE, cname?.id ?? 0, 'racer.example.net'),
    );

    const err = await rejection(dns.apply(change({ expected: AMS, value: NYC, epoch: 2 })));
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.message).toContain('another writer');
    // The epoch only follows a change that won.
    expect((await dns.read(RECORD)).epoch).toBe(1);
  });

  it('takes back its own record and owner TXT when another owner claims the name mid-create', async () => {
    const dns = provider();
    let theirs = 0;
    // Right after our owner TXT is created, another owner claims the name with its own TXT.
    api.afterNext({ method: 'POST' }, () => {
      theirs = api.addRecord(ZONE, { type: 'TXT', name: '_failover.shop-db', data: 'owner=intruder' }).id;
    });
    const err = await rejection(dns.apply(change()));
    expect(err.reason).toBe('PreconditionFailed');
    expect(api.recordsAt(ZONE, RECORD.name, 'CNAME')).toEqual([]);
    expect(api.recordsAt(ZONE, '_failover.shop-db.example.com', 'TXT').map((r) => r.id)).toEqual([theirs]);
  });

  it('reports a CNAME created by someone else mid-create as PreconditionFailed, not as Rejected', async () => {
    const dns = provider();
    // Right after our owner TXT is created, another writer creates the CNAME; the API then
    // refuses ours with 422 (a CNAME cannot share its name).
    api.afterNext({ method: 'POST' }, () => {
      api.addRecord(ZONE, { type: 'CNAME', name: 'shop-db', data: 'racer.example.net' });
    });
    const err = await rejection(dns.apply(change()));
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.retryable).toBe(true);
    expect(api.recordsAt(ZONE, '_failover.shop-db.example.com', 'TXT')).toEqual([]);
    expect(api.recordsAt(ZONE, RECORD.name, 'CNAME').map((r) => r.data)).toEqual(['racer.example.net']);
  });

  it('is idempotent: re-applying what is already there sends no write and reports changed: false', async () => {
    const dns = provider();
    await dns.apply(change());
    await dns.apply(change({ expected: AMS, value: NYC, epoch: 2 }));
    api.requests.length = 0;

    expect(await dns.apply(change({ expected: AMS, value: NYC, epoch: 2 }))).toEqual({ changed: false });
    expect(writes()).toEqual([]);
  });

  it('finishes a change interrupted after the record was written by writing only the epoch', async () => {
    const dns = provider();
    await dns.apply(change());
    const [cname] = api.recordsAt(ZONE, RECORD.name, 'CNAME');
    api.setRecordData(ZONE, cname?.id ?? 0, NYC); // as if we crashed before the epoch TXT
    api.requests.length = 0;

    expect(await dns.apply(change({ expected: AMS, value: NYC, epoch: 2 }))).toEqual({ changed: true });
    expect(writes().map((r) => r.method)).toEqual(['PUT']);
    expect((await dns.read(RECORD)).epoch).toBe(2);
  });

  it('never lowers the epoch', async () => {
    const dns = provider();
    await dns.apply(change({ epoch: 5 }));
    const err = await rejection(dns.apply(change({ expected: AMS, value: NYC, epoch: 4 })));
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.message).toContain('epoch 5');
  });

  it('never moves the epoch back when a newer decider wrote the same value while it applied', async () => {
    const dns = provider();
    await dns.apply(change());
    const epochTxt = () =>
      api.recordsAt(ZONE, '_failover.shop-db.example.com', 'TXT').find((r) => r.data.startsWith('epoch='));
    // Right after our PUT lands, a decider at epoch 3 has written the same target and its epoch.
    api.afterNext({ method: 'PUT', path: /\/records\/\d+$/ }, () =>
      api.setRecordData(ZONE, epochTxt()?.id ?? 0, 'epoch=3'),
    );
    const err = await rejection(dns.apply(change({ expected: AMS, value: NYC, epoch: 2 })));
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.message).toContain('epoch 3');
    expect(await dns.read(RECORD)).toMatchObject({ value: NYC, epoch: 3 });
  });

  it('changes the TTL alone at the same epoch (a drill lowers it, then puts it back)', async () => {
    const dns = provider();
    await dns.apply(change());
    api.requests.length = 0;
    expect(await dns.apply(change({ expected: AMS, ttl: 30 }))).toEqual({ changed: true });
    expect(writes().map((r) => r.method)).toEqual(['PUT']);
    expect(await dns.read(RECORD)).toEqual({ value: AMS, ttl: 30, owner: OWNER, epoch: 1 });
    expect(await dns.apply(change({ expected: AMS, ttl: 30 }))).toEqual({ changed: false });
  });

  it('reads every value of a name with several records, as the other providers do', async () => {
    const a: DnsRecordRef = { zone: ZONE, name: 'shop-db.example.com', type: 'A' };
    const dns = provider();
    await dns.apply(change({ record: a, value: '192.0.2.10' }));
    api.addRecord(ZONE, { type: 'A', name: 'shop-db', data: '192.0.2.9' });
    expect((await dns.read(a)).value).toBe('192.0.2.10, 192.0.2.9');
  });

  it('reads ownership TXT strings across pages', async () => {
    for (let i = 0; i < 5; i++)
      api.addRecord(ZONE, { type: 'TXT', name: '_failover.shop-db', data: `note=${i}` });
    const dns = provider({ pageSize: 2 });
    await dns.apply(change());
    expect(await dns.read(RECORD)).toMatchObject({ owner: OWNER, epoch: 1 });
    expect(api.requestsMatching({ method: 'GET' }).some((r) => r.query.page === '4')).toBe(true);
  });
});

describe('DigitalOcean DNS: ownership', () => {
  it('refuses a record whose TXT names another owner', async () => {
    api.addRecord(ZONE, { type: 'CNAME', name: 'shop-db', data: `${AMS}.` });
    api.addRecord(ZONE, { type: 'TXT', name: '_failover.shop-db', data: 'owner=other/team' });
    const err = await rejection(provider().apply(change({ expected: AMS, value: NYC })));
    expect(err.reason).toBe('OwnershipConflict');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('other/team');
    expect(writes()).toEqual([]);
  });

  it('refuses an existing record without an ownership TXT (one it did not create)', async () => {
    api.addRecord(ZONE, { type: 'CNAME', name: 'shop-db', data: `${AMS}.` });
    const err = await rejection(provider().apply(change({ expected: AMS, value: NYC })));
    expect(err.reason).toBe('OwnershipConflict');
    expect(err.message).toContain('_failover.shop-db.example.com');
    expect(writes()).toEqual([]);
  });

  it('refuses to create a record when another owner already claimed the name', async () => {
    api.addRecord(ZONE, { type: 'TXT', name: '_failover.shop-db', data: 'owner=other/team' });
    expect((await rejection(provider().apply(change()))).reason).toBe('OwnershipConflict');
  });
});

describe('DigitalOcean DNS: remove (an isolated drill cleans up its drill record)', () => {
  const DRILL: DnsRecordRef = { zone: ZONE, name: '_drill.shop-db.example.com', type: 'CNAME' };

  it('DELETEs the record, then the epoch and owner TXT by id; a second remove sends nothing', async () => {
    const dns = provider();
    await dns.apply(change({ record: DRILL, epoch: 3 }));
    const [cname] = api.recordsAt(ZONE, DRILL.name, 'CNAME');
    const txt = api.recordsAt(ZONE, `_failover.${DRILL.name}`, 'TXT');
    const byData = (data: string) => txt.find((r) => r.data === data)?.id;
    api.requests.length = 0;

    expect(await dns.remove(DRILL, OWNER)).toEqual({ removed: true });
    expect(await dns.read(DRILL)).toEqual({});
    // The record first and the owner string last: an interrupted remove leaves proof of ownership.
    expect(writes().map((r) => `${r.method} ${r.path}`)).toEqual(
      [cname?.id, byData('epoch=3'), byData(`owner=${OWNER}`)].map(
        (id) => `DELETE /v2/domains/${ZONE}/records/${id}`,
      ),
    );
    api.requests.length = 0;
    expect(await dns.remove(DRILL, OWNER)).toEqual({ removed: false });
    expect(writes()).toEqual([]);
    // The next drill creates it again.
    expect(await dns.apply(change({ record: DRILL, epoch: 4 }))).toEqual({ changed: true });
  });

  it('deletes an ownership TXT naming it that was left alone, and leaves TXT records it did not write', async () => {
    api.addRecord(ZONE, { type: 'TXT', name: '_failover._drill.shop-db', data: `owner=${OWNER}` });
    api.addRecord(ZONE, { type: 'TXT', name: '_failover._drill.shop-db', data: 'epoch=2' });
    api.addRecord(ZONE, { type: 'TXT', name: '_failover._drill.shop-db', data: 'note=keep' });
    expect(await provider().remove(DRILL, OWNER)).toEqual({ removed: true });
    expect(api.recordsAt(ZONE, `_failover.${DRILL.name}`, 'TXT').map((r) => r.data)).toEqual(['note=keep']);
  });

  it('counts a record another remover deleted first (404) as deleted', async () => {
    const dns = provider();
    await dns.apply(change({ record: DRILL }));
    const [cname] = api.recordsAt(ZONE, DRILL.name, 'CNAME');
    // Right after our two listings (record and TXT), another remover deletes the record.
    api.afterNext({ method: 'GET' }, () =>
      api.afterNext({ method: 'GET' }, () => api.removeRecord(ZONE, cname?.id ?? 0)),
    );
    api.requests.length = 0;
    expect(await dns.remove(DRILL, OWNER)).toEqual({ removed: true });
    expect(writes().map((r) => r.status)).toEqual([404, 204, 204]);
    expect(await dns.read(DRILL)).toEqual({});
  });

  it("never deletes another owner's record, and sends nothing", async () => {
    await provider().apply(change({ record: DRILL, owner: 'other/team' }));
    api.requests.length = 0;
    const err = await rejection(provider().remove(DRILL, OWNER));
    expect(err.reason).toBe('OwnershipConflict');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('names owner "other/team", not "shop/orders"');
    expect(writes()).toEqual([]);
    expect(await provider().read(DRILL)).toEqual({ value: AMS, ttl: 60, owner: 'other/team', epoch: 1 });
  });

  it('never deletes a record whose TXT strings name us and another owner', async () => {
    await provider().apply(change({ record: DRILL }));
    api.addRecord(ZONE, { type: 'TXT', name: '_failover._drill.shop-db', data: 'owner=other/team' });
    api.requests.length = 0;
    expect((await rejection(provider().remove(DRILL, OWNER))).reason).toBe('OwnershipConflict');
    expect(writes()).toEqual([]);
  });

  it('never deletes a record without an ownership TXT, and sends nothing', async () => {
    api.addRecord(ZONE, { type: 'CNAME', name: '_drill.shop-db', data: `${AMS}.` });
    api.requests.length = 0;
    const err = await rejection(provider().remove(DRILL, OWNER));
    expect(err.reason).toBe('OwnershipConflict');
    expect(err.message).toContain('without an ownership TXT record at _failover._drill.shop-db.example.com');
    expect(writes()).toEqual([]);
    expect(api.recordsAt(ZONE, DRILL.name, 'CNAME')).toHaveLength(1);
  });
});

describe('DigitalOcean DNS: errors', () => {
  it('maps a bad token to AuthenticationFailed and says what to check', async () => {
    const err = await rejection(provider({ token: 'dop_v1_wrong' }).read(RECORD));
    expect(err.reason).toBe('AuthenticationFailed');
    expect(err.message).toContain('Unable to authenticate you');
    expect(err.message).toContain('tokenSecretRef');
  });

  it('maps an unknown domain to NotFound', async () => {
    const err = await rejection(
      provider().read({ zone: 'missing.example', name: 'db.missing.example', type: 'A' }),
    );
    expect(err.reason).toBe('NotFound');
    expect(err.retryable).toBe(false);
  });

  it('maps 429 to a retryable Throttled carrying the Retry-After hint', async () => {
    api.failNext(1, { status: 429, retryAfterSeconds: 7 });
    const err = await rejection(provider().read(RECORD));
    expect(err).toBeInstanceOf(ThrottledError);
    expect(err.reason).toBe('Throttled');
    expect(err.retryable).toBe(true);
    expect((err as ThrottledError).retryAfterMs).toBe(7_000);
  });

  it('maps 5xx to a retryable ProviderError, and succeeds once the server recovers', async () => {
    const dns = provider();
    api.failNext(1, { status: 503, method: 'POST' });
    const err = await rejection(dns.apply(change()));
    expect(err.reason).toBe('ProviderError');
    expect(err.retryable).toBe(true);
    expect(await dns.apply(change())).toEqual({ changed: true });
    expect(await dns.read(RECORD)).toMatchObject({ value: AMS, owner: OWNER, epoch: 1 });
  });

  it('maps a dropped connection to a retryable error', async () => {
    api.dropNext(1);
    const err = await rejection(provider().read(RECORD));
    expect(err.retryable).toBe(true);
  });

  it('maps a stopped server to Unreachable', async () => {
    const dns = provider();
    await api.stop();
    const err = await rejection(dns.read(RECORD));
    expect(err.reason).toBe('Unreachable');
    expect(err.retryable).toBe(true);
  });

  it('maps a server slower than the deadline to Timeout', async () => {
    api.latencyMs = 3_000;
    const started = Date.now();
    const err = await rejection(provider({ timeoutMs: 300 }).read(RECORD));
    expect(err.reason).toBe('Timeout');
    expect(err.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(2_500);
  });

  it('refuses a TTL DigitalOcean would not accept, before sending anything, saying what to set', async () => {
    const err = await rejection(provider().apply(change({ ttl: 5 })));
    expect(err.reason).toBe('Rejected');
    expect(err.message).toContain('spec.dns.ttlSeconds');
    expect(api.requests).toEqual([]);
  });

  it('refuses a record name outside its zone', async () => {
    const err = await rejection(provider().read({ zone: ZONE, name: 'db.example.org', type: 'A' }));
    expect(err.reason).toBe('Rejected');
    expect(err.message).toContain('spec.dns.name');
  });
});
