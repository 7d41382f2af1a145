/** Starting failover stacks on the shared control plane, one namespace per stack. */
import { expect, inject } from 'vitest';
import type { FailoverObservationSpec } from '../../operator/src/api/v1alpha1/index.ts';
import { failoverObservationType } from '../../operator/src/controllers/resources.ts';
import type { KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { FailoverStack, type FailoverStackOptions, PRIMARY_ADDRESS } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

/**
 * A primary Lease with room, for tests about something else that run agents. With 1 s probes the
 * derived Lease is 2.5 s, so the agent fences its primary after 2 s without a renewal or a peer's
 * vouch: a stall of the shared control plane on 2 busy cores reaches that, and the test then sees
 * a self-fenced primary it did not ask for (split-brain.test.ts keeps the derived timings).
 */
export const ROOMY_LEASE = {
  durationSeconds: 8,
  renewIntervalSeconds: 1,
  safetyMarginSeconds: 2,
  allowLongerThanDetection: true,
};

export function stackStarter(
  prefix: string,
  defaults: Partial<FailoverStackOptions> = {},
): (options?: Partial<FailoverStackOptions>) => Promise<FailoverStack> {
  let n = 0;
  return (options = {}) => {
    n++;
    return FailoverStack.start({
      name: `${prefix}${n}`,
      kubeConfig: sharedKubeConfig(),
      kubeconfigPath: inject('controlPlane').kubeconfigPath,
      namespace: `${prefix}-${process.pid}-${n}`,
      ...defaults,
      ...options,
    });
  };
}

export interface ObservedProbe {
  observer: string;
  observedAt: number;
  reachable: boolean;
  consecutiveFailures: number;
  failureReason?: string;
}

/** What each observer last published about one cluster of the stack's policy. */
export async function observationsOf(stack: FailoverStack, cluster: string): Promise<ObservedProbe[]> {
  const list = await stack.client.list<KubeObject>(failoverObservationType, stack.options.namespace);
  return list.items.flatMap((o) => {
    const spec = o.spec as FailoverObservationSpec | undefined;
    const probe = spec?.clusters.find((c) => c.name === cluster);
    return spec && probe
      ? [
          {
            observer: spec.observer,
            observedAt: Date.parse(spec.observedAt),
            reachable: probe.reachable,
            consecutiveFailures: probe.consecutiveFailures,
            ...(probe.failureReason ? { failureReason: probe.failureReason } : {}),
          },
        ]
      : [];
  });
}

/**
 * Waits until an observer (the first that publishes, unless named) has published `n` more probe
 * rounds: negative tests count their waits in probe intervals, not in seconds.
 */
export async function waitForProbeRounds(stack: FailoverStack, n: number, observer?: string): Promise<void> {
  const newest = async () =>
    Math.max(
      0,
      ...(await observationsOf(stack, 'region-a'))
        .filter((o) => observer === undefined || o.observer === observer)
        .map((o) => o.observedAt),
    );
  const from = await newest();
  await waitFor(
    async () => (await newest()) >= from + n * stack.options.probeIntervalSeconds * 1000 || undefined,
    {
      description: `${n} more probe rounds${observer ? ` from ${observer}` : ''}`,
      timeoutMs: 30_000 + n * stack.options.probeIntervalSeconds * 3000,
    },
  );
}

/**
 * Waits until the operator leaves the policy quiet (operator/src/controllers/failover-policy/quiet.ts):
 * not reconciled at all over `rounds` probe rounds. Its next resync is then minutes away
 * (`QUIET_RESYNC_MS`), so the policy acting on a fault within seconds shows that what the fault
 * changed woke it.
 */
export async function waitUntilQuiet(stack: FailoverStack, rounds = 3): Promise<void> {
  const operator = stack.operator;
  if (!operator) throw new Error('the stack runs no operator');
  const reconciles = () =>
    operator.metric('controller_runtime_reconcile_total', { controller: 'failoverpolicy' });
  await waitFor(
    async () => {
      const before = await reconciles();
      await waitForProbeRounds(stack, rounds);
      return (await reconciles()) === before || undefined;
    },
    { description: `the policy quiet: not reconciled for ${rounds} probe rounds`, timeoutMs: 180_000 },
  );
}

/**
 * Through three detection windows (as region-c counts them), nothing started: no operation, no
 * history, region-a still the primary; then DNS still answers it and only it takes writes.
 */
export async function expectPrimaryKept(s: FailoverStack): Promise<void> {
  for (let window = 0; window < 3; window++) {
    await waitForProbeRounds(s, s.options.failureThreshold, 'region-c');
    const { status } = await s.policy();
    expect(status.currentOperation).toBeUndefined();
    expect(status.history ?? []).toEqual([]);
    expect(status.activePrimary).toBe('region-a');
  }
  expect(await s.dnsAnswer()).toEqual([PRIMARY_ADDRESS]);
  expect(await s.writablePrimaries()).toEqual(['primary']);
}
