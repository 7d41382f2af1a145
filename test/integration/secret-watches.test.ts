/**
 * Secrets kept until they change (--watch-secrets), against the real API server: the reader asks
 * for a Secret once however often it is read while a metadata-only watch shows it unchanged, reads
 * it again once it is rotated, deleted or made; the chart's rules under rbac.watchSecrets are all
 * the watch needs; and where it may not list or watch Secrets it reads them again every TTL as
 * before, with no watch retrying against a 403.
 */
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretReader } from '../../operator/src/controllers/credentials.ts';
import { secretType } from '../../operator/src/controllers/resources.ts';
import { SecretWatches } from '../../operator/src/controllers/secret-watches.ts';
import { KubeClient } from '../../operator/src/runtime/kube-client.ts';
import { silentLogger } from '../../operator/src/runtime/logger.ts';
import { parseManifests, renderChart } from '../harness/chart-tools.ts';
import { mintServiceAccountToken } from '../harness/control-plane.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const namespace = `secret-watch-${randomBytes(3).toString('hex')}`;
let kc: KubeConfig;
let core: CoreV1Api;
const watches: SecretWatches[] = [];

/** A client whose GETs of Secrets are counted. */
function countingClient(config: KubeConfig): { client: KubeClient; gets: () => number } {
  const client = new KubeClient(config);
  let gets = 0;
  const get = client.get.bind(client);
  client.get = ((...args: Parameters<KubeClient['get']>) => {
    if (args[0].plural === 'secrets') gets++;
    return get(...args);
  }) as KubeClient['get'];
  return { client, gets: () => gets };
}

/**
 * A kubeconfig for ServiceAccount `sa` of the test namespace, bound there to a Role of `rules`,
 * with a Secret of its name; RBAC takes effect later (through the authorizer's cache).
 */
async function accountWith(
  sa: string,
  rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[],
  password: string,
): Promise<KubeConfig> {
  const token = await mintServiceAccountToken(kc, namespace, sa);
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name: sa }, rules } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: sa },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace }],
    },
  });
  await core.createNamespacedSecret({ namespace, body: secretBody(sa, password) });
  return sharedKubeConfig(token, sa);
}

const secretBody = (name: string, password: string) => ({
  metadata: { name },
  stringData: { username: 'app', password },
});

beforeAll(async () => {
  kc = sharedKubeConfig();
  core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await core.createNamespacedSecret({ namespace, body: secretBody('pg', 'first') });
});

