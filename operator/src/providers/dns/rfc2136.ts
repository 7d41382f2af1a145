/**
 * The RFC 2136 DNS provider: TSIG-signed dynamic updates to any server that speaks RFC 2136
 * (BIND, Knot, PowerDNS, ...). Each change is one UPDATE message whose prerequisites repeat
 * exactly what was read, so the server applies it only if nobody changed the record or its
 * ownership TXT in between (safety rule 4: DNS as the arbiter).
 *
 * Always TCP, never UDP: an UPDATE is not idempotent under retransmission (a UDP retry after a
 * lost reply fails its own prerequisites and turns our success into "precondition failed"), TCP
 * tells "nothing listens" (connection refused) apart from "too slow", and the answers are never
 * truncated. The extra round trip costs nothing at the rate the operator writes DNS.
 */
import { isIP } from 'node:net';
import dnsPacket from 'dns-packet';
import { type Clock, systemClock } from '../../runtime/clock.ts';
import { allInOrder } from '../../runtime/promises.ts';
import { ProviderError } from '../errors.ts';
import {
  type DnsChange,
  type DnsProvider,
  type DnsRecordRef,
  type DnsRecordState,
  type DnsRecordType,
  ownershipRecordName,
  ownershipTxt,
  parseOwnershipTxt,
  planRemoval,
} from './port.ts';
import {
  decodeTsigSecret,
  encodeName,
  isTsigAlgorithm,
  type SignedRequest,
  signRequest,
  type TsigAlgorithm,
  type TsigKey,
  verifyResponse,
} from './tsig.ts';
import {
  answerData,
  canonicalValue,
  DEFAULT_DNS_TIMEOUT_MS,
  type DnsServerAddress,
  decodeMessage,
  encodeQuery,
  exchangeDnsMessage,
  formatServer,
  newMessageId,
} from './verifier.ts';

export interface Rfc2136ProviderOptions {
  /** The primary server's address or host name. */
  host: string;
  /** Default 53. */
  port?: number;
  /** The TSIG key the server's update-policy grants; the algorithm defaults to hmac-sha256. */
  key: { name: string; algorithm?: TsigAlgorithm; secret: string };
  /** How long one `read` or `apply` may take in all, default 5 s. */
  timeoutMs?: number;
  /** The time TSIG signatures carry; the server refuses one more than the fudge away from its clock. */
  clock?: Clock;
  /** Seconds a signature stays valid either side of its time (default 300). */
  fudgeSeconds?: number;
}

/** What `observe` saw: the state, and each RRset's RDATA exactly as the server holds it. */
export interface ObservedRecord {
  record: DnsRecordRef;
  state: DnsRecordState;
  /** The record's RRset; empty when absent. */
  recordRdata: Buffer[];
  /** The ownership TXT RRset at `_failover.<name>`; empty when absent. */
  ownershipRdata: Buffer[];
}

const TYPE_CODES: Record<DnsRecordType | 'TXT' | 'SOA' | 'ANY', number> = {
  A: 1,
  CNAME: 5,
  SOA: 6,
  TXT: 16,
  AAAA: 28,
  ANY: 255,
};
const CLASS_IN = 1;
/** RFC 2136 §1.3: class NONE marks "must not exist" prerequisites and single-RR deletes. */
const CLASS_NONE = 254;
const CLASS_ANY = 255;
const OPCODE_UPDATE = 5;

/** dns-packet's per-type RDATA codecs, which @types/dns-packet does not declare. */
const rdataCodecs = dnsPacket as unknown as Record<
  'a' | 'aaaa' | 'cname' | 'txt',
  { encode(data: unknown): Buffer }
>;

/** One resource record of an UPDATE's prerequisite or update section (RFC 2136 §2.4, §2.5). */
export interface UpdateRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Buffer;
}

function invalid(message: string): ProviderError {
  return new ProviderError('Rejected', message, { retryable: false });
}

function inZone(name: string, zone: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  const z = zone.toLowerCase().replace(/\.$/, '');
  return n === z || n.endsWith(`.${z}`);
}

function validateRecord(record: DnsRecordRef): void {
  if (!inZone(record.name, record.zone)) {
    throw invalid(`record ${record.name} is not inside zone ${record.zone}: the name must end with the zone`);
  }
  try {
    encodeName(ownershipRecordName(record.name));
  } catch (err) {
    throw invalid(`record name ${record.name} is not a valid DNS name: ${(err as Error).message}`);
  }
}

