/** Deciding what `remove` must do, shared by the three DNS adapters. */
import { describe, expect, it } from 'vitest';
import { type DnsRecordState, planRemoval } from './port.ts';

const record = { zone: 'example.com', name: '_drill.db.example.com', type: 'CNAME' as const };
const plan = (state: DnsRecordState) => () => planRemoval(record, state, 'ns/orders');

describe('planning a removal', () => {
  it('removes a record whose TXT names this owner, or such a TXT left alone', () => {
    expect(plan({ value: 'pg.example.net', ttl: 30, owner: 'ns/orders', epoch: 3 })()).toBe('remove');
    expect(plan({ owner: 'ns/orders', epoch: 3 })()).toBe('remove');
  });

  it('has nothing to do when neither the record nor a TXT naming an owner is there', () => {
    expect(plan({})()).toBe('absent');
    expect(plan({ epoch: 3 })()).toBe('absent');
  });

  it('refuses a name another owner claims, with or without the record', () => {
    for (const state of [
      { value: 'pg.example.net', owner: 'ns/payments', epoch: 1 },
      { owner: 'ns/payments' },
    ]) {
      expect(plan(state)).toThrow(
        expect.objectContaining({
          reason: 'OwnershipConflict',
          retryable: false,
          message: expect.stringMatching(/names owner "ns\/payments", not "ns\/orders"/),
        }),
      );
    }
  });

  it('refuses a record without an ownership TXT: one the operator did not create', () => {
    expect(plan({ value: 'pg.example.net', ttl: 30 })).toThrow(
      expect.objectContaining({
        reason: 'OwnershipConflict',
        message: expect.stringMatching(
          /without an ownership TXT record at _failover\._drill\.db\.example\.com/,
        ),
      }),
    );
  });
});
