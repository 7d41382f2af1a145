import { describe, expect, it } from 'vitest';
import { afterDnsCheck, DNS_CHECK_MS, dnsCheckDue } from './dns-check.ts';

const at = (ms: number) => new Date(1_000_000 + ms);

describe('the DNS check schedule', () => {
  it('checks at once when it never checked', () => {
    expect(dnsCheckDue(undefined, at(0))).toBe(true);
  });

  it('checks every five minutes while the record is in sync', () => {
    const check = afterDnsCheck(undefined, true, at(0));
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
    const failed = afterDnsCheck(afterDnsCheck(undefined, false, at(0)), false, at(0));
    expect(afterDnsCheck(failed, true, at(10))).toEqual({
      failures: 0,
      dueAt: at(10 + DNS_CHECK_MS).getTime(),
    });
  });
});
