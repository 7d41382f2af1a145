/**
 * TSIG encoding details, checked two ways: against bytes assembled by hand from RFC 8945's
 * layout, and against real traffic captured once from BIND 9.18 (`dig -y` signing a query,
 * named signing its answer, named refusing a wrong secret). Matching BIND byte for byte is the
 * proof that our MAC covers exactly what the RFC says; the integration tests repeat it live.
 */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DnsFormatError,
  decodeTsigSecret,
  encodeName,
  readName,
  type SignedRequest,
  signRequest,
  splitTsig,
  type TsigKey,
  verifyResponse,
} from './tsig.ts';

/** Captured from BIND 9.18: dig's signed query for db.failover.test A (with an EDNS cookie), named's answer. */
const bind = {
  'hmac-sha256': {
    secret: 'PzpcJXYaNTl8cgEGaruYi70QI65hZWMu0FsE8YWGAPE=',
    request:
      'f40d00200001000000000002026462086661696c6f7665720474657374000001000100002904d000000000000c000a0008ec8a15d6085dfa940c6661696c6f7665722d6b65790000fa00ff00000000003d0b686d61632d7368613235360000006b014aab012c00202fbe86c0e8aac2d776f8e39513cb7fdb22da96e5695a5cd1e12e31e59624cf27f40d00000000',
    response:
      'f40d84000001000100010003026462086661696c6f76657204746573740000010001c00c000100010000003c0004c0000207c00f000200010000003c0006036e7331c00fc03e000100010000003c00047f00000100002904d000000000001c000a0018ec8a15d6085dfa94010000006b014aabfe01fe3315c54ef60c6661696c6f7665722d6b65790000fa00ff00000000003d0b686d61632d7368613235360000006b014aab012c00202935c5474c27fb349ea829b3194f0729b5f47a809285fe0efb82633d56f71ef6f40d00000000',
    /** The same query signed with a wrong secret, and named's NOTAUTH/BADSIG answer. */
    badSigResponse:
      '61a880090001000000000002026462086661696c6f7665720474657374000001000100002904d000000000001c000a0018fd53bbc19b8649f2010000006b014aab864bcb7d70bed75f0c6661696c6f7665722d6b65790000fa00ff00000000001d0b686d61632d7368613235360000006b014aab012c000061a800100000',
    badSigRequestId: 0x61a8,
  },
  'hmac-sha512': {
    secret: 'F8lDuDuqqScAgVnqM3y59Q4kgExIJUcsfvyETHllhY02nhcV9e4gSWbQtdKCASN7qL1V6MeCtlHst7p4MnAOiQ==',
    request:
      'c8de00200001000000000002026462086661696c6f7665720474657374000001000100002904d000000000000c000a00087d988c06d5dfffef0c6661696c6f7665722d6b65790000fa00ff00000000005d0b686d61632d7368613531320000006b014aac012c00400e0224e62c6678cf9b01f4680c8e90b92bc1f0f7deeb804f7fb8fc40098aad0b521b50dd9765ba43c591c03fcc3bd023562e5289021c50b9697cce4cbe19b9d5c8de00000000',
    response:
      'c8de84000001000100010003026462086661696c6f76657204746573740000010001c00c000100010000003c0004c0000207c00f000200010000003c0006036e7331c00fc03e000100010000003c00047f00000100002904d000000000001c000a00187d988c06d5dfffef010000006b014aacb7d86f3c47ed3b0d0c6661696c6f7665722d6b65790000fa00ff00000000005d0b686d61632d7368613531320000006b014aac012c0040965a2c8e5fd69b97a7ef2dad1a1ce721ecfa73a1329470c442c0447556c9a41771c931ba8fd1039f82cf65efbae7f5b8abef1bb52751734c6e919d97e5eb2dc1c8de00000000',
    badSigResponse:
      '7ba380090001000000000002026462086661696c6f7665720474657374000001000100002904d000000000001c000a00188453d2631fbd18c4010000006b014aad7e6a3579e4c693720c6661696c6f7665722d6b65790000fa00ff00000000001d0b686d61632d7368613531320000006b014aad012c00007ba300100000',
    badSigRequestId: 0x7ba3,
  },
} as const;

const hex = (s: string) => Buffer.from(s, 'hex');

/** The signed request as our verifier needs it, taken from dig's bytes. */
function digRequest(requestHex: string): SignedRequest {
  const split = splitTsig(hex(requestHex));
  if (!split) throw new Error('fixture has no TSIG');
  return {
    message: hex(requestHex),
    id: split.tsig.originalId,
    mac: split.tsig.mac,
    timeSigned: split.tsig.timeSigned,
  };
}

/** A query for example.com A with ID 0x1234 and no additional records, by hand. */
const plainQuery = Buffer.concat([
  hex('123400000001000000000000'),
  hex('076578616d706c6503636f6d00'),
  hex('00010001'),
]);

