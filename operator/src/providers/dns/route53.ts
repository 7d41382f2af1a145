/**
 * Route 53 DNS provider. Every change is one ChangeResourceRecordSets batch that DELETEs the
 * record and its ownership TXT exactly as they were read and CREATEs the new ones. Route 53
 * applies a batch all or nothing, and refuses a DELETE that does not match the record set's
 * current values, so the batch is a compare-and-swap: of two deciders that read the same record,
 * only the first batch applies (design rule 4).
 *
 * `apply` returns once Route 53 accepted the batch. Propagation to every Route 53 server (INSYNC)
 * takes up to a minute and is not waited for: the controller asks the authoritative servers on
 * later reconciles, which is what counts.
 */
import type {
  Change,
  ListResourceRecordSetsCommandOutput,
  ResourceRecordSet,
  Route53Client,
} from '@aws-sdk/client-route-53';
import { allInOrder } from '../../runtime/promises.ts';
import { type AwsClientOptions, awsClientConfig, awsErrorName, classifyAwsError } from '../aws.ts';
import { route53Sdk } from '../aws-sdk.ts';
import { ProviderError } from '../errors.ts';
import {
  type DnsChange,
  type DnsProvider,
  type DnsRecordRef,
  type DnsRecordState,
  ownershipRecordName,
  ownershipTxt,
  parseOwnershipTxt,
  planRemoval,
} from './port.ts';

export interface Route53DnsOptions extends Omit<AwsClientOptions, 'region'> {
  /** `spec.dns.provider.route53.hostedZoneId`. */
  hostedZoneId: string;
  /** Region for the API client; Route 53 is global. Default us-east-1. */
  region?: string;
  /** A client to use instead of making one (shared clients, tests); `close` leaves it open. */
  client?: Route53Client;
  /** Called once by `close` when `client` was given: hands a shared client back (SharedAwsClients). */
  release?: () => void;
}

/** What `apply` returns: the port's `changed`, plus the change Route 53 accepted. */
export interface Route53ApplyResult {
  changed: boolean;
  /** The change's id, for GetChange and the audit trail; absent when nothing was sent. */
  changeId?: string;
  /** Route 53's status of the change when it accepted it: PENDING until it is on all its servers. */
  status?: string;
}

/** The record and its ownership TXT as the API holds them, kept for the exact DELETEs. */
interface CurrentRecords {
  record?: ResourceRecordSet;
  ownership?: ResourceRecordSet;
  state: DnsRecordState;
}

export class Route53Dns implements DnsProvider {
  private readonly client: Route53Client;
  private readonly ownsClient: boolean;
  private readonly hostedZoneId: string;
  private closed = false;
  private readonly release: (() => void) | undefined;

