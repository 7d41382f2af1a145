/**
 * The chart's RBAC against a real API server: the ServiceAccounts, roles and bindings that helm
 * renders are installed as they are, and with each ServiceAccount's own token (minted through the
 * TokenRequest API, as a pod gets it) the API server is asked what it may do. Every rule of
 * operator/src/rbac.ts must be allowed; a list of things the operator and the observer must never
 * do must be denied. Then the real operator, observer and database agent processes run with those
 * tokens and must do their work without a single 403: that is what proves the roles suffice. The
 * agent runs as the sidecar example (deploy/kubernetes) binds it: its own ServiceAccount, bound to
 * the chart's agent role in one namespace.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AuthorizationV1Api,
  CoreV1Api,
  type KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { configSchema } from '../../operator/src/config.ts';
import {
  failoverObservationType,
  failoverPolicyType,
  replicaClusterType,
} from '../../operator/src/controllers/resources.ts';
import { agentRules, observerRules, operatorRules, type PolicyRule } from '../../operator/src/rbac.ts';
import { eventType } from '../../operator/src/runtime/events.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { leaseType } from '../../operator/src/runtime/leader-election.ts';
import { kubeconform, type Manifest, parseManifests, renderChart, repoRoot } from '../harness/chart-tools.ts';
import { mintServiceAccountToken } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { freePort } from '../harness/ports.ts';
import { postgresBinDir } from '../harness/postgres.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig, sharedKubeconfigFile } from './shared-control-plane.ts';

const release = `rbac${process.pid}`;
/** Where the chart is installed (the Lease lives here). */
const releaseNs = `rbac-release-${process.pid}`;
/** Where the policies live, and the one namespace whose Secrets the chart lets them read. */
const appNs = `rbac-apps-${process.pid}`;
/** A namespace the operator watches (all of them) but whose Secrets are none of its business. */
const otherNs = `rbac-other-${process.pid}`;
const OBSERVER = 'rbac-probe';
/** Where the database agents' ReplicaClusters live: the sidecar example's namespace. */
const agentNs = `rbac-agents-${process.pid}`;
const SIDECAR_EXAMPLE = join(repoRoot, 'deploy', 'kubernetes', 'agent-sidecar-example.yaml');

let admin: KubeConfig;
let manifests: Manifest[];
let dir: string;
const tokens: Record<'operator' | 'observer' | 'agent' | 'sidecar', string> = {
  operator: '',
  observer: '',
  agent: '',
  sidecar: '',
};
/** The sidecar example's ServiceAccount, RoleBinding and StatefulSet, moved into agentNs. */
let sidecar: Manifest[];
const processes: OperatorProcess[] = [];

const deployment = (component: string) =>
  manifests.find((m) => m.kind === 'Deployment' && m.metadata.name.endsWith(`-${component}`)) as
    | (Manifest & {
        spec: { template: { spec: { serviceAccountName: string; containers: { args: string[] }[] } } };
      })
    | undefined;
const serviceAccountOf = (component: string) =>
  deployment(component)?.spec.template.spec.serviceAccountName ?? '';
const argsOf = (component: string) => deployment(component)?.spec.template.spec.containers[0]?.args ?? [];

