/**
 * What a reconcile returns. A reconcile gets a key, never an event: it re-reads the world and is
 * safe to run any number of times. Waiting is returning `requeueAfter`, never sleeping.
 */
export type ReconcileResult =
  | { kind: 'done' }
  | { kind: 'requeueAfter'; ms: number; why?: string }
  /**
   * The reconcile failed in a way it already recorded (a step's attempt, kept in status with its
   * own backoff): counted and logged as an error, and looked at again after `ms` — the status's
   * backoff, not a second one from the work queue.
   */
  | { kind: 'retryAfter'; ms: number; reason: string; message: string };

export const done = (): ReconcileResult => ({ kind: 'done' });
export const requeueAfter = (ms: number, why?: string): ReconcileResult => ({
  kind: 'requeueAfter',
  ms,
  why,
});

export const retryAfter = (ms: number, reason: string, message: string): ReconcileResult => ({
  kind: 'retryAfter',
  ms,
  reason,
  message,
});

/** A short CamelCase label for an error, used as the `reason` label of the error metric. */
export function errorReason(err: unknown): string {
  const reason = (err as { reason?: unknown }).reason;
  if (typeof reason === 'string' && /^[A-Za-z][A-Za-z0-9]*$/.test(reason)) return reason;
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number') return `Http${status}`;
  // fetch() failures carry the socket error as their cause.
  const code = (err as { cause?: { code?: unknown } }).cause?.code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH') return 'ApiUnreachable';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT' || (err as Error).name === 'TimeoutError')
    return 'ApiTimeout';
  return 'Unknown';
}
