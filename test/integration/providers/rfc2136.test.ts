/**
 * The RFC 2136 provider and the DNS verifier against a real BIND 9 `named`: BIND accepts our
 * TSIG signatures and we accept its own, every change is a compare-and-swap the server enforces,
 * and each way a server can fail maps to the ProviderError the controller acts on. Records are
 * changed behind the provider's back with BIND's own nsupdate, and checked with dig.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DnsChange, DnsRecordRef, DnsRecordType } from '../../../operator/src/providers/dns/port.ts';
import {
  Rfc2136DnsProvider,
  type Rfc2136ProviderOptions,
} from '../../../operator/src/providers/dns/rfc2136.ts';
import { DirectDnsVerifier, findAuthoritativeServers } from '../../../operator/src/providers/dns/verifier.ts';
import { type BindOptions, type BindServer, startBind } from '../../harness/bind.ts';
import { waitFor } from '../../harness/wait.ts';

const started: BindServer[] = [];
afterAll(async () => {
  await Promise.all(started.map((server) => server.stop()));
});

async function bind(opts: BindOptions = {}): Promise<BindServer> {
  const server = await startBind(opts);
  started.push(server);
  return server;
}

function providerFor(server: BindServer, options: Partial<Rfc2136ProviderOptions> = {}): Rfc2136DnsProvider {
  return new Rfc2136DnsProvider({ host: server.host, port: server.port, key: server.key, ...options });
}

function ref(server: BindServer, label: string, type: DnsRecordType = 'A'): DnsRecordRef {
  return { zone: server.zone, name: `${label}.${server.zone}`, type };
}

/** UDP and TCP sockets this process holds open. */
function dnsSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap' || r === 'TCPSocketWrap').length;
}

const change = (
  record: DnsRecordRef,
  fields: Omit<DnsChange, 'record' | 'ttl' | 'owner'> & Partial<DnsChange>,
) => ({
  record,
  ttl: 30,
  owner: 'operator-a',
  ...fields,
});

