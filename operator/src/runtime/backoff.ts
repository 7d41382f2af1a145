/**
 * Exponential backoff with full jitter: the wait before retry n is a random point in
 * [base * 2^n / 2, base * 2^n], capped. Jitter keeps many replicas or keys from retrying in step.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt));
  return Math.round(exp / 2 + (random() * exp) / 2);
}
