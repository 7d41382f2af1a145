/**
 * DigitalOcean DNS (the Domains API, v2). DigitalOcean has no conditional update, so the
 * compare-and-swap is read-check-write by record id followed by a re-read. That narrows the race
 * between two writers but cannot close it: a write landing between our PUT and our re-read goes
 * unnoticed by one of them. RFC 2136 prerequisites and Route 53 change batches close it on the
 * server; here the ownership TXT record and the epoch are what keep two deciders apart.
 *
 * Ownership TXT layout: DigitalOcean keeps one string per TXT record in `data`, so the two strings
 * of `ownershipTxt()` are two TXT records at `_failover.<name>`, `owner=<id>` and `epoch=<n>`.
 * A resolver sees the same two strings (as two TXT records), and the epoch can be bumped with one
 * PUT by id without touching the owner.
 *
 * This file also holds the small DigitalOcean API client (fetch, bearer token, error mapping) the
 * database adapter uses too.
 */
import { z } from 'zod';
import { allInOrder } from '../../runtime/promises.ts';
import { ProviderError, type ProviderErrorReason } from '../errors.ts';
import {
  type DnsChange,
  type DnsProvider,
  type DnsRecordRef,
  type DnsRecordState,
  type DnsRecordType,
  ownershipRecordName,
  parseOwnershipTxt,
  planRemoval,
} from './port.ts';

/** DigitalOcean's public API; `apiUrl` in the resources overrides it (testing, proxies). */
export const DIGITALOCEAN_API_URL = 'https://api.digitalocean.com';

/** The lowest TTL DigitalOcean accepts for a domain record. */
export const DIGITALOCEAN_MIN_TTL = 30;

// ---- Response schemas, written from the published API (github.com/digitalocean/openapi) ----

/** Error body of every 4xx/5xx (shared/models/error.yml). */
export const digitalOceanErrorSchema = z.object({
  id: z.string(),
  message: z.string(),
  request_id: z.string().optional(),
});

/** A domain record (domains/models/domain_record.yml); unused attributes are null. */
export const domainRecordSchema = z.object({
  id: z.number().int(),
  type: z.string(),
  name: z.string(),
  data: z.string(),
  priority: z.number().int().nullish(),
  port: z.number().int().nullish(),
  ttl: z.number().int(),
  weight: z.number().int().nullish(),
  flags: z.number().int().nullish(),
  tag: z.string().nullish(),
});
export type DomainRecord = z.infer<typeof domainRecordSchema>;

/** Pagination links (shared/pages.yml) and meta (shared/meta.yml). */
const pageLinksSchema = z.object({
  pages: z
    .object({
      first: z.string().optional(),
      prev: z.string().optional(),
      next: z.string().optional(),
      last: z.string().optional(),
    })
    .optional(),
});

/** GET /v2/domains/{domain}/records (domains/responses/all_domain_records_response.yml). */
export const domainRecordsPageSchema = z.object({
  domain_records: z.array(domainRecordSchema),
  links: pageLinksSchema.optional(),
  meta: z.object({ total: z.number().int() }),
});

/** POST (201) and PUT (200) of one record (domains/responses/{created_domain_record,domain_record}.yml). */
export const domainRecordResponseSchema = z.object({ domain_record: domainRecordSchema });

// ---- The API client ----

/** A throttling error that carries the provider's retry hint (Retry-After, or ratelimit-reset). */
export class ThrottledError extends ProviderError {
  constructor(message: string, retryAfterMs: number | undefined) {
    super('Throttled', message, { retryable: true, retryAfterMs });
    this.name = 'ThrottledError';
  }
}

export interface DigitalOceanApiOptions {
  /** API token (read from the Secret named by tokenSecretRef). Never logged. */
  token: string;
  /** Base URL; DIGITALOCEAN_API_URL when omitted. A trailing `/v2` is accepted. */
  apiUrl?: string;
  /** Deadline of one request, body included. Default 10 s. */
  timeoutMs?: number;
}

interface RequestOptions<T> {
  query?: Record<string, string | number>;
  body?: unknown;
  schema?: z.ZodType<T>;
  /** What the request is for, in words, for error messages: "list records of example.com". */
  what: string;
}

