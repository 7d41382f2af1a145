import { describe, expect, it } from 'vitest';
import type { KubeClient, KubeObject } from '../runtime/kube-client.ts';
import { SecretReader } from './credentials.ts';

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
