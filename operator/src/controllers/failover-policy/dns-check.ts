/**
 * The DNS record between operations: when it is read (every five minutes while it is in sync,
 * and sooner, backing off from one second, while a check fails: a provider error, a record
 * someone else owns; without the retry, one failed first check would leave a new policy without
 * its record for five minutes), and what a read means (judgeDns).
 */
import { ownershipRecordName } from '../../providers/dns/port.ts';
import { type BackoffPolicy, backoffDelay } from '../../runtime/backoff.ts';
import { type ConditionInput, conditionOf } from '../../runtime/conditions.ts';
import { TTL_LOWER_WAIT_MS } from './drill.ts';
import type { DecideInput } from './facts.ts';

export const DNS_CHECK_MS = 5 * 60_000;
const DNS_RETRY: BackoffPolicy = { baseMs: 1000, maxMs: DNS_CHECK_MS };

export interface DnsCheck {
  /** Checks in a row that did not leave the record in sync. */
  failures: number;
  /** When the next check is due (ms since the epoch). */
  dueAt: number;
  /** Made now, not put off for the read budget: an operation or a drill just ended. */
  urgent?: boolean;
}

/** The check right after an operation or a drill ended: due now, and it does not wait. */
export const CHECK_NOW: DnsCheck = { failures: 0, dueAt: 0, urgent: true };

export function dnsCheckDue(last: DnsCheck | undefined, now: Date): boolean {
  return !last || now.getTime() >= last.dueAt;
}

/** The schedule after a check at `now` that did, or did not, leave the record in sync. */
export function afterDnsCheck(
  last: DnsCheck | undefined,
  inSync: boolean,
  now: Date,
  random: () => number,
): DnsCheck {
  const failures = inSync ? 0 : (last?.failures ?? 0) + 1;
  const wait = failures === 0 ? DNS_CHECK_MS : backoffDelay(failures - 1, DNS_RETRY, random);
  return { failures, dueAt: now.getTime() + wait };
}

export interface DnsJudgement {
  condition: ConditionInput;
  /** The compare-and-swap that puts the record back on the primary (or its TTL right), when ours. */
  repair?: { expected: string | undefined; value: string; epoch: number; ttl: number };
}

/**
 * The TTL the record should have now: a drill's lowered one while it runs, else the spec's. A
 * lowered TTL not served within TTL_LOWER_WAIT_MS (a provider that refuses it) is no longer
 * wanted, so the repair stops and the drill goes on without it.
 */
export function wantedTtl(input: Pick<DecideInput, 'spec' | 'status' | 'now'>): number {
  const drill = input.status.drill;
  const ttl = drill?.ttl;
  if (!drill || !ttl || ttl.skipped) return input.spec.dns.ttlSeconds;
  const late = input.now.getTime() - new Date(drill.startedAt).getTime() > TTL_LOWER_WAIT_MS;
  return ttl.loweredAt || !late ? ttl.lowered : input.spec.dns.ttlSeconds;
}

/**
 * The DNS record as last read, against where it should point. Undefined when it was not read in
 * this reconcile. A record someone else owns is never changed; one with a newer epoch than status
 * knows is left to discovery (the providers refuse to lower the epoch anyway).
 */
export function judgeDns(
  input: DecideInput,
  active: string,
  epoch: number,
): DnsJudgement | Record<string, never> {
  const dns = input.dns;
  // A read kept for discovery may be minutes old: only one made in this reconcile is judged.
  if (!dns || dns.kept) return {};
  const name = input.spec.dns.name;
  const condition = (status: ConditionInput['status'], reason: string, message: string) =>
    conditionOf('DnsReady', status, reason, message);

  if (dns.error) return { condition: condition('False', dns.error.reason, dns.error.message) };
  const value = input.dnsTargets?.[active];
  if (!value)
    return { condition: condition('Unknown', 'NoTarget', `ReplicaCluster ${active} has no dnsTarget yet`) };
  if (dns.value !== undefined && dns.owner !== input.dnsOwner) {
    return {
      condition: condition(
        'False',
        'NotOwned',
        `${name} exists but is not owned by ${input.dnsOwner}: to hand it over, add a TXT record ${ownershipRecordName(name)} with "owner=${input.dnsOwner}" "epoch=${epoch}"`,
      ),
    };
  }
  const ttl = wantedTtl(input);
  if (
    dns.value !== undefined &&
    dns.value.toLowerCase() === value.toLowerCase() &&
    (dns.epoch ?? 0) >= epoch
  ) {
    const inSync = inSyncCondition(name, value, dns.epoch ?? 0);
    // Only the TTL differs (a drill lowers it, and it goes back after): rewritten as it is, same epoch.
    if (dns.ttl !== undefined && dns.ttl !== ttl && (dns.epoch ?? 0) === epoch)
      return { condition: inSync, repair: { expected: dns.value, value, epoch, ttl } };
    return { condition: inSync };
  }
  const was = dns.value === undefined ? 'absent' : `${dns.value} at epoch ${dns.epoch ?? 0}`;
  return {
    condition: condition(
      'False',
      'OutOfSync',
      `${name} is ${was}; it should point at ${value} (epoch ${epoch})`,
    ),
    repair: { expected: dns.value, value, epoch, ttl },
  };
}

/** DnsReady for a record that points where it should: what a read finds, and what a write leaves. */
export function inSyncCondition(name: string, value: string, epoch: number): ConditionInput {
  return conditionOf('DnsReady', 'True', 'InSync', `${name} points at ${value} (epoch ${epoch})`);
}