/** The DigitalOcean API v2 over fetch: bearer auth, per-request timeout, errors as ProviderError. */
export class DigitalOceanApi {
  private readonly base: string;
  private readonly token: string;
  private readonly timeoutMs: number;

  constructor(opts: DigitalOceanApiOptions) {
    if (!opts.token) {
      throw new ProviderError(
        'CredentialsMissing',
        'the DigitalOcean API token is empty: put a token in the Secret key named by tokenSecretRef',
      );
    }
    this.base = (opts.apiUrl ?? DIGITALOCEAN_API_URL).replace(/\/+$/, '').replace(/\/v2$/, '');
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  get<T>(path: string, opts: RequestOptions<T>): Promise<T> {
    return this.request('GET', path, opts) as Promise<T>;
  }

  /** Sends one request; resolves with the parsed body, or undefined for 204. */
  async request<T>(method: string, path: string, opts: RequestOptions<T>): Promise<T | undefined> {
    const url = new URL(`${this.base}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, String(v));
    const where = `${opts.what} (${method} ${url.pathname})`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
        // Covers connecting, the headers and the body: a server that stalls anywhere times out.
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw transportError(err, where, this.timeoutMs);
    }
    if (!res.ok) throw httpError(res, text, where);
    if (res.status === 204 || !opts.schema) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ProviderError(
        'ProviderError',
        `DigitalOcean API: ${where} answered ${res.status} without JSON`,
        {
          cause: err,
        },
      );
    }
    const parsed = opts.schema.safeParse(json);
    if (!parsed.success) {
      throw new ProviderError(
        'ProviderError',
        `DigitalOcean API: ${where} answered with an unexpected shape: ${z.prettifyError(parsed.error)}`,
      );
    }
    return parsed.data;
  }
}

/** Maps a failed fetch (no HTTP response) to a reason. */
function transportError(err: unknown, where: string, timeoutMs: number): ProviderError {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new ProviderError('Timeout', `DigitalOcean API: ${where} did not answer within ${timeoutMs} ms`, {
      cause: err,
    });
  }
  const code = e.cause?.code ?? '';
  const detail = e.cause?.message ?? e.message ?? String(err);
  let reason: ProviderErrorReason = 'ProviderError';
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) {
    reason = 'Unreachable';
  } else if (['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT'].includes(code)) {
    reason = 'Timeout';
  } else if (/CERT|SSL|TLS/.test(code)) {
    reason = 'TlsFailed';
  }
  // Anything else (a reset or closed connection) means the server was there: retry later.
  return new ProviderError(
    reason,
    `DigitalOcean API: ${where} failed: ${detail}${code ? ` (${code})` : ''}`,
    {
      retryable: true,
      cause: err,
    },
  );
}

/** Maps an HTTP error status to a reason, with the API's own `id: message` in the text. */
function httpError(res: Response, text: string, where: string): ProviderError {
  let said = text.slice(0, 200);
  try {
    const body = digitalOceanErrorSchema.safeParse(JSON.parse(text));
    if (body.success) said = `${body.data.id}: ${body.data.message}`;
  } catch {
    // not JSON; keep the raw text
  }
  const status = res.status;
  const msg = `DigitalOcean API: ${where} answered ${status} (${said})`;
  if (status === 401 || status === 403) {
    return new ProviderError(
      'AuthenticationFailed',
      `${msg}: check that the Secret key named by tokenSecretRef holds a valid, unexpired token with the needed scopes`,
    );
  }
  if (status === 404) return new ProviderError('NotFound', msg);
  if (status === 429) return new ThrottledError(msg, retryAfterMs(res.headers));
  if (status >= 500) return new ProviderError('ProviderError', msg, { retryable: true });
  if ([400, 409, 412, 422].includes(status)) return new ProviderError('Rejected', msg);
  return new ProviderError('ProviderError', msg, { retryable: false });
}

/** Retry-After in seconds or as an HTTP date; else the ratelimit-reset epoch second. */
function retryAfterMs(headers: Headers): number | undefined {
  const retryAfter = headers.get('retry-after');
  if (retryAfter !== null) {
    if (/^\d+$/.test(retryAfter.trim())) return Number(retryAfter) * 1000;
    const at = Date.parse(retryAfter);
    if (!Number.isNaN(at)) return Math.max(0, at - Date.now());
  }
  const reset = headers.get('ratelimit-reset');
  if (reset !== null && /^\d+$/.test(reset.trim())) return Math.max(0, Number(reset) * 1000 - Date.now());
  return undefined;
}

// ---- The DNS provider ----

export interface DigitalOceanDnsOptions extends DigitalOceanApiOptions {
  /** Records per page when listing; the API allows up to 200. */
  pageSize?: number;
}

/** Where a record lives in DigitalOcean's terms: a domain and names relative to it. */
interface RecordLocation {
  domain: string;
  /** The record's fully qualified name, lower case. */
  fqdn: string;
  /** Relative name for writes; `@` for the apex. */
  relative: string;
  ownerFqdn: string;
  ownerRelative: string;
}

interface Snapshot {
  records: DomainRecord[];
  txt: DomainRecord[];
}

/** A DnsProvider for DigitalOcean domains. */
export class DigitalOceanDnsProvider implements DnsProvider {
  private readonly api: DigitalOceanApi;
  private readonly pageSize: number;

  constructor(opts: DigitalOceanDnsOptions) {
    this.api = new DigitalOceanApi(opts);
    this.pageSize = Math.min(200, Math.max(1, opts.pageSize ?? 200));
  }

  async read(record: DnsRecordRef): Promise<DnsRecordState> {
    const loc = locate(record);
    const snap = await this.snapshot(loc, record.type);
    const current = snap.records[0];
    const own = parseOwnershipTxt(snap.txt.map((r) => txtString(r.data)));
    // Every value, as the other providers read them: a second record added by hand never reads
    // as the one the operator wrote.
    return {
      ...(current ? { value: joinedValue(snap.records, record.type, loc.domain), ttl: current.ttl } : {}),
      ...own,
    };
  }

  async apply(change: DnsChange): Promise<{ changed: boolean }> {
    const { record } = change;
    if (change.ttl < DIGITALOCEAN_MIN_TTL) {
      throw new ProviderError(
        'Rejected',
        `DigitalOcean does not accept a TTL below ${DIGITALOCEAN_MIN_TTL} s: set spec.dns.ttlSeconds to ${DIGITALOCEAN_MIN_TTL} or more (got ${change.ttl})`,
      );
    }
    const loc = locate(record);
    const want = normalizeValue(record.type, change.value, loc.domain);
    const expected =
      change.expected === undefined ? undefined : normalizeValue(record.type, change.expected, loc.domain);

    const before = await this.snapshot(loc, record.type);
    this.checkOwnership(loc, record.type, before, change.owner);
    if (before.records.length > 1) {
      throw new ProviderError(
        'PreconditionFailed',
        `${loc.fqdn} has ${before.records.length} ${record.type} records; the operator manages exactly one: delete the others`,
      );
    }
    const current = before.records[0];
    const value = current ? normalizeValue(record.type, current.data, loc.domain) : undefined;
    const { epoch } = parseOwnershipTxt(before.txt.map((r) => txtString(r.data)));

    // The TTL too: a drill lowers it at the same epoch, and puts it back after.
    if (value === want && epoch === change.epoch && current?.ttl === change.ttl) return { changed: false };
    if (epoch !== undefined && epoch > change.epoch) {
      // Epochs only ever increase; a lower one means this decider acts on a stale view.
      throw new ProviderError(
        'PreconditionFailed',
        `${ownershipRecordName(loc.fqdn)} already holds epoch ${epoch}, newer than this change's ${change.epoch}`,
      );
    }
    if (value !== expected && value !== want) {
      throw new ProviderError(
        'PreconditionFailed',
        `${loc.fqdn} ${record.type} holds ${value === undefined ? 'nothing' : `"${value}"`}, expected ${
          expected === undefined ? 'no record' : `"${expected}"`
        }: it was changed by someone else since it was last read`,
      );
    }

    // The owner TXT goes first, so a crash never leaves a record the operator cannot prove it owns.
    const ownerTxt = before.txt.filter((r) => txtString(r.data).startsWith('owner='));
    let createdOwnerId: number | undefined;
    if (ownerTxt.length === 0) {
      const created = await this.createRecord(
        loc,
        'TXT',
        loc.ownerRelative,
        `owner=${change.owner}`,
        change.ttl,
      );
      createdOwnerId = created.id;
    }

    let recordId: number;
    let createdRecord = false;
    if (!current) {
      try {
        recordId = (
          await this.createRecord(loc, record.type, loc.relative, wireData(record.type, want), change.ttl)
        ).id;
      } catch (err) {
        // A CNAME created by someone else since our read makes the API refuse ours (422): that is
        // a lost race, to be decided anew, not a misconfiguration.
        if (!(err instanceof ProviderError) || err.reason !== 'Rejected') throw err;
        const now = await this.snapshot(loc, record.type);
        if (now.records.length === 0) throw err;
        if (createdOwnerId !== undefined) await this.deleteQuietly(loc, createdOwnerId);
        throw new ProviderError(
          'PreconditionFailed',
          `${loc.fqdn} ${record.type} was created by another writer while this change was applied; read it again and decide anew`,
          { cause: err },
        );
      }
      createdRecord = true;
    } else {
      recordId = current.id;
      if (value !== want || current.ttl !== change.ttl) {
        await this.updateRecord(
          loc,
          current.id,
          record.type,
          loc.relative,
          wireData(record.type, want),
          change.ttl,
        );
      }
    }

    // Re-read: if another writer changed the record between our read and now, we lost. This
    // narrows the race; it cannot close it (see the top of this file).
    const after = await this.snapshot(loc, record.type);
    const afterOwners = after.txt.filter((r) => txtString(r.data).startsWith('owner='));
    const won =
      after.records.length === 1 &&
      after.records[0]?.id === recordId &&
      normalizeValue(record.type, after.records[0].data, loc.domain) === want &&
      afterOwners.every((r) => txtString(r.data) === `owner=${change.owner}`);
    if (!won) {
      // Take back only what this call created; never touch another writer's records.
      if (createdRecord) await this.deleteQuietly(loc, recordId);
      if (createdOwnerId !== undefined) await this.deleteQuietly(loc, createdOwnerId);
      throw new ProviderError(
        'PreconditionFailed',
        `${loc.fqdn} ${record.type} was changed by another writer while this change was applied (DigitalOcean has no conditional update); read it again and decide anew`,
      );
    }
    // A decider with a newer epoch wrote the same value meanwhile: the record holds what it
    // wants, and its epoch stays. Writing ours over it would move the epoch back.
    const { epoch: afterEpoch } = parseOwnershipTxt(after.txt.map((r) => txtString(r.data)));
    if (afterEpoch !== undefined && afterEpoch > change.epoch) {
      throw new ProviderError(
        'PreconditionFailed',
        `${ownershipRecordName(loc.fqdn)} was given epoch ${afterEpoch}, newer than this change's ${change.epoch}, while this change was applied: a later promotion holds the record; decide again from the current state`,
      );
    }

    // The epoch follows only a change that won, so it never announces a promotion DNS did not make.
    const epochTxt = after.txt.filter((r) => txtString(r.data).startsWith('epoch='));
    const [firstEpoch, ...extraEpochs] = epochTxt;
    if (!firstEpoch) {
      await this.createRecord(loc, 'TXT', loc.ownerRelative, `epoch=${change.epoch}`, change.ttl);
    } else if (txtString(firstEpoch.data) !== `epoch=${change.epoch}`) {
      await this.updateRecord(
        loc,
        firstEpoch.id,
        'TXT',
        loc.ownerRelative,
        `epoch=${change.epoch}`,
        change.ttl,
      );
    }
    for (const extra of extraEpochs) await this.deleteQuietly(loc, extra.id);
    return { changed: true };
  }

