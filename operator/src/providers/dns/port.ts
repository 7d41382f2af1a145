/**
 * The DNS provider port. One adapter per provider (RFC 2136, Route 53, DigitalOcean). Each change
 * is a compare-and-swap where the provider allows it: it applies only if the record still holds
 * the value the operator last saw, so two deciders can never both win.
 *
 * Beside the record the operator keeps a TXT record at `_failover.<name>` holding two strings,
 * `owner=<owner id>` and `epoch=<n>`: the owner stops the operator from ever overwriting a record
 * it does not own, and the epoch tells clients and the old primary which promotion is current.
 * (A TXT at the record's own name is impossible for a CNAME, hence the prefix.)
 */
import { ProviderError } from '../errors.ts';

export type DnsRecordType = 'A' | 'AAAA' | 'CNAME';

export interface DnsRecordRef {
  /** The zone, without trailing dot: example.com */
  zone: string;
  /** The record's fully qualified name, without trailing dot: db.example.com */
  name: string;
  type: DnsRecordType;
}

export interface DnsRecordState {
  /** The record's value (address or hostname without trailing dot); undefined when absent. */
  value?: string;
  ttl?: number;
  /** From the TXT record beside it; undefined when there is none. */
  owner?: string;
  epoch?: number;
}

export interface DnsChange {
  record: DnsRecordRef;
  /** The value the record must still hold for the change to apply; undefined: it must be absent. */
  expected?: string;
  /** The new value. */
  value: string;
  ttl: number;
  /** Owner id written to (and required in) the TXT record. */
  owner: string;
  epoch: number;
}

export const ownershipRecordName = (name: string) => `_failover.${name}`;
export const ownershipTxt = (owner: string, epoch: number) => [`owner=${owner}`, `epoch=${epoch}`];

/** Parses the TXT strings back; unknown strings are ignored. */
export function parseOwnershipTxt(strings: string[]): { owner?: string; epoch?: number } {
  const out: { owner?: string; epoch?: number } = {};
  for (const s of strings) {
    if (s.startsWith('owner=')) out.owner = s.slice('owner='.length);
    else if (s.startsWith('epoch=') && /^\d+$/.test(s.slice('epoch='.length)))
      out.epoch = Number(s.slice('epoch='.length));
  }
  return out;
}

/**
 * Decides, without I/O, what `remove` must do given the state read: 'absent' when nothing of
 * `owner`'s is there (no record, and no TXT naming it), 'remove' when the record, or a TXT naming
 * `owner` left behind alone, is to be deleted. Throws ProviderError `OwnershipConflict` for a
 * name another owner claims, and for a record with no ownership TXT (one the operator did not create).
 */
export function planRemoval(record: DnsRecordRef, state: DnsRecordState, owner: string): 'absent' | 'remove' {
  const txtName = ownershipRecordName(record.name);
  if (state.owner !== undefined && state.owner !== owner) {
    throw new ProviderError(
      'OwnershipConflict',
      `${txtName} names owner "${state.owner}", not "${owner}": the operator never deletes a record another owner manages`,
    );
  }
  if (state.value !== undefined && state.owner === undefined) {
    throw new ProviderError(
      'OwnershipConflict',
      `${record.name} ${record.type} exists (${state.value}) without an ownership TXT record at ${txtName}: the operator never deletes a record it did not create; delete it by hand if it is a leftover`,
    );
  }
  return state.owner === undefined ? 'absent' : 'remove';
}

export interface DnsProvider {
  /** Reads the record and its ownership TXT record from the provider's API (not from a resolver). */
  read(record: DnsRecordRef): Promise<DnsRecordState>;
  /**
   * Applies the change as a compare-and-swap and writes the ownership TXT record with the new
   * epoch, and returns once the provider accepted it: propagation is not waited for here (the
   * controller verifies the authoritative servers' answers on later reconciles). Idempotent: when the record already holds `value` with this owner and epoch, nothing is
   * sent and `changed` is false. Throws ProviderError:
   * - `OwnershipConflict` when a TXT record names another owner, or the record exists without one
   *   (a record the operator did not create is never taken over);
   * - `PreconditionFailed` when the record holds neither `expected` nor `value`.
   */
  apply(change: DnsChange): Promise<{ changed: boolean }>;
  /**
   * Deletes the record and its ownership TXT record, only while the TXT names `owner` (a record the
   * operator did not create is never deleted). Idempotent: nothing to delete gives { removed: false }.
   * A TXT naming `owner` left alone (the record already gone) is deleted too. Throws ProviderError
   * `OwnershipConflict` when the TXT names another owner, or the record exists without one.
   */
  remove(record: DnsRecordRef, owner: string): Promise<{ removed: boolean }>;
  /**
   * Releases connections and clients the adapter made. The caller closes every provider it
   * creates once done with it.
   */
  close(): Promise<void>;
}

/** Asks DNS servers directly (not a cache) what they answer for a record. */
export interface DnsVerifier {
  /**
   * Queries each server for the record and returns each server's answer values (CNAME targets or
   * addresses, without trailing dot). A server that does not answer in time maps to an error.
   */
  query(
    record: DnsRecordRef,
    servers: { host: string; port: number }[],
  ): Promise<{ server: string; values?: string[]; error?: string }[]>;
}
