/**
 * TSIG, secret key transaction authentication for DNS (RFC 8945), on raw message bytes: no npm
 * package signs DNS messages, and dns-packet neither encodes TSIG nor exposes the bytes a MAC
 * covers. The RFC 2136 provider signs every request and accepts only responses the server signed
 * with the same key; a response's MAC also covers the request's MAC (§4.3.2), which binds an
 * answer to the question it answers.
 *
 * Section numbers below are RFC 8945's unless another RFC is named.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The HMAC algorithms implemented here (§6: hmac-sha256 is the RECOMMENDED one). */
export type TsigAlgorithm = 'hmac-sha256' | 'hmac-sha384' | 'hmac-sha512';

const HASHES: Record<TsigAlgorithm, { hash: string; macLength: number }> = {
  'hmac-sha256': { hash: 'sha256', macLength: 32 },
  'hmac-sha384': { hash: 'sha384', macLength: 48 },
  'hmac-sha512': { hash: 'sha512', macLength: 64 },
};

export const TSIG_ALGORITHMS = Object.keys(HASHES) as TsigAlgorithm[];

export function isTsigAlgorithm(name: string): name is TsigAlgorithm {
  return Object.hasOwn(HASHES, name);
}

/** A shared TSIG key, as BIND's `key "<name>" { algorithm ...; secret "..."; }` declares it. */
export interface TsigKey {
  name: string;
  algorithm: TsigAlgorithm;
  /** The shared secret in base64, as tsig-keygen prints it. */
  secret: string;
}

/** RR type TSIG (§4.1). */
export const TSIG_TYPE = 250;
/** CLASS ANY: a TSIG record's class (§4.2) and, in an UPDATE, "delete" or "exists" (RFC 2136 §2.4). */
export const CLASS_ANY = 255;
/** The fudge RFC 8945 recommends: signatures are valid 300 s either side of the time signed. */
export const DEFAULT_FUDGE_SECONDS = 300;

/** TSIG error codes a server puts in the Error field (§3, §5.2). */
export const TSIG_ERROR_NAMES: Readonly<Record<number, string>> = {
  16: 'BADSIG',
  17: 'BADKEY',
  18: 'BADTIME',
  22: 'BADTRUNC',
};

export function tsigErrorName(code: number): string {
  return TSIG_ERROR_NAMES[code] ?? `TSIG error ${code}`;
}

/** The message could not be parsed as DNS wire format. */
export class DnsFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsFormatError';
  }
}

/** Decodes a base64 secret, refusing text that is not base64 (Buffer.from would silently skip it). */
export function decodeTsigSecret(secret: string): Buffer {
  const compact = secret.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw new Error('the TSIG secret must be base64, as tsig-keygen prints it');
  }
  return Buffer.from(compact, 'base64');
}

/**
 * A domain name in uncompressed wire format (RFC 1035 §3.1). `canonical` lowercases it
 * (RFC 4034 §6.2), the form TSIG's MAC covers for the key and algorithm names (§4.3.3).
 */
export function encodeName(name: string, options: { canonical?: boolean } = {}): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = trimmed === '' ? [] : trimmed.split('.');
  const parts: Buffer[] = [];
  for (const label of labels) {
    // Printable ASCII only: the operator's names are host names and `_failover` labels.
    if (!/^[\x21-\x7e]{1,63}$/.test(label)) {
      throw new DnsFormatError(
        `invalid DNS name "${name}": each label must be 1 to 63 printable ASCII characters`,
      );
    }
    const text = options.canonical ? label.toLowerCase() : label;
    parts.push(Buffer.from([text.length]), Buffer.from(text, 'ascii'));
  }
  parts.push(Buffer.from([0]));
  const wire = Buffer.concat(parts);
  if (wire.length > 255) throw new DnsFormatError(`invalid DNS name "${name}": longer than 255 octets`);
  return wire;
}