  /**
   * Deletes the record(s) and then the ownership TXT records by id, after checking ownership on a
   * fresh listing. DigitalOcean has no conditional delete, so a change landing between the listing
   * and the deletes goes unnoticed (see the top of this file). The record goes first: a crash in
   * between leaves a TXT naming us alone, which the next call deletes, never a record without
   * its TXT, which no call may delete; for the same reason `owner=` goes after `epoch=`. Only
   * those two strings, which the operator wrote, are deleted; other TXT records at that name
   * stay. See DnsProvider.remove.
   */
  async remove(record: DnsRecordRef, owner: string): Promise<{ removed: boolean }> {
    const loc = locate(record);
    const snap = await this.snapshot(loc, record.type);
    const strings = snap.txt.map((r) => txtString(r.data));
    const owners = strings.filter((s) => s.startsWith('owner=')).map((s) => s.slice('owner='.length));
    // Of several owner strings, any naming another owner makes the name not ours alone.
    const claimant = owners.find((o) => o !== owner) ?? owners[0];
    const state: DnsRecordState = {
      ...(snap.records.length > 0 ? { value: joinedValue(snap.records, record.type, loc.domain) } : {}),
      ...(claimant !== undefined ? { owner: claimant } : {}),
    };
    if (planRemoval(record, state, owner) === 'absent') return { removed: false };
    const epochs = snap.txt.filter((r) => /^epoch=\d+$/.test(txtString(r.data)));
    const ownerTxt = snap.txt.filter((r) => txtString(r.data) === `owner=${owner}`);
    for (const r of [...snap.records, ...epochs, ...ownerTxt]) await this.deleteRecord(loc, r.id);
    return { removed: true };
  }

