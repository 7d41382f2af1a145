import { describe, expect, it } from 'vitest';
import { drillCopyName } from './aws-rds-drill-copy.ts';

/** What RDS accepts as a DB instance identifier. */
const RDS_ID = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,62}$/;

describe('drillCopyName', () => {
  it("is <standby>-drill-<the drill id's time stamp> for the operator's drill ids", () => {
    expect(drillCopyName('orders-west', 'drill-20261201060430123')).toBe(
      'orders-west-drill-20261201060430123',
    );
  });

  it('hashes a drill id that is not a short time stamp, and differs per drill', () => {
    const a = drillCopyName('orders-west', 'Drill: the big one');
    const b = drillCopyName('orders-west', 'Drill: the big two');
    expect(a).toMatch(/^orders-west-drill-[0-9a-f]{10}$/);
    expect(a).not.toBe(b);
    expect(drillCopyName('orders-west', 'Drill: the big one')).toBe(a);
  });

  it('stays a valid identifier of at most 63 for a long standby id, two such ids still differing', () => {
    const long = `orders-${'x'.repeat(50)}`;
    const a = drillCopyName(`${long}-west`, 'drill-20261201060430123');
    const b = drillCopyName(`${long}-east`, 'drill-20261201060430123');
    for (const name of [a, b]) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(RDS_ID);
      expect(name.endsWith('-drill-20261201060430123')).toBe(true);
    }
    expect(a).not.toBe(b);
  });

  it('makes upper case, odd characters and a leading digit valid', () => {
    expect(drillCopyName('Orders__West', 'drill-1')).toBe('orders-west-drill-1');
    expect(drillCopyName('9orders', 'drill-1')).toMatch(RDS_ID);
  });
});