/** The RDATA of a record value, validated (RFC 1035 §3.3.1, §3.4.1; RFC 3596 §2.2). */
export function recordRdata(type: DnsRecordType, value: string): Buffer {
  if (type === 'A' || type === 'AAAA') {
    if (isIP(value) !== (type === 'A' ? 4 : 6)) {
      throw invalid(
        `"${value}" is not an ${type === 'A' ? 'IPv4' : 'IPv6'} address, as an ${type} record needs`,
      );
    }
    return (type === 'A' ? rdataCodecs.a : rdataCodecs.aaaa).encode(value).subarray(2);
  }
  try {
    return encodeName(value);
  } catch (err) {
    throw invalid(`"${value}" is not a host name, as a CNAME record needs: ${(err as Error).message}`);
  }
}

/** The RDATA of a TXT record holding these strings, each at most 255 octets (RFC 1035 §3.3.14). */
export function txtRdata(strings: (string | Buffer)[]): Buffer {
  for (const s of strings) {
    if (Buffer.byteLength(s) > 255)
      throw invalid(`TXT string "${String(s).slice(0, 40)}..." is longer than 255 octets`);
  }
  return rdataCodecs.txt.encode(strings.map((s) => Buffer.from(s))).subarray(2);
}

/**
 * Encodes an UPDATE message (RFC 2136 §2): the header with opcode UPDATE, the zone section (the
 * zone's SOA, class IN), then prerequisites and updates. Names are never compressed.
 */
export function encodeUpdateMessage(
  id: number,
  zone: string,
  prerequisites: UpdateRecord[],
  updates: UpdateRecord[],
): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(OPCODE_UPDATE << 11, 2);
  header.writeUInt16BE(1, 4); // ZOCOUNT
  header.writeUInt16BE(prerequisites.length, 6); // PRCOUNT
  header.writeUInt16BE(updates.length, 8); // UPCOUNT
  header.writeUInt16BE(0, 10); // ADCOUNT; signing adds the TSIG
  const zoneTail = Buffer.alloc(4);
  zoneTail.writeUInt16BE(TYPE_CODES.SOA, 0);
  zoneTail.writeUInt16BE(CLASS_IN, 2);
  const records = [...prerequisites, ...updates].map((rr) => {
    const fixed = Buffer.alloc(10);
    fixed.writeUInt16BE(rr.type, 0);
    fixed.writeUInt16BE(rr.class, 2);
    fixed.writeUInt32BE(rr.ttl, 4);
    fixed.writeUInt16BE(rr.rdata.length, 8);
    return Buffer.concat([encodeName(rr.name), fixed, rr.rdata]);
  });
  return Buffer.concat([header, encodeName(zone), zoneTail, ...records]);
}

/**
 * Prerequisites requiring both RRsets to be exactly as `observed` (RFC 2136 §2.4): each must
 * hold exactly the RDATA observed (§2.4.2, value-dependent "RRset exists": the whole RRset must
 * match), or must not exist when none was observed (§2.4.3). For an absent record, a CNAME also
 * needs the name unused (§2.4.5) and an A/AAAA needs no CNAME there: otherwise the server would
 * silently drop the new record (RFC 2136 §3.4.2.2) yet write the ownership TXT.
 */
export function observedPrerequisites(observed: ObservedRecord): UpdateRecord[] {
  const { name, type } = observed.record;
  const txtName = ownershipRecordName(name);
  const empty = Buffer.alloc(0);
  const mustNotExist = (n: string, t: number): UpdateRecord => ({
    name: n,
    type: t,
    class: CLASS_NONE,
    ttl: 0,
    rdata: empty,
  });
  const mustHold = (n: string, t: number, rdata: Buffer): UpdateRecord => ({
    name: n,
    type: t,
    class: CLASS_IN,
    ttl: 0,
    rdata,
  });
  const prerequisites: UpdateRecord[] = [];
  if (observed.recordRdata.length === 0) {
    if (type === 'CNAME') prerequisites.push(mustNotExist(name, TYPE_CODES.ANY));
    else prerequisites.push(mustNotExist(name, TYPE_CODES[type]), mustNotExist(name, TYPE_CODES.CNAME));
  } else {
    for (const rdata of observed.recordRdata) prerequisites.push(mustHold(name, TYPE_CODES[type], rdata));
  }
  if (observed.ownershipRdata.length === 0) prerequisites.push(mustNotExist(txtName, TYPE_CODES.TXT));
  else
    for (const rdata of observed.ownershipRdata) prerequisites.push(mustHold(txtName, TYPE_CODES.TXT, rdata));
  return prerequisites;
}