  /**
   * Refuses a record the operator does not own: a TXT naming another owner, or a record with no
   * owner TXT at all (one the operator did not create is never taken over).
   */
  private checkOwnership(loc: RecordLocation, type: DnsRecordType, snap: Snapshot, owner: string): void {
    const owners = snap.txt.map((r) => txtString(r.data)).filter((s) => s.startsWith('owner='));
    const other = owners.map((s) => s.slice('owner='.length)).find((o) => o !== owner);
    if (other !== undefined) {
      throw new ProviderError(
        'OwnershipConflict',
        `${loc.fqdn} belongs to owner "${other}" (TXT ${loc.ownerFqdn}), not "${owner}": the operator never changes a record another owner holds; set spec.dns.ownerId to "${other}" if this policy should manage it`,
      );
    }
    if (owners.length === 0 && snap.records.length > 0) {
      throw new ProviderError(
        'OwnershipConflict',
        `${loc.fqdn} already has a ${type} record but no TXT "owner=..." at ${loc.ownerFqdn}, so the operator did not create it and will not take it over: delete the record, or add a TXT record "owner=${owner}" at ${loc.ownerFqdn} to hand it over`,
      );
    }
  }

  /** The record(s) of this name and type and the ownership TXT records, oldest first. */
  /** Nothing to release: requests go through the process's shared fetch connection pool. */
  async close(): Promise<void> {}

