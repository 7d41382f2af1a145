/**
 * The shared control plane behaves like a real Kubernetes API: objects can be created, read,
 * patched and watched with @kubernetes/client-node, and RBAC refuses what it does not grant.
 */
import { randomBytes } from 'node:crypto';
import {
  CoreV1Api,
  type KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  type V1ConfigMap,
  Watch,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { mintServiceAccountToken } from '../harness/control-plane.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const namespace = `api-${randomBytes(3).toString('hex')}`;
let kc: KubeConfig;
let core: CoreV1Api;

beforeAll(async () => {
  kc = sharedKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
});

describe('objects', () => {
  it('are created, read and merge-patched', async () => {
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'settings' }, data: { region: 'ams3' } },
    });
    const read = await core.readNamespacedConfigMap({ namespace, name: 'settings' });
    expect(read.data).toEqual({ region: 'ams3' });

    const patched = await core.patchNamespacedConfigMap(
      { namespace, name: 'settings', body: { data: { standby: 'nyc3' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(patched.data).toEqual({ region: 'ams3', standby: 'nyc3' });
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(Number(read.metadata?.resourceVersion));
  });

  it('are watched: ADDED, MODIFIED and DELETED arrive in order', async () => {
    const seen: string[] = [];
    const list = await core.listNamespacedConfigMap({ namespace });
    const controller = await new Watch(kc).watch(
      `/api/v1/namespaces/${namespace}/configmaps`,
      { resourceVersion: list.metadata?.resourceVersion, fieldSelector: 'metadata.name=watched' },
      (type, obj: V1ConfigMap) => seen.push(`${type}:${obj.data?.step ?? ''}`),
      () => undefined,
    );
    try {
      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'watched' }, data: { step: '1' } },
      });
      await core.patchNamespacedConfigMap(
        { namespace, name: 'watched', body: { data: { step: '2' } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      await core.deleteNamespacedConfigMap({ namespace, name: 'watched' });
      await waitFor(() => seen.length >= 3, { description: 'three watch events' });
      expect(seen).toEqual(['ADDED:1', 'MODIFIED:2', 'DELETED:2']);
    } finally {
      controller.abort();
    }
  });
});

describe('RBAC', () => {
  it('refuses a non-admin token what its Role does not grant', async () => {
    const token = await mintServiceAccountToken(kc, namespace, 'reader');
    const asReader = sharedKubeConfig(token, 'reader').makeApiClient(CoreV1Api);

    // No RoleBinding yet: even a read is forbidden.
    await expect(asReader.readNamespacedConfigMap({ namespace, name: 'settings' })).rejects.toMatchObject({
      code: 403,
    });

    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'configmap-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
      },
    });

    // RBAC takes effect through the authorizer's cache; wait for it rather than for time.
    const granted = await waitFor(() => asReader.readNamespacedConfigMap({ namespace, name: 'settings' }), {
      description: 'the RoleBinding to take effect',
    });
    expect(granted.data?.region).toBe('ams3');

    // What the Role does not name stays forbidden.
    await expect(asReader.listNamespacedConfigMap({ namespace })).rejects.toMatchObject({ code: 403 });
    await expect(asReader.deleteNamespacedConfigMap({ namespace, name: 'settings' })).rejects.toMatchObject({
      code: 403,
    });
    await expect(asReader.listNamespacedSecret({ namespace })).rejects.toMatchObject({ code: 403 });
  });

  it('refuses an unknown token outright', async () => {
    const stranger = sharedKubeConfig('not-a-real-token', 'stranger').makeApiClient(CoreV1Api);
    await expect(stranger.listNamespace()).rejects.toMatchObject({ code: 401 });
  });
});
