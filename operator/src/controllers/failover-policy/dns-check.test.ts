import { describe, expect, it } from 'vitest';
import type { DnsProvider } from '../../providers/dns/port.ts';
import { ProviderError } from '../../providers/errors.ts';
import { repairDns, type StepPorts } from './act.ts';
import { input, NOW } from './decide.fixtures.ts';
import { afterDnsCheck, DNS_CHECK_MS, dnsCheckDue, judgeDns } from './dns-check.ts';
import { nextLook } from './reconciler.ts';

const at = (ms: number) => new Date(1_000_000 + ms);

describe('the DNS check schedule', () => {
  it('checks at once when it never checked', () => {
    expect(dnsCheckDue(undefined, at(0))).toBe(true);
  });

  it('checks every five minutes while the record is in sync', () => {
    const check = afterDnsCheck(undefined, true, at(0), () => 0.5);
    expect(dnsCheckDue(check, at(DNS_CHECK_MS - 1))).toBe(false);
    expect(dnsCheckDue(check, at(DNS_CHECK_MS))).toBe(true);
  });

  it('retries a failed check after a second or so, backing off with each failure up to five minutes', () => {
    const first = afterDnsCheck(undefined, false, at(0), () => 1);
    expect(first).toEqual({ failures: 1, dueAt: at(1000).getTime() });
    const third = afterDnsCheck(
      afterDnsCheck(first, false, at(0), () => 1),
      false,
      at(0),
      () => 1,
    );
    expect(third).toEqual({ failures: 3, dueAt: at(4000).getTime() });
    let check = third;
    for (let i = 0; i < 30; i++) check = afterDnsCheck(check, false, at(0), () => 1);
    expect(check.dueAt - at(0).getTime()).toBe(DNS_CHECK_MS);
  });

  it('goes back to five minutes after a check that succeeds', () => {
    const failed = afterDnsCheck(
      afterDnsCheck(undefined, false, at(0), () => 0.5),
      false,
      at(0),
      () => 0.5,
    );
    expect(afterDnsCheck(failed, true, at(10), () => 0.5)).toEqual({
      failures: 0,
      dueAt: at(10 + DNS_CHECK_MS).getTime(),
    });
  });
});