afterAll(async () => {
  await Promise.all(watches.map((w) => w.stop()));
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

describe('a Secret read through a watch of Secrets', () => {
  it('is read once while unchanged, and again once rotated, deleted or made', async () => {
    const { client, gets } = countingClient(kc);
    const changes = new SecretWatches({ client, log: silentLogger });
    watches.push(changes);
    // A TTL of 0: without the watch, every read would ask the API server.
    const reader = new SecretReader(client, 0, changes);
    expect((await reader.read(namespace, 'pg', 'password')).value).toBe('first');
    await waitFor(() => changes.versionOf(namespace, 'pg') !== undefined, {
      description: 'the namespace watch to sync',
    });
    // The first read came before the watch synced: it is kept now that the watch agrees.
    expect(reader.readCached(namespace, 'pg', 'password')?.value).toBe('first');
    const settled = gets();
    for (let i = 0; i < 50; i++) expect((await reader.read(namespace, 'pg', 'password')).value).toBe('first');
    expect(gets()).toBe(settled);

    await core.replaceNamespacedSecret({ namespace, name: 'pg', body: secretBody('pg', 'rotated') });
    await waitFor(() => reader.readCached(namespace, 'pg', 'password') === undefined, {
      description: 'the rotation to make the copy stale',
    });
    expect((await reader.read(namespace, 'pg', 'password')).value).toBe('rotated');
    expect(gets()).toBe(settled + 1);

    await core.deleteNamespacedSecret({ namespace, name: 'pg' });
    await waitFor(() => changes.versionOf(namespace, 'pg') === null, {
      description: 'the deletion to be seen',
    });
    await expect(reader.read(namespace, 'pg', 'password')).rejects.toThrow('does not exist');
    const afterDelete = gets();
    // Missing stays missing without reads while the watch shows nothing there.
    for (let i = 0; i < 20; i++) await expect(reader.read(namespace, 'pg', 'password')).rejects.toThrow();
    expect(gets()).toBe(afterDelete);

    await core.createNamespacedSecret({ namespace, body: secretBody('pg', 'remade') });
    const remade = await waitFor(
      async () => {
        const read = await reader.read(namespace, 'pg', 'password').catch(() => undefined);
        return read?.value === 'remade' ? read : undefined;
      },
      { description: 'the remade Secret to be read' },
    );
    expect(remade.value).toBe('remade');
  });

  it('is watched in a namespace with no Secret yet, and read once made', async () => {
    const empty = `${namespace}-empty`;
    await core.createNamespace({ body: { metadata: { name: empty } } });
    try {
      const { client, gets } = countingClient(kc);
      const changes = new SecretWatches({ client, log: silentLogger });
      watches.push(changes);
      const reader = new SecretReader(client, 0, changes);
      await expect(reader.read(empty, 'pg', 'password')).rejects.toThrow('does not exist');
      // An empty list comes as `items: null`: the watch still syncs, and says there is none.
      await waitFor(() => changes.versionOf(empty, 'pg') === null, {
        description: 'the empty namespace to sync',
      });
      const before = gets();
      for (let i = 0; i < 10; i++) await expect(reader.read(empty, 'pg', 'password')).rejects.toThrow();
      expect(gets()).toBe(before);
      await core.createNamespacedSecret({ namespace: empty, body: secretBody('pg', 'new') });
      await waitFor(
        async () => (await reader.read(empty, 'pg', 'password').catch(() => undefined))?.value === 'new',
        {
          description: 'the new Secret to be read',
        },
      );
    } finally {
      await core.deleteNamespace({ name: empty }).catch(() => undefined);
    }
  });

  it("is watched with exactly the chart's Secret rules under rbac.watchSecrets, scoped to one namespace", async () => {
    // The operator's Role that helm renders for rbac.secretNamespaces with rbac.watchSecrets,
    // bound here to a ServiceAccount of this test: what it grants must be all the watch needs.
    const manifests = parseManifests(
      await renderChart({ values: { rbac: { secretNamespaces: [namespace], watchSecrets: true } } }),
    );
    const role = manifests.find((m) => m.kind === 'Role' && m.metadata.name.endsWith('-operator-secrets'));
    const rules = (role?.rules ?? []) as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    expect(rules.flatMap((r) => r.verbs).sort()).toEqual(['get', 'list', 'watch']);
    const sa = 'chart-operator';
    const config = await accountWith(sa, rules, 'chart');
    const probe = new KubeClient(config);
    await waitFor(() => probe.list(secretType, namespace, { limit: 1 }, { metadataOnly: true }), {
      description: 'the Role to take effect',
    });
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
    const { client } = countingClient(config);
    const changes = new SecretWatches({ client, log });
    watches.push(changes);
    const reader = new SecretReader(client, 0, changes);
    expect((await reader.read(namespace, sa, 'password')).value).toBe('chart');
    await waitFor(() => changes.versionOf(namespace, sa), {
      description: 'the watch to sync with these rules',
    });
    expect(reader.readCached(namespace, sa, 'password')?.value).toBe('chart');
    expect(warnings).toEqual([]);
  });

  for (const verbs of [['get'], ['get', 'list']])
    it(`is read every TTL where the operator may only ${verbs.join(' and ')} Secrets, and the watch is not retried against the refusal`, async () => {
      const sa = `secret-${verbs.join('-')}`;
      const config = await accountWith(sa, [{ apiGroups: [''], resources: ['secrets'], verbs }], 'only-get');
      // RBAC takes effect through the authorizer's cache: wait for what the Role grants, so the
      // refusal met is the one meant (the list's, or with list granted, the watch's).
      const probe = new KubeClient(config);
      await waitFor(() => probe.get(secretType, namespace, sa), { description: 'get to be granted' });
      if (verbs.includes('list'))
        await waitFor(() => probe.list(secretType, namespace, { limit: 1 }, { metadataOnly: true }), {
          description: 'list to be granted',
        });
      const { client, gets } = countingClient(config);
      let lists = 0;
      let watchCalls = 0;
      const list = client.list.bind(client);
      client.list = ((...args: Parameters<KubeClient['list']>) => {
        lists++;
        return list(...args);
      }) as KubeClient['list'];
      const watch = client.watch.bind(client);
      client.watch = ((...args: Parameters<KubeClient['watch']>) => {
        watchCalls++;
        return watch(...args);
      }) as KubeClient['watch'];
      const warnings: string[] = [];
      const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
      const changes = new SecretWatches({ client, log });
      watches.push(changes);
      const reader = new SecretReader(client, 0, changes);
      expect((await reader.read(namespace, sa, 'password')).value).toBe('only-get');
      const refusal = (w: string) => w.includes('may not list and watch Secrets');
      await waitFor(
        () => {
          changes.versionOf(namespace, sa); // asking is what starts (and rechecks) the watch
          return warnings.some(refusal);
        },
        {
          description: 'the refusal to be logged',
        },
      );
      expect(watchCalls).toBe(verbs.includes('list') ? 1 : 0);
      // Two seconds of reads: each asks the API server (no watch vouches for a copy, and the TTL
      // is 0), and the refused watch is neither retried nor checked again.
      const [listsSoFar, watchesSoFar, before] = [lists, watchCalls, gets()];
      const until = Date.now() + 2_000;
      let reads = 0;
      for (; Date.now() < until; reads++) {
        expect((await reader.read(namespace, sa, 'password')).value).toBe('only-get');
        expect(changes.versionOf(namespace, sa)).toBeUndefined();
      }
      expect(gets()).toBe(before + reads);
      expect([lists, watchCalls]).toEqual([listsSoFar, watchesSoFar]);
      expect(warnings.filter(refusal).length).toBe(1);
    });
});