/** RFC 2136 §2.5.2: delete an RRset (class ANY, no RDATA). */
function deleteRrset(name: string, type: number): UpdateRecord {
  return { name, type, class: CLASS_ANY, ttl: 0, rdata: Buffer.alloc(0) };
}

/**
 * The UPDATE that turns `observed` into `change`, as a compare-and-swap: the observed state as
 * prerequisites, then (§2.5) delete each RRset (§2.5.2) and add the new RR (§2.5.1).
 */
export function compareAndSwapRecords(
  change: DnsChange,
  observed: ObservedRecord,
): { prerequisites: UpdateRecord[]; updates: UpdateRecord[] } {
  const { name, type } = change.record;
  const txtName = ownershipRecordName(name);
  const updates: UpdateRecord[] = [
    deleteRrset(name, TYPE_CODES[type]),
    {
      name,
      type: TYPE_CODES[type],
      class: CLASS_IN,
      ttl: change.ttl,
      rdata: recordRdata(type, change.value),
    },
    deleteRrset(txtName, TYPE_CODES.TXT),
    {
      name: txtName,
      type: TYPE_CODES.TXT,
      class: CLASS_IN,
      ttl: change.ttl,
      rdata: txtRdata(ownershipTxt(change.owner, change.epoch)),
    },
  ];
  return { prerequisites: observedPrerequisites(observed), updates };
}

/**
 * The UPDATE that deletes what `observed` holds, as a compare-and-swap: the observed state as
 * prerequisites (so the TXT must still hold exactly the owner and epoch read, and the record
 * exactly its values), then (§2.5.2) delete each RRset that was there. One message, so the
 * server deletes both or neither.
 */
export function removalRecords(observed: ObservedRecord): {
  prerequisites: UpdateRecord[];
  updates: UpdateRecord[];
} {
  const { name, type } = observed.record;
  const updates: UpdateRecord[] = [];
  if (observed.recordRdata.length > 0) updates.push(deleteRrset(name, TYPE_CODES[type]));
  if (observed.ownershipRdata.length > 0)
    updates.push(deleteRrset(ownershipRecordName(name), TYPE_CODES.TXT));
  return { prerequisites: observedPrerequisites(observed), updates };
}

/**
 * Decides, without I/O, what `apply` must do about `change` given the record's current state:
 * nothing ('unchanged'), or write it ('write'). Throws ProviderError `OwnershipConflict` for a
 * record the operator does not own and `PreconditionFailed` for one that moved on.
 */
export function planChange(change: DnsChange, state: DnsRecordState): 'unchanged' | 'write' {
  const { name, type } = change.record;
  const txtName = ownershipRecordName(name);
  if (state.owner !== undefined && state.owner !== change.owner) {
    throw new ProviderError(
      'OwnershipConflict',
      `${txtName} names owner "${state.owner}", not "${change.owner}": the operator never overwrites a record another owner manages`,
    );
  }
  if (state.value !== undefined && state.owner === undefined) {
    throw new ProviderError(
      'OwnershipConflict',
      `${name} ${type} already exists (${state.value}) without an ownership TXT record at ${txtName}: the operator never takes over a record it did not create; delete the record, or hand it over by creating that TXT record with the strings "owner=${change.owner}" "epoch=0"`,
    );
  }
  const value = canonicalValue(type, change.value);
  // A different TTL is a change too (a drill lowers it, and puts it back).
  if (
    state.value === value &&
    state.epoch === change.epoch &&
    (state.ttl === undefined || state.ttl === change.ttl)
  )
    return 'unchanged';
  if (state.epoch !== undefined && state.epoch > change.epoch) {
    throw new ProviderError(
      'PreconditionFailed',
      `${name} is at epoch ${state.epoch}, newer than this change's epoch ${change.epoch}: a later promotion already wrote it`,
    );
  }
  const expected = change.expected === undefined ? undefined : canonicalValue(type, change.expected);
  if (state.value !== expected && state.value !== value) {
    throw new ProviderError(
      'PreconditionFailed',
      `${name} ${type} holds ${state.value ?? 'nothing'}, neither the expected ${expected ?? '(absent)'} nor the new ${value}`,
    );
  }
  return 'write';
}

