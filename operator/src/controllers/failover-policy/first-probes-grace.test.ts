import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../runtime/kube-client.ts';
import { input, NOW, outage, primaryUp, standby, unprobed } from './decide.fixtures.ts';
import { decide } from './decide.ts';
import { discoverPrimary } from './discovery.ts';
import { firstProbesGrace } from './reconciler.ts';

const object = (generation = 1): KubeObject => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'FailoverPolicy',
  metadata: { name: 'orders', namespace: 'ns', generation },
});
const started = new Date(NOW.getTime() - 5_000);

/** What an earlier run wrote, judging the policy with every cluster probed (conditions are set after decide). */
const earlier = () => ({
  ...decide(input()).status,
  observedGeneration: 1,
  conditions: [
    {
      type: 'Ready',
      status: 'True' as const,
      reason: 'Ready',
      message: 'a accepts writes',
      observedGeneration: 1,
      lastTransitionTime: '2026-03-02T09:00:00Z',
    },
  ],
});

describe('a restarted operator, before its first probes', () => {
  it('keeps the status an earlier run wrote while only conditions and phase would change', () => {
    const previous = earlier();
    const restarted = input({
      status: previous,
      clusters: { a: unprobed('a'), b: unprobed('b'), c: standby('c') },
    });
    const plan = decide(restarted);
    // A positive control: this process's view is that it waits for the probes.
    expect(JSON.stringify(discoverPrimary(restarted))).toContain('waiting for the first probe of a, b');
    expect(firstProbesGrace(object(), previous, restarted, plan, NOW, started)).toBe(25_000);
  });

  it('writes at once what a lost primary changes: the hold-down starts at the first reconcile', () => {
    const previous = earlier();
    const lost = outage({
      status: previous,
      clusters: { a: unprobed('a'), b: standby('b'), c: standby('c') },
    });
    const plan = decide(lost);
    expect(plan.verdict?.down).toBe(true);
    expect(firstProbesGrace(object(), previous, lost, plan, NOW, started)).toBe(0);
  });

  it('writes as usual once the grace is over, on a new generation, or when every cluster is probed', () => {
    const previous = earlier();
    const restarted = input({
      status: previous,
      clusters: { a: unprobed('a'), b: unprobed('b'), c: standby('c') },
    });
    const plan = decide(restarted);
    const late = new Date(NOW.getTime() - 31_000);
    expect(firstProbesGrace(object(), previous, restarted, plan, NOW, late)).toBe(0);
    expect(firstProbesGrace(object(2), previous, restarted, plan, NOW, started)).toBe(0);
    const probed = input({
      status: previous,
      clusters: { a: primaryUp(), b: standby('b'), c: standby('c') },
    });
    expect(firstProbesGrace(object(), previous, probed, decide(probed), NOW, started)).toBe(0);
    // A policy no run has judged yet shows that it waits.
    const fresh = input({ status: {}, clusters: { a: unprobed('a'), b: unprobed('b'), c: unprobed('c') } });
    expect(firstProbesGrace(object(), {}, fresh, decide(fresh), NOW, started)).toBe(0);
  });
});
