/**
 * Asking DNS servers directly, not through a cache: one DNS message out, its answer back, over
 * UDP or TCP. The verifier uses this to see what each authoritative server answers after a
 * change (safety rule 5: verify, don't assume); the RFC 2136 provider sends its signed queries
 * and updates through the same exchange.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, Socket } from 'node:net';
import dnsPacket from 'dns-packet';
import { ProviderError } from '../errors.ts';
import type { DnsRecordRef, DnsRecordType, DnsVerifier } from './port.ts';

/** A DNS server: an address or host name, and a port. */
export interface DnsServerAddress {
  host: string;
  port: number;
}

export type DnsTransport = 'udp' | 'tcp';

export const DEFAULT_DNS_TIMEOUT_MS = 5_000;

/** "host:port", with brackets around an IPv6 address. */
export function formatServer(server: DnsServerAddress): string {
  return isIP(server.host) === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

function transportError(server: DnsServerAddress, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const where = formatServer(server);
  if (code === 'ETIMEDOUT') {
    return new ProviderError('Timeout', `DNS server ${where} did not answer in time`, { cause: err });
  }
  if (UNREACHABLE_CODES.has(code)) {
    const what =
      code === 'ECONNREFUSED'
        ? 'refused the connection (is the server running and listening on that port?)'
        : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? 'could not be resolved to an address'
          : `is unreachable (${code})`;
    return new ProviderError('Unreachable', `DNS server ${where} ${what}`, { cause: err });
  }
  return new ProviderError('ProviderError', `DNS exchange with ${where} failed: ${(err as Error).message}`, {
    retryable: true,
    cause: err,
  });
}

function timeoutError(server: DnsServerAddress, timeoutMs: number): ProviderError {
  return new ProviderError(
    'Timeout',
    `DNS server ${formatServer(server)} did not answer within ${timeoutMs} ms`,
  );
}

/** Whether `reply` answers the message with this ID: the ID matches and QR (response) is set. */
function answers(reply: Buffer, id: number): boolean {
  return reply.length >= 12 && reply.readUInt16BE(0) === id && (reply.readUInt8(2) & 0x80) !== 0;
}

async function resolveAddress(server: DnsServerAddress): Promise<{ address: string; family: 4 | 6 }> {
  const family = isIP(server.host);
  if (family === 4 || family === 6) return { address: server.host, family };
  const found = await lookup(server.host);
  return { address: found.address, family: found.family === 6 ? 6 : 4 };
}

function exchangeUdp(
  server: DnsServerAddress,
  target: { address: string; family: 4 | 6 },
  message: Buffer,
  timeoutMs: number,
): Promise<Buffer> {
  const id = message.readUInt16BE(0);
  return new Promise((resolve, reject) => {
    const socket = createSocket(target.family === 6 ? 'udp6' : 'udp4');
    let settled = false;
    const finish = (err: Error | undefined, reply?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else if (reply) resolve(reply);
    };
    const timer = setTimeout(() => finish(timeoutError(server, timeoutMs)), timeoutMs);
    // A connected socket hears only this server, and hears ICMP "port unreachable" as
    // ECONNREFUSED, so a stopped server fails at once instead of timing out.
    socket.on('error', (err) => finish(transportError(server, err)));
    socket.on('message', (reply) => {
      if (answers(reply, id)) finish(undefined, reply);
    });
    socket.connect(server.port, target.address, () => {
      socket.send(message, (err) => {
        if (err) finish(transportError(server, err));
      });
    });
  });
}

function exchangeTcp(
  server: DnsServerAddress,
  target: { address: string; family: 4 | 6 },
  message: Buffer,
  timeoutMs: number,
): Promise<Buffer> {
  const id = message.readUInt16BE(0);
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let settled = false;
    let buffered = Buffer.alloc(0);
    const finish = (err: Error | undefined, reply?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else if (reply) resolve(reply);
    };
    const timer = setTimeout(() => finish(timeoutError(server, timeoutMs)), timeoutMs);
    socket.on('error', (err) => finish(transportError(server, err)));
    socket.on('close', () =>
      finish(
        new ProviderError(
          'Unreachable',
          `DNS server ${formatServer(server)} closed the connection before answering`,
        ),
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      // RFC 1035 §4.2.2: each message on TCP is preceded by its length in two octets.
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const reply = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + reply.length);
        if (answers(reply, id)) return finish(undefined, Buffer.from(reply));
      }
    });
    socket.connect({ host: target.address, port: server.port, family: target.family }, () => {
      const length = Buffer.alloc(2);
      length.writeUInt16BE(message.length);
      socket.setNoDelay(true);
      socket.write(Buffer.concat([length, message]));
    });
  });
}

