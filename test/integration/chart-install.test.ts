/**
 * `helm install`, `helm upgrade` and `helm uninstall` of the chart against the real API server:
 * every object the chart renders is accepted by kube-apiserver itself (its own validation, not a
 * schema copy), the notes render, an upgrade that changes the shape (one namespace instead of all)
 * goes through, and uninstall leaves no cluster-wide object behind. No kubelet runs here, so pods
 * are never started; the kind suite (test/e2e) covers that where Docker exists.
 */
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import { chartPath, helm } from '../harness/chart-tools.ts';
import { installCrds } from '../harness/crds.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const release = `install${process.pid}`;
const ns = `chart-install-${process.pid}`;

async function helmOk(args: string[]): Promise<string> {
  const res = await helm([...args, '--kubeconfig', inject('controlPlane').kubeconfigPath]);
  expect(res.code, `helm ${args.join(' ')}:\n${res.stderr}`).toBe(0);
  return res.stdout;
}

describe('helm against the real API server', () => {
  it('installs, upgrades to one watched namespace, and uninstalls without leaving cluster-wide objects', async () => {
    const admin = sharedKubeConfig();
    // Other test files may have installed the CRDs already; helm leaves existing CRDs alone.
    await installCrds(admin);
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: `${ns}-apps` } } });

    const installed = await helmOk([
      'install',
      release,
      chartPath,
      '--namespace',
      ns,
      '--create-namespace',
      '--set',
      'observer.enabled=true,observer.name=local,observer.region=local',
    ]);
    expect(installed).toContain('STATUS: deployed');
    expect(installed).toContain(`get lease ${release}-failover-operator-leader`);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    const clusterRoles = async () =>
      (await rbac.listClusterRole()).items
        .map((r) => r.metadata?.name ?? '')
        .filter((n) => n.startsWith(`${release}-`));
    expect((await clusterRoles()).sort()).toEqual(
      ['edit', 'observer', 'operator', 'view'].map((s) => `${release}-failover-operator-${s}`),
    );
    const manifest = await helmOk(['get', 'manifest', release, '--namespace', ns]);
    for (const kind of [
      'Deployment',
      'PodDisruptionBudget',
      'Service',
      'ServiceAccount',
      'Role',
      'RoleBinding',
    ])
      expect(manifest).toContain(`kind: ${kind}\n`);

    const upgraded = await helmOk([
      'upgrade',
      release,
      chartPath,
      '--namespace',
      ns,
      '--reuse-values',
      '--set',
      `watchNamespace=${ns}-apps,operator.replicas=3`,
    ]);
    expect(upgraded).toContain('STATUS: deployed');
    expect(upgraded).toContain(`watching namespace ${ns}-apps`);
    // The operator's ClusterRole became a Role in the watched namespace.
    expect(await clusterRoles()).not.toContain(`${release}-failover-operator-operator`);
    const roles = (await rbac.listNamespacedRole({ namespace: `${ns}-apps` })).items.map(
      (r) => r.metadata?.name,
    );
    expect(roles).toContain(`${release}-failover-operator-operator`);

    await helmOk(['uninstall', release, '--namespace', ns]);
    expect(await clusterRoles()).toEqual([]);
  });
});
