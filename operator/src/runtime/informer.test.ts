import { describe, expect, it } from 'vitest';
import { Informer, lean } from './informer.ts';
import { KubeApiError, type KubeClient, type KubeObject, type WatchEvent } from './kube-client.ts';
import { silentLogger } from './logger.ts';

const object = (generation: number, dnsTarget: string, resourceVersion: string): KubeObject =>
  JSON.parse(
    JSON.stringify({
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'ReplicaCluster',
      metadata: {
        name: 'x',
        namespace: 'ns',
        generation,
        resourceVersion,
        managedFields: [{ manager: 'kubectl', operation: 'Update' }],
      },
      spec: { region: 'a', connection: { host: 'h' }, dnsTarget },
      status: { role: 'Primary' },
    }),
  );

describe('lean', () => {
  it('drops managedFields and keeps the cached spec through a status write, even a frozen one', () => {
    const cached = lean(object(1, 't', '1'), undefined, 'ReplicaCluster');
    expect(cached.metadata).not.toHaveProperty('managedFields');
    Object.freeze(cached.spec); // as a parse that shares it leaves it
    const next = lean(object(1, 't', '2'), cached, 'ReplicaCluster');
    expect(next.spec).toBe(cached.spec);
    expect(next.metadata.resourceVersion).toBe('2');
    expect(next.metadata).not.toHaveProperty('managedFields');
  });

  it('takes the new spec when it differs, whatever the generations say', () => {
    const cached = lean(object(1, 't', '1'), undefined, 'ReplicaCluster');
    const sameGeneration = lean(object(1, 'u', '2'), cached, 'ReplicaCluster');
    expect(sameGeneration.spec).not.toBe(cached.spec);
    expect(sameGeneration.spec).toMatchObject({ dnsTarget: 'u' });
    const nextGeneration = lean(object(2, 't', '3'), cached, 'ReplicaCluster');
    expect(nextGeneration.spec).not.toBe(cached.spec);
  });
});

/** A client whose lists and watches the test answers, one call at a time. */
function scriptedClient() {
  const lists: { metadataOnly: boolean | undefined; answer: (rv: string, items: KubeObject[]) => void }[] =
    [];
  const watches: {
    metadataOnly: boolean | undefined;
    emit: (event: WatchEvent) => void;
    fail: (err: Error) => void;
    /** The API server accepts it (headers came). */
    open: () => void;
  }[] = [];
  const client = {
    list: (_t: unknown, _ns: unknown, _q: unknown, options: { metadataOnly?: boolean } = {}) =>
      new Promise((resolve) =>
        lists.push({
          metadataOnly: options.metadataOnly,
          answer: (resourceVersion, items) => resolve({ items, metadata: { resourceVersion } }),
        }),
      ),
    watch: (
      _t: unknown,
      _ns: unknown,
      _q: unknown,
      onEvent: (event: WatchEvent) => void,
      signal: AbortSignal,
      options: { metadataOnly?: boolean; onOpen?: () => void } = {},
    ) =>
      new Promise<void>((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(new Error('aborted')));
        watches.push({
          metadataOnly: options.metadataOnly,
          emit: onEvent,
          fail: reject,
          open: () => options.onOpen?.(),
        });
      }),
  } as unknown as KubeClient;
  return { client, lists, watches };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(check()).toBe(true);
};

describe('an informer of versions only', () => {
  const secretType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret' };
  const secret = (resourceVersion: string): KubeObject => ({
    metadata: {
      name: 'pg',
      namespace: 'db',
      uid: 'u1',
      resourceVersion,
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"password":"c2VjcmV0"}}' },
      labels: { a: 'b' },
    },
  });

  it('keeps names and versions alone, and says it is up to date only while its list and watch hold', async () => {
    const { client, lists, watches } = scriptedClient();
    const informer = new Informer<KubeObject>({
      client,
      type: secretType,
      namespace: 'db',
      versionsOnly: true,
      log: silentLogger,
      backoff: { baseMs: 5, maxMs: 5 },
    });
    expect(informer.upToDate).toBe(false);
    informer.start();
    try {
      await until(() => lists.length === 1);
      expect(lists[0]?.metadataOnly).toBe(true);
      lists[0]?.answer('10', [secret('7')]);
      await until(() => watches.length === 1);
      expect(watches[0]?.metadataOnly).toBe(true);
      expect(informer.upToDate).toBe(true);
      expect(informer.get('db/pg')).toEqual({
        metadata: { name: 'pg', namespace: 'db', uid: 'u1', resourceVersion: '7' },
      });
      watches[0]?.emit({ type: 'MODIFIED', object: secret('11') });
      expect(informer.get('db/pg')?.metadata.resourceVersion).toBe('11');

      // A failed watch: not up to date until the next is accepted (no event need come: a quiet
      // namespace may send none for minutes).
      watches[0]?.fail(new KubeApiError(500, 'InternalError', 'etcd away'));
      await until(() => !informer.upToDate);
      await until(() => watches.length === 2);
      expect(informer.upToDate).toBe(false);
      watches[1]?.open();
      expect(informer.upToDate).toBe(true);
      // An event clears it as well.
      watches[1]?.fail(new Error('connection reset'));
      await until(() => watches.length === 3);
      expect(informer.upToDate).toBe(false);
      watches[2]?.emit({ type: 'BOOKMARK', object: { metadata: { name: '', resourceVersion: '12' } } });
      expect(informer.upToDate).toBe(true);

      // History compacted (410): events were lost, so not up to date until the relist is in.
      watches[2]?.fail(new KubeApiError(410, 'Expired', 'too old resource version'));
      await until(() => lists.length === 2);
      expect(informer.upToDate).toBe(false);
      lists[1]?.answer('20', [secret('19')]);
      await until(() => informer.upToDate);
      expect(informer.get('db/pg')?.metadata.resourceVersion).toBe('19');
    } finally {
      await informer.stop();
    }
    expect(informer.upToDate).toBe(false);
  });
});
