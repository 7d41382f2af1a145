/**
 * What `kubectl failover` reads and writes through the Kubernetes API, as the person running it
 * (their kubeconfig, their RBAC), over the operator's own client. It only reads, and records
 * intent in `spec.promotionRequest`; the operator does the work.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { type Cluster, type Context, KubeConfig, type User } from '@kubernetes/client-node';
import {
  failoverObservationType,
  failoverPolicyType,
  failoverReportType,
  replicaClusterType,
} from '../controllers/resources.ts';
import { KubeApiError, KubeClient, type KubeObject, type ResourceType } from '../runtime/kube-client.ts';
import { type Lease, leaseType } from '../runtime/leader-election.ts';

/** An answer of the API server that was not a success, with its own message and status code. */
export { KubeApiError as ApiError };

export interface KubeconfigOptions {
  kubeconfig?: string;
  context?: string;
  /** kubectl's --server and --token: override the current context's cluster address and credentials. */
  server?: string;
  token?: string;
}

/** The user's kubeconfig: --kubeconfig, else $KUBECONFIG, ~/.kube/config or in-cluster. */
export function loadKubeConfig(opts: KubeconfigOptions): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else if (opts.server && !process.env.KUBECONFIG && !existsSync(join(homedir(), '.kube', 'config')))
    // --server alone, as kubectl allows: no kubeconfig needed.
    kc.loadFromOptions({
      clusters: [{ name: 'flags', server: opts.server }],
      users: [{ name: 'flags' }],
      contexts: [{ name: 'flags', cluster: 'flags', user: 'flags' }],
      currentContext: 'flags',
    });
  else if (process.env.KUBECONFIG) loadKubeconfigList(kc, process.env.KUBECONFIG);
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
  if (opts.server || opts.token) overrideCurrent(kc, opts);
  return kc;
}

/**
 * $KUBECONFIG's files merged as kubectl merges them: a file that does not exist is skipped, the
 * first file to set current-context sets it, and of a cluster, user or context named in several
 * files the first one counts. (client-node lets the last current-context win and refuses a name
 * twice: with several files, the plugin would act on another cluster than kubectl.)
 */
function loadKubeconfigList(kc: KubeConfig, list: string): void {
  const merged = {
    clusters: [] as Cluster[],
    users: [] as User[],
    contexts: [] as Context[],
    currentContext: '',
  };
  const firstByName = <T extends { name: string }>(into: T[], from: T[]) => {
    for (const entry of from) if (!into.some((e) => e.name === entry.name)) into.push(entry);
  };
  for (const file of list.split(delimiter).filter((f) => f !== '' && existsSync(f))) {
    const one = new KubeConfig();
    one.loadFromFile(file);
    firstByName(merged.clusters, one.clusters);
    firstByName(merged.users, one.users);
    firstByName(merged.contexts, one.contexts);
    merged.currentContext ||= one.currentContext;
  }
  kc.loadFromOptions(merged);
}

/** --server and --token over the current context, as kubectl applies them. */
function overrideCurrent(kc: KubeConfig, opts: KubeconfigOptions): void {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  const context = kc.getContextObject(kc.getCurrentContext());
  if (!cluster || !context) return;
  // A token replaces whatever the user authenticated with (certificates, exec, basic).
  const flagsUser = opts.token ? { name: 'kubectl-failover-flags', token: opts.token } : user;
  kc.loadFromOptions({
    clusters: [
      ...kc.clusters.filter((c) => c.name !== cluster.name),
      { ...cluster, server: opts.server ?? cluster.server },
    ],
    users: [...kc.users.filter((u) => u.name !== flagsUser?.name), ...(flagsUser ? [flagsUser] : [])],
    contexts: [
      ...kc.contexts.filter((c) => c.name !== context.name),
      { ...context, ...(flagsUser ? { user: flagsUser.name } : {}) },
    ],
    currentContext: context.name,
  });
}

/** The namespace of the current context, as kubectl uses it. */
export function contextNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
}

export interface List<T> {
  items: T[];
}

const selfSubjectReviewType: ResourceType = {
  group: 'authentication.k8s.io',
  version: 'v1',
  plural: 'selfsubjectreviews',
  kind: 'SelfSubjectReview',
};

const FIELD_MANAGER = 'kubectl-failover';

export interface ClientOptions {
  /** kubectl's --request-timeout (0: none; default 30 s). */
  requestTimeoutMs?: number;
  /** kubectl's --as and --as-group: act as another user (needs the impersonate verb). */
  as?: string;
  asGroups?: string[];
}

export class FailoverApi {
  private readonly kc: KubeConfig;
  private readonly client: KubeClient;

  constructor(kc: KubeConfig, opts: ClientOptions = {}) {
    this.kc = kc;
    const timeout = opts.requestTimeoutMs ?? 30_000;
    this.client = new KubeClient(kc, undefined, {
      // 0 means no timeout, as in kubectl: a day is as good as none for one command.
      requestTimeoutMs: timeout === 0 ? 86_400_000 : timeout,
      userAgent: FIELD_MANAGER,
      extraHeaders: [
        ...(opts.as ? [['Impersonate-User', opts.as] as [string, string]] : []),
        ...(opts.asGroups ?? []).map((g) => ['Impersonate-Group', g] as [string, string]),
      ],
    });
  }

  get server(): string {
    return this.client.server;
  }

  /** Runs a call; a failure to reach the API server at all names the server and the cause. */
  private async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (err) {
      if (err instanceof KubeApiError) throw err;
      const cause = (err as { cause?: { message?: string } }).cause?.message;
      throw new Error(`cannot reach the API server at ${this.server}: ${cause ?? (err as Error).message}`);
    }
  }

  get<T extends KubeObject>(type: ResourceType, namespace: string, name: string): Promise<T> {
    return this.call(() => this.client.get<T>(type, namespace, name));
  }

  /** Every object of a type in one namespace, or in all when `namespace` is undefined. */
  list<T extends KubeObject>(type: ResourceType, namespace: string | undefined): Promise<List<T>> {
    return this.call(() => this.client.list<T>(type, namespace));
  }

  /** A policy's incident records (FailoverReport objects), by the policy's uid label. */
  reports(namespace: string, policyUid: string): Promise<List<KubeObject>> {
    return this.call(() =>
      this.client.list<KubeObject>(failoverReportType, namespace, {
        labelSelector: `regionfailover.io/policy-uid=${policyUid}`,
      }),
    );
  }

  /** Leases with this label in any namespace (the operator's leader Lease, wherever it runs, however named). */
  leasesLabelled(selector: string): Promise<List<Lease>> {
    return this.call(() => this.client.list<Lease>(leaseType, undefined, { labelSelector: selector }));
  }

  /** The API server's version (GET /version). */
  serverVersion(): Promise<{ gitVersion?: string }> {
    return this.call(() => this.client.raw<{ gitVersion?: string }>('/version'));
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
    return this.call(() =>
      this.client.mergePatch<T>(failoverPolicyType, namespace, name, patch, undefined, {
        fieldManager: FIELD_MANAGER,
        dryRun: opts.dryRun === true,
      }),
    );
  }

  /** Who the API server says the caller is (SelfSubjectReview), for the request's requestedBy. */
  async whoAmI(): Promise<string | undefined> {
    try {
      const review = await this.client.create<KubeObject & { status?: { userInfo?: { username?: string } } }>(
        selfSubjectReviewType,
        undefined,
        { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview', metadata: { name: '' } },
      );
      return review.status?.userInfo?.username;
    } catch {
      return this.kc.getCurrentUser()?.name;
    }
  }
}

export { failoverObservationType, failoverPolicyType, replicaClusterType };
