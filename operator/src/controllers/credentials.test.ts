import { describe, expect, it } from 'vitest';
import { KubeApiError, type KubeClient, type KubeObject } from '../runtime/kube-client.ts';
import { SecretReader } from './credentials.ts';
import type { SecretChanges } from './secret-watches.ts';

/** A Secret store whose reads wait until the test lets them answer, counting each read. */
function slowSecrets() {
  const answers: Array<() => void> = [];
  let reads = 0;
  const secret = (version: string): KubeObject => ({
    metadata: { name: 'pg', namespace: 'db', resourceVersion: version },
    data: { password: Buffer.from(`secret-${version}`).toString('base64') },
  });
  const client = {
    get: () => {
      reads++;
      const version = String(reads);
      return new Promise<KubeObject>((resolve) => answers.push(() => resolve(secret(version))));
    },
  } as unknown as KubeClient;
  return {
    client,
    reads: () => reads,
    answerAll: () => {
      for (const answer of answers.splice(0)) answer();
    },
    /** The newest read answered first: an older read then comes back last. */
    answerNewestFirst: () => {
      for (const answer of answers.splice(0).reverse()) answer();
    },
  };
}

describe('SecretReader', () => {
  it('asks the API server once for a Secret many read while it has no fresh copy', async () => {
    const store = slowSecrets();
    const reader = new SecretReader(store.client, 60_000);
    const reads = Array.from({ length: 50 }, () => reader.read('db', 'pg', 'password'));
    expect(store.reads()).toBe(1);
    store.answerAll();
    const values = await Promise.all(reads);
    expect(new Set(values.map((r) => r.value))).toEqual(new Set(['secret-1']));
    // Cached now: answered without a read.
    expect(reader.readCached('db', 'pg', 'password')?.value).toBe('secret-1');
    expect(store.reads()).toBe(1);
  });

  it("keeps a Secret's data and version, not its annotations or managed fields", async () => {
    const data = { password: Buffer.from('pw').toString('base64') };
    const client = {
      get: async (): Promise<KubeObject> => ({
        metadata: {
          name: 'pg',
          namespace: 'db',
          resourceVersion: '7',
          annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ data }) },
          managedFields: [{ manager: 'kubectl', fieldsV1: { 'f:data': { 'f:password': {} } } }],
        },
        data,
      }),
    } as unknown as KubeClient;
    const reader = new SecretReader(client, 60_000);
    expect(await reader.read('db', 'pg', 'password')).toEqual({ value: 'pw', version: '7' });
    const cache = (reader as unknown as { cache: Map<string, { secret: KubeObject }> }).cache;
    expect(cache.get('db/pg')?.secret).toEqual({ metadata: { name: 'pg', resourceVersion: '7' }, data });
  });

  it('does not cache a read the Secret was forgotten during: the next read asks again', async () => {
    const store = slowSecrets();
    const reader = new SecretReader(store.client, 60_000);
    const before = reader.read('db', 'pg', 'password');
    reader.forget('db', 'pg'); // its credentials were refused meanwhile
    const after = reader.read('db', 'pg', 'password');
    expect(store.reads()).toBe(2);
    // The read from before the forget comes back last: its copy must not replace the newer one.
    store.answerNewestFirst();
    expect((await after).value).toBe('secret-2');
    expect((await before).value).toBe('secret-1');
    expect(reader.readCached('db', 'pg', 'password')?.value).toBe('secret-2');
  });

  it('lets the next read ask again after a failed one', async () => {
    let reads = 0;
    const client = {
      get: async () => {
        reads++;
        if (reads === 1) throw new Error('connection reset');
        return {
          metadata: { name: 'pg', resourceVersion: '7' },
          data: { k: Buffer.from('v').toString('base64') },
        };
      },
    } as unknown as KubeClient;
    const reader = new SecretReader(client, 60_000);
    await expect(reader.read('db', 'pg', 'k')).rejects.toThrow('connection reset');
    expect((await reader.read('db', 'pg', 'k')).value).toBe('v');
    expect(reads).toBe(2);
  });
});