beforeAll(async () => {
  admin = sharedKubeConfig();
  dir = mkdtempSync(join(tmpdir(), 'failover-rbac-'));
  await installCrds(admin);
  const core = admin.makeApiClient(CoreV1Api);
  for (const name of [releaseNs, appNs, otherNs, agentNs])
    await core.createNamespace({ body: { metadata: { name } } });
  manifests = parseManifests(
    await renderChart({
      release,
      namespace: releaseNs,
      values: {
        observer: { enabled: true, name: OBSERVER, region: 'rbac-region' },
        // Watching every namespace, reading Secrets only where the policies are; database agents.
        rbac: { secretNamespaces: [appNs], agentAccess: true },
      },
    }),
  );
  // Exactly what helm would install for identities and permissions, applied as it is.
  const objects = KubernetesObjectApi.makeApiClient(admin);
  const rbacKinds = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];
  for (const m of manifests.filter((x) => rbacKinds.includes(x.kind))) {
    await objects.patch(m, undefined, undefined, 'failover-tests', true, PatchStrategy.ServerSideApply);
  }
  tokens.operator = await mintServiceAccountToken(admin, releaseNs, serviceAccountOf('operator'));
  tokens.observer = await mintServiceAccountToken(admin, releaseNs, serviceAccountOf('observer'));
  const agentAccount = manifests.find(
    (m) => m.kind === 'ServiceAccount' && m.metadata.labels?.['app.kubernetes.io/component'] === 'agent',
  );
  tokens.agent = await mintServiceAccountToken(admin, releaseNs, agentAccount?.metadata.name ?? '');
  // The example's identity and binding, as a person would apply them after `helm install`
  // (the role's name is the release's).
  const agentRole = manifests.find((m) => m.kind === 'ClusterRole' && m.metadata.name.endsWith('-agent'));
  sidecar = parseManifests(
    readFileSync(SIDECAR_EXAMPLE, 'utf8')
      .replaceAll('namespace: databases', `namespace: ${agentNs}`)
      .replaceAll('name: failover-operator-agent', `name: ${agentRole?.metadata.name}`),
  );
  for (const m of sidecar.filter((x) => rbacKinds.includes(x.kind)))
    await objects.patch(m, undefined, undefined, 'failover-tests', true, PatchStrategy.ServerSideApply);
  const sidecarAccount = sidecar.find((m) => m.kind === 'ServiceAccount')?.metadata.name ?? '';
  tokens.sidecar = await mintServiceAccountToken(admin, agentNs, sidecarAccount);
});

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop()));
  // Cluster-wide objects would outlive this file in the shared control plane; namespaces stay
  // (no controller would finish deleting them).
  const client = new KubeClient(admin);
  for (const m of manifests?.filter((x) => x.kind === 'ClusterRole' || x.kind === 'ClusterRoleBinding') ??
    []) {
    const plural = m.kind === 'ClusterRole' ? 'clusterroles' : 'clusterrolebindings';
    await client.delete(
      { group: 'rbac.authorization.k8s.io', version: 'v1', plural, kind: m.kind },
      undefined,
      m.metadata.name,
    );
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Check {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  /** Undefined: across all namespaces (or a cluster-scoped resource). */
  namespace?: string;
}

const describeCheck = (c: Check) =>
  `${c.verb} ${c.resource}${c.subresource ? `/${c.subresource}` : ''}${c.group ? `.${c.group}` : ''} ${c.namespace ? `in ${c.namespace}` : 'cluster-wide'}`;

/** Asks the API server, as the holder of `token`, whether it may do `check`. */
async function allowed(token: string, check: Check): Promise<boolean> {
  const api = sharedKubeConfig(token, 'sa').makeApiClient(AuthorizationV1Api);
  const review = await api.createSelfSubjectAccessReview({
    body: {
      spec: {
        resourceAttributes: {
          verb: check.verb,
          group: check.group,
          resource: check.resource,
          ...(check.subresource ? { subresource: check.subresource } : {}),
          ...(check.namespace ? { namespace: check.namespace } : {}),
        },
      },
    },
  });
  return review.status?.allowed === true;
}

/** Every permission of `rules`, where the component needs it. */
function expand(
  rules: PolicyRule[],
  namespaceOf: (group: string, resource: string, rule: PolicyRule) => string | undefined,
): Check[] {
  return rules.flatMap((r) =>
    r.apiGroups.flatMap((group) =>
      r.resources.flatMap((full) => {
        const [resource = full, subresource] = full.split('/');
        return r.verbs.map((verb) => ({
          verb,
          group,
          resource,
          ...(subresource ? { subresource } : {}),
          namespace: namespaceOf(group, full, r),
        }));
      }),
    ),
  );
}

async function verdicts(token: string, checks: Check[]): Promise<string[]> {
  return Promise.all(
    checks.map(async (c) => `${(await allowed(token, c)) ? 'allowed' : 'denied'}: ${describeCheck(c)}`),
  );
}

const G = 'regionfailover.io';

describe('the operator ServiceAccount', () => {
  it('may do everything in operatorRules: its Lease in its own namespace, the rest where policies live', async () => {
    // The chart's defaults: the opt-in rules (`when`) are not granted.
    const checks = expand(
      operatorRules.filter((r) => !r.when),
      (group, resource, rule) =>
        (group === 'coordination.k8s.io' && resource === 'leases' && rule.scope !== 'policies') ||
        rule.scope === 'release'
          ? releaseNs
          : appNs,
    );
    // A ClusterRole by default: list and watch across every namespace too.
    checks.push(
      { verb: 'list', group: G, resource: 'failoverpolicies' },
      { verb: 'watch', group: G, resource: 'replicaclusters' },
    );
    const result = await verdicts(tokens.operator, checks);
    expect(result.filter((r) => !r.startsWith('allowed'))).toEqual([]);
  });

  it('may not do what it never needs', async () => {
    const forbidden: Check[] = [
      // Spec belongs to people: the operator writes status only.
      { verb: 'patch', group: G, resource: 'failoverpolicies', namespace: appNs },
      { verb: 'patch', group: G, resource: 'replicaclusters', namespace: appNs },
      { verb: 'update', group: G, resource: 'failoverpolicies', subresource: 'status', namespace: appNs },
      { verb: 'delete', group: G, resource: 'failoverpolicies', namespace: appNs },
      { verb: 'create', group: G, resource: 'failoverpolicies', namespace: appNs },
      { verb: 'update', group: G, resource: 'failoverpolicies', namespace: appNs },
      { verb: 'delete', group: G, resource: 'replicaclusters', namespace: appNs },
      { verb: 'create', group: G, resource: 'failoverobservations', namespace: appNs },
      { verb: 'patch', group: G, resource: 'failoverobservations', namespace: appNs },
      { verb: 'list', group: '', resource: 'secrets', namespace: appNs },
      { verb: 'watch', group: '', resource: 'secrets', namespace: appNs },
      { verb: 'list', group: '', resource: 'secrets' },
      // rbac.secretNamespaces: no Secret outside the policies' namespace.
      { verb: 'get', group: '', resource: 'secrets', namespace: otherNs },
      { verb: 'get', group: '', resource: 'secrets', namespace: releaseNs },
      { verb: 'get', group: '', resource: 'secrets' },
      { verb: 'create', group: '', resource: 'secrets', namespace: appNs },
      { verb: 'get', group: '', resource: 'configmaps', namespace: appNs },
      { verb: 'create', group: '', resource: 'pods', namespace: appNs },
      { verb: 'create', group: '', resource: 'pods', subresource: 'exec', namespace: appNs },
      { verb: 'create', group: '', resource: 'serviceaccounts', subresource: 'token', namespace: releaseNs },
      { verb: 'delete', group: 'events.k8s.io', resource: 'events', namespace: appNs },
      // The policies' primary Leases are the agents' to write; the operator only reads them.
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: appNs },
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system' },
      // Sharding deletes dead replicas' member Leases, in the release namespace only.
      { verb: 'delete', group: 'coordination.k8s.io', resource: 'leases', namespace: appNs },
      { verb: 'create', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
      { verb: 'update', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' },
      { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
      { verb: 'bind', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' },
      { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'roles', namespace: appNs },
      { verb: 'impersonate', group: '', resource: 'users' },
      { verb: 'patch', group: '', resource: 'nodes' },
    ];
    const result = await verdicts(tokens.operator, forbidden);
    expect(result.filter((r) => !r.startsWith('denied'))).toEqual([]);
  });
});

describe('the observer ServiceAccount', () => {
  it('may do everything in observerRules where policies live', async () => {
    const result = await verdicts(
      tokens.observer,
      expand(
        observerRules.filter((r) => !r.when),
        () => appNs,
      ),
    );
    expect(result.filter((r) => !r.startsWith('allowed'))).toEqual([]);
  });

  it('may publish observations but never change a policy, a status, or a Lease', async () => {
    const forbidden: Check[] = [
      { verb: 'patch', group: G, resource: 'failoverpolicies', namespace: appNs },
      { verb: 'patch', group: G, resource: 'replicaclusters', namespace: appNs },
      { verb: 'patch', group: G, resource: 'failoverpolicies', subresource: 'status', namespace: appNs },
      { verb: 'patch', group: G, resource: 'replicaclusters', subresource: 'status', namespace: appNs },
      { verb: 'delete', group: G, resource: 'failoverobservations', namespace: appNs },
      { verb: 'list', group: '', resource: 'secrets', namespace: appNs },
      { verb: 'get', group: '', resource: 'secrets', namespace: otherNs },
      { verb: 'create', group: 'coordination.k8s.io', resource: 'leases', namespace: releaseNs },
      { verb: 'create', group: 'events.k8s.io', resource: 'events', namespace: appNs },
      { verb: 'create', group: '', resource: 'pods', namespace: appNs },
    ];
    const result = await verdicts(tokens.observer, forbidden);
    expect(result.filter((r) => !r.startsWith('denied'))).toEqual([]);
  });
});

describe('the agent ServiceAccount', () => {
  it('may do everything in agentRules: the chart binds it where policies live, the sidecar example in its namespace', async () => {
    const chart = await verdicts(
      tokens.agent,
      expand(agentRules, () => appNs),
    );
    expect(chart.filter((r) => !r.startsWith('allowed'))).toEqual([]);
    const example = await verdicts(
      tokens.sidecar,
      expand(agentRules, () => agentNs),
    );
    expect(example.filter((r) => !r.startsWith('allowed'))).toEqual([]);
  });

  it('may write its status report and nothing else: no spec, no policy status, no Secret, no Event', async () => {
    const forbidden = (namespace: string): Check[] => [
      // A spec is people's; a policy's status is the operator's.
      { verb: 'patch', group: G, resource: 'failoverpolicies', namespace },
      { verb: 'update', group: G, resource: 'failoverpolicies', namespace },
      { verb: 'patch', group: G, resource: 'failoverpolicies', subresource: 'status', namespace },
      { verb: 'update', group: G, resource: 'failoverpolicies', subresource: 'status', namespace },
      { verb: 'patch', group: G, resource: 'replicaclusters', namespace },
      { verb: 'update', group: G, resource: 'replicaclusters', namespace },
      { verb: 'update', group: G, resource: 'replicaclusters', subresource: 'status', namespace },
      { verb: 'create', group: G, resource: 'replicaclusters', namespace },
      { verb: 'delete', group: G, resource: 'replicaclusters', namespace },
      { verb: 'delete', group: G, resource: 'failoverpolicies', namespace },
      // It polls the two objects it needs: no list of clusters, no watch.
      { verb: 'list', group: G, resource: 'replicaclusters', namespace },
      { verb: 'watch', group: G, resource: 'failoverpolicies', namespace },
      { verb: 'create', group: G, resource: 'failoverobservations', namespace },
      { verb: 'watch', group: G, resource: 'failoverobservations', namespace },
      // Its password is a local file: no Secret at all.
      { verb: 'get', group: '', resource: 'secrets', namespace },
      { verb: 'list', group: '', resource: 'secrets', namespace },
      { verb: 'create', group: 'events.k8s.io', resource: 'events', namespace },
      // The primary Lease it renews, never removed.
      { verb: 'delete', group: 'coordination.k8s.io', resource: 'leases', namespace },
      { verb: 'get', group: '', resource: 'pods', namespace },
      { verb: 'create', group: '', resource: 'pods', subresource: 'exec', namespace },
      { verb: 'create', group: '', resource: 'serviceaccounts', subresource: 'token', namespace },
    ];
    const chart = await verdicts(tokens.agent, forbidden(appNs));
    expect(chart.filter((r) => !r.startsWith('denied'))).toEqual([]);
    // The sidecar's binding is a RoleBinding: nothing outside its own namespace, not even reads.
    const example = await verdicts(tokens.sidecar, [
      ...forbidden(agentNs),
      ...expand(agentRules, () => appNs),
      { verb: 'list', group: G, resource: 'failoverpolicies' },
    ]);
    expect(example.filter((r) => !r.startsWith('denied'))).toEqual([]);
  });
});

describe('the sidecar example', () => {
  it('is valid against the API server schemas, and runs as the database user beside its server', async () => {
    const result = await kubeconform([
      {
        name: 'deploy/kubernetes/agent-sidecar-example.yaml',
        content: readFileSync(SIDECAR_EXAMPLE, 'utf8'),
      },
    ]);
    expect(result.resources.filter((r) => r.status !== 'statusValid')).toEqual([]);
    expect(result.resources.map((r) => r.kind).sort()).toEqual([
      'RoleBinding',
      'ServiceAccount',
      'StatefulSet',
    ]);
    type Pod = {
      serviceAccountName: string;
      shareProcessNamespace: boolean;
      securityContext: { runAsUser: number; runAsNonRoot: boolean };
      containers: { name: string; args?: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
    };
    const set = sidecar.find((m) => m.kind === 'StatefulSet') as Manifest & {
      spec: { template: { spec: Pod } };
    };
    const pod = set.spec.template.spec;
    expect(pod.serviceAccountName).toBe(sidecar.find((m) => m.kind === 'ServiceAccount')?.metadata.name);
    // pg_ctl finds and signals the server by its pid: one process namespace for the pod.
    expect(pod.shareProcessNamespace).toBe(true);
    expect(pod.securityContext).toMatchObject({ runAsUser: 999, runAsNonRoot: true });
    const mounts = (name: string) =>
      pod.containers.find((c) => c.name === name)?.volumeMounts.map((v) => `${v.name}:${v.mountPath}`) ?? [];
    for (const shared of ['data:/var/lib/postgresql/data', 'sockets:/var/run/postgresql']) {
      expect(mounts('postgres')).toContain(shared);
      expect(mounts('agent')).toContain(shared);
    }
    const known = new Set(
      Object.keys(configSchema.shape).map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`),
    );
    const args = pod.containers.find((c) => c.name === 'agent')?.args ?? [];
    expect(args).toContain('--mode=agent');
    for (const arg of args) expect(known, arg).toContain(arg.split('=')[0]);
    // The data directory below the mount point: a re-clone renames it beside itself.
    expect(args).toContain('--data-dir=/var/lib/postgresql/data/pgdata');
  });
});

/** A kubeconfig that authenticates as `token`, for a process started by the test. */
const kubeconfigFor = (name: string, token: string): string =>
  sharedKubeconfigFile(join(dir, `${name}.kubeconfig`), name, token, { namespace: appNs });

/** The chart's own flags, bound to this test: its namespace, and a loopback port from the harness. */
function chartArgs(component: string): string[] {
  return [
    ...argsOf(component)
      .filter((a) => !a.startsWith('--http-address='))
      .map((a) => a.replace('$(POD_NAMESPACE)', releaseNs)),
    // The chart watches every namespace; here only this test's, so other tests' objects are left alone.
    `--namespace=${appNs}`,
  ];
}

describe('with these tokens, the real processes', () => {
  it('operator and observer do their work without a single 403', async () => {
    const client = new KubeClient(admin);
    const closedPort = await freePort();
    await client.create({ group: '', version: 'v1', plural: 'secrets', kind: 'Secret' }, appNs, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'pg', namespace: appNs },
      stringData: { username: 'failover', password: 'x' },
    } as KubeObject);
    for (const [name, region] of [
      ['db-a', 'region-a'],
      ['db-b', 'region-b'],
    ] as const) {
      await client.create(replicaClusterType, appNs, {
        apiVersion: 'regionfailover.io/v1alpha1',
        kind: 'ReplicaCluster',
        metadata: { name, namespace: appNs },
        spec: {
          region,
          provider: { type: 'SelfManaged' },
          // Nothing listens there: probes fail fast, which is all this test needs from a database.
          connection: {
            host: '127.0.0.1',
            port: closedPort,
            sslMode: 'disable',
            credentialsSecretRef: { name: 'pg' },
          },
          dnsTarget: '127.0.0.1',
        },
      });
    }
    await client.create(failoverPolicyType, appNs, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name: 'orders', namespace: appNs },
      spec: {
        primary: 'db-a',
        standbys: ['db-b'],
        dns: {
          provider: {
            type: 'RFC2136',
            rfc2136: {
              server: '127.0.0.1:53',
              tsig: { keyName: 'k', secretRef: { name: 'pg', key: 'password' } },
            },
          },
          zone: 'example.com',
          name: 'db.example.com',
        },
        detection: { probeIntervalSeconds: 2, quorum: 1 },
        // Only requests promote: this test is about permissions, not failover.
        promotion: { mode: 'Manual' },
      },
    });

    const identity = `${release}-operator-0`;
    const operator = await OperatorProcess.start({
      name: identity,
      kubeconfig: kubeconfigFor('operator', tokens.operator),
      dir,
      args: chartArgs('operator'),
      env: { POD_NAMESPACE: releaseNs, POD_NAME: identity },
    });
    processes.push(operator);
    const observer = await OperatorProcess.start({
      name: `${release}-observer`,
      kubeconfig: kubeconfigFor('observer', tokens.observer),
      dir,
      args: chartArgs('observer'),
      env: { POD_NAMESPACE: releaseNs },
    });
    processes.push(observer);

    const lease = argsOf('operator')
      .find((a) => a.startsWith('--leader-election-id='))
      ?.split('=')[1] as string;
    await waitFor(
      async () =>
        (
          (await client.find<KubeObject>(leaseType, releaseNs, lease))?.spec as
            | { holderIdentity?: string }
            | undefined
        )?.holderIdentity === identity,
      { description: `the operator to hold the Lease ${releaseNs}/${lease}` },
    );
    const reconciled = (o: KubeObject) =>
      (o.status as { observedGeneration?: number } | undefined)?.observedGeneration === o.metadata.generation;
    await waitFor(async () => reconciled(await client.get(failoverPolicyType, appNs, 'orders')), {
      description: 'the policy to be reconciled (status.observedGeneration)',
    });
    for (const name of ['db-a', 'db-b']) {
      await waitFor(async () => reconciled(await client.get(replicaClusterType, appNs, name)), {
        description: `ReplicaCluster ${name} to be probed and its status written`,
      });
    }
    await waitFor(
      async () =>
        (await client.list(eventType, appNs)).items.some(
          (e) => (e as { reportingController?: string }).reportingController === 'regionfailover.io/operator',
        ),
      { description: 'an Event from the operator' },
    );
    await waitFor(
      async () =>
        (await client.list(failoverObservationType, appNs)).items.some(
          (o) => (o.spec as { observer?: string }).observer === OBSERVER,
        ),
      { description: `a FailoverObservation published by observer ${OBSERVER}` },
    );
    const denied = async (p: OperatorProcess) => p.metric('rest_client_requests_total', { code: '403' });
    expect(await denied(operator), forbiddenLines(operator)).toBe(0);
    expect(await denied(observer), forbiddenLines(observer)).toBe(0);
    // Ready means every informer listed and watches: nothing it reads is refused either.
    await waitFor(() => operator.ready(), {
      description: 'the operator to be ready (every informer synced)',
    });
    await waitFor(() => observer.ready(), { description: 'the observer to be ready' });
  });
});

describe('with the sidecar example token, the real database agent', () => {
  it('reads its policy and clusters and reports in status.agent without a single 403', async () => {
    const client = new KubeClient(admin);
    const closedPort = await freePort();
    for (const [name, region] of [
      ['pg-a', 'region-a'],
      ['pg-b', 'region-b'],
    ] as const) {
      await client.create(replicaClusterType, agentNs, {
        apiVersion: 'regionfailover.io/v1alpha1',
        kind: 'ReplicaCluster',
        metadata: { name, namespace: agentNs },
        spec: {
          region,
          provider: { type: 'SelfManaged' },
          connection: {
            host: '127.0.0.1',
            port: closedPort,
            sslMode: 'disable',
            credentialsSecretRef: { name: 'pg' },
          },
          dnsTarget: '127.0.0.1',
        },
      });
    }
    await client.create(failoverPolicyType, agentNs, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name: 'orders', namespace: agentNs },
      spec: {
        primary: 'pg-a',
        standbys: ['pg-b'],
        dns: {
          provider: {
            type: 'RFC2136',
            rfc2136: { server: '127.0.0.1:53', tsig: { keyName: 'k', secretRef: { name: 'pg', key: 'k' } } },
          },
          zone: 'example.com',
          name: 'db.example.com',
        },
      },
    });
    // No operator watches this namespace: the status says pg-b took over, so the agent beside
    // pg-a (a former primary) compares it with pg-b, reading pg-b's ReplicaCluster to reach it.
    await client.mergePatch(
      failoverPolicyType,
      agentNs,
      'orders',
      { status: { activePrimary: 'pg-b', epoch: 1 } },
      'status',
    );

    // A stopped server's data directory, owned by the database's user as the agent runs.
    const home = mkdtempSync(join(tmpdir(), 'failover-rbac-agent-'));
    const asServer = process.getuid?.() === 0;
    const give = (path: string) => {
      if (asServer) execFileSync('chown', ['-R', 'postgres:postgres', path]);
    };
    give(home);
    const dataDir = join(home, 'pgdata');
    const [initdb = '', ...initArgs] = [
      ...(asServer ? ['runuser', '-u', 'postgres', '--'] : []),
      join(postgresBinDir(), 'initdb'),
      '-D',
      dataDir,
      '--no-sync',
      '-A',
      'trust',
    ];
    execFileSync(initdb, initArgs, { stdio: 'ignore' });
    const cp = inject('controlPlane');
    const kubeconfig = join(home, 'agent.kubeconfig');
    // The CA inline: the control plane's files are not the database user's to read.
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: shared, cluster: {server: "${cp.server}", certificate-authority-data: "${readFileSync(cp.caPath).toString('base64')}"}}]`,
        `users: [{name: agent, user: {token: "${tokens.sidecar}"}}]`,
        'contexts: [{name: shared, context: {cluster: shared, user: agent}}]',
        'current-context: shared',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const password = join(home, 'replication.password');
    writeFileSync(password, 'unused\n', { mode: 0o600 });
    give(home);
    const agent = await OperatorProcess.start({
      name: `${release}-agent`,
      kubeconfig,
      dir,
      ...(asServer ? { runAs: 'postgres' } : {}),
      args: [
        '--mode=agent',
        `--namespace=${agentNs}`,
        '--cluster=pg-a',
        `--data-dir=${dataDir}`,
        `--pg-bin=${postgresBinDir()}`,
        `--pg-socket-dir=${home}`,
        `--replication-password-file=${password}`,
      ],
    });
    try {
      const report = await waitFor(
        async () => {
          const st = (await client.get<KubeObject>(replicaClusterType, agentNs, 'pg-a')).status as
            | { agent?: { server?: string; systemIdentifier?: string } }
            | undefined;
          return st?.agent?.systemIdentifier ? st.agent : undefined;
        },
        { description: 'the agent to report in status.agent' },
      );
      expect(report.server).toBe('Stopped');
      // It found the policy, read pg-b's ReplicaCluster and tried the address there.
      const note = await waitFor(
        () =>
          agent
            .logEntries()
            .map((e) => e.note)
            .find((n): n is string => typeof n === 'string' && n.startsWith('cannot reach the primary pg-b')),
        { description: 'the agent to compare pg-a with pg-b' },
      );
      expect(note).not.toMatch(/forbidden/i);
      expect(await agent.metric('rest_client_requests_total', { method: 'PATCH' })).toBeGreaterThan(0);
      expect(await agent.metric('rest_client_requests_total', { code: '403' }), forbiddenLines(agent)).toBe(
        0,
      );
      await waitFor(() => agent.ready(), { description: 'the agent to be ready (a report written)' });
      // Its status write touched status.agent and nothing else of the ReplicaCluster.
      const pgA = await client.get<KubeObject>(replicaClusterType, agentNs, 'pg-a');
      expect(Object.keys(pgA.status ?? {})).toEqual(['agent']);
    } finally {
      await agent.stop();
      rmSync(home, { recursive: true, force: true });
    }
  });
});

/** Log lines that mention a refusal, to say in the failure what was refused. */
function forbiddenLines(p: OperatorProcess): string {
  const lines = p
    .logs()
    .split('\n')
    .filter((l) => /forbidden|403/i.test(l))
    .slice(0, 5);
  return `${p.name} was refused by the API server; add the missing rule to operator/src/rbac.ts and run make generate:\n${lines.join('\n')}`;
}
