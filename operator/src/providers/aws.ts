/**
 * What the AWS adapters (Route 53, RDS, Aurora global) share: how their SDK clients are set up,
 * and how an AWS error becomes a ProviderError the controller can act on. Nothing here waits for
 * an operation AWS finishes later: adapters return once AWS accepted it, and the controller looks
 * again on a later reconcile.
 */
import { createHash } from 'node:crypto';
import type { defaultProvider } from '@aws-sdk/credential-provider-node';
import { credentialProviderNodeSdk } from './aws-sdk.ts';
import { ProviderError, type ProviderErrorReason } from './errors.ts';

/** Static credentials read from the Secret named by `credentialsSecretRef`. Never logged. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Settings every AWS client of the operator takes, from a provider block of the spec. */
export interface AwsClientOptions {
  region: string;
  /** `endpointUrl` of the spec: a VPC endpoint, or an emulator in tests. Default: AWS's own. */
  endpointUrl?: string;
  /** Omit to use the SDK's default chain (the pod's identity: IRSA, instance profile). */
  credentials?: AwsCredentials;
  /** Per attempt; a request that takes longer fails with Timeout. Default 10 s. */
  requestTimeoutMs?: number;
  /**
   * Attempts per call, including the SDK's own retries of throttling and transient errors.
   * Default 3; the controller retries with its own backoff above this.
   */
  maxAttempts?: number;
}

/** The SDK client configuration (shared by Route53Client and RDSClient) for these options. */
export function awsClientConfig(options: AwsClientOptions) {
  const requestTimeout = options.requestTimeoutMs ?? 10_000;
  return {
    region: options.region,
    ...(options.endpointUrl ? { endpoint: options.endpointUrl } : {}),
    ...(options.credentials
      ? { credentials: options.credentials }
      : {
          // The SDK's own chain (the pod's identity), given the client's config as the SDK gives it.
          credentialDefaultProvider: (init: Parameters<typeof defaultProvider>[0]) =>
            rememberingFailure(credentialProviderNodeSdk().defaultProvider(init), IDENTITY_FAILURE_MS),
        }),
    maxAttempts: options.maxAttempts ?? 3,
    // The SDK builds each command's middleware chain anew on every send unless told to keep it
    // (per client and command class). Middleware must then be added before a client's first
    // send, and a send with per-call options skips the kept chain; the operator does neither. Built
    // anew it was ~70 % of what a Route 53 read allocated: at 2,000 policies looking for their
    // primary (a read each per probe interval), 23 % of the operator's allocation.
    cacheMiddleware: true,
    requestHandler: {
      requestTimeout,
      connectionTimeout: Math.min(requestTimeout, 5_000),
      // Without this the SDK only logs a warning and waits on a server that never answers.
      throwOnRequestTimeout: true,
    },
  };
}

/**
 * How long a failure of the pod's identity is given back without asking again. The SDK keeps
 * credentials it got, but runs the whole chain again after a failure: with no identity, each call
 * waited about a second on the instance metadata service, and a policy worker with it (2,000
 * policies without credentials took minutes to reconcile). Short, so an identity fixed, or an STS
 * blip during a failover, costs at most this long.
 */
export const IDENTITY_FAILURE_MS = 5_000;

/**
 * A credentials provider that answers "no identity" again, at once, for `forMs` after it: callers
 * in that window share the one attempt instead of each waiting out the chain. Only the chain's own
 * verdict that no source had credentials (CredentialsProviderError) is remembered; an STS error
 * (throttling, a 5xx, the network) goes to the caller's retry as it is, so a failover's DNS step
 * is not held back by a blip.
 */
export function rememberingFailure<O, T>(
  provider: (options?: O) => Promise<T>,
  forMs: number,
  now: () => number = () => performance.now(),
): (options?: O) => Promise<T> {
  let failed: { err: unknown; at: number } | undefined;
  return async (options?: O) => {
    if (failed && now() - failed.at < forMs) throw failed.err;
    try {
      const value = await provider(options);
      failed = undefined;
      return value;
    } catch (err) {
      failed = (err as Error)?.name === 'CredentialsProviderError' ? { err, at: now() } : undefined;
      throw err;
    }
  };
}

/** How long a shared AWS client nobody holds is kept for the next user. */
const SHARED_CLIENT_IDLE_MS = 5 * 60_000;

/** A shared client, held until `release` (an adapter's close) hands it back. */
export interface SharedAwsClient<C> {
  client: C;
  release(): void;
}

/**
 * One SDK client per service, region, endpoint and credentials, shared by every policy, database
 * and call. A client made per DNS check (or per database) re-ran the credential chain each time (the
 * pod's identity: an STS or instance-metadata request) and opened its own connections; at a few
 * thousand policies that was a tenth to a fifth of the operator's CPU. A changed Secret is a new
 * key, so rotated credentials take effect at once. A client is destroyed only once nobody has held
 * it for SHARED_CLIENT_IDLE_MS: an adapter that keeps one (a cached database provider) is never cut
 * off under a call in flight.
 */
export class SharedAwsClients<C extends { destroy(): void }> {
  readonly #make: (config: ReturnType<typeof awsClientConfig>) => C;
  readonly #entries = new Map<string, { client: C; users: number; idleSince: number }>();
  readonly #idleMs: number;
  readonly #now: () => number;

  constructor(
    make: (config: ReturnType<typeof awsClientConfig>) => C,
    idleMs = SHARED_CLIENT_IDLE_MS,
    now: () => number = Date.now,
  ) {
    this.#make = make;
    this.#idleMs = idleMs;
    this.#now = now;
  }

