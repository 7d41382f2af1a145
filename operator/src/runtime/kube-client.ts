/**
 * The Kubernetes API port's adapter: one small REST client for every resource the operator uses
 * (its custom resources, Leases, Events, Secrets). It speaks plain JSON, counts every request in
 * `rest_client_requests_total`, and turns failures into KubeApiError with the status code.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Dispatcher } from 'undici';
import { accessFromKubeConfig, type KubeAccess } from './kube-access.ts';
import type { Metrics } from './metrics.ts';

/** Which resource a request is about. */
export interface ResourceType {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  kind: string;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  [key: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject & { code?: number; reason?: string; message?: string };
}

export class KubeApiError extends Error {
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
  }
}

export const isNotFound = (err: unknown) => err instanceof KubeApiError && err.status === 404;
export const isConflict = (err: unknown) => err instanceof KubeApiError && err.status === 409;
export const isForbidden = (err: unknown) => err instanceof KubeApiError && err.status === 403;
export const isGone = (err: unknown) => err instanceof KubeApiError && err.status === 410;

export function resourcePath(
  type: ResourceType,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  const base = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  return [base, namespace ? `namespaces/${namespace}` : undefined, type.plural, name, subresource]
    .filter((p) => p !== undefined)
    .join('/');
}

export interface KubeClientOptions {
  /** Per-request timeout for ordinary (non-watch) requests. */
  requestTimeoutMs?: number;
  /** Identity sent as User-Agent, so API server audit logs name the operator. */
  userAgent?: string;
  /** Headers sent with every request, repeatable (kubectl's --as and --as-group impersonation). */
  extraHeaders?: [string, string][];
}

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export class KubeClient {
  private readonly access: KubeAccess;
  private readonly metrics: Metrics | undefined;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private readonly extraHeaders: [string, string][];

  /** `access` from loadKubeAccess (the operator), or a client-node KubeConfig (the CLI, tests). */
  constructor(access: KubeAccess | KubeConfig, metrics?: Metrics, options: KubeClientOptions = {}) {
    this.access = 'getCurrentCluster' in access ? accessFromKubeConfig(access) : access;
    this.metrics = metrics;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
    this.userAgent = options.userAgent ?? 'failover-operator';
    this.extraHeaders = options.extraHeaders ?? [];
  }

  /** The server URL, for messages. */
  get server(): string {
    return this.access.server || '(no cluster)';
  }

  private dispatcher: Promise<Dispatcher> | undefined;

  /**
   * One connection pool for the life of the client. client-node hands out a new dispatcher with
   * every request, which means a new TLS connection per request: fine for a CLI, ruinous for an
   * operator making thousands of calls.
   */
  private pool(): Promise<Dispatcher> {
    this.dispatcher ??= this.access.dispatcher(30_000);
    return this.dispatcher;
  }

  /**
   * One request through the pool with undici's own API rather than fetch: no WHATWG Request,
   * Headers, Response or web streams around each call (fetch was ~5 % of the operator's CPU over a
   * cold pass at 2,000 policies). The response body must be read or dumped by the caller. Nothing
   * asks for gzip: the API server would compress every large LIST page, on the cores it shares.
   * Redirects are not followed (the API server does not send them).
   */
  private async request(
    method: HttpMethod,
    path: string,
    options: {
      body?: unknown;
      contentType?: string;
      query?: Record<string, string | number | boolean | undefined>;
      signal?: AbortSignal;
      accept?: string;
      /** Longest silence of the response body; undici's default is 300 s. */
      bodyTimeoutMs?: number;
    } = {},
  ): Promise<{ status: number; body: Dispatcher.ResponseData['body'] }> {
    if (!this.access.server) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(this.access.server + path);
    for (const [k, v] of Object.entries(options.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    // Flat name/value pairs: a name may repeat (impersonation's groups). A header given here
    // (kubectl's --as) replaces the kubeconfig's own of that name (its `as:`), as in kubectl.
    const given = new Set(this.extraHeaders.map(([name]) => name.toLowerCase()));
    const headers: string[] = [];
    for (const [name, value] of Object.entries(await this.access.authenticate(url.toString(), method)))
      if (!given.has(name.toLowerCase())) headers.push(name, value);
    headers.push('user-agent', this.userAgent, 'accept', options.accept ?? 'application/json');
    if (options.body !== undefined) headers.push('content-type', options.contentType ?? 'application/json');
    for (const [name, value] of this.extraHeaders) headers.push(name, value);
    let status = 0;
    try {
      const response = await (await this.pool()).request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: options.signal,
        ...(options.bodyTimeoutMs !== undefined ? { bodyTimeout: options.bodyTimeoutMs } : {}),
      });
      status = response.statusCode;
      return { status, body: response.body };
    } finally {
      this.metrics?.restRequests.inc({ code: status === 0 ? '<error>' : String(status), method });
    }
  }

  private async json<T>(
    method: HttpMethod,
    path: string,
    options: {
      body?: unknown;
      contentType?: string;
      query?: Record<string, string | number | boolean | undefined>;
      accept?: string;
    } = {},
  ): Promise<T> {
    // The whole request, connecting and its body included, is due within the timeout: leader
    // election and the split-brain guard count on it. A plain timer: AbortSignal.timeout's weak
    // references and finalizers cost more, per request, than the rest of the client.
    const deadline = new AbortController();
    const timer = setTimeout(
      () =>
        deadline.abort(
          new DOMException(`${method} ${path}: no answer within ${this.requestTimeoutMs} ms`, 'TimeoutError'),
        ),
      this.requestTimeoutMs,
    );
    try {
      const response = await this.request(method, path, { ...options, signal: deadline.signal });
      const text = await response.body.text();
      if (!isOk(response.status)) throw toApiError(response.status, text, `${method} ${path}`);
      return (text ? JSON.parse(text) : {}) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A GET of a path that is not a resource (/version). */
  raw<T>(path: string): Promise<T> {
    return this.json<T>('GET', path);
  }

  get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string): Promise<T> {
    return this.json<T>('GET', resourcePath(type, namespace, name));
  }

  /** Like get, but undefined when the object does not exist. */
  async find<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(type, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** With `metadataOnly`, each item is the object's metadata alone (a PartialObjectMetadata). */
  list<T extends KubeObject>(
    type: ResourceType,
    namespace?: string,
    query: { labelSelector?: string; fieldSelector?: string; limit?: number; continue?: string } = {},
    options: { metadataOnly?: boolean } = {},
  ): Promise<{ items: T[]; metadata: { resourceVersion: string; continue?: string } }> {
    return this.json('GET', resourcePath(type, namespace), {
      query,
      ...(options.metadataOnly ? { accept: METADATA_LIST } : {}),
    });
  }

  create<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    body: KubeObject,
  ): Promise<T> {
    return this.json<T>('POST', resourcePath(type, namespace), { body });
  }

  replace<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    body: KubeObject,
  ): Promise<T> {
    return this.json<T>('PUT', resourcePath(type, namespace, body.metadata.name), { body });
  }

  /**
   * JSON merge patch. Put `metadata.resourceVersion` in the patch to make it conditional: the
   * API server then refuses it with 409 if the object changed since it was read. With `dryRun`
   * the API server runs every check it would run (schema, CEL rules, admission) and stores nothing.
   */
  mergePatch<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    subresource?: 'status',
    write: { fieldManager?: string; dryRun?: boolean } = {},
  ): Promise<T> {
    return this.json<T>('PATCH', resourcePath(type, namespace, name, subresource), {
      body: patch,
      contentType: 'application/merge-patch+json',
      query: { fieldManager: write.fieldManager, dryRun: write.dryRun ? 'All' : undefined },
    });
  }

  async delete(type: ResourceType, namespace: string | undefined, name: string): Promise<void> {
    try {
      await this.json('DELETE', resourcePath(type, namespace, name));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Opens a watch and calls `onEvent` per event until the stream ends; resolves then, or rejects
   * with KubeApiError (410 Gone among them) or a network error. `signal` stops it. `onOpen` is
   * called once the API server accepted it: from then on every change after the resourceVersion
   * asked for comes, or a 410. With `metadataOnly`, each object is its metadata alone.
   */
  async watch(
    type: ResourceType,
    namespace: string | undefined,
    query: {
      resourceVersion?: string;
      timeoutSeconds?: number;
      allowWatchBookmarks?: boolean;
      fieldSelector?: string;
    },
    onEvent: (event: WatchEvent) => void,
    signal: AbortSignal,
    options: { metadataOnly?: boolean; onOpen?: () => void } = {},
  ): Promise<void> {
    const response = await this.request('GET', resourcePath(type, namespace), {
      query: { ...query, watch: true },
      signal,
      ...(options.metadataOnly ? { accept: METADATA_OBJECT } : {}),
      // A quiet watch may send nothing for minutes (an API server need not send bookmarks in
      // between; the one the tests run sends none), and undici cut it after 300 s of silence:
      // before the server's own timeout, as an error. The informer's watchdog judges silence.
      bodyTimeoutMs: 0,
    });
    if (!isOk(response.status)) {
      throw toApiError(response.status, await response.body.text(), `WATCH ${resourcePath(type, namespace)}`);
    }
    options.onOpen?.();
    // One JSON object per line. A stream error (the connection cut, `signal` aborted) ends the
    // loop by throwing, which the informer counts and retries.
    const body = response.body.setEncoding('utf8');
    let partial = '';
    try {
      for await (const chunk of body as AsyncIterable<string>) {
        const text = partial + chunk;
        let start = 0;
        for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
          const line = text.slice(start, newline);
          start = newline + 1;
          if (line.trim()) onWatchLine(line, onEvent);
        }
        partial = text.slice(start);
      }
      if (partial.trim()) onWatchLine(partial, onEvent);
    } finally {
      body.destroy();
    }
  }
}

const isOk = (status: number) => status >= 200 && status < 300;

/**
 * Metadata alone, as controller-runtime's metadata-only watches ask for it: the API server then
 * sends no Secret's data, only its name and resourceVersion among the rest of its metadata.
 */
const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
const METADATA_OBJECT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

function onWatchLine(line: string, onEvent: (event: WatchEvent) => void): void {
  const event = JSON.parse(line) as WatchEvent;
  // An expired resourceVersion arrives as an ERROR event carrying a Status, not as an HTTP error.
  if (event.type === 'ERROR') {
    const status = event.object;
    throw new KubeApiError(status.code ?? 500, status.reason ?? 'Unknown', status.message ?? 'watch error');
  }
  onEvent(event);
}

function toApiError(status: number, body: string, what: string): KubeApiError {
  try {
    const parsed = JSON.parse(body) as { reason?: string; message?: string };
    return new KubeApiError(
      status,
      parsed.reason ?? String(status),
      parsed.message ?? `${what}: HTTP ${status}`,
    );
  } catch {
    return new KubeApiError(status, String(status), `${what}: HTTP ${status} ${body.slice(0, 200)}`);
  }
}
