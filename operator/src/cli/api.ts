/**
 * What `kubectl failover` reads and writes through the Kubernetes API, as the person running it
 * (their kubeconfig, their RBAC). It only reads, and records intent in `spec.promotionRequest`;
 * the operator does the work.
 */
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { fetch } from 'undici';
import { failoverObservationType, failoverPolicyType, replicaClusterType } from '../controllers/resources.ts';
import { type KubeObject, type ResourceType, resourcePath } from '../runtime/kube-client.ts';

/** An answer of the API server that was not a success, with its own message. */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.reason = reason;
  }
}

export interface KubeconfigOptions {
  kubeconfig?: string;
  context?: string;
}

/** The user's kubeconfig: --kubeconfig, else $KUBECONFIG, ~/.kube/config or in-cluster. */
export function loadKubeConfig(opts: KubeconfigOptions): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else kc.loadFromDefault();
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      throw new Error(
        `context ${opts.context} is not in the kubeconfig; contexts are: ${kc.contexts.map((c) => c.name).join(', ')}`,
      );
    }
    kc.setCurrentContext(opts.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new Error(
      'no current cluster in the kubeconfig: set KUBECONFIG, or pass --kubeconfig and --context',
    );
  }
  return kc;
}

/** The namespace of the current context, as kubectl uses it. */
export function contextNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
}

export interface List<T> {
  items: T[];
}

export class FailoverApi {
  private readonly kc: KubeConfig;

  constructor(kc: KubeConfig) {
    this.kc = kc;
  }

  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? '(no cluster)';
  }

  private async request<T>(
    method: HttpMethod,
    path: string,
    options: { body?: unknown; contentType?: string; query?: Record<string, string> } = {},
  ): Promise<T> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    const ctx = new RequestContext(url.toString(), method);
    await this.kc.applySecurityAuthentication(ctx);
    const headers = ctx.getHeaders() as Record<string, string>;
    headers['user-agent'] = 'kubectl-failover';
    headers.accept = 'application/json';
    if (options.body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    let response: Awaited<ReturnType<typeof fetch>>;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        dispatcher: ctx.getDispatcher(),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      throw new Error(`cannot reach the API server at ${this.server}: ${cause ?? (err as Error).message}`);
    }
    const text = await response.text();
    if (!response.ok) {
      let reason = String(response.status);
      let message = `${method} ${path}: HTTP ${response.status}`;
      try {
        const status = JSON.parse(text) as { reason?: string; message?: string };
        reason = status.reason ?? reason;
        message = status.message ?? message;
      } catch {
        // not a Status object: keep the HTTP summary
      }
      throw new ApiError(response.status, reason, message);
    }
    return (text ? JSON.parse(text) : {}) as T;
  }

  get<T extends KubeObject>(type: ResourceType, namespace: string, name: string): Promise<T> {
    return this.request<T>(HttpMethod.GET, resourcePath(type, namespace, name));
  }

  /** Every object of a type in one namespace, or in all when `namespace` is undefined. */
  list<T extends KubeObject>(type: ResourceType, namespace: string | undefined): Promise<List<T>> {
    return this.request<List<T>>(HttpMethod.GET, resourcePath(type, namespace));
  }

  /**
   * A JSON merge patch of a FailoverPolicy. With `dryRun` the API server runs every check it
   * would run (schema, CEL rules, admission) and stores nothing.
   */
  patchPolicy<T extends KubeObject>(
    namespace: string,
    name: string,
    patch: unknown,
    opts: { dryRun?: boolean } = {},
  ): Promise<T> {
    return this.request<T>(HttpMethod.PATCH, resourcePath(failoverPolicyType, namespace, name), {
      body: patch,
      contentType: 'application/merge-patch+json',
      query: opts.dryRun
        ? { dryRun: 'All', fieldManager: 'kubectl-failover' }
        : { fieldManager: 'kubectl-failover' },
    });
  }

  /** Who the API server says the caller is (SelfSubjectReview), for the request's requestedBy. */
  async whoAmI(): Promise<string | undefined> {
    try {
      const review = await this.request<{ status?: { userInfo?: { username?: string } } }>(
        HttpMethod.POST,
        '/apis/authentication.k8s.io/v1/selfsubjectreviews',
        { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } },
      );
      return review.status?.userInfo?.username;
    } catch {
      return this.kc.getCurrentUser()?.name;
    }
  }
}

export { failoverObservationType, failoverPolicyType, replicaClusterType };