/** Reads a possibly compressed name (RFC 1035 §4.1.4); `end` is the offset just after it. */
export function readName(message: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = offset;
  let end: number | undefined;
  let jumps = 0;
  for (;;) {
    if (pos >= message.length) throw new DnsFormatError('a name runs past the end of the message');
    const length = message.readUInt8(pos);
    if (length === 0) {
      end ??= pos + 1;
      break;
    }
    if ((length & 0xc0) === 0xc0) {
      if (pos + 1 >= message.length) throw new DnsFormatError('a compression pointer is cut off');
      end ??= pos + 2;
      // Bounded jumps: a pointer loop in a hostile message must not hang the operator.
      if (++jumps > 127) throw new DnsFormatError('compression pointers loop');
      pos = message.readUInt16BE(pos) & 0x3fff;
      continue;
    }
    if ((length & 0xc0) !== 0) throw new DnsFormatError(`unknown label type 0x${length.toString(16)}`);
    if (pos + 1 + length > message.length) throw new DnsFormatError('a label runs past the end');
    labels.push(message.toString('latin1', pos + 1, pos + 1 + length));
    pos += 1 + length;
  }
  return { name: labels.join('.'), end };
}

/** Case-insensitive comparison of two names, ignoring a trailing dot (RFC 4343). */
export function sameName(a: string, b: string): boolean {
  const strip = (n: string) => (n.endsWith('.') ? n.slice(0, -1) : n).toLowerCase();
  return strip(a) === strip(b);
}

/** The fields of a TSIG record (§4.2). */
export interface TsigRecord {
  /** NAME: the key's name. */
  keyName: string;
  /** Algorithm Name, e.g. "hmac-sha256". */
  algorithm: string;
  /** Seconds since the epoch (48 bits on the wire). */
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  /** The TSIG error (§5.2), 0 in requests. */
  error: number;
  otherData: Buffer;
}

function uint16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

function uint48(value: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(value, 0, 6);
  return b;
}

/** The TSIG record as sent: owner name, TYPE, CLASS, TTL, RDLENGTH and RDATA (§4.2). */
export function encodeTsigRecord(tsig: TsigRecord): Buffer {
  const rdata = Buffer.concat([
    // §4.2: the algorithm name MUST NOT be compressed; encodeName never compresses.
    encodeName(tsig.algorithm),
    uint48(tsig.timeSigned),
    uint16(tsig.fudge),
    uint16(tsig.mac.length),
    tsig.mac,
    uint16(tsig.originalId),
    uint16(tsig.error),
    uint16(tsig.otherData.length),
    tsig.otherData,
  ]);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(TSIG_TYPE, 0);
  fixed.writeUInt16BE(CLASS_ANY, 2);
  fixed.writeUInt32BE(0, 4); // TTL MUST be 0
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([encodeName(tsig.keyName), fixed, rdata]);
}

/** The "TSIG Variables" every MAC covers after the message (§4.3.3). */
export function tsigVariables(tsig: TsigRecord): Buffer {
  const classAndTtl = Buffer.alloc(6);
  classAndTtl.writeUInt16BE(CLASS_ANY, 0);
  classAndTtl.writeUInt32BE(0, 2);
  return Buffer.concat([
    encodeName(tsig.keyName, { canonical: true }),
    classAndTtl,
    encodeName(tsig.algorithm, { canonical: true }),
    uint48(tsig.timeSigned),
    uint16(tsig.fudge),
    uint16(tsig.error),
    uint16(tsig.otherData.length),
    tsig.otherData,
  ]);
}

