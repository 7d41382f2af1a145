/**
 * How many reads of a policy's DNS record the operator makes a second for what can wait: the check
 * between operations, and discovery. An operation's reads and changes never wait for it.
 *
 * A read is two API requests on Route 53 and DigitalOcean (the record and its ownership TXT).
 * Route 53 allows 5 requests a second per account, shared with every other tool in it (external-
 * dns, Terraform); DigitalOcean 5,000 an hour per token. Read every five minutes, 2,000 policies
 * would send 13 a second. So each account (credentials Secret, or the ambient credentials) and
 * each RFC 2136 server has a budget; a check past it stays due and is made at a later reconcile.
 * At 2 reads a second, up to 600 policies on one Route 53 account are checked every five minutes,
 * 2,000 about every 17. A restart's first checks come at the budget's pace too.
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

/** The rate of each provider type: the defaults, with those `text` names in their place. */
export function parseDnsReadRates(text: string): Record<DnsProviderType, number> {
  const rates = {} as Record<DnsProviderType, number>;
  for (const part of `${DEFAULT_DNS_READ_RATES},${text}`.split(',')) {
    const [type, rate] = part.split('=');
    if (TYPES.includes(type as DnsProviderType) && rate !== undefined)
      rates[type as DnsProviderType] = Number(rate);
  }
  return rates;
}

/** Which budget a provider's reads come from: the account (credentials) or server they go to. */
export function dnsAccountOf(provider: DnsProviderSpec, namespace: string): string {
  const secret = (ref: { name: string; key: string } | undefined) =>
    ref ? `${namespace}/${ref.name}/${ref.key}` : 'ambient credentials';
  switch (provider.type) {
    case 'Route53':
      return `Route53 ${secret(provider.route53.credentialsSecretRef)}`;
    case 'DigitalOcean':
      return `DigitalOcean ${secret(provider.digitalOcean.tokenSecretRef)}`;
    case 'RFC2136':
      return `RFC2136 ${provider.rfc2136.server}`;
  }
}

export class DnsReadBudgets {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly rates: Record<DnsProviderType, number>;
  private readonly now: () => number;

  constructor(rates: Record<DnsProviderType, number>, now: () => number) {
    this.rates = rates;
    this.now = now;
  }

  /** Takes one read from the budget of the account `provider` reads from; false when spent. */
  take(provider: DnsProviderSpec, namespace: string): boolean {
    const rate = this.rates[provider.type];
    if (!(rate > 0)) return true; // 0: no budget
    const account = dnsAccountOf(provider, namespace);
    let bucket = this.buckets.get(account);
    if (!bucket) {
      // A second's worth at once (at least one read), so a budget under 1 a second still reads.
      bucket = new TokenBucket(rate, Math.max(1, rate), this.now);
      this.buckets.set(account, bucket);
    }
    return bucket.take();
  }
}