  private async snapshot(loc: RecordLocation, type: DnsRecordType): Promise<Snapshot> {
    const [records, txt] = await allInOrder([
      this.listRecords(loc, loc.fqdn, type),
      this.listRecords(loc, loc.ownerFqdn, 'TXT'),
    ]);
    return { records, txt };
  }

  private async listRecords(loc: RecordLocation, fqdn: string, type: string): Promise<DomainRecord[]> {
    const out: DomainRecord[] = [];
    // Follow pages by number rather than the `next` URL, so the token only goes to our base URL.
    for (let page = 1; ; page++) {
      const body = await this.api.get(`/v2/domains/${encodeURIComponent(loc.domain)}/records`, {
        query: { name: fqdn, type, page, per_page: this.pageSize },
        schema: domainRecordsPageSchema,
        what: `list ${type} records at ${fqdn}`,
      });
      // The filter is the server's job; check anyway, since a record of another name must never count.
      out.push(
        ...body.domain_records.filter(
          (r) => r.type === type && absoluteName(r.name, loc.domain) === fqdn.toLowerCase(),
        ),
      );
      if (!body.links?.pages?.next || body.domain_records.length === 0 || page >= 1000) break;
    }
    return out.sort((a, b) => a.id - b.id);
  }

  private async createRecord(
    loc: RecordLocation,
    type: string,
    name: string,
    data: string,
    ttl: number,
  ): Promise<DomainRecord> {
    const body = await this.api.request('POST', `/v2/domains/${encodeURIComponent(loc.domain)}/records`, {
      body: { type, name, data, ttl },
      schema: domainRecordResponseSchema,
      what: `create ${type} record ${name} in ${loc.domain}`,
    });
    if (!body)
      throw new ProviderError(
        'ProviderError',
        `DigitalOcean API: creating ${type} ${name} returned no record`,
      );
    return body.domain_record;
  }