function hmac(key: TsigKey, parts: Buffer[]): Buffer {
  const mac = createHmac(HASHES[key.algorithm].hash, decodeTsigSecret(key.secret));
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** A request after signing: what to send, and what verifying its response needs. */
export interface SignedRequest {
  message: Buffer;
  /** The request's ID (the TSIG's Original ID). */
  id: number;
  /** The request's MAC, covered by the response's MAC (§4.3.2). */
  mac: Buffer;
  timeSigned: number;
}

/**
 * Signs a request (§5.1): the MAC covers the message as it is, before the TSIG record is added
 * (§4.3.1), followed by the TSIG variables (§4.3.3). The TSIG record is appended as the last
 * additional record and ARCOUNT counts it.
 */
export function signRequest(
  message: Buffer,
  key: TsigKey,
  options: { now: Date; fudgeSeconds?: number },
): SignedRequest {
  if (message.length < 12) throw new DnsFormatError('a DNS message has a 12-octet header');
  const id = message.readUInt16BE(0);
  const unsigned: TsigRecord = {
    keyName: key.name,
    algorithm: key.algorithm,
    timeSigned: Math.floor(options.now.getTime() / 1000),
    fudge: options.fudgeSeconds ?? DEFAULT_FUDGE_SECONDS,
    mac: Buffer.alloc(0),
    originalId: id,
    error: 0, // §4.2: MUST be zero in requests
    otherData: Buffer.alloc(0),
  };
  const mac = hmac(key, [message, tsigVariables(unsigned)]);
  const signed = Buffer.concat([message, encodeTsigRecord({ ...unsigned, mac })]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { message: signed, id, mac, timeSigned: unsigned.timeSigned };
}

function recordType(message: Buffer, start: number): number {
  const { end } = readName(message, start);
  if (end + 10 > message.length) throw new DnsFormatError('a record is cut off');
  return message.readUInt16BE(end);
}

function skipRecord(message: Buffer, start: number): number {
  const { end } = readName(message, start);
  if (end + 10 > message.length) throw new DnsFormatError('a record is cut off');
  const next = end + 10 + message.readUInt16BE(end + 8);
  if (next > message.length) throw new DnsFormatError('a record runs past the end of the message');
  return next;
}

function decodeTsigRecord(message: Buffer, start: number): TsigRecord {
  const owner = readName(message, start);
  let pos = owner.end;
  const klass = message.readUInt16BE(pos + 2);
  const ttl = message.readUInt32BE(pos + 4);
  const rdlength = message.readUInt16BE(pos + 8);
  if (klass !== CLASS_ANY || ttl !== 0)
    throw new DnsFormatError('a TSIG record must have class ANY and TTL 0');
  pos += 10;
  const rdataEnd = pos + rdlength;
  const algorithm = readName(message, pos);
  pos = algorithm.end;
  const need = (n: number) => {
    if (pos + n > rdataEnd) throw new DnsFormatError('the TSIG record is cut off');
  };
  need(10);
  const timeSigned = message.readUIntBE(pos, 6);
  const fudge = message.readUInt16BE(pos + 6);
  const macSize = message.readUInt16BE(pos + 8);
  pos += 10;
  need(macSize + 6);
  const mac = Buffer.from(message.subarray(pos, pos + macSize));
  pos += macSize;
  const originalId = message.readUInt16BE(pos);
  const error = message.readUInt16BE(pos + 2);
  const otherLength = message.readUInt16BE(pos + 4);
  pos += 6;
  need(otherLength);
  const otherData = Buffer.from(message.subarray(pos, pos + otherLength));
  if (pos + otherLength !== rdataEnd) throw new DnsFormatError('the TSIG record has trailing bytes');
  return {
    keyName: owner.name,
    algorithm: algorithm.name,
    timeSigned,
    fudge,
    mac,
    originalId,
    error,
    otherData,
  };
}

/**
 * Finds a message's TSIG record and the message as its MAC saw it: without the TSIG record,
 * ARCOUNT one lower and the Original ID in the header (§4.3.2, §5.4). Undefined when the message
 * carries no TSIG. A TSIG anywhere but last is a format error (§5.1 puts it last).
 */
export function splitTsig(message: Buffer): { tsig: TsigRecord; unsigned: Buffer } | undefined {
  if (message.length < 12) throw new DnsFormatError('a DNS message has a 12-octet header');
  const questions = message.readUInt16BE(4);
  const records = message.readUInt16BE(6) + message.readUInt16BE(8);
  const additionals = message.readUInt16BE(10);
  let pos = 12;
  for (let i = 0; i < questions; i++) {
    pos = readName(message, pos).end + 4;
    if (pos > message.length) throw new DnsFormatError('a question is cut off');
  }
  for (let i = 0; i < records; i++) {
    if (recordType(message, pos) === TSIG_TYPE)
      throw new DnsFormatError('a TSIG record outside the additional section');
    pos = skipRecord(message, pos);
  }
  let last = -1;
  for (let i = 0; i < additionals; i++) {
    const isTsig = recordType(message, pos) === TSIG_TYPE;
    if (isTsig && i !== additionals - 1)
      throw new DnsFormatError('a TSIG record that is not the last record');
    if (isTsig) last = pos;
    pos = skipRecord(message, pos);
  }
  if (last < 0) return undefined;
  const tsig = decodeTsigRecord(message, last);
  const unsigned = Buffer.from(message.subarray(0, last));
  unsigned.writeUInt16BE(tsig.originalId, 0);
  unsigned.writeUInt16BE(additionals - 1, 10);
  return { tsig, unsigned };
}

/** What checking a response's TSIG found. */
export type TsigVerification =
  /** The server signed the response with our key and its MAC covers our request. */
  | { status: 'verified'; tsig: TsigRecord }
  /** The response carries no TSIG at all. */
  | { status: 'unsigned' }
  /**
   * The server reports a TSIG error (BADSIG, BADKEY, BADTIME, ...). `signed` says whether the
   * report itself verified (BADTIME is signed, BADSIG/BADKEY cannot be: §5.3.2); `serverTime`
   * is the server's clock from a BADTIME report.
   */
  | { status: 'error'; error: string; code: number; signed: boolean; serverTime?: number }
  /** A TSIG is present but must not be trusted; `reason` says why. */
  | { status: 'invalid'; reason: string };

/**
 * Verifies a response to `request` (§5.4): the key and algorithm must be ours, the MAC must
 * equal the one computed over the request MAC, the response without its TSIG and the TSIG
 * variables (§4.3.2), and the time signed must be within the fudge of `now` (§5.2.3's check,
 * made by the client too). Truncated MACs (§5.2.2.1) are refused: we never ask for them.
 */
export function verifyResponse(
  response: Buffer,
  request: SignedRequest,
  key: TsigKey,
  now: Date,
): TsigVerification {
  let split: ReturnType<typeof splitTsig>;
  try {
    split = splitTsig(response);
  } catch (err) {
    return { status: 'invalid', reason: `the response is malformed: ${(err as Error).message}` };
  }
  if (!split) return { status: 'unsigned' };
  const { tsig, unsigned } = split;
  if (!sameName(tsig.keyName, key.name)) {
    return {
      status: 'invalid',
      reason: `the response is signed with key "${tsig.keyName}", not "${key.name}"`,
    };
  }
  if (!sameName(tsig.algorithm, key.algorithm)) {
    return {
      status: 'invalid',
      reason: `the response is signed with ${tsig.algorithm}, not ${key.algorithm}`,
    };
  }
  if (tsig.originalId !== request.id) {
    return {
      status: 'invalid',
      reason: `the response's TSIG answers request ${tsig.originalId}, not ${request.id}`,
    };
  }
  const errorReport = () => ({
    status: 'error' as const,
    error: tsigErrorName(tsig.error),
    code: tsig.error,
    signed: tsig.mac.length > 0,
    ...(tsig.otherData.length === 6 ? { serverTime: tsig.otherData.readUIntBE(0, 6) } : {}),
  });
  // §5.3.2: a server that could not check our request (BADKEY, BADSIG) cannot sign its answer
  // and sends an empty MAC. It proves nothing, but it is the only explanation we will get.
  if (tsig.mac.length === 0) {
    return tsig.error !== 0 ? errorReport() : { status: 'invalid', reason: 'the response has an empty MAC' };
  }
  if (tsig.mac.length !== HASHES[key.algorithm].macLength) {
    return {
      status: 'invalid',
      reason: `the response's MAC is ${tsig.mac.length} octets, not the full length`,
    };
  }
  const expected = hmac(key, [uint16(request.mac.length), request.mac, unsigned, tsigVariables(tsig)]);
  if (!timingSafeEqual(expected, tsig.mac)) {
    return {
      status: 'invalid',
      reason: 'the response MAC does not verify: the server used another secret, or the response was altered',
    };
  }
  if (tsig.error !== 0) return errorReport();
  const skew = Math.abs(Math.floor(now.getTime() / 1000) - tsig.timeSigned);
  if (skew > tsig.fudge) {
    return {
      status: 'invalid',
      reason: `the response was signed ${skew} s away from this machine's clock (allowed: ${tsig.fudge} s); synchronise the clocks`,
    };
  }
  return { status: 'verified', tsig };
}