function validateChange(change: DnsChange): void {
  validateRecord(change.record);
  if (!Number.isInteger(change.ttl) || change.ttl < 0 || change.ttl > 2_147_483_647) {
    throw invalid(`TTL must be a whole number of seconds from 0 to 2147483647, got ${change.ttl}`);
  }
  if (!Number.isSafeInteger(change.epoch) || change.epoch < 0) {
    throw invalid(`epoch must be a non-negative integer, got ${change.epoch}`);
  }
  if (change.owner === '' || /\s/.test(change.owner)) {
    throw invalid(`owner id must be non-empty without spaces, got "${change.owner}"`);
  }
  recordRdata(change.record.type, change.value);
  txtRdata(ownershipTxt(change.owner, change.epoch));
}

const PRECONDITION_RCODES: Record<string, string> = {
  NXRRSET: 'an RRset that had to hold the values read no longer does',
  YXRRSET: 'an RRset that had to be absent now exists',
  YXDOMAIN: 'the name, which had to be unused, now holds records',
  NXDOMAIN: 'a name that had to exist does not',
};

/** A DnsProvider over RFC 2136 dynamic updates signed with TSIG. */
export class Rfc2136DnsProvider implements DnsProvider {
  private readonly server: DnsServerAddress;
  private readonly key: TsigKey;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly fudgeSeconds: number | undefined;

  constructor(options: Rfc2136ProviderOptions) {
    const algorithm = options.key.algorithm ?? 'hmac-sha256';
    if (!isTsigAlgorithm(algorithm)) {
      throw invalid(
        `TSIG algorithm "${algorithm}" is not supported; use hmac-sha256, hmac-sha384 or hmac-sha512`,
      );
    }
    try {
      decodeTsigSecret(options.key.secret);
      encodeName(options.key.name);
    } catch (err) {
      throw invalid(`TSIG key "${options.key.name}": ${(err as Error).message}`);
    }
    this.server = { host: options.host, port: options.port ?? 53 };
    this.key = { name: options.key.name, algorithm, secret: options.key.secret };
    this.timeoutMs = options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
    this.clock = options.clock ?? systemClock;
    this.fudgeSeconds = options.fudgeSeconds;
  }

  /** Reads the record and its ownership TXT from the server with signed, non-recursive queries. */
  async read(record: DnsRecordRef): Promise<DnsRecordState> {
    return (await this.observe(record)).state;
  }

  /**
   * Writes the change as one compare-and-swap UPDATE, after reading the record. When it already
   * holds this value, owner and epoch nothing is written: an UPDATE with prerequisites only
   * confirms that the two RRsets held what was read at one instant, since the two queries of a
   * read could straddle another writer's update. See DnsProvider.apply for the errors.
   */
  async apply(change: DnsChange): Promise<{ changed: boolean }> {
    validateChange(change);
    const deadline = Date.now() + this.timeoutMs;
    const observed = await this.observeUntil(change.record, deadline);
    if (planChange(change, observed.state) === 'unchanged') {
      await this.sendUpdate(change.record, observedPrerequisites(observed), [], deadline, 'confirmation');
      return { changed: false };
    }
    const { prerequisites, updates } = compareAndSwapRecords(change, observed);
    await this.sendUpdate(change.record, prerequisites, updates, deadline, 'update');
    return { changed: true };
  }

  /**
   * Deletes the record and its ownership TXT in one UPDATE whose prerequisites repeat exactly
   * what was read, so a TXT re-written in between (another owner, a newer epoch) makes the server
   * delete nothing. When nothing of ours is there, an UPDATE with prerequisites only confirms
   * that both RRsets were absent at one instant, as `apply` does. See DnsProvider.remove.
   */
  async remove(record: DnsRecordRef, owner: string): Promise<{ removed: boolean }> {
    validateRecord(record);
    const deadline = Date.now() + this.timeoutMs;
    const observed = await this.observeUntil(record, deadline);
    if (planRemoval(record, observed.state, owner) === 'absent') {
      await this.sendUpdate(record, observedPrerequisites(observed), [], deadline, 'confirmation');
      return { removed: false };
    }
    const { prerequisites, updates } = removalRecords(observed);
    await this.sendUpdate(record, prerequisites, updates, deadline, 'deletion');
    return { removed: true };
  }

  /**
   * The write half of `remove`: deletes what `observed` holds, with prerequisites requiring both
   * RRsets to be exactly as observed. Skips `remove`'s ownership checks; a server whose data
   * moved on answers with a failed prerequisite, thrown as `PreconditionFailed`.
   */
  async removeObserved(observed: ObservedRecord): Promise<void> {
    const { prerequisites, updates } = removalRecords(observed);
    await this.sendUpdate(observed.record, prerequisites, updates, Date.now() + this.timeoutMs, 'deletion');
  }

