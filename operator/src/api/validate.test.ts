import { describe, expect, it } from 'vitest';
import {
  failoverPolicy,
  failoverPolicySpec,
  failoverPolicyStatus,
  replicaCluster,
} from './v1alpha1/index.ts';
import { formatPath, parseOnce, parseWith } from './validate.ts';

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

describe('parsing once per resourceVersion', () => {
  it('parses a value once, shares the frozen result, and parses a new value (the next version) again', () => {
    const spec = structuredClone(policy.spec);
    const first = parseOnce(failoverPolicySpec, spec, 'spec');
    expect(parseOnce(failoverPolicySpec, spec, 'spec')).toBe(first);
    // Readers that name no root (the probes) share the same parse.
    expect(parseOnce(failoverPolicySpec, spec)).toBe(first);
    if (!first.ok) throw new Error(first.message);
    // A reader that changed the shared result would change what every later reader sees.
    expect(() => {
      (first.value.detection as { quorum: number }).quorum = 1;
    }).toThrow(TypeError);
    expect(Object.isFrozen(first.value.standbys)).toBe(true);
    const next = { ...spec, standbys: ['b', 'c'] };
    const second = parseOnce(failoverPolicySpec, next, 'spec');
    expect(second).not.toBe(first);
    expect(second.ok && second.value.standbys).toEqual(['b', 'c']);
  });

  it('keeps a failure and its message, and parses primitives each time', () => {
    const bad = { primary: 7 };
    const failed = parseOnce(failoverPolicySpec, bad, 'spec');
    expect(failed).toMatchObject({ ok: false, message: expect.stringContaining('spec.primary') });
    expect(parseOnce(failoverPolicySpec, bad, 'spec')).toEqual(failed);
    expect(parseOnce(failoverPolicySpec, bad)).toMatchObject({
      message: expect.stringMatching(/^primary: /),
    });
    expect(parseOnce(failoverPolicySpec, undefined, 'spec').ok).toBe(false);
  });

  it('holds what the parse and the object have in common once, and freezes it', () => {
    const spec = structuredClone(policy.spec);
    const status = {
      phase: 'Healthy',
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Healthy',
          message: 'ok',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    const parsedSpec = parseOnce(failoverPolicySpec, spec);
    const parsedStatus = parseOnce(failoverPolicyStatus, status);
    if (!parsedSpec.ok || !parsedStatus.ok) throw new Error('did not parse');
    // The spec gets defaults, so it is zod's object; what matched below it is the input's own.
    expect(parsedSpec.value).not.toBe(spec);
    expect(parsedSpec.value.standbys).toBe(spec.standbys);
    expect(parsedSpec.value.dns).not.toBe(spec.dns); // ttlSeconds defaulted
    // What zod changes nothing in is the input's own, frozen like any parse.
    expect(parsedStatus.value.conditions).toBe(status.conditions);
    expect(Object.isFrozen(status.conditions[0])).toBe(true);
    expect(Object.isFrozen(spec.standbys)).toBe(true);
    // An unknown key is dropped: zod's object, holding the input's conditions.
    const extra = { ...structuredClone(status), futureField: 1 };
    const parsedExtra = parseOnce(failoverPolicyStatus, extra);
    expect(parsedExtra.ok && parsedExtra.value).not.toBe(extra);
    expect(parsedExtra.ok && parsedExtra.value.conditions).toBe(extra.conditions);
  });

  it('keeps a parse per schema for a value read with two', () => {
    const spec = structuredClone(policy.spec);
    const asSpec = parseOnce(failoverPolicySpec, spec);
    const asStatus = parseOnce(failoverPolicyStatus, spec);
    const asSpecAgain = parseOnce(failoverPolicySpec, spec);
    expect(asSpec.ok).toBe(true);
    expect(asSpecAgain).toBe(asSpec);
    expect(parseOnce(failoverPolicyStatus, spec)).toBe(asStatus);
    expect(asStatus).not.toBe(asSpec);
  });
});