describe('domain names in wire format', () => {
  it('encodes labels with length octets and a root label, dropping a trailing dot', () => {
    expect(encodeName('db.Failover.test.').toString('hex')).toBe('0264620846' + '61696c6f766572047465737400');
    expect(encodeName('').toString('hex')).toBe('00');
  });

  it('lowercases in canonical form (RFC 4034 §6.2), as the MAC requires', () => {
    expect(encodeName('HMAC-SHA256', { canonical: true })).toEqual(encodeName('hmac-sha256'));
  });

  it('refuses labels a DNS name cannot hold', () => {
    expect(() => encodeName(`${'a'.repeat(64)}.test`)).toThrow(DnsFormatError);
    expect(() => encodeName('a..test')).toThrow(/1 to 63/);
    expect(() => encodeName(Array.from({ length: 64 }, () => 'abc').join('.'))).toThrow(/255/);
  });

  it('follows compression pointers and refuses pointer loops', () => {
    const response = hex(bind['hmac-sha256'].response);
    // The answer's owner is a pointer (c00c) to the question name.
    const question = readName(response, 12);
    expect(question).toEqual({ name: 'db.failover.test', end: 30 });
    expect(readName(response, question.end + 4)).toEqual({ name: 'db.failover.test', end: question.end + 6 });
    const loop = Buffer.concat([hex('000000000000000000000000'), hex('c00c')]);
    expect(() => readName(loop, 12)).toThrow(/loop/);
  });
});

describe('signing a request (RFC 8945 §4.3.1, §5.1)', () => {
  const key: TsigKey = {
    name: 'Failover-Key',
    algorithm: 'hmac-sha256',
    secret: Buffer.from('a secret of thirty-two bytes!!!!').toString('base64'),
  };
  const now = new Date('2026-01-05T03:00:00Z');

  it('appends a TSIG record laid out as §4.2 describes and counts it in ARCOUNT', () => {
    const signed = signRequest(plainQuery, key, { now });
    expect(signed.message.subarray(0, 10)).toEqual(plainQuery.subarray(0, 10));
    expect(signed.message.readUInt16BE(10)).toBe(1); // ARCOUNT counts the TSIG
    expect(signed.message.subarray(12, plainQuery.length)).toEqual(plainQuery.subarray(12));
    const tsig = signed.message.subarray(plainQuery.length);
    const time = Math.floor(now.getTime() / 1000);
    const expected = Buffer.concat([
      encodeName('Failover-Key'), // NAME as given: only the MAC input is canonical
      hex('00fa'), // TYPE TSIG (250)
      hex('00ff'), // CLASS ANY
      hex('00000000'), // TTL 0
      hex((13 + 6 + 2 + 2 + 32 + 6).toString(16).padStart(4, '0')), // RDLENGTH
      encodeName('hmac-sha256'),
      hex(time.toString(16).padStart(12, '0')), // Time Signed, 48 bits
      hex('012c'), // Fudge 300
      hex('0020'), // MAC Size 32
      signed.mac,
      hex('1234'), // Original ID
      hex('0000'), // Error
      hex('0000'), // Other Len
    ]);
    expect(tsig.toString('hex')).toBe(expected.toString('hex'));
  });

  it('computes the MAC over the unsigned message and the TSIG variables (§4.3.3)', () => {
    const signed = signRequest(plainQuery, key, { now, fudgeSeconds: 60 });
    const time = Math.floor(now.getTime() / 1000);
    const variables = Buffer.concat([
      encodeName('failover-key'), // key name, canonical (lower case)
      hex('00ff'), // CLASS ANY
      hex('00000000'), // TTL
      encodeName('hmac-sha256'),
      hex(time.toString(16).padStart(12, '0')),
      hex('003c'), // Fudge 60
      hex('0000'), // Error
      hex('0000'), // Other Len
    ]);
    const mac = createHmac('sha256', Buffer.from(key.secret, 'base64'))
      .update(plainQuery)
      .update(variables)
      .digest();
    expect(signed.mac).toEqual(mac);
    expect(signed.timeSigned).toBe(time);
    expect(signed.id).toBe(0x1234);
  });

  it('writes times past 2^32 seconds in all 48 bits', () => {
    const signed = signRequest(plainQuery, key, { now: new Date(2 ** 33 * 1000) });
    expect(splitTsig(signed.message)?.tsig.timeSigned).toBe(2 ** 33);
  });

  for (const algorithm of ['hmac-sha256', 'hmac-sha512'] as const) {
    it(`produces byte for byte the ${algorithm} TSIG that BIND's dig produced`, () => {
      const fixture = bind[algorithm];
      const split = splitTsig(hex(fixture.request));
      if (!split) throw new Error('fixture has no TSIG');
      expect(split.tsig).toMatchObject({ keyName: 'failover-key', algorithm, fudge: 300, error: 0 });
      const ours = signRequest(
        split.unsigned,
        { name: 'failover-key', algorithm, secret: fixture.secret },
        { now: new Date(split.tsig.timeSigned * 1000), fudgeSeconds: split.tsig.fudge },
      );
      expect(ours.message.toString('hex')).toBe(fixture.request);
    });
  }
});