describe('the RFC 2136 provider against BIND', () => {
  let dns: BindServer;
  let provider: Rfc2136DnsProvider;
  beforeAll(async () => {
    dns = await bind({ name: 'rfc2136', records: ['legacy 60 IN A 192.0.2.10'] });
    provider = providerFor(dns);
  });

  it('creates an absent record together with its ownership TXT', async () => {
    const record = ref(dns, 'create');
    expect(await provider.read(record)).toEqual({});
    expect(await provider.apply(change(record, { value: '10.0.0.1', epoch: 1, ttl: 45 }))).toEqual({
      changed: true,
    });
    expect(await provider.read(record)).toEqual({
      value: '10.0.0.1',
      ttl: 45,
      owner: 'operator-a',
      epoch: 1,
    });
    expect(await dns.dig(record.name, 'A')).toEqual(['10.0.0.1']);
    expect(await dns.dig(`_failover.${record.name}`, 'TXT')).toEqual(['"owner=operator-a" "epoch=1"']);
  });

  it('holds no socket between calls, so close has nothing to release (and may be called twice)', async () => {
    const own = providerFor(dns);
    const before = dnsSockets();
    await own.apply(change(ref(dns, 'close'), { value: '10.0.9.1', epoch: 1 }));
    // Each exchange closes its own socket once answered.
    await waitFor(() => dnsSockets() <= before, {
      description: 'the exchanges to close their sockets',
      timeoutMs: 5_000,
    });
    await own.close();
    await own.close();
  });

  it('swaps the value when the record still holds the expected one', async () => {
    const record = ref(dns, 'swap');
    await provider.apply(change(record, { value: '10.0.1.1', epoch: 1 }));
    const result = await provider.apply(
      change(record, { expected: '10.0.1.1', value: '10.0.1.2', epoch: 2 }),
    );
    expect(result).toEqual({ changed: true });
    expect(await dns.dig(record.name, 'A')).toEqual(['10.0.1.2']);
    expect(await provider.read(record)).toMatchObject({ value: '10.0.1.2', owner: 'operator-a', epoch: 2 });
  });

  it('sends nothing when the same change is applied again', async () => {
    const record = ref(dns, 'again');
    const same = change(record, { value: '10.0.2.1', epoch: 7 });
    expect(await provider.apply(same)).toEqual({ changed: true });
    const serial = await dns.soaSerial();
    expect(await provider.apply(same)).toEqual({ changed: false });
    expect(await provider.apply({ ...same, expected: '10.0.2.0' })).toEqual({ changed: false });
    // Every accepted update bumps the serial: an unchanged serial means nothing was written.
    expect(await dns.soaSerial()).toBe(serial);
  });

  it('fails the precondition when the record was changed behind its back', async () => {
    const record = ref(dns, 'behind');
    await provider.apply(change(record, { value: '10.0.3.1', epoch: 1 }));
    await dns.nsupdate([`update delete ${record.name} A`, `update add ${record.name} 30 A 10.0.3.99`]);
    await expect(
      provider.apply(change(record, { expected: '10.0.3.1', value: '10.0.3.2', epoch: 2 })),
    ).rejects.toMatchObject({
      name: 'ProviderError',
      reason: 'PreconditionFailed',
      message: expect.stringMatching(/10\.0\.3\.99/),
    });
    expect(await dns.dig(record.name, 'A')).toEqual(['10.0.3.99']);
  });

  describe('the server enforces the compare-and-swap', () => {
    // observe() and compareAndSwap() are apply's two halves; a change between them is a
    // concurrent writer that only the UPDATE's prerequisites can catch.
    it('when the record changes between read and write (NXRRSET)', async () => {
      const record = ref(dns, 'race-value');
      await provider.apply(change(record, { value: '10.0.4.1', epoch: 1 }));
      const observed = await provider.observe(record);
      await dns.nsupdate([`update delete ${record.name} A`, `update add ${record.name} 30 A 10.0.4.99`]);
      await expect(
        provider.compareAndSwap(
          change(record, { expected: '10.0.4.1', value: '10.0.4.2', epoch: 2 }),
          observed,
        ),
      ).rejects.toMatchObject({ reason: 'PreconditionFailed', message: expect.stringMatching(/NXRRSET/) });
      expect(await dns.dig(record.name, 'A')).toEqual(['10.0.4.99']);
      expect(await provider.read(record)).toMatchObject({ epoch: 1 });
    });

    it('when only the ownership TXT changes between read and write (NXRRSET)', async () => {
      const record = ref(dns, 'race-epoch');
      await provider.apply(change(record, { value: '10.0.5.1', epoch: 1 }));
      const observed = await provider.observe(record);
      const txt = `_failover.${record.name}`;
      await dns.nsupdate([
        `update delete ${txt} TXT`,
        `update add ${txt} 30 TXT "owner=operator-a" "epoch=5"`,
      ]);
      await expect(
        provider.compareAndSwap(
          change(record, { expected: '10.0.5.1', value: '10.0.5.2', epoch: 2 }),
          observed,
        ),
      ).rejects.toMatchObject({ reason: 'PreconditionFailed' });
      expect(await dns.dig(record.name, 'A')).toEqual(['10.0.5.1']);
    });

    it('when a record appears between read and create (YXRRSET)', async () => {
      const record = ref(dns, 'race-create');
      const observed = await provider.observe(record);
      expect(observed.state).toEqual({});
      await dns.nsupdate([`update add ${record.name} 30 A 10.0.6.99`]);
      await expect(
        provider.compareAndSwap(change(record, { value: '10.0.6.1', epoch: 1 }), observed),
      ).rejects.toMatchObject({
        reason: 'PreconditionFailed',
        message: expect.stringMatching(/YXRRSET/),
      });
      expect(await dns.dig(record.name, 'A')).toEqual(['10.0.6.99']);
      expect(await dns.dig(`_failover.${record.name}`, 'TXT')).toEqual([]);
    });

    it('so that of two operators promoting at once exactly one wins', async () => {
      const record = ref(dns, 'race-two');
      await provider.apply(change(record, { value: '10.0.7.1', epoch: 1 }));
      const other = providerFor(dns);
      const results = await Promise.allSettled([
        provider.apply(change(record, { expected: '10.0.7.1', value: '10.0.7.2', epoch: 2 })),
        other.apply(change(record, { expected: '10.0.7.1', value: '10.0.7.3', epoch: 2 })),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]?.status === 'rejected' && lost[0].reason).toMatchObject({
        reason: 'PreconditionFailed',
      });
      const winner = results[0]?.status === 'fulfilled' ? '10.0.7.2' : '10.0.7.3';
      expect(await dns.dig(record.name, 'A')).toEqual([winner]);
    });
  });

  it('never takes over a record that has no ownership TXT', async () => {
    const record = ref(dns, 'legacy');
    await expect(
      provider.apply(change(record, { expected: '192.0.2.10', value: '10.0.8.1', epoch: 1 })),
    ).rejects.toMatchObject({
      reason: 'OwnershipConflict',
      retryable: false,
      message: expect.stringMatching(/without an ownership TXT record at _failover\.legacy\.failover\.test/),
    });
    expect(await dns.dig(record.name, 'A')).toEqual(['192.0.2.10']);
    expect(await dns.dig(`_failover.${record.name}`, 'TXT')).toEqual([]);
  });

  it('never overwrites a record whose TXT names another owner', async () => {
    const record = ref(dns, 'foreign');
    await providerFor(dns).apply(change(record, { value: '10.0.9.1', epoch: 3, owner: 'operator-b' }));
    await expect(
      provider.apply(change(record, { expected: '10.0.9.1', value: '10.0.9.2', epoch: 4 })),
    ).rejects.toMatchObject({
      reason: 'OwnershipConflict',
      message: expect.stringMatching(/names owner "operator-b", not "operator-a"/),
    });
    expect(await provider.read(record)).toMatchObject({ value: '10.0.9.1', owner: 'operator-b', epoch: 3 });
  });

  it('writes CNAME and AAAA records the same way', async () => {
    const cname = ref(dns, 'alias', 'CNAME');
    await provider.apply(change(cname, { value: 'pg.eu-west.example.net', epoch: 1 }));
    await provider.apply(
      change(cname, { expected: 'pg.eu-west.example.net', value: 'pg.eu-central.example.net', epoch: 2 }),
    );
    expect(await dns.dig(cname.name, 'CNAME')).toEqual(['pg.eu-central.example.net.']);
    expect(await provider.read(cname)).toMatchObject({ value: 'pg.eu-central.example.net', epoch: 2 });

    const aaaa = ref(dns, 'six', 'AAAA');
    await provider.apply(change(aaaa, { value: '2001:db8:0::1', epoch: 1 }));
    expect(await provider.apply(change(aaaa, { value: '2001:db8::1', epoch: 1 }))).toEqual({
      changed: false,
    });
    expect(await dns.dig(aaaa.name, 'AAAA')).toEqual(['2001:db8::1']);
  });

  describe('removing a record (an isolated drill cleans up its drill record)', () => {
    it('deletes the record and its ownership TXT in one update; a second remove finds nothing', async () => {
      const record = ref(dns, '_drill.removed', 'CNAME');
      await provider.apply(change(record, { value: 'pg.eu-west.example.net', epoch: 4 }));
      const serial = (await dns.soaSerial()) ?? Number.NaN;
      expect(await provider.remove(record, 'operator-a')).toEqual({ removed: true });
      expect(await provider.read(record)).toEqual({});
      expect(await dns.dig(record.name, 'CNAME')).toEqual([]);
      expect(await dns.dig(`_failover.${record.name}`, 'TXT')).toEqual([]);
      // One accepted update bumps the serial once: both RRsets went in the same message.
      expect(await dns.soaSerial()).toBe(serial + 1);

      expect(await provider.remove(record, 'operator-a')).toEqual({ removed: false });
      expect(await dns.soaSerial()).toBe(serial + 1);
      // A later drill creates the record again.
      await provider.apply(change(record, { value: 'pg.eu-west.example.net', epoch: 5 }));
      expect(await dns.dig(record.name, 'CNAME')).toEqual(['pg.eu-west.example.net.']);
    });

    it('deletes an ownership TXT naming it that was left alone', async () => {
      const record = ref(dns, 'leftover');
      const txt = `_failover.${record.name}`;
      await dns.nsupdate([`update add ${txt} 30 TXT "owner=operator-a" "epoch=2"`]);
      expect(await provider.remove(record, 'operator-a')).toEqual({ removed: true });
      expect(await dns.dig(txt, 'TXT')).toEqual([]);
    });

    it("never deletes another owner's record", async () => {
      const record = ref(dns, 'remove-foreign');
      await providerFor(dns).apply(change(record, { value: '10.0.11.1', epoch: 3, owner: 'operator-b' }));
      await expect(provider.remove(record, 'operator-a')).rejects.toMatchObject({
        reason: 'OwnershipConflict',
        retryable: false,
        message: expect.stringMatching(/names owner "operator-b", not "operator-a"/),
      });
      expect(await provider.read(record)).toMatchObject({
        value: '10.0.11.1',
        owner: 'operator-b',
        epoch: 3,
      });
    });

    it('never deletes a record without an ownership TXT', async () => {
      const record = ref(dns, 'legacy');
      await expect(provider.remove(record, 'operator-a')).rejects.toMatchObject({
        reason: 'OwnershipConflict',
        message: expect.stringMatching(/without an ownership TXT record at _failover\.legacy/),
      });
      expect(await dns.dig(record.name, 'A')).toEqual(['192.0.2.10']);
    });

    it('deletes nothing when the ownership TXT changed between read and delete (NXRRSET)', async () => {
      const record = ref(dns, 'race-remove');
      await provider.apply(change(record, { value: '10.0.12.1', epoch: 1 }));
      const observed = await provider.observe(record);
      const txt = `_failover.${record.name}`;
      await dns.nsupdate([
        `update delete ${txt} TXT`,
        `update add ${txt} 30 TXT "owner=operator-b" "epoch=2"`,
      ]);
      await expect(provider.removeObserved(observed)).rejects.toMatchObject({
        reason: 'PreconditionFailed',
        message: expect.stringMatching(
          /deletion of race-remove\.failover\.test A lost its compare-and-swap.*NXRRSET/,
        ),
      });
      expect(await dns.dig(record.name, 'A')).toEqual(['10.0.12.1']);
      expect(await provider.read(record)).toMatchObject({ owner: 'operator-b', epoch: 2 });
    });
  });

  it('is verified by asking the authoritative servers directly', async () => {
    const record = ref(dns, 'verified');
    await provider.apply(change(record, { value: '10.0.10.1', epoch: 1 }));
    const servers = await findAuthoritativeServers(
      dns.zone,
      { host: dns.host, port: dns.port },
      { port: dns.port },
    );
    expect(servers).toEqual([{ name: `ns1.${dns.zone}`, host: '127.0.0.1', port: dns.port }]);
    const verifier = new DirectDnsVerifier({ timeoutMs: 2_000 });
    expect(await verifier.query(record, servers)).toEqual([{ server: dns.address, values: ['10.0.10.1'] }]);
    await provider.apply(change(record, { expected: '10.0.10.1', value: '10.0.10.2', epoch: 2 }));
    expect(await verifier.query(record, servers)).toEqual([{ server: dns.address, values: ['10.0.10.2'] }]);
    // An absent record is an authoritative empty answer, not an error.
    expect(await verifier.query(ref(dns, 'nothing-here'), servers)).toEqual([
      { server: dns.address, values: [] },
    ]);
    // A server that is not authoritative for the name is an error, never "absent".
    const outside = { zone: 'example.org', name: 'db.example.org', type: 'A' as const };
    expect(await verifier.query(outside, servers)).toEqual([
      { server: dns.address, error: 'answered REFUSED' },
    ]);
  });
});