describe('what a read of the DNS record means', () => {
  const read = (dns: Record<string, unknown>) => judgeDns(input({ dns: { readAt: NOW, ...dns } }), 'a', 4);
  it('is in sync when it points at the primary with an epoch at least the one status holds', () => {
    expect(read({ value: 'a.db.internal', owner: 'ns/orders', epoch: 4 })).toMatchObject({
      condition: { status: 'True', reason: 'InSync' },
    });
    expect(read({ value: 'a.db.internal', owner: 'ns/orders', epoch: 4 })).not.toHaveProperty('repair');
  });
  it('creates a missing record and repairs a changed one, as a compare-and-swap on what was read', () => {
    expect(read({})).toMatchObject({ repair: { expected: undefined, value: 'a.db.internal', epoch: 4 } });
    expect(read({ value: 'x.example', owner: 'ns/orders', epoch: 4 })).toMatchObject({
      repair: { expected: 'x.example' },
    });
    expect(read({ value: 'a.db.internal', owner: 'ns/orders', epoch: 3 })).toMatchObject({
      repair: { expected: 'a.db.internal', epoch: 4 },
    });
  });
  it('a write leaves DnsReady as the next read finds it, so the read five minutes on changes nothing; the write is an Event', async () => {
    // A record as the provider keeps it, written by apply and read back by the next check.
    let record: { value?: string; epoch?: number; ttl?: number } = {};
    const ports = {
      withDns: async <T>(use: (dns: DnsProvider) => Promise<T>) =>
        use({
          apply: async (c: { value: string; epoch: number; ttl: number }) => {
            const changed = record.value !== c.value || record.epoch !== c.epoch || record.ttl !== c.ttl;
            record = { value: c.value, epoch: c.epoch, ttl: c.ttl };
            return { changed };
          },
        } as unknown as DnsProvider),
      owner: 'ns/orders',
    } as unknown as StepPorts;
    const nextRead = () => read({ ...record, owner: 'ns/orders' });
    const spec = input({}).spec;
    const repairOf = (judged: ReturnType<typeof read>) => {
      if (!('repair' in judged) || !judged.repair) throw new Error(`no repair: ${JSON.stringify(judged)}`);
      return judged.repair;
    };
    const missing = repairOf(read({}));
    const created = await repairDns(ports, spec, missing);
    expect(created.event).toMatchObject({
      type: 'Normal',
      reason: 'DnsRecordCreated',
      note: expect.stringMatching(/was absent/),
    });
    expect(nextRead()).toEqual({ condition: created.condition });
    // Someone else's value: put back; read back, the same condition.
    record = { ...record, value: 'x.example' };
    const repaired = await repairDns(ports, spec, repairOf(nextRead()));
    expect(repaired.event).toMatchObject({
      reason: 'DnsRecordRepaired',
      note: expect.stringMatching(/was x\.example/),
    });
    expect(nextRead()).toEqual({ condition: repaired.condition });
    // A record at an older epoch: written at this one; read back, the same condition.
    record = { ...record, epoch: 3 };
    const raised = await repairDns(ports, spec, repairOf(nextRead()));
    expect(raised.event).toMatchObject({
      reason: 'DnsRecordUpdated',
      note: expect.stringMatching(/epoch 4/),
    });
    expect(nextRead()).toEqual({ condition: raised.condition });
    // Only the TTL differs: the condition the read gives is unchanged.
    record = { ...record, ttl: 1 };
    const ttl = await repairDns(ports, spec, repairOf(nextRead()));
    expect(ttl.event).toMatchObject({
      reason: 'DnsRecordUpdated',
      note: expect.stringMatching(/with TTL \d+ s/),
    });
    expect(nextRead()).toEqual({ condition: ttl.condition });
    // The provider found nothing to write (it compares canonical forms): no Event.
    const unchanged = await repairDns(ports, spec, {
      expected: 'x.example',
      value: 'a.db.internal',
      epoch: 4,
      ttl: record.ttl,
    });
    expect(unchanged).toEqual({ condition: ttl.condition });
    const refused = await repairDns(
      { ...ports, withDns: async () => Promise.reject(new ProviderError('Rejected', 'REFUSED')) },
      spec,
      missing,
    );
    expect(refused).toEqual({ condition: expect.objectContaining({ status: 'False', reason: 'Rejected' }) });
  });
  it('sets the TTL a drill wants while it runs, and the spec TTL otherwise, changing nothing else', () => {
    const inSync = { value: 'a.db.internal', owner: 'ns/orders', epoch: 4 };
    const spec = input({}).spec.dns.ttlSeconds;
    expect(read({ ...inSync, ttl: spec })).not.toHaveProperty('repair');
    expect(read({ ...inSync, ttl: 1 })).toMatchObject({
      condition: { status: 'True', reason: 'InSync' },
      repair: { expected: 'a.db.internal', value: 'a.db.internal', epoch: 4, ttl: spec },
    });
    const drilling = input({
      dns: { readAt: NOW, ...inSync, ttl: spec },
      status: {
        activePrimary: 'a',
        epoch: 4,
        drill: {
          id: 'd',
          from: 'a',
          to: 'b',
          startedAt: NOW.toISOString(),
          leg: 'Starting',
          ttl: { lowered: 1, was: spec },
        },
      },
    });
    expect(judgeDns(drilling, 'a', 4)).toMatchObject({ repair: { ttl: 1, epoch: 4 } });
  });

  it('never touches a record someone else owns, and says how to hand it over', () => {
    const r = read({ value: 'a.db.internal', owner: 'someone-else' });
    expect(r).not.toHaveProperty('repair');
    expect(r).toMatchObject({
      condition: { status: 'False', reason: 'NotOwned', message: expect.stringMatching(/owner=ns\/orders/) },
    });
  });
  it('reports a read that failed with its reason', () => {
    expect(read({ error: { reason: 'Timeout', message: 'no answer' } })).toMatchObject({
      condition: { status: 'False', reason: 'Timeout' },
    });
  });
});

describe('when a policy with a failed DNS check is looked at again', () => {
  const at = (ms: number) => new Date(1_000_000 + ms);
  const idle = { requeueMs: 5000, status: {} };

  it('when the retry is due, if that is sooner than the step asks', () => {
    expect(nextLook(idle, { failures: 2, dueAt: at(1500).getTime() }, at(0))).toBe(1500);
    expect(nextLook(idle, { failures: 2, dueAt: at(20).getTime() }, at(0))).toBe(100);
    expect(nextLook(idle, { failures: 0, dueAt: at(1500).getTime() }, at(0))).toBe(5000);
  });

  it('a retry already due was put off (the read budget): at the next look, not at once', () => {
    expect(nextLook(idle, { failures: 2, dueAt: at(0).getTime() }, at(0))).toBe(5000);
    expect(nextLook(idle, { failures: 2, dueAt: at(-3000).getTime() }, at(0))).toBe(5000);
  });
});
