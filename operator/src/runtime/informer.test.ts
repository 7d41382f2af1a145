import { describe, expect, it } from 'vitest';
import { lean } from './informer.ts';
import type { KubeObject } from './kube-client.ts';

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
