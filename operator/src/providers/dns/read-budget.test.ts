import { describe, expect, it } from 'vitest';
import type { DnsProvider } from '../../api/v1alpha1/index.ts';
import { DNS_READ_RATES_PATTERN, DnsReadBudgets, dnsAccountOf, parseDnsReadRates } from './read-budget.ts';

const route53 = (secret?: string): DnsProvider => ({
  type: 'Route53',
  route53: {
    hostedZoneId: 'Z1',
    region: 'us-east-1',
    ...(secret ? { credentialsSecretRef: { name: secret, key: 'credentials' } } : {}),
  },
});
const bind = (server: string): DnsProvider =>
  ({
    type: 'RFC2136',
    rfc2136: { server, tsig: { keyName: 'k', secretRef: { name: 's', key: 'k' } } },
  }) as DnsProvider;

describe('the DNS read budget', () => {
  it('reads its flag over the defaults', () => {
    expect(parseDnsReadRates('')).toEqual({ Route53: 2, DigitalOcean: 0.5, RFC2136: 50 });
    expect(parseDnsReadRates('Route53=4,RFC2136=0')).toEqual({ Route53: 4, DigitalOcean: 0.5, RFC2136: 0 });
    for (const ok of ['', 'Route53=1', 'DigitalOcean=.25,Route53=3.5'])
      expect(DNS_READ_RATES_PATTERN.test(ok)).toBe(true);
    for (const bad of [
      'Route53',
      'route53=1',
      'Route53=-1',
      'Route53=1,',
      'Cloudflare=1',
      'Route53=1;RFC2136=2',
    ])
      expect(DNS_READ_RATES_PATTERN.test(bad)).toBe(false);
  });

  it('keeps one budget per credentials or server, shared by the policies that use it', () => {
    let now = 0;
    const budgets = new DnsReadBudgets(parseDnsReadRates('Route53=1'), () => now);
    const take = (p: DnsProvider, ns: string) => {
      if (!budgets.available(p, ns)) return false;
      budgets.spend(p, ns);
      return true;
    };
    expect(take(route53(), 'a')).toBe(true);
    // Another namespace, the same ambient credentials: the same account.
    expect(take(route53(), 'b')).toBe(false);
    expect(take(route53('aws'), 'a')).toBe(true);
    expect(take(route53('aws'), 'a')).toBe(false);
    expect(take(route53('aws'), 'b')).toBe(true);
    expect(dnsAccountOf(route53('aws'), 'b')).toBe('Route53 AWS b/aws/credentials');
    now += 1000;
    expect(take(route53(), 'b')).toBe(true);
  });

  it('counts what cannot wait too, so reads that can give way, for a minute at most', () => {
    let now = 0;
    const budgets = new DnsReadBudgets(parseDnsReadRates('Route53=2'), () => now);
    // An operation's reads and changes: spent whatever is left.
    for (let i = 0; i < 500; i++) budgets.spend(route53(), 'a');
    now += 59_000;
    expect(budgets.available(route53(), 'a')).toBe(false);
    now += 1_500;
    expect(budgets.available(route53(), 'a')).toBe(true);
  });

  it('reads an RFC 2136 server at its own pace, and without a budget when its rate is 0', () => {
    const free = new DnsReadBudgets(parseDnsReadRates('RFC2136=0'), () => 0);
    for (let i = 0; i < 1000; i++) free.spend(bind('10.0.0.1'), 'a');
    expect(free.available(bind('10.0.0.1'), 'a')).toBe(true);
    const paced = new DnsReadBudgets(parseDnsReadRates('RFC2136=2'), () => 0);
    paced.spend(bind('10.0.0.1'), 'a');
    expect(paced.available(bind('10.0.0.1:53'), 'a')).toBe(true);
    paced.spend(bind('10.0.0.1:53'), 'a');
    expect(paced.available(bind('10.0.0.1'), 'a')).toBe(false);
    expect(paced.available(bind('10.0.0.2:5353'), 'a')).toBe(true);
  });

  it('gives each of N sharded replicas a share of the rate', () => {
    expect(parseDnsReadRates('Route53=3', 3)).toEqual({ Route53: 1, DigitalOcean: 0.5 / 3, RFC2136: 50 / 3 });
  });
});
