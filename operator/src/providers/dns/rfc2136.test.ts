/**
 * The parts of the RFC 2136 provider that need no server: deciding what to do about a change,
 * and the layout of the compare-and-swap UPDATE. The integration tests prove BIND agrees.
 */
import { describe, expect, it } from 'vitest';
import type { DnsChange, DnsRecordState } from './port.ts';
import {
  compareAndSwapRecords,
  encodeUpdateMessage,
  type ObservedRecord,
  planChange,
  recordRdata,
  removalRecords,
  txtRdata,
} from './rfc2136.ts';
import { readName } from './tsig.ts';

const record = { zone: 'example.com', name: 'db.example.com', type: 'A' as const };
const change: DnsChange = {
  record,
  expected: '192.0.2.1',
  value: '192.0.2.2',
  ttl: 30,
  owner: 'op',
  epoch: 2,
};

describe('planning a change', () => {
  const plan =
    (state: DnsRecordState, c: Partial<DnsChange> = {}) =>
    () =>
      planChange({ ...change, ...c }, state);

  it('writes when the record holds the expected value and is ours', () => {
    expect(plan({ value: '192.0.2.1', owner: 'op', epoch: 1 })()).toBe('write');
  });

  it('creates an absent record, with or without our TXT left behind', () => {
    expect(plan({}, { expected: undefined })()).toBe('write');
    expect(plan({ owner: 'op', epoch: 1 }, { expected: undefined })()).toBe('write');
  });

  it('does nothing when the record already holds the value, owner and epoch', () => {
    expect(plan({ value: '192.0.2.2', owner: 'op', epoch: 2 })()).toBe('unchanged');
    expect(
      plan(
        { value: '2001:db8::1', owner: 'op', epoch: 2 },
        { record: { ...record, type: 'AAAA' }, value: '2001:db8:0::1' },
      )(),
    ).toBe('unchanged');
    expect(
      plan(
        { value: 'a.example.net', owner: 'op', epoch: 2 },
        { record: { ...record, type: 'CNAME' }, value: 'A.Example.NET.' },
      )(),
    ).toBe('unchanged');
  });

  it('writes when only the TTL differs (a drill lowers it and puts it back)', () => {
    expect(plan({ value: '192.0.2.2', owner: 'op', epoch: 2, ttl: 5 })()).toBe('write');
    expect(plan({ value: '192.0.2.2', owner: 'op', epoch: 2, ttl: 30 })()).toBe('unchanged');
  });

  it('refuses a record it does not own', () => {
    expect(plan({ value: '192.0.2.1' })).toThrow(
      expect.objectContaining({ reason: 'OwnershipConflict', retryable: false }),
    );
    expect(plan({ value: '192.0.2.1', owner: 'someone-else', epoch: 1 })).toThrow(
      /names owner "someone-else"/,
    );
    expect(plan({ owner: 'someone-else' }, { expected: undefined })).toThrow(
      expect.objectContaining({ reason: 'OwnershipConflict' }),
    );
  });

  it('fails the precondition when the record moved on', () => {
    expect(plan({ value: '192.0.2.9', owner: 'op', epoch: 1 })).toThrow(
      expect.objectContaining({ reason: 'PreconditionFailed' }),
    );
    expect(plan({ owner: 'op', epoch: 1 })).toThrow(/holds nothing, neither the expected 192.0.2.1/);
    expect(plan({ value: '192.0.2.1', owner: 'op', epoch: 3 })).toThrow(/newer than this change's epoch 2/);
  });
});

/** Reads an UPDATE back: each record's owner, type, class, TTL and RDATA length. */
function records(message: Buffer) {
  let pos = readName(message, 12).end + 4;
  const count = message.readUInt16BE(6) + message.readUInt16BE(8);
  const out: { name: string; type: number; class: number; ttl: number; rdlength: number }[] = [];
  for (let i = 0; i < count; i++) {
    const { name, end } = readName(message, pos);
    const rdlength = message.readUInt16BE(end + 8);
    out.push({
      name,
      type: message.readUInt16BE(end),
      class: message.readUInt16BE(end + 2),
      ttl: message.readUInt32BE(end + 4),
      rdlength,
    });
    pos = end + 10 + rdlength;
  }
  return out;
}

describe('the compare-and-swap UPDATE (RFC 2136 §2.4, §2.5)', () => {
  const observed: ObservedRecord = {
    record,
    state: { value: '192.0.2.1', owner: 'op', epoch: 1 },
    recordRdata: [recordRdata('A', '192.0.2.1')],
    ownershipRdata: [txtRdata(['owner=op', 'epoch=1'])],
  };

  it('requires both RRsets to hold what was read, then replaces both', () => {
    const { prerequisites, updates } = compareAndSwapRecords(change, observed);
    const message = encodeUpdateMessage(0x4242, 'example.com', prerequisites, updates);
    expect(message.readUInt16BE(2) >> 11).toBe(5); // opcode UPDATE
    expect([message.readUInt16BE(4), message.readUInt16BE(6), message.readUInt16BE(8)]).toEqual([1, 2, 4]);
    expect(readName(message, 12).name).toBe('example.com');
    expect(records(message)).toEqual([
      // Prerequisites: value-dependent "RRset exists" (class IN, TTL 0, the RDATA read).
      { name: 'db.example.com', type: 1, class: 1, ttl: 0, rdlength: 4 },
      { name: '_failover.db.example.com', type: 16, class: 1, ttl: 0, rdlength: 17 },
      // Updates: delete each RRset (class ANY, no RDATA), add the new one with the change's TTL.
      { name: 'db.example.com', type: 1, class: 255, ttl: 0, rdlength: 0 },
      { name: 'db.example.com', type: 1, class: 1, ttl: 30, rdlength: 4 },
      { name: '_failover.db.example.com', type: 16, class: 255, ttl: 0, rdlength: 0 },
      { name: '_failover.db.example.com', type: 16, class: 1, ttl: 30, rdlength: 17 },
    ]);
  });

  it('requires absence when creating: no A and no CNAME, or for a CNAME an unused name', () => {
    const absent: ObservedRecord = { record, state: {}, recordRdata: [], ownershipRdata: [] };
    const create = { ...change, expected: undefined };
    expect(compareAndSwapRecords(create, absent).prerequisites).toEqual([
      expect.objectContaining({ name: 'db.example.com', type: 1, class: 254, ttl: 0 }),
      expect.objectContaining({ name: 'db.example.com', type: 5, class: 254, ttl: 0 }),
      expect.objectContaining({ name: '_failover.db.example.com', type: 16, class: 254, ttl: 0 }),
    ]);
    const cname = { ...create, record: { ...record, type: 'CNAME' as const }, value: 'pg.example.net' };
    expect(compareAndSwapRecords(cname, { ...absent, record: cname.record }).prerequisites[0]).toMatchObject({
      type: 255, // ANY: "name is not in use" (§2.4.5)
      class: 254,
    });
  });

  it('deletes both RRsets in one message, only while both hold what was read', () => {
    const { prerequisites, updates } = removalRecords(observed);
    expect(records(encodeUpdateMessage(0x4242, 'example.com', prerequisites, updates))).toEqual([
      { name: 'db.example.com', type: 1, class: 1, ttl: 0, rdlength: 4 },
      { name: '_failover.db.example.com', type: 16, class: 1, ttl: 0, rdlength: 17 },
      { name: 'db.example.com', type: 1, class: 255, ttl: 0, rdlength: 0 },
      { name: '_failover.db.example.com', type: 16, class: 255, ttl: 0, rdlength: 0 },
    ]);
  });

  it('deletes a TXT left alone only while the record is still absent', () => {
    const leftover: ObservedRecord = { ...observed, state: { owner: 'op', epoch: 1 }, recordRdata: [] };
    const { prerequisites, updates } = removalRecords(leftover);
    expect(prerequisites).toEqual([
      expect.objectContaining({ name: 'db.example.com', type: 1, class: 254 }),
      expect.objectContaining({ name: 'db.example.com', type: 5, class: 254 }),
      expect.objectContaining({ name: '_failover.db.example.com', type: 16, class: 1 }),
    ]);
    expect(updates).toEqual([
      expect.objectContaining({ name: '_failover.db.example.com', type: 16, class: 255 }),
    ]);
  });

  it('refuses values the record type cannot hold', () => {
    expect(() => recordRdata('A', '2001:db8::1')).toThrow(/not an IPv4 address/);
    expect(() => recordRdata('AAAA', '192.0.2.1')).toThrow(/not an IPv6 address/);
    expect(() => recordRdata('CNAME', 'bad..name')).toThrow(/not a host name/);
    expect(() => txtRdata(['x'.repeat(256)])).toThrow(/255 octets/);
  });
});
