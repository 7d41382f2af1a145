/**
 * When the DNS record is checked between operations: every five minutes while it is in sync,
 * and sooner, backing off from one second, while a check fails (a provider error, a record
 * someone else owns). Without the retry, one failed first check would leave a new policy without
 * its record for five minutes.
 */
import { type BackoffPolicy, backoffDelay } from '../../runtime/backoff.ts';

export const DNS_CHECK_MS = 5 * 60_000;
const DNS_RETRY: BackoffPolicy = { baseMs: 1000, maxMs: DNS_CHECK_MS };

export interface DnsCheck {
  /** Checks in a row that did not leave the record in sync. */
  failures: number;
  /** When the next check is due (ms since the epoch). */
  dueAt: number;
}

export function dnsCheckDue(last: DnsCheck | undefined, now: Date): boolean {
  return !last || now.getTime() >= last.dueAt;
}

/** The schedule after a check at `now` that did, or did not, leave the record in sync. */
export function afterDnsCheck(
  last: DnsCheck | undefined,
  inSync: boolean,
  now: Date,
  random: () => number = Math.random,
): DnsCheck {
  const failures = inSync ? 0 : (last?.failures ?? 0) + 1;
  const wait = failures === 0 ? DNS_CHECK_MS : backoffDelay(failures - 1, DNS_RETRY, random);
  return { failures, dueAt: now.getTime() + wait };
}
