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

const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'UND_ERR_SOCKET']);
const TIMED_OUT = new Set([
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** A short CamelCase label for an error, used as the `reason` label of the error metric. */
export function errorReason(err: unknown): string {
  const reason = (err as { reason?: unknown }).reason;
  if (typeof reason === 'string' && /^[A-Za-z][A-Za-z0-9]*$/.test(reason)) return reason;
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number') return `Http${status}`;
  // undici's errors carry their code; fetch() wraps the socket error as the cause.
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  const code = String(e.code ?? e.cause?.code ?? '');
  if (UNREACHABLE.has(code)) return 'ApiUnreachable';
  if (TIMED_OUT.has(code) || (err as Error).name === 'TimeoutError') return 'ApiTimeout';
  return 'Unknown';
}