describe('TSIG with BIND', () => {
  for (const algorithm of ['hmac-sha256', 'hmac-sha384', 'hmac-sha512'] as const) {
    it(`BIND accepts our ${algorithm} signatures and we accept its own`, async () => {
      const dns = await bind({ name: algorithm, algorithm });
      const record = ref(dns, 'signed');
      expect(await providerFor(dns).apply(change(record, { value: '10.1.0.1', epoch: 1 }))).toEqual({
        changed: true,
      });
      expect(await dns.dig(record.name, 'A')).toEqual(['10.1.0.1']);
    });
  }

  describe('a key the server does not accept', () => {
    let dns: BindServer;
    beforeAll(async () => {
      dns = await bind({ name: 'tsig-errors' });
    });

    it('with a wrong secret is AuthenticationFailed (BADSIG), and nothing is written', async () => {
      const wrong = providerFor(dns, { key: { ...dns.key, secret: Buffer.alloc(32, 7).toString('base64') } });
      const serial = await dns.soaSerial();
      await expect(
        wrong.apply(change(ref(dns, 'wrong-secret'), { value: '10.1.1.1', epoch: 1 })),
      ).rejects.toMatchObject({
        reason: 'AuthenticationFailed',
        message: expect.stringMatching(/BADSIG.*check the TSIG secret/),
      });
      expect(await dns.soaSerial()).toBe(serial);
    });

    it('with an unknown name is AuthenticationFailed (BADKEY)', async () => {
      const unknown = providerFor(dns, { key: { ...dns.key, name: 'no-such-key' } });
      await expect(unknown.read(ref(dns, 'unknown-key'))).rejects.toMatchObject({
        reason: 'AuthenticationFailed',
        message: expect.stringMatching(/BADKEY/),
      });
    });

    it('signed by a clock an hour off is AuthenticationFailed (BADTIME)', async () => {
      const skewed = providerFor(dns, { clock: { now: () => new Date(Date.now() - 3_600_000) } });
      await expect(skewed.read(ref(dns, 'skewed'))).rejects.toMatchObject({
        reason: 'AuthenticationFailed',
        // The server's second and ours are read a moment apart: either side of a second boundary.
        message: expect.stringMatching(/BADTIME.*differ by (3599|3600|3601) s/),
      });
    });
  });
});

