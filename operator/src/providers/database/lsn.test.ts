import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareLsn, formatLsn, isLsn, lsnDiffBytes, parseLsn, replicationLagBytes } from './lsn.ts';

const MAX_LSN = 0xffff_ffff_ffff_ffffn;

describe('parseLsn', () => {
  it('reads both halves as hex, the high half shifted by 32 bits', () => {
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('0/3000148')).toBe(0x3000148n);
    expect(parseLsn('1/0')).toBe(0x1_0000_0000n);
    expect(parseLsn('16/B374D848')).toBe(0x16_b374_d848n);
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(MAX_LSN);
  });

  it('accepts lower case and surrounding whitespace', () => {
    expect(parseLsn(' 16/b374d848\n')).toBe(0x16_b374_d848n);
  });

  it.each(['', '0', '/1', '1/', 'G/1', '1/2/3', '123456789/0', '0/123456789', '-1/0', '0x1/0'])(
    'refuses %j and says what an LSN looks like',
    (bad) => {
      expect(() => parseLsn(bad)).toThrow(/not a PostgreSQL LSN.*two hex halves/);
      expect(isLsn(bad)).toBe(false);
    },
  );
});

describe('formatLsn', () => {
  it('prints as PostgreSQL does: upper case, no leading zeros', () => {
    expect(formatLsn(0x16_b374_d848n)).toBe('16/B374D848');
    expect(formatLsn(0x3000148n)).toBe('0/3000148');
    expect(formatLsn(0n)).toBe('0/0');
  });

  it('refuses offsets outside 64 bits', () => {
    expect(() => formatLsn(-1n)).toThrow(RangeError);
    expect(() => formatLsn(MAX_LSN + 1n)).toThrow(RangeError);
  });

  it('round-trips with parseLsn for every 64-bit offset', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_LSN }), (offset) => {
        expect(parseLsn(formatLsn(offset))).toBe(offset);
      }),
    );
  });
});

describe('differences', () => {
  it('are exact across the 32-bit boundary and beyond 2^53', () => {
    expect(lsnDiffBytes('1/0', '0/FFFFFFFF')).toBe(1n);
    expect(lsnDiffBytes('FFFFFFFF/FFFFFFFF', '0/0')).toBe(MAX_LSN);
    expect(lsnDiffBytes('0/10', '0/20')).toBe(-16n);
  });

  it('are antisymmetric and agree with compareLsn', () => {
    const lsn = fc.bigInt({ min: 0n, max: MAX_LSN }).map(formatLsn);
    fc.assert(
      fc.property(lsn, lsn, (a, b) => {
        expect(lsnDiffBytes(a, b)).toBe(-lsnDiffBytes(b, a));
        const diff = lsnDiffBytes(a, b);
        expect(compareLsn(a, b)).toBe(diff < 0n ? -1 : diff > 0n ? 1 : 0);
      }),
    );
  });
});

describe('replicationLagBytes', () => {
  it('is the bytes the standby has still to replay', () => {
    expect(replicationLagBytes('0/3000200', '0/3000148')).toBe(0xb8);
    expect(replicationLagBytes('2/0', '1/FFFFFF00')).toBe(256);
  });

  it('is zero when the standby reports a later position than the primary did', () => {
    expect(replicationLagBytes('0/3000148', '0/3000200')).toBe(0);
  });

  it('is exact up to 2^53 - 1 bytes and saturates above instead of losing precision', () => {
    expect(replicationLagBytes('1FFFFF/FFFFFFFF', '0/0')).toBe(Number.MAX_SAFE_INTEGER);
    expect(replicationLagBytes('1FFFFF/FFFFFFFF', '0/1')).toBe(Number.MAX_SAFE_INTEGER - 1);
    expect(replicationLagBytes('FFFFFFFF/FFFFFFFF', '0/0')).toBe(Number.MAX_SAFE_INTEGER);
  });
});