  /** The read half of `apply`: the state plus the exact RRsets the compare-and-swap repeats. */
  observe(record: DnsRecordRef): Promise<ObservedRecord> {
    validateRecord(record);
    return this.observeUntil(record, Date.now() + this.timeoutMs);
  }

  /**
   * The write half of `apply`: sends `change` with prerequisites requiring both RRsets to be
   * exactly as `observed`. Skips `apply`'s ownership checks; a server whose data moved on
   * answers with a failed prerequisite, thrown as `PreconditionFailed`.
   */
  async compareAndSwap(change: DnsChange, observed: ObservedRecord): Promise<void> {
    validateChange(change);
    const { prerequisites, updates } = compareAndSwapRecords(change, observed);
    await this.sendUpdate(change.record, prerequisites, updates, Date.now() + this.timeoutMs, 'update');
  }

  /** Nothing to release: every exchange opens its own socket and closes it when answered. */
  async close(): Promise<void> {}

  private async observeUntil(record: DnsRecordRef, deadline: number): Promise<ObservedRecord> {
    const txtName = ownershipRecordName(record.name);
    const [records, txts] = await allInOrder([
      this.signedQuery(record, record.name, record.type, deadline),
      this.signedQuery(record, txtName, 'TXT', deadline),
    ]);
    const values = records.flatMap((a) =>
      a.type === record.type ? [canonicalValue(record.type, String(answerData(a)))] : [],
    );
    const txtStrings = txts.map((a) => (a.type === 'TXT' ? (answerData(a) as Buffer[]) : []));
    const ownership = parseOwnershipTxt(txtStrings.flat().map((b) => Buffer.from(b).toString('utf8')));
    const state: DnsRecordState = {};
    // Several values: a record the operator did not write (it writes one), reported joined so it
    // never equals a single value and every compare-and-swap against it fails.
    if (values.length > 0) state.value = [...values].sort().join(', ');
    const first = records[0];
    if (first && 'ttl' in first && first.ttl !== undefined) state.ttl = first.ttl;
    if (ownership.owner !== undefined) state.owner = ownership.owner;
    if (ownership.epoch !== undefined) state.epoch = ownership.epoch;
    return {
      record,
      state,
      recordRdata: values.map((v) => recordRdata(record.type, v)),
      ownershipRdata: txtStrings.map((strings) => txtRdata(strings)),
    };
  }

  /** Sends one signed UPDATE; resolves when the server applied it (or, without updates, confirmed it). */
  private async sendUpdate(
    record: DnsRecordRef,
    prerequisites: UpdateRecord[],
    updates: UpdateRecord[],
    deadline: number,
    kind: 'update' | 'deletion' | 'confirmation',
  ): Promise<void> {
    const what = `${kind} of ${record.name} ${record.type}`;
    const writes = kind !== 'confirmation';
    const request = this.sign(encodeUpdateMessage(newMessageId(), record.zone, prerequisites, updates));
    let reply: Buffer;
    try {
      reply = await this.exchange(request, deadline, what);
    } catch (err) {
      if (writes && err instanceof ProviderError && err.reason === 'Timeout') {
        throw new ProviderError(
          'Timeout',
          `${err.message}; the ${kind} may or may not have taken effect, so read the record again before deciding`,
          { cause: err },
        );
      }
      throw err;
    }
    this.checkSignature(reply, request, what);
    const rcode = decodeMessage(this.server, reply).rcode;
    if (rcode === 'NOERROR') return;
    const lost = PRECONDITION_RCODES[rcode];
    if (lost) {
      throw new ProviderError(
        'PreconditionFailed',
        writes
          ? `${what} lost its compare-and-swap: ${lost} (server answered ${rcode}); the record or its ownership TXT changed since it was read`
          : `${record.name} ${record.type} changed while it was being read: ${lost} (server answered ${rcode}); read it again`,
      );
    }
    throw this.rcodeError(rcode, what, record.zone);
  }