  get(options: AwsClientOptions): SharedAwsClient<C> {
    this.#sweep();
    const { credentials, ...rest } = options;
    // The secret goes into the key only as a digest: the map may be inspected in a heap dump.
    const secret = credentials
      ? createHash('sha256')
          .update(
            `${credentials.accessKeyId}\0${credentials.secretAccessKey}\0${credentials.sessionToken ?? ''}`,
          )
          .digest('hex')
      : '';
    const key = JSON.stringify([
      rest.region,
      rest.endpointUrl,
      rest.requestTimeoutMs,
      rest.maxAttempts,
      secret,
    ]);
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = { client: this.#make(awsClientConfig(options)), users: 0, idleSince: this.#now() };
      this.#entries.set(key, entry);
    }
    const held = entry;
    held.users++;
    let released = false;
    return {
      client: held.client,
      release: () => {
        if (released) return;
        released = true;
        held.users--;
        if (held.users === 0) held.idleSince = this.#now();
      },
    };
  }

  /** Clients kept, held or idle. */
  get size(): number {
    return this.#entries.size;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, e] of this.#entries)
      if (e.users === 0 && now - e.idleSince > this.#idleMs) {
        this.#entries.delete(key);
        e.client.destroy();
      }
  }
}

/**
 * Parses the Secret value that `credentialsSecretRef` points at. `where` names the Secret key in
 * messages, such as "Secret orders/aws-credentials key credentials.json".
 */
export function parseAwsCredentials(json: string, where: string): AwsCredentials {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new ProviderError(
      'CredentialsMissing',
      `${where} is not JSON; it must hold {"accessKeyId": "...", "secretAccessKey": "...", "sessionToken": "..." (optional)}`,
    );
  }
  const { accessKeyId, secretAccessKey, sessionToken } = (value ?? {}) as Record<string, unknown>;
  if (
    typeof accessKeyId !== 'string' ||
    accessKeyId === '' ||
    typeof secretAccessKey !== 'string' ||
    secretAccessKey === ''
  ) {
    throw new ProviderError(
      'CredentialsMissing',
      `${where} must hold non-empty strings accessKeyId and secretAccessKey (and optionally sessionToken)`,
    );
  }
  if (sessionToken !== undefined && typeof sessionToken !== 'string') {
    throw new ProviderError('CredentialsMissing', `${where}: sessionToken must be a string when present`);
  }
  return { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
}

// Error names across AWS APIs (Query, REST-XML and JSON protocols spell them differently).
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  // Route 53: another change to the same zone is still being applied.
  'PriorRequestNotComplete',
]);
const AUTHENTICATION = new Set([
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'InvalidAccessKeyId',
  'InvalidSignatureException',
  'AuthFailure',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
  'AccessDenied',
  'AccessDeniedException',
  'NotAuthorized',
  'CredentialsProviderError',
]);
const NOT_FOUND = new Set([
  'NoSuchHostedZone',
  'NoSuchChange',
  'DBInstanceNotFound',
  'DBInstanceNotFoundFault',
  'DBClusterNotFoundFault',
  'GlobalClusterNotFoundFault',
  'ResourceNotFoundException',
]);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'EADDRNOTAVAIL',
]);

interface AwsErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The error's AWS name ("ThrottlingException") or Node network code ("ECONNREFUSED"). */
export function awsErrorName(err: unknown): string {
  const e = (err ?? {}) as AwsErrorShape;
  return e.Code ?? (e.name && e.name !== 'Error' ? e.name : undefined) ?? e.code ?? 'Error';
}

/**
 * Classifies an error from an AWS SDK call into a ProviderError. `operation` says what was being
 * done ("Route 53 ListResourceRecordSets in zone Z1") and starts the message.
 */
export function classifyAwsError(err: unknown, operation: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = (err ?? {}) as AwsErrorShape;
  const name = awsErrorName(err);
  const status = e.$metadata?.httpStatusCode;
  const unreadable =
    !e.message || e.message === 'UnknownError' || e.message.includes('Deserialization error');
  // An error page the SDK cannot parse (a proxy's, an emulator's) says nothing useful verbatim.
  const detail = unreadable
    ? `${name === 'Error' ? 'an answer' : name} the SDK could not read (HTTP ${status ?? '?'})`
    : (e.message ?? '');
  const make = (reason: ProviderErrorReason, hint = '') =>
    new ProviderError(reason, `${operation}: ${detail}${hint}`, { cause: err });

  if (name === 'CredentialsProviderError') {
    return make(
      'AuthenticationFailed',
      '; no AWS credentials were found: set credentialsSecretRef, or give the operator pod an identity (IRSA, instance profile)',
    );
  }
  if (AUTHENTICATION.has(name) || status === 401 || status === 403) {
    return make(
      'AuthenticationFailed',
      '; check the credentials (credentialsSecretRef or the pod identity) and their IAM permissions',
    );
  }
  if (THROTTLING.has(name) || status === 429) return make('Throttled');
  if (name === 'TimeoutError' || e.code === 'ETIMEDOUT' || name === 'RequestTimeout') return make('Timeout');
  const code = e.code ?? '';
  if (UNREACHABLE_CODES.has(code)) return make('Unreachable');
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.includes('SELF_SIGNED'))
    return make('TlsFailed');
  if (NOT_FOUND.has(name) || status === 404) return make('NotFound');
  if (status !== undefined && status >= 500) return make('ProviderError');
  if (status !== undefined && status >= 400) return make('Rejected');
  return make('ProviderError');
}