/** A Secret store answering at once, with a version the test moves, and a watch the test steers. */
function watchedSecrets() {
  const world = { version: '5' as string | null, watchSays: '5' as string | null | undefined, reads: 0 };
  const client = {
    get: async () => {
      world.reads++;
      if (world.version === null) throw new KubeApiError(404, 'NotFound', 'secrets "pg" not found');
      return {
        metadata: { name: 'pg', namespace: 'db', resourceVersion: world.version },
        data: { password: Buffer.from(`secret-${world.version}`).toString('base64') },
      };
    },
  } as unknown as KubeClient;
  const asked: string[] = [];
  const changes: SecretChanges = {
    versionOf: (namespace, name) => {
      asked.push(`${namespace}/${name}`);
      return world.watchSays;
    },
    stop: async () => undefined,
  };
  return { world, client, changes, asked };
}

describe('SecretReader with a watch on Secrets', () => {
  it('keeps a copy past its TTL while the watch shows the Secret unchanged, and reads it again once it changes', async () => {
    const { world, client, changes } = watchedSecrets();
    const reader = new SecretReader(client, 0, changes); // every copy is past its TTL at once
    expect((await reader.read('db', 'pg', 'password')).value).toBe('secret-5');
    for (let i = 0; i < 10; i++) expect(reader.readCached('db', 'pg', 'password')?.value).toBe('secret-5');
    expect(world.reads).toBe(1);
    // Rotated: the watch shows a newer version before the next read.
    world.version = '9';
    world.watchSays = '9';
    expect(reader.readCached('db', 'pg', 'password')).toBeUndefined();
    expect((await reader.read('db', 'pg', 'password')).value).toBe('secret-9');
    expect(reader.readCached('db', 'pg', 'password')?.version).toBe('9');
    expect(world.reads).toBe(2);
  });

  it('keeps a read newer than the watch has delivered yet', async () => {
    const { world, client, changes } = watchedSecrets();
    world.version = '12';
    world.watchSays = '11';
    const reader = new SecretReader(client, 0, changes);
    await reader.read('db', 'pg', 'password');
    expect(reader.readCached('db', 'pg', 'password')?.value).toBe('secret-12');
    expect(world.reads).toBe(1);
  });

  it('keeps a missing Secret missing until the watch sees it made, and a deleted one is read again', async () => {
    const { world, client, changes } = watchedSecrets();
    world.version = null;
    world.watchSays = null;
    const reader = new SecretReader(client, 0, changes);
    await expect(reader.read('db', 'pg', 'password')).rejects.toThrow('does not exist');
    await expect(reader.read('db', 'pg', 'password')).rejects.toThrow('does not exist');
    expect(world.reads).toBe(1);
    world.version = '20';
    world.watchSays = '20';
    expect((await reader.read('db', 'pg', 'password')).value).toBe('secret-20');
    expect(world.reads).toBe(2);
    // Deleted: read again, and missing from then on.
    world.version = null;
    world.watchSays = null;
    await expect(reader.read('db', 'pg', 'password')).rejects.toThrow('does not exist');
    expect(world.reads).toBe(3);
  });

  it('falls back to its TTL while the watch cannot say (refused, not synced, failing)', async () => {
    const { world, client, changes, asked } = watchedSecrets();
    world.watchSays = undefined;
    const expired = new SecretReader(client, 0, changes);
    await expired.read('db', 'pg', 'password');
    expect(expired.readCached('db', 'pg', 'password')).toBeUndefined();
    await expired.read('db', 'pg', 'password');
    expect(world.reads).toBe(2);
    const fresh = new SecretReader(client, 60_000, changes);
    await fresh.read('db', 'pg', 'password');
    expect(fresh.readCached('db', 'pg', 'password')?.value).toBe('secret-5');
    expect(world.reads).toBe(3);
    // The first read asked the watch too: that is what starts a namespace's watch.
    expect(asked[0]).toBe('db/pg');
  });
});
