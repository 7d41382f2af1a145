/**
 * The chart's RBAC against a real API server: the ServiceAccounts, roles and bindings that helm
 * renders are installed as they are, and with each ServiceAccount's own token (minted through the
 * TokenRequest API, as a pod gets it) the API server is asked what it may do. Every rule of
 * operator/src/rbac.ts must be allowed; a list of things the operator and the observer must never
 * do must be denied. Then the real operator and observer processes run with those tokens and
 * must do their work without a single 403: that is what proves the roles suffice.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
import {
  failoverObservationType,
  failoverPolicyType,
  replicaClusterType,
} from '../../operator/src/controllers/resources.ts';
import { observerRules, operatorRules, type PolicyRule } from '../../operator/src/rbac.ts';
import { eventType } from '../../operator/src/runtime/events.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { leaseType } from '../../operator/src/runtime/leader-election.ts';
import { type Manifest, parseManifests, renderChart } from '../harness/chart-tools.ts';
import { mintServiceAccountToken } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { freePort } from '../harness/ports.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const release = `rbac${process.pid}`;
/** Where the chart is installed (the Lease lives here). */
const releaseNs = `rbac-release-${process.pid}`;
/** Where the policies live, and the one namespace whose Secrets the chart lets them read. */
const appNs = `rbac-apps-${process.pid}`;
/** A namespace the operator watches (all of them) but whose Secrets are none of its business. */
const otherNs = `rbac-other-${process.pid}`;
const OBSERVER = 'rbac-probe';

let admin: KubeConfig;
let manifests: Manifest[];
let dir: string;
const tokens: Record<'operator' | 'observer', string> = { operator: '', observer: '' };
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
  for (const name of [releaseNs, appNs, otherNs])
    await core.createNamespace({ body: { metadata: { name } } });
  manifests = parseManifests(
    await renderChart({
      release,
      namespace: releaseNs,
      values: {
        observer: { enabled: true, name: OBSERVER, region: 'rbac-region' },
        // Watching every namespace, reading Secrets only where the policies are.
        rbac: { secretNamespaces: [appNs] },
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
  namespaceOf: (group: string, resource: string) => string | undefined,
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
          namespace: namespaceOf(group, full),
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
  it('may do everything in operatorRules: Leases in its own namespace, the rest where policies live', async () => {
    const checks = expand(operatorRules, (group, resource) =>
      group === 'coordination.k8s.io' && resource === 'leases' ? releaseNs : appNs,
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
      { verb: 'get', group: 'coordination.k8s.io', resource: 'leases', namespace: appNs },
      { verb: 'update', group: 'coordination.k8s.io', resource: 'leases', namespace: 'kube-system' },
      { verb: 'delete', group: 'coordination.k8s.io', resource: 'leases', namespace: releaseNs },
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
      expand(observerRules, () => appNs),
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

/** A kubeconfig that authenticates as `token`, for a process started by the test. */
function kubeconfigFor(name: string, token: string): string {
  const cp = inject('controlPlane');
  const path = join(dir, `${name}.kubeconfig`);
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: shared, cluster: {server: "${cp.server}", certificate-authority: "${cp.caPath}"}}]`,
      `users: [{name: ${name}, user: {token: "${token}"}}]`,
      `contexts: [{name: shared, context: {cluster: shared, user: ${name}, namespace: ${appNs}}}]`,
      'current-context: shared',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}

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

/** Log lines that mention a refusal, to say in the failure what was refused. */
function forbiddenLines(p: OperatorProcess): string {
  const lines = p
    .logs()
    .split('\n')
    .filter((l) => /forbidden|403/i.test(l))
    .slice(0, 5);
  return `${p.name} was refused by the API server; add the missing rule to operator/src/rbac.ts and run make generate:\n${lines.join('\n')}`;
}
