import { describe, expect, it } from 'vitest';
import { failoverPolicy, replicaCluster } from './v1alpha1/index.ts';
import { formatPath, parseWith } from './validate.ts';

const policy = {
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'FailoverPolicy',
  metadata: { name: 'orders', namespace: 'db' },
  spec: {
    primary: 'a',
    standbys: ['b'],
    dns: {
      provider: { type: 'Route53', route53: { hostedZoneId: 'Z123' } },
      zone: 'example.com',
      name: 'db.example.com',
    },
  },
};

describe('reading objects', () => {
  it('fills in the same defaults the API server would', () => {
    const parsed = parseWith(failoverPolicy, policy);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.spec.detection).toEqual({ probeIntervalSeconds: 5, failureThreshold: 3, quorum: 2 });
    expect(parsed.value.spec.promotion.rpo).toEqual({ maxLagSeconds: 30, maxLagBytes: 16777216 });
    expect(parsed.value.spec.dns.ttlSeconds).toBe(30);
  });

  it('reports a hand-edited status with the field path instead of throwing', () => {
    const edited = { ...policy, status: { epoch: -3, phase: 'Exploded', history: 'none' } };
    const parsed = parseWith(failoverPolicy, edited);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.message).toContain('status.epoch:');
    expect(parsed.message).toContain('status.phase:');
    expect(parsed.message).toContain('status.history:');
  });

  it('keeps unknown metadata fields and drops unknown spec fields, as the API server prunes them', () => {
    const parsed = parseWith(replicaCluster, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'ReplicaCluster',
      metadata: { name: 'a', labels: { team: 'db' } },
      spec: {
        region: 'ams3',
        provider: { type: 'SelfManaged' },
        connection: { host: 'db.internal', credentialsSecretRef: { name: 'pg' } },
        dnsTarget: 'db.internal',
        futureField: true,
      },
    });
    expect(parsed.ok && parsed.value.metadata.labels).toEqual({ team: 'db' });
    expect(parsed.ok && 'futureField' in parsed.value.spec).toBe(false);
  });

  it('formats paths the way the API server does', () => {
    expect(formatPath(['spec', 'standbys', 0, 'name'])).toBe('spec.standbys[0].name');
  });
});