describe('an unhealthy server', () => {
  it('that is frozen times out within the configured timeout', async () => {
    const dns = await bind({ name: 'frozen' });
    const record = ref(dns, 'frozen');
    const provider = providerFor(dns, { timeoutMs: 1_500 });
    await dns.freeze();
    try {
      const t0 = Date.now();
      await expect(provider.apply(change(record, { value: '10.2.0.1', epoch: 1 }))).rejects.toMatchObject({
        reason: 'Timeout',
        retryable: true,
      });
      const elapsed = Date.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(1_400);
      expect(elapsed).toBeLessThan(1_500 + 2_000);
      const answers = await new DirectDnsVerifier({ timeoutMs: 1_000 }).query(record, [dns]);
      expect(answers).toEqual([
        { server: dns.address, error: expect.stringMatching(/did not answer within 1000 ms/) },
      ]);
    } finally {
      dns.thaw();
    }
    expect(await provider.apply(change(record, { value: '10.2.0.1', epoch: 1 }))).toEqual({ changed: true });
  });

  it('that refuses updates gives a retryable error saying so, and the data outlives restarts', async () => {
    const dns = await bind({ name: 'refusing' });
    const record = ref(dns, 'refused');
    const provider = providerFor(dns);
    await provider.apply(change(record, { value: '10.3.0.1', epoch: 1 }));
    await dns.restart({ updates: 'refuse' });
    await expect(
      provider.apply(change(record, { expected: '10.3.0.1', value: '10.3.0.2', epoch: 2 })),
    ).rejects.toMatchObject({
      reason: 'ProviderError',
      retryable: true,
      message: expect.stringMatching(/refused the update.*REFUSED.*update-policy grants key "failover-key"/),
    });
    expect(await provider.read(record)).toMatchObject({ value: '10.3.0.1', epoch: 1 });
    await dns.restart({ updates: 'allow' });
    expect(
      await provider.apply(change(record, { expected: '10.3.0.1', value: '10.3.0.2', epoch: 2 })),
    ).toEqual({ changed: true });
  });

  it('that is stopped is Unreachable, and comes back after a crash with its data', async () => {
    const dns = await bind({ name: 'stopped' });
    const record = ref(dns, 'stopped');
    const provider = providerFor(dns);
    await provider.apply(change(record, { value: '10.4.0.1', epoch: 1 }));
    await dns.kill();
    await expect(provider.read(record)).rejects.toMatchObject({ reason: 'Unreachable', retryable: true });
    const answers = await new DirectDnsVerifier({ timeoutMs: 2_000 }).query(record, [dns]);
    expect(answers[0]?.error).toMatch(/refused the connection|did not answer/);
    await dns.restart();
    expect(await provider.read(record)).toMatchObject({ value: '10.4.0.1', owner: 'operator-a', epoch: 1 });
  });
});