describe('verifying a response (RFC 8945 §4.3.2, §5.4)', () => {
  for (const algorithm of ['hmac-sha256', 'hmac-sha512'] as const) {
    const fixture = bind[algorithm];
    const key: TsigKey = { name: 'failover-key', algorithm, secret: fixture.secret };
    const request = digRequest(fixture.request);
    const signedAt = new Date(request.timeSigned * 1000);

    it(`accepts named's ${algorithm} answer, whose MAC covers the request MAC`, () => {
      const verdict = verifyResponse(hex(fixture.response), request, key, signedAt);
      expect(verdict.status).toBe('verified');
    });

    it(`refuses the ${algorithm} answer when any covered byte changed`, () => {
      const altered = hex(fixture.response);
      // The A record's last address octet (192.0.2.7 -> 192.0.2.8).
      const at = altered.indexOf(hex('c0000207'));
      altered.writeUInt8(8, at + 3);
      expect(verifyResponse(altered, request, key, signedAt)).toMatchObject({
        status: 'invalid',
        reason: expect.stringMatching(/does not verify/),
      });
    });

    it(`refuses the ${algorithm} answer as an answer to another request`, () => {
      const other = { ...request, mac: Buffer.alloc(request.mac.length, 1) };
      expect(verifyResponse(hex(fixture.response), other, key, signedAt).status).toBe('invalid');
    });

    it(`refuses the ${algorithm} answer under another secret or key name`, () => {
      const wrongSecret = { ...key, secret: Buffer.alloc(32, 9).toString('base64') };
      expect(verifyResponse(hex(fixture.response), request, wrongSecret, signedAt).status).toBe('invalid');
      expect(
        verifyResponse(hex(fixture.response), request, { ...key, name: 'other-key' }, signedAt),
      ).toMatchObject({
        status: 'invalid',
        reason: expect.stringMatching(/signed with key "failover-key", not "other-key"/),
      });
    });

    it(`refuses the ${algorithm} answer outside the fudge of our clock`, () => {
      const late = new Date((request.timeSigned + 301) * 1000);
      expect(verifyResponse(hex(fixture.response), request, key, late)).toMatchObject({
        status: 'invalid',
        reason: expect.stringMatching(/synchronise the clocks/),
      });
      const justInside = new Date((request.timeSigned + 300) * 1000);
      expect(verifyResponse(hex(fixture.response), request, key, justInside).status).toBe('verified');
    });

    it(`reports named's ${algorithm} BADSIG answer, which carries an empty MAC (§5.3.2)`, () => {
      const badSigRequest = { ...request, id: fixture.badSigRequestId };
      const verdict = verifyResponse(hex(fixture.badSigResponse), badSigRequest, key, signedAt);
      expect(verdict).toEqual({ status: 'error', error: 'BADSIG', code: 16, signed: false });
      // The header says NOTAUTH (rcode 9).
      expect(hex(fixture.badSigResponse).readUInt8(3) & 0x0f).toBe(9);
    });
  }

  it('calls an answer without any TSIG unsigned', () => {
    const request = digRequest(bind['hmac-sha256'].request);
    const answer = Buffer.from(plainQuery);
    answer.writeUInt16BE(request.id, 0);
    answer.writeUInt8(0x84, 2);
    const key: TsigKey = {
      name: 'failover-key',
      algorithm: 'hmac-sha256',
      secret: bind['hmac-sha256'].secret,
    };
    expect(verifyResponse(answer, request, key, new Date())).toEqual({ status: 'unsigned' });
  });

  it('refuses a TSIG that is not the last record', () => {
    const fixture = bind['hmac-sha256'];
    // Append an OPT record after the TSIG.
    const reordered = Buffer.concat([hex(fixture.response), hex('00002904d000000000000000')]);
    reordered.writeUInt16BE(reordered.readUInt16BE(10) + 1, 10);
    expect(() => splitTsig(reordered)).toThrow(/not the last record/);
    const key: TsigKey = { name: 'failover-key', algorithm: 'hmac-sha256', secret: fixture.secret };
    expect(verifyResponse(reordered, digRequest(fixture.request), key, new Date()).status).toBe('invalid');
  });
});

describe('secrets', () => {
  it('are base64, as tsig-keygen prints them', () => {
    expect(decodeTsigSecret('c2VjcmV0')).toEqual(Buffer.from('secret'));
    expect(() => decodeTsigSecret('not base64!')).toThrow(/base64/);
    expect(() => decodeTsigSecret('')).toThrow(/base64/);
  });
});