/**
 * Sends one DNS message and resolves with the reply carrying the same ID. Throws ProviderError:
 * `Timeout` when nothing answers within `timeoutMs` (name lookup included), `Unreachable` when
 * the connection is refused or the host cannot be reached.
 */
export async function exchangeDnsMessage(
  server: DnsServerAddress,
  message: Buffer,
  options: { transport: DnsTransport; timeoutMs: number },
): Promise<Buffer> {
  const started = Date.now();
  if (options.timeoutMs <= 0) throw timeoutError(server, 0);
  let timer: NodeJS.Timeout | undefined;
  const target = await Promise.race([
    resolveAddress(server),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeoutError(server, options.timeoutMs)), options.timeoutMs);
    }),
  ])
    .catch((err: unknown) => {
      throw transportError(server, err);
    })
    .finally(() => clearTimeout(timer));
  const remaining = Math.max(1, options.timeoutMs - (Date.now() - started));
  return options.transport === 'tcp'
    ? exchangeTcp(server, target, message, remaining)
    : exchangeUdp(server, target, message, remaining);
}

/** A fresh random message ID: with UDP, a guessable ID invites forged answers. */
export function newMessageId(): number {
  return randomInt(0, 0x10000);
}

/** A standard query for one name and type, class IN. */
export function encodeQuery(
  name: string,
  type: string,
  options: { id?: number; recursionDesired?: boolean } = {},
): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: options.id ?? newMessageId(),
    flags: options.recursionDesired ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [{ type: type as dnsPacket.RecordType, name, class: 'IN' }],
  });
}

/**
 * Sends a query and decodes the answer. Over UDP, a truncated answer (TC) is asked again over
 * TCP, as RFC 1035 §4.2.1 and RFC 7766 expect.
 */
export async function queryServer(
  server: DnsServerAddress,
  name: string,
  type: string,
  options: { timeoutMs?: number; transport?: DnsTransport; recursionDesired?: boolean } = {},
): Promise<DnsReply> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const query = encodeQuery(name, type, options);
  let transport = options.transport ?? 'udp';
  for (;;) {
    const reply = await exchangeDnsMessage(server, query, {
      transport,
      timeoutMs: deadline - Date.now(),
    }).catch((err: unknown) => {
      // Name the call's timeout, not what was left of it for this exchange (999 ms for 1000).
      if (err instanceof ProviderError && err.reason === 'Timeout') throw timeoutError(server, timeoutMs);
      throw err;
    });
    const decoded = decodeMessage(server, reply);
    if (!decoded.flag_tc || transport === 'tcp') return decoded;
    transport = 'tcp';
  }
}

/** A decoded reply; dns-packet sets `rcode` and `opcode`, which @types/dns-packet leaves out. */
export type DnsReply = dnsPacket.DecodedPacket & { rcode: string; opcode: string };

/** An answer record's data; undefined for the OPT pseudo-record, which has none. */
export function answerData(answer: dnsPacket.Answer): unknown {
  return 'data' in answer ? answer.data : undefined;
}

/** Decodes a reply, turning a malformed one into a retryable ProviderError. */
export function decodeMessage(server: DnsServerAddress, reply: Buffer): DnsReply {
  try {
    return dnsPacket.decode(reply) as DnsReply;
  } catch (err) {
    throw new ProviderError(
      'ProviderError',
      `DNS server ${formatServer(server)} sent a malformed answer: ${(err as Error).message}`,
      { retryable: true, cause: err },
    );
  }
}

/**
 * A record value in the form the operator compares: addresses as dns-packet prints them (IPv6
 * compressed), host names lower case without a trailing dot.
 */
export function canonicalValue(type: DnsRecordType, value: string): string {
  if (type === 'CNAME') return (value.endsWith('.') ? value.slice(0, -1) : value).toLowerCase();
  const family = isIP(value);
  if ((type === 'A' && family !== 4) || (type === 'AAAA' && family !== 6)) return value;
  // Round-trip through the wire form, so "2001:db8:0::1" and "2001:db8::1" compare equal.
  const encoded = dnsPacket.encode({
    type: 'response',
    answers: [{ type, name: 'x', data: value }],
  });
  const answer = dnsPacket.decode(encoded).answers?.[0];
  const data = answer && answerData(answer);
  return typeof data === 'string' ? data : value;
}

