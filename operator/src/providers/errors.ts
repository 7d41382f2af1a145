/**
 * Errors from outside systems, classified so the controller can decide: retry with backoff, or
 * report and wait for a person. `reason` is a CamelCase word used in conditions, events and the
 * `reason` label of error metrics, so it must come from this closed list.
 */
export type ProviderErrorReason =
  /** Nothing answered: connection refused, no route, DNS lookup failed. */
  | 'Unreachable'
  /** Something answered too slowly. */
  | 'Timeout'
  /** Credentials were refused (wrong password, bad token, bad TSIG signature). */
  | 'AuthenticationFailed'
  /** A referenced Secret or key within it does not exist. */
  | 'CredentialsMissing'
  /** The TLS handshake failed. */
  | 'TlsFailed'
  /** The provider throttled us. */
  | 'Throttled'
  /** A compare-and-swap lost: the record or resource no longer holds the value we last saw. */
  | 'PreconditionFailed'
  /** The DNS record belongs to another owner; the operator never overwrites it. */
  | 'OwnershipConflict'
  /** The provider refused the request as invalid (a bug or a misconfiguration, not transient). */
  | 'Rejected'
  /** The named resource does not exist at the provider. */
  | 'NotFound'
  /** Anything else the provider returned. */
  | 'ProviderError';

export class ProviderError extends Error {
  readonly reason: ProviderErrorReason;
  /** Whether trying again later may succeed. */
  readonly retryable: boolean;
  /** How long the provider asked to be left alone (a throttling answer's Retry-After), if it said. */
  readonly retryAfterMs: number | undefined;

  constructor(
    reason: ProviderErrorReason,
    message: string,
    options: { retryable?: boolean; cause?: unknown; retryAfterMs?: number | undefined } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'ProviderError';
    this.reason = reason;
    this.retryable =
      options.retryable ??
      !['Rejected', 'OwnershipConflict', 'CredentialsMissing', 'NotFound'].includes(reason);
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isProviderError(err: unknown): err is ProviderError {
  return err instanceof ProviderError;
}

/**
 * Failures that are no evidence of an outage: the database answered and turned the prober away
 * (its password, its TLS settings or certificate, a privilege), or the prober had nothing to log
 * in with. Clients with their own credentials may be served all along, and a failover would stick
 * at fencing the primary through the same refusal. A database that does not exist is not among
 * them: a server rebuilt empty at the same address answers so, and the fence goes through another.
 */
const REFUSED_THE_PROBER: ReadonlySet<string> = new Set<ProviderErrorReason>([
  'AuthenticationFailed',
  'CredentialsMissing',
  'TlsFailed',
  'Rejected',
]);

export function refusedTheProber(reason: string | undefined): boolean {
  return reason !== undefined && REFUSED_THE_PROBER.has(reason);
}
