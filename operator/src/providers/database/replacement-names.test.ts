import { describe, expect, it } from 'vitest';
import { replacementName } from './replacement-names.ts';

const rdsId = /^[a-z]([a-z0-9]|-[a-z0-9])*$/;

describe('replacementName', () => {
  it('is the replaced name with the epoch, the same for the same request', () => {
    const name = replacementName({ replaces: 'orders-west', epoch: 5, maxLength: 63 });
    expect(name).toBe('orders-west-e5');
    expect(replacementName({ replaces: 'orders-west', epoch: 5, maxLength: 63 })).toBe(name);
  });

  it('does not grow when a replacement is replaced again', () => {
    expect(replacementName({ replaces: 'orders-west-e5', epoch: 9, maxLength: 63 })).toBe('orders-west-e9');
    expect(
      replacementName({ replaces: 'orders-shop-ams3-e5', prefix: 'orders', epoch: 9, maxLength: 63 }),
    ).toBe('orders-shop-ams3-e9');
  });

  it('puts the prefix first and cleans what a name may not hold', () => {
    expect(replacementName({ replaces: 'Shop_AMS3', prefix: 'orders.v2', epoch: 3, maxLength: 63 })).toBe(
      'orders-v2-shop-ams3-e3',
    );
    expect(replacementName({ replaces: '9db', epoch: 1, maxLength: 63 })).toBe('db-9db-e1');
  });

  it('shortens a long name to the limit, keeping its head, with a hash that tells long names apart', () => {
    const a = replacementName({ replaces: `${'a'.repeat(60)}-one`, epoch: 123, maxLength: 63 });
    const b = replacementName({ replaces: `${'a'.repeat(60)}-two`, epoch: 123, maxLength: 63 });
    for (const name of [a, b]) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(rdsId);
      expect(name).toMatch(/^a{40,}-[0-9a-f]{6}-e123$/);
    }
    expect(a).not.toBe(b);
  });
});
