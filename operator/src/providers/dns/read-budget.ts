/**
 * How many reads of policies' DNS records the operator makes a second: a budget per credentials
 * (a Secret, or the ambient credentials) or RFC 2136 server. Every use of the provider spends from
 * it (one read's worth per use: a change costs more requests than that); only the reads that can
 * wait are put off when it is spent: the routine check between operations, its retries, and
 * discovery's re-reads. The first read of a record this process makes for discovery, a read that
 * would settle discovery, the check right after an operation or a drill, and a policy's first
 * check never wait; neither do an operation's reads and changes.
 *
 * A read is two API requests on Route 53 and DigitalOcean (the record and its ownership TXT).
 * Route 53 allows 5 requests a second per account, shared with every other tool in it (external-
 * dns, Terraform); DigitalOcean 5,000 an hour per token. Read every five minutes, 2,000 policies
 * would send 13 a second. At 2 reads a second, up to 600 policies on one Route 53 account are
 * checked every five minutes, 2,000 about every 17; a restart's checks come at that pace too.
 */
import type { DnsProvider as DnsProviderSpec } from '../../api/v1alpha1/index.ts';
import { TokenBucket } from '../../runtime/token-bucket.ts';

export type DnsProviderType = DnsProviderSpec['type'];

/** Route 53: 4 of its 5 requests a second; DigitalOcean: 3,600 of 5,000 an hour; BIND and the like: plenty. */
export const DEFAULT_DNS_READ_RATES = 'Route53=2,DigitalOcean=0.5,RFC2136=50';

const TYPES: readonly DnsProviderType[] = ['Route53', 'DigitalOcean', 'RFC2136'];
const RATE = '(?:\\d+(?:\\.\\d+)?|\\.\\d+)';
const ENTRY = `(?:${TYPES.join('|')})=${RATE}`;
/** `Provider=reads a second[,...]` (0: no budget): the config flag's form. */
export const DNS_READ_RATES_PATTERN = new RegExp(`^(?:${ENTRY}(?:,${ENTRY})*)?$`);

/**
 * The rate of each provider type: the defaults, with those `text` names in their place, divided
 * by `shards`: sharded replicas each keep their own budget for the same accounts, so each takes
 * one shard's share, whatever it holds (on the safe side: one holding several checks slower).
 */
export function parseDnsReadRates(text: string, shards = 1): Record<DnsProviderType, number> {
  const rates = {} as Record<DnsProviderType, number>;
  for (const part of `${DEFAULT_DNS_READ_RATES},${text}`.split(',')) {
    const [type, rate] = part.split('=');
    if (TYPES.includes(type as DnsProviderType) && rate !== undefined)
      rates[type as DnsProviderType] = Number(rate) / shards;
  }
  return rates;
}

/** Which budget a provider's reads come from: the account (credentials) or server they go to. */
export function dnsAccountOf(provider: DnsProviderSpec, namespace: string): string {
  const secret = (ref: { name: string; key: string } | undefined) =>
    ref ? `${namespace}/${ref.name}/${ref.key}` : 'ambient credentials';
  switch (provider.type) {
    case 'Route53':
      return `Route53 ${provider.route53.endpointUrl ?? 'AWS'} ${secret(provider.route53.credentialsSecretRef)}`;
    case 'DigitalOcean':
      return `DigitalOcean ${provider.digitalOcean.apiUrl ?? 'API'} ${secret(provider.digitalOcean.tokenSecretRef)}`;
    case 'RFC2136': {
      // host or host:port, 53 when omitted (as the adapter reads it)
      const server = provider.rfc2136.server;
      return `RFC2136 ${/:\d{1,5}$/.test(server) ? server : `${server}:53`}`;
    }
  }
}

/** Spent past its rate (operations, first reads), a budget puts reads off for a minute at most. */
const MAX_DEBT_SECONDS = 60;

export class DnsReadBudgets {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly rates: Record<DnsProviderType, number>;
  private readonly now: () => number;

  constructor(rates: Record<DnsProviderType, number>, now: () => number) {
    this.rates = rates;
    this.now = now;
  }

  /** Whether a read that can wait may be made now from the budget `provider` reads from. */
  available(provider: DnsProviderSpec, namespace: string): boolean {
    return this.bucket(provider, namespace)?.available() ?? true;
  }

  /** Records one use of the provider (a read, or a change), whether it could wait or not. */
  spend(provider: DnsProviderSpec, namespace: string): void {
    this.bucket(provider, namespace)?.spend();
  }

  private bucket(provider: DnsProviderSpec, namespace: string): TokenBucket | undefined {
    const rate = this.rates[provider.type];
    if (!(rate > 0)) return undefined; // 0: no budget
    const account = dnsAccountOf(provider, namespace);
    let bucket = this.buckets.get(account);
    if (!bucket) {
      // A second's worth at once (at least one read), so a budget under 1 a second still reads.
      bucket = new TokenBucket(rate, Math.max(1, rate), this.now, rate * MAX_DEBT_SECONDS);
      this.buckets.set(account, bucket);
    }
    return bucket;
  }
}