  /** A signed, non-recursive query; returns the answer records for this name and type. */
  private async signedQuery(
    record: DnsRecordRef,
    name: string,
    type: DnsRecordType | 'TXT',
    deadline: number,
  ): Promise<dnsPacket.Answer[]> {
    const what = `query for ${name} ${type}`;
    const request = this.sign(encodeQuery(name, type));
    const reply = await this.exchange(request, deadline, what);
    this.checkSignature(reply, request, what);
    const packet = decodeMessage(this.server, reply);
    if (packet.rcode !== 'NOERROR' && packet.rcode !== 'NXDOMAIN')
      throw this.rcodeError(packet.rcode, what, record.zone);
    if (!packet.flag_aa) {
      throw invalid(
        `DNS server ${formatServer(this.server)} is not authoritative for ${name}: point the provider at a primary server of zone ${record.zone}`,
      );
    }
    const wanted = name.toLowerCase();
    return (packet.answers ?? []).filter((a) => a.type === type && a.name.toLowerCase() === wanted);
  }

  private sign(message: Buffer): SignedRequest {
    return signRequest(message, this.key, { now: this.clock.now(), fudgeSeconds: this.fudgeSeconds });
  }

  private async exchange(request: SignedRequest, deadline: number, what: string): Promise<Buffer> {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new ProviderError('Timeout', `${what}: the ${this.timeoutMs} ms allowed for this call ran out`);
    }
    try {
      return await exchangeDnsMessage(this.server, request.message, {
        transport: 'tcp',
        timeoutMs: remaining,
      });
    } catch (err) {
      if (err instanceof ProviderError) {
        throw new ProviderError(err.reason, `${what}: ${err.message}`, {
          retryable: err.retryable,
          cause: err,
        });
      }
      throw err;
    }
  }

  /** Accepts only answers the server signed with our key (RFC 8945 §5.4). */
  private checkSignature(reply: Buffer, request: SignedRequest, what: string): void {
    const where = formatServer(this.server);
    const verdict = verifyResponse(reply, request, this.key, this.clock.now());
    if (verdict.status === 'verified') return;
    const key = `"${this.key.name}" (${this.key.algorithm})`;
    if (verdict.status === 'error') {
      const fix: Record<string, string> = {
        BADSIG: `the secret of key ${key} differs from the server's: check the TSIG secret`,
        BADKEY: `the server does not know key ${key}: check the key name and algorithm`,
        BADTIME:
          verdict.serverTime === undefined
            ? "this machine's clock and the server's differ by more than the fudge: synchronise the clocks"
            : `this machine's clock and the server's differ by ${Math.abs(verdict.serverTime - Math.floor(this.clock.now().getTime() / 1000))} s, more than the fudge: synchronise the clocks`,
      };
      throw new ProviderError(
        'AuthenticationFailed',
        `DNS server ${where} refused the TSIG signature of the ${what} (${verdict.error}): ${fix[verdict.error] ?? 'check the TSIG key'}`,
      );
    }
    const rcode = reply.length >= 4 ? decodeMessage(this.server, reply).rcode : 'unknown';
    const why =
      verdict.status === 'unsigned'
        ? `its answer (${rcode}) carries no TSIG signature: the server does not accept key ${key}, or something else answered`
        : `its answer (${rcode}) fails TSIG verification: ${verdict.reason}`;
    throw new ProviderError('AuthenticationFailed', `${what} to DNS server ${where}: ${why}`);
  }

  private rcodeError(rcode: string, what: string, zone: string): ProviderError {
    const where = formatServer(this.server);
    switch (rcode) {
      case 'NOTAUTH':
        return new ProviderError(
          'AuthenticationFailed',
          `DNS server ${where} answered NOTAUTH to the ${what}: it is not authoritative for zone ${zone}, or does not accept key "${this.key.name}"`,
        );
      case 'REFUSED':
        return new ProviderError(
          'ProviderError',
          `DNS server ${where} refused the ${what} (REFUSED): check that it serves zone ${zone} and that its update-policy grants key "${this.key.name}" updates there`,
          { retryable: true },
        );
      case 'SERVFAIL':
        return new ProviderError(
          'ProviderError',
          `DNS server ${where} failed to process the ${what} (SERVFAIL)`,
          {
            retryable: true,
          },
        );
      case 'NOTZONE':
        return invalid(
          `DNS server ${where} answered NOTZONE to the ${what}: the name is not inside zone ${zone}`,
        );
      case 'FORMERR':
      case 'NOTIMP':
        return invalid(
          `DNS server ${where} rejected the ${what} as ${rcode}: it does not support this request`,
        );
      default:
        return new ProviderError('ProviderError', `DNS server ${where} answered ${rcode} to the ${what}`, {
          retryable: true,
        });
    }
  }
}