  constructor(options: Route53DnsOptions) {
    this.hostedZoneId = options.hostedZoneId.replace(/^\/hostedzone\//, '');
    this.ownsClient = options.client === undefined;
    this.release = options.release;
    this.client =
      options.client ??
      new (route53Sdk().Route53Client)(
        awsClientConfig({ ...options, region: options.region ?? 'us-east-1' }),
      );
  }

  async read(record: DnsRecordRef): Promise<DnsRecordState> {
    return (await this.readCurrent(record)).state;
  }

  async apply(change: DnsChange): Promise<Route53ApplyResult> {
    const { record } = change;
    const current = await this.readCurrent(record);
    const { state } = current;
    const holdsNew = state.value !== undefined && sameValue(record.type, state.value, change.value);
    // The TTL too: a drill lowers it at the same epoch, and puts it back after.
    if (holdsChange(record, state, change)) return { changed: false };

    // A record we did not create is never taken over, whatever it holds.
    if (state.owner !== undefined && state.owner !== change.owner) {
      throw new ProviderError(
        'OwnershipConflict',
        `${ownershipRecordName(record.name)} names owner "${state.owner}", not "${change.owner}": the record belongs to someone else; set spec.dns.ownerId to that owner if it is this policy, or use another record`,
      );
    }
    if (current.record && state.owner === undefined) {
      throw new ProviderError(
        'OwnershipConflict',
        `${record.name} ${record.type} exists without an ownership TXT record at ${ownershipRecordName(record.name)}: the operator never takes over a record it did not create; delete the record, or create that TXT record with "owner=${change.owner}" to hand it over`,
      );
    }
    // The epoch only grows: a change carrying an older one comes from a decider whose view a
    // later promotion has overtaken, even when the record happens to hold what it expects.
    if (state.epoch !== undefined && change.epoch < state.epoch) {
      throw new ProviderError(
        'PreconditionFailed',
        `${ownershipRecordName(record.name)} carries epoch ${state.epoch}, newer than this change's ${change.epoch}: a later promotion already changed the record; decide again from the current state`,
      );
    }
    const holdsExpected =
      change.expected === undefined
        ? state.value === undefined
        : state.value !== undefined && sameValue(record.type, state.value, change.expected);
    if (!holdsExpected && !holdsNew) {
      throw new ProviderError(
        'PreconditionFailed',
        `${record.name} ${record.type} holds ${state.value === undefined ? 'nothing' : `"${state.value}"`}, expected ${change.expected === undefined ? 'no record' : `"${change.expected}"`} (or "${change.value}"): it was changed by someone else since it was last read`,
      );
    }

    // The record is left alone when it already holds the new value and TTL: re-creating it
    // identically changes nothing, and the exact DELETE of the ownership TXT, which every
    // operator write replaces, still makes the batch fail if another decider wrote in between.
    const replaceRecord = !(holdsNew && state.ttl === change.ttl);
    const changes: Change[] = [];
    if (current.record && replaceRecord)
      changes.push({ Action: 'DELETE', ResourceRecordSet: current.record });
    if (current.ownership) changes.push({ Action: 'DELETE', ResourceRecordSet: current.ownership });
    if (replaceRecord) {
      changes.push({
        Action: 'CREATE',
        ResourceRecordSet: {
          Name: fqdn(record.name),
          Type: record.type,
          TTL: change.ttl,
          ResourceRecords: [{ Value: record.type === 'CNAME' ? fqdn(change.value) : change.value }],
        },
      });
    }
    changes.push({
      Action: 'CREATE',
      ResourceRecordSet: {
        Name: fqdn(ownershipRecordName(record.name)),
        Type: 'TXT',
        TTL: change.ttl,
        ResourceRecords: [{ Value: ownershipTxt(change.owner, change.epoch).map(quoteTxt).join(' ') }],
      },
    });

    const operation = `Route 53 ChangeResourceRecordSets for ${record.name} ${record.type} in zone ${this.hostedZoneId}`;
    try {
      const out = await this.client.send(
        new (route53Sdk().ChangeResourceRecordSetsCommand)({
          HostedZoneId: this.hostedZoneId,
          ChangeBatch: {
            Comment: `failover-operator: epoch ${change.epoch} by ${change.owner}`,
            Changes: changes,
          },
        }),
      );
      return {
        changed: true,
        ...(out.ChangeInfo?.Id ? { changeId: out.ChangeInfo.Id } : {}),
        ...(out.ChangeInfo?.Status ? { status: out.ChangeInfo.Status } : {}),
      };
    } catch (err) {
      const failed = classifyChangeBatchError(err, operation);
      // The SDK retries a batch whose answer never came (a timeout, a 5xx); if the first attempt
      // applied, the retry's exact DELETEs no longer match and Route 53 refuses it. The record
      // then holds this very change: it is made, not lost to another writer.
      if (failed.reason === 'PreconditionFailed') {
        const now = await this.readCurrent(record).catch(() => undefined);
        if (now && holdsChange(record, now.state, change)) return { changed: true };
      }
      throw failed;
    }
  }

  /**
   * Deletes the record and its ownership TXT in one change batch whose DELETEs carry the values
   * and TTLs just read: Route 53 refuses the whole batch if either set changed since (another
   * owner, a newer epoch), so nothing is deleted that was not read as ours. See DnsProvider.remove.
   */
  async remove(record: DnsRecordRef, owner: string): Promise<{ removed: boolean }> {
    const current = await this.readCurrent(record);
    if (planRemoval(record, current.state, owner) === 'absent') return { removed: false };
    const changes: Change[] = [];
    if (current.record) changes.push({ Action: 'DELETE', ResourceRecordSet: current.record });
    if (current.ownership) changes.push({ Action: 'DELETE', ResourceRecordSet: current.ownership });
    const operation = `Route 53 ChangeResourceRecordSets deleting ${record.name} ${record.type} in zone ${this.hostedZoneId}`;
    try {
      await this.client.send(
        new (route53Sdk().ChangeResourceRecordSetsCommand)({
          HostedZoneId: this.hostedZoneId,
          ChangeBatch: { Comment: `failover-operator: removed by ${owner}`, Changes: changes },
        }),
      );
    } catch (err) {
      throw classifyChangeBatchError(err, operation);
    }
    return { removed: true };
  }

  /** Releases the HTTP connections of a client this adapter made; a given client stays open. */
  async close(): Promise<void> {
    if (!this.closed) {
      if (this.ownsClient) this.client.destroy();
      else this.release?.();
    }
    this.closed = true;
  }

  private async readCurrent(ref: DnsRecordRef): Promise<CurrentRecords> {
    const [record, ownership] = await allInOrder([
      this.readRecordSet(ref.name, ref.type),
      this.readRecordSet(ownershipRecordName(ref.name), 'TXT'),
    ]);
    const state: DnsRecordState = {};
    if (record) {
      const values = (record.ResourceRecords ?? []).map((r) => stripDot(r.Value ?? ''));
      // Several values can never equal the one value the operator writes, so a CAS against
      // such a record fails, as it should.
      state.value = values.join(',');
      if (record.TTL !== undefined) state.ttl = record.TTL;
    }
    if (ownership) {
      const parsed = parseOwnershipTxt(
        (ownership.ResourceRecords ?? []).flatMap((r) => parseTxtStrings(r.Value ?? '')),
      );
      if (parsed.owner !== undefined) state.owner = parsed.owner;
      if (parsed.epoch !== undefined) state.epoch = parsed.epoch;
    }
    return { ...(record ? { record } : {}), ...(ownership ? { ownership } : {}), state };
  }

  private async readRecordSet(name: string, type: string): Promise<ResourceRecordSet | undefined> {
    let out: ListResourceRecordSetsCommandOutput;
    try {
      out = await this.client.send(
        new (route53Sdk().ListResourceRecordSetsCommand)({
          HostedZoneId: this.hostedZoneId,
          StartRecordName: fqdn(name),
          StartRecordType: type as 'TXT',
          MaxItems: 1,
        }),
      );
    } catch (err) {
      throw classifyAwsError(
        err,
        `Route 53 ListResourceRecordSets for ${name} ${type} in zone ${this.hostedZoneId}`,
      );
    }
    // The list starts at the name and type asked for, or at whatever sorts after them.
    const found = out.ResourceRecordSets?.[0];
    if (!found || found.Type !== type || normalizeName(found.Name ?? '') !== normalizeName(name))
      return undefined;
    if (found.AliasTarget || found.SetIdentifier !== undefined) {
      throw new ProviderError(
        'Rejected',
        `${name} ${type} in zone ${this.hostedZoneId} is an alias or a weighted/latency/failover routing record; the operator manages simple records only: use a record name that only it manages`,
      );
    }
    return found;
  }
}

/**
 * Route 53 refuses a batch with InvalidChangeBatch both when a DELETE or CREATE meets a record
 * set that changed (the CAS lost: retry after a fresh read) and when the change itself is wrong
 * (a name outside the zone, a CNAME beside other records): the second needs a person.
 */
function classifyChangeBatchError(err: unknown, operation: string): ProviderError {
  if (awsErrorName(err) !== 'InvalidChangeBatch') return classifyAwsError(err, operation);
  const e = err as { message?: string; messages?: string[] };
  const text = [...(e.messages ?? []), e.message ?? ''].join('; ');
  const misconfigured =
    /not permitted|FATAL problem|Invalid Resource Record|conflicts with other records/i.test(text);
  return new ProviderError(
    misconfigured ? 'Rejected' : 'PreconditionFailed',
    misconfigured
      ? `${operation}: Route 53 refused the change: ${text}; check spec.dns (zone, name, type) and the clusters' dnsTarget`
      : `${operation}: the record changed since it was read, Route 53 applied nothing: ${text}`,
    { cause: err },
  );
}

function fqdn(name: string): string {
  return name.endsWith('.') ? name : `${name}.`;
}

function stripDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** Route 53 returns names with a trailing dot and some characters as \ddd octal escapes. */
function normalizeName(name: string): string {
  return stripDot(
    name.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))),
  ).toLowerCase();
}

/** Whether the record already holds this change: value, TTL, owner and epoch. */
function holdsChange(record: DnsRecordRef, state: DnsRecordState, change: DnsChange): boolean {
  return (
    state.value !== undefined &&
    sameValue(record.type, state.value, change.value) &&
    state.ttl === change.ttl &&
    state.owner === change.owner &&
    state.epoch === change.epoch
  );
}

function sameValue(type: DnsRecordRef['type'], a: string, b: string): boolean {
  return type === 'CNAME' ? normalizeName(a) === normalizeName(b) : a.toLowerCase() === b.toLowerCase();
}

function quoteTxt(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Splits a Route 53 TXT value (`"owner=x" "epoch=3"`) into its character strings. */
function parseTxtStrings(value: string): string[] {
  const strings: string[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (const match of value.matchAll(pattern)) {
    const quoted = match[1];
    strings.push(quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (match[2] ?? ''));
  }
  return strings;
}