  private async updateRecord(
    loc: RecordLocation,
    id: number,
    type: string,
    name: string,
    data: string,
    ttl: number,
  ): Promise<void> {
    await this.api.request('PUT', `/v2/domains/${encodeURIComponent(loc.domain)}/records/${id}`, {
      body: { type, name, data, ttl },
      schema: domainRecordResponseSchema,
      what: `update ${type} record ${id} (${name}) in ${loc.domain}`,
    });
  }

  /** Deletes one record by id; one already gone (404) counts as deleted, as another remover won. */
  private async deleteRecord(loc: RecordLocation, id: number): Promise<void> {
    try {
      await this.api.request('DELETE', `/v2/domains/${encodeURIComponent(loc.domain)}/records/${id}`, {
        what: `delete record ${id} in ${loc.domain}`,
      });
    } catch (err) {
      if (!(err instanceof ProviderError) || err.reason !== 'NotFound') throw err;
    }
  }

  /** Best-effort clean-up of a record this call created; a failure leaves it for the next apply. */
  private async deleteQuietly(loc: RecordLocation, id: number): Promise<void> {
    try {
      await this.api.request('DELETE', `/v2/domains/${encodeURIComponent(loc.domain)}/records/${id}`, {
        what: `delete record ${id} in ${loc.domain}`,
      });
    } catch {
      // Left behind; the ownership and single-record checks of the next apply report it.
    }
  }
}

// ---- Names and values ----

/** Splits a record reference into DigitalOcean's domain-relative names. */
function locate(record: DnsRecordRef): RecordLocation {
  const domain = record.zone.toLowerCase().replace(/\.$/, '');
  const fqdn = record.name.toLowerCase().replace(/\.$/, '');
  const relative = relativeName(fqdn, domain);
  if (relative === undefined) {
    throw new ProviderError(
      'Rejected',
      `record ${record.name} is not inside zone ${record.zone}: spec.dns.name must end with .${domain} or equal it`,
    );
  }
  const ownerFqdn = ownershipRecordName(fqdn);
  return { domain, fqdn, relative, ownerFqdn, ownerRelative: relativeName(ownerFqdn, domain) ?? ownerFqdn };
}

/** `db.example.com` in `example.com` → `db`; the apex → `@`; outside the zone → undefined. */
export function relativeName(fqdn: string, domain: string): string | undefined {
  if (fqdn === domain) return '@';
  if (fqdn.endsWith(`.${domain}`)) return fqdn.slice(0, -(domain.length + 1));
  return undefined;
}

/** The inverse of relativeName, for names the API returns. */
export function absoluteName(relative: string, domain: string): string {
  const name = relative.toLowerCase();
  return name === '@' ? domain : `${name}.${domain}`;
}

/** Every value of a name's records in the port's form, sorted and joined (one for one record). */
function joinedValue(records: DomainRecord[], type: DnsRecordType, domain: string): string {
  return records
    .map((r) => normalizeValue(type, r.data, domain))
    .sort()
    .join(', ');
}

/**
 * A value in the port's form: CNAME targets lower case without the trailing dot (the API returns
 * them without it, and `@` for the apex), IPv6 addresses in their canonical text.
 */
function normalizeValue(type: DnsRecordType, value: string, domain: string): string {
  if (type === 'CNAME') {
    const v = value.toLowerCase().replace(/\.$/, '');
    return v === '@' ? domain : v;
  }
  if (type === 'AAAA') {
    try {
      return new URL(`http://[${value}]/`).hostname.slice(1, -1);
    } catch {
      return value.toLowerCase();
    }
  }
  return value;
}

/** The API requires CNAME data to be fully qualified with a trailing dot. */
function wireData(type: DnsRecordType, value: string): string {
  return type === 'CNAME' ? `${value}.` : value;
}

/** TXT data as one string; surrounding quotes, if the API ever returns them, are not part of it. */
function txtString(data: string): string {
  return data.length >= 2 && data.startsWith('"') && data.endsWith('"') ? data.slice(1, -1) : data;
}