/** The values of the answer records of `type` owned by `name` (CNAME chains are not followed). */
export function answerValues(packet: DnsReply, name: string, type: DnsRecordType): string[] {
  const wanted = name.toLowerCase().replace(/\.$/, '');
  return (packet.answers ?? [])
    .filter((a) => a.type === type && a.name.toLowerCase().replace(/\.$/, '') === wanted)
    .map((a) => canonicalValue(type, String(answerData(a))));
}

/**
 * A DnsVerifier that sends plain, non-recursive queries to each server, the way a person checks
 * with `dig +norecurse @server`. Only authoritative answers count: a server that is not
 * authoritative for the name (AA clear) or answers with an error maps to an error, because an
 * empty referral is not evidence that the record is absent.
 */
export class DirectDnsVerifier implements DnsVerifier {
  private readonly timeoutMs: number;
  private readonly transport: DnsTransport;

  constructor(options: { timeoutMs?: number; transport?: DnsTransport } = {}) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
    this.transport = options.transport ?? 'udp';
  }

  query(
    record: DnsRecordRef,
    servers: DnsServerAddress[],
  ): Promise<{ server: string; values?: string[]; error?: string }[]> {
    return Promise.all(
      servers.map(async (server) => {
        const where = formatServer(server);
        try {
          const reply = await queryServer(server, record.name, record.type, {
            timeoutMs: this.timeoutMs,
            transport: this.transport,
          });
          if (reply.rcode !== 'NOERROR' && reply.rcode !== 'NXDOMAIN') {
            return { server: where, error: `answered ${reply.rcode}` };
          }
          if (!reply.flag_aa) {
            return { server: where, error: `is not authoritative for ${record.name} (zone ${record.zone})` };
          }
          return { server: where, values: answerValues(reply, record.name, record.type) };
        } catch (err) {
          return { server: where, error: (err as Error).message };
        }
      }),
    );
  }
}

/** An authoritative server found through a zone's NS records. */
export interface AuthoritativeServer extends DnsServerAddress {
  /** The NS record's target, e.g. ns1.example.com. */
  name: string;
}

/**
 * Finds a zone's authoritative servers when the policy does not list them: the zone's NS records
 * and their addresses (glue, or A/AAAA lookups), all asked of `via` (a resolver or one of the
 * zone's servers). NS records carry no port, so every server gets `port` (53 by default).
 * Throws ProviderError `NotFound` when the zone has no NS record or none of them has an address.
 */
export async function findAuthoritativeServers(
  zone: string,
  via: DnsServerAddress,
  options: { port?: number; timeoutMs?: number } = {},
): Promise<AuthoritativeServer[]> {
  const port = options.port ?? 53;
  // Recursion desired: `via` may be a resolver; an authoritative server ignores the flag.
  const ask = (name: string, type: string) =>
    queryServer(via, name, type, { timeoutMs: options.timeoutMs, recursionDesired: true });
  const nsReply = await ask(zone, 'NS');
  const wantedZone = zone.toLowerCase().replace(/\.$/, '');
  const nameServers = [
    ...new Set(
      (nsReply.answers ?? [])
        .filter((a) => a.type === 'NS' && a.name.toLowerCase().replace(/\.$/, '') === wantedZone)
        .map((a) => String(answerData(a)).toLowerCase().replace(/\.$/, '')),
    ),
  ];
  if (nameServers.length === 0) {
    throw new ProviderError(
      'NotFound',
      `${formatServer(via)} knows no NS records for zone ${zone} (answered ${nsReply.rcode}); list the zone's servers in the policy`,
    );
  }
  const found: AuthoritativeServer[] = [];
  for (const ns of nameServers) {
    const glue = (nsReply.additionals ?? [])
      .filter((a) => (a.type === 'A' || a.type === 'AAAA') && a.name.toLowerCase().replace(/\.$/, '') === ns)
      .map((a) => String(answerData(a)));
    let addresses = glue;
    if (addresses.length === 0) {
      const [v4, v6] = await Promise.all([ask(ns, 'A'), ask(ns, 'AAAA')]);
      addresses = [...answerValues(v4, ns, 'A'), ...answerValues(v6, ns, 'AAAA')];
    }
    for (const host of new Set(addresses)) found.push({ name: ns, host, port });
  }
  if (found.length === 0) {
    throw new ProviderError(
      'NotFound',
      `the name servers of zone ${zone} (${nameServers.join(', ')}) have no addresses at ${formatServer(via)}`,
    );
  }
  return found;
}
