/**
 * PostgreSQL write-ahead log positions. An LSN is a 64-bit byte offset into the WAL that
 * PostgreSQL prints as two hexadecimal 32-bit halves, 'X/Y'. Arithmetic uses BigInt: the high
 * half alone can exceed what a double represents exactly once shifted.
 */

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses 'X/Y' into its byte offset. Throws a RangeError naming the bad value. */
export function parseLsn(text: string): bigint {
  const match = LSN_PATTERN.exec(text.trim());
  if (!match) {
    throw new RangeError(
      `not a PostgreSQL LSN: ${JSON.stringify(text)} (expected two hex halves like '0/3000148')`,
    );
  }
  const [, high = '0', low = '0'] = match;
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

/** Formats a byte offset the way PostgreSQL prints it ('16/B374D848'). */
export function formatLsn(offset: bigint): string {
  if (offset < 0n || offset > 0xffff_ffff_ffff_ffffn) {
    throw new RangeError(`LSN offset out of range: ${offset}`);
  }
  const high = (offset >> 32n).toString(16).toUpperCase();
  const low = (offset & 0xffff_ffffn).toString(16).toUpperCase();
  return `${high}/${low}`;
}

/** Whether `text` is a well-formed LSN. */
export function isLsn(text: string): boolean {
  return LSN_PATTERN.test(text.trim());
}

/** `ahead - behind` in bytes; negative when `behind` is in fact ahead. */
export function lsnDiffBytes(ahead: string, behind: string): bigint {
  return parseLsn(ahead) - parseLsn(behind);
}

/** -1, 0 or 1 as `a` is before, at or after `b`. */
export function compareLsn(a: string, b: string): -1 | 0 | 1 {
  const diff = lsnDiffBytes(a, b);
  return diff < 0n ? -1 : diff > 0n ? 1 : 0;
}

/**
 * How many bytes of WAL a standby has still to replay to reach the primary's position, as a
 * number for status fields and metrics. Never negative: a standby observed a moment after the
 * primary can report a later position, which means no lag. Saturates at Number.MAX_SAFE_INTEGER
 * (8 PiB, far beyond any real lag) so the result is always exact or obviously huge.
 */
export function replicationLagBytes(primaryLsn: string, standbyLsn: string): number {
  const diff = lsnDiffBytes(primaryLsn, standbyLsn);
  if (diff <= 0n) return 0;
  return diff > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(diff);
}
