/**
 * State that status has lost is rediscovered from the world, never assumed from spec. After a
 * failover, spec.primary names the former primary; a policy recreated from the same manifest (a
 * GitOps prune and re-apply, a Velero restore, a move between namespaces) must learn the real
 * primary and epoch from the heartbeat rows and the DNS ownership record, and touch nothing.
 */

import { ApiextensionsV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { failoverPolicyType } from '../../operator/src/controllers/resources.ts';
import type { KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { ControlPlane } from '../harness/control-plane.ts';
import { FailoverStack, RECORD, STANDBY_ADDRESS, type StackCluster } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { stackStarter, waitForProbeRounds } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;
let ownControlPlane: ControlPlane | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
  await ownControlPlane?.stop();
  ownControlPlane = undefined;
});

const start = stackStarter('pd');

/** Fails over from region-a to region-b and brings region-a back, fenced. */
async function failedOver(s: FailoverStack): Promise<void> {
  await s.waitUntilHealthy();
  // Killed before the standby's lag was measured, the primary would not be failed over at all
  // (never beyond the RPO budget): seen under load in CI.
  await s.waitForPolicy(
    (st) => st.conditions?.some((c) => c.type === 'FailoverReady' && c.status === 'True'),
    'a standby ready to take over',
  );
  await s.pair.killPrimary();
  await s.waitForPolicy(
    (st) => st.history?.[0]?.result === 'Succeeded' && !st.currentOperation,
    'the failover',
  );
  await s.pair.startPrimary();
  await waitFor(async () => (await s.clusterStatus('region-a')).role === 'Fenced' || undefined, {
    description: 'the returning old primary fenced',
    timeoutMs: 60_000,
  });
}

/**
 * Deletes the policy and creates it again from the same spec, as a re-apply from Git would;
 * `meanwhile` runs between the two.
 */
async function recreatePolicy(
  s: FailoverStack,
  meanwhile?: () => Promise<void>,
  over: Record<string, unknown> = {},
): Promise<void> {
  const { object } = await s.policy();
  const ns = s.options.namespace;
  await s.client.delete(failoverPolicyType, ns, 'orders');
  await waitFor(
    () =>
      s.client.get(failoverPolicyType, ns, 'orders').then(
        () => undefined,
        () => true,
      ),
    { description: 'the policy deleted' },
  );
  await meanwhile?.();
  const { promotionRequest: _r, ...spec } = object.spec as Record<string, unknown>;
  await s.client.create(failoverPolicyType, ns, {
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'FailoverPolicy',
    metadata: { name: 'orders', namespace: ns },
    spec: { ...spec, ...over },
  } as KubeObject);
}

describe('a policy that lost its status', () => {
  it('recreated from the same manifest after a failover, learns the real primary and epoch and changes nothing', async () => {
    stack = await start();
    await failedOver(stack);
    const s = stack;
    const txtBefore = await s.bind.dig(`_failover.${RECORD}`, 'TXT');
    const serialBefore = await s.bind.dig(s.bind.zone, 'SOA');

    await recreatePolicy(s);
    // The new policy's spec still says primary: region-a.
    expect(((await s.policy()).object.spec as { primary: string }).primary).toBe('region-a');
    const status = await s.waitForPolicy(
      (st) => (st.activePrimary && st.conditions?.some((c) => c.type === 'Ready') ? st : undefined),
      'the recreated policy to learn who is primary',
    );
    expect(status).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
    // Writes keep going to the real primary through the DNS name, for several probe rounds.
    for (let i = 0; i < 5; i++) expect(await s.writeThroughDns('canary', i)).toBe(STANDBY_ADDRESS);
    await waitForProbeRounds(s, 3);
    const after = (await s.policy()).status;
    expect(after.history ?? []).toEqual([]);
    expect(after.currentOperation).toBeUndefined();
    expect(await s.writablePrimaries()).toEqual(['standby']);
    expect(await s.bind.dig(RECORD, 'A')).toEqual([STANDBY_ADDRESS]);
    expect(await s.bind.dig(`_failover.${RECORD}`, 'TXT')).toEqual(txtBefore);
    // Not a single update reached the zone.
    expect(await s.bind.dig(s.bind.zone, 'SOA')).toEqual(serialBefore);
    const events = await waitFor(
      async () => {
        const list = await s.events();
        const found = list.some(
          (e) => e.reason === 'PrimaryDiscovered' && /region-b is the primary at epoch 1/.test(e.note),
        );
        return found ? list : undefined;
      },
      { description: 'the PrimaryDiscovered Event for region-b at epoch 1', timeoutMs: 30_000 },
    );
    // Nothing fenced the real primary: no Fence of region-b was started, no fencing of it announced.
    expect(
      events.filter(
        (e) =>
          /^(Fence|Failover|Switchover)Started$|^StrayPrimary|Fenced$/.test(e.reason) &&
          e.note.startsWith('region-b'),
      ),
    ).toEqual([]);
    expect(events.filter((e) => e.reason === 'FenceStarted' && /Fence of region-b/.test(e.note))).toEqual([]);
  });

  it('recreated with a promotion request in its manifest, does not act on it: it may have run under the status that is gone', async () => {
    stack = await start();
    const s = stack;
    await s.waitUntilHealthy();
    // A request committed to Git with the manifest: a switchover to region-b.
    const request = { id: 'from-git-1', target: 'region-b', kind: 'Switchover', requestedBy: 'git' };
    await recreatePolicy(s, undefined, { promotionRequest: request });
    const status = await s.waitForPolicy(
      (st) => (st.activePrimary && st.lastRequest ? st : undefined),
      'the recreated policy to learn its primary and answer the request',
    );
    expect(status.activePrimary).toBe('region-a');
    expect(status.lastRequest).toMatchObject({
      id: 'from-git-1',
      outcome: 'Rejected',
      reason: 'PredatesStatus',
    });
    // Probe rounds pass: no switchover, the primary stays where it is.
    await waitForProbeRounds(s, 3);
    const after = (await s.policy()).status;
    expect(after.currentOperation).toBeUndefined();
    expect((after.history ?? []).filter((h) => h.kind === 'Switchover')).toEqual([]);
    expect(await s.writablePrimaries()).toEqual(['primary']);
    // A new id is acted on.
    await s.client.mergePatch(failoverPolicyType, s.options.namespace, 'orders', {
      spec: { promotionRequest: { ...request, id: 'from-git-2' } },
    });
    const done = await s.waitForPolicy(
      (st) => (st.history?.[0]?.kind === 'Switchover' && !st.currentOperation ? st.history[0] : undefined),
      'the switchover of the new request',
    );
    expect(done).toMatchObject({ result: 'Succeeded', to: 'region-b' });
  });

  it('with every database out of reach, reads its DNS record every five minutes, and at once when one answers', async () => {
    stack = await start();
    const s = stack;
    await s.waitUntilHealthy();
    const standby = s.pair.server('standby');
    const operator = s.operator;
    if (!operator) throw new Error('no operator');
    // Counted since the start, the first policy's discovery included.
    const before = await operator.metric('failover_dns_reads_total', { purpose: 'Discovery' });
    const reads = async () =>
      (await operator.metric('failover_dns_reads_total', { purpose: 'Discovery' })) - before;
    await recreatePolicy(s, async () => {
      await standby.kill();
      await s.pair.killPrimary();
      // The operator's probes have seen both down before the policy is back.
      await waitFor(
        async () => {
          const names: StackCluster[] = ['region-a', 'region-b'];
          const health = await Promise.all(names.map((n) => s.clusterStatus(n)));
          return health.every((h) => h.health === 'Unreachable') || undefined;
        },
        { description: 'both databases probed as unreachable' },
      );
    });
    // Positive control: both databases were probed and found down, and the record was read.
    await s.waitForPolicy(
      (st) =>
        st.conditions?.find(
          (c) =>
            c.type === 'PrimaryKnown' &&
            /names region-a at epoch 0, but region-b cannot be reached/.test(c.message),
        ),
      'discovery waiting on region-b, out of reach',
    );
    const first = await reads();
    expect(first).toBeGreaterThanOrEqual(1);
    // Read every probe (1 s), 10 rounds would be 10 reads or more (22 in a run before this was
    // built); a read that answered and settles nothing is kept for five minutes.
    const reconciles = () =>
      operator.metric('controller_runtime_reconcile_total', { controller: 'failoverpolicy' });
    const reconciledBefore = await reconciles();
    await waitForProbeRounds(s, 10);
    expect((await reads()) - first).toBe(0);
    // Looked at all along, not idle: each look used the kept read.
    expect((await reconciles()) - reconciledBefore).toBeGreaterThanOrEqual(10);
    const kept = await reads();
    await standby.start();
    // With region-b in sight the kept read would name region-a: the record is read again at once
    // (not five minutes on), and the fresh read settles it (a primary is never found on a kept read).
    const status = await s.waitForPolicy((st) => (st.activePrimary ? st : undefined), 'region-a discovered');
    expect(status).toMatchObject({ activePrimary: 'region-a', epoch: 0 });
    expect(await reads()).toBeGreaterThan(kept);
  });

  it('with a status it cannot read, does nothing and says so; cleared, it rediscovers', async () => {
    // Its own control plane: the test changes the CRD, as installing a newer operator would.
    ownControlPlane = await ControlPlane.start({ name: 'discovery-status' });
    stack = await FailoverStack.start({
      name: 'pdstatus',
      kubeConfig: ownControlPlane.kubeConfig(),
      kubeconfigPath: ownControlPlane.kubeconfigPath,
      namespace: 'discovery-status',
    });
    await failedOver(stack);
    const s = stack;
    const ns = s.options.namespace;
    // A newer operator (rolled back since) recorded an operation at a step this one does not know.
    await allowStep(ownControlPlane, 'Quiescing');
    const newerStatus = {
      status: {
        activePrimary: 'region-a',
        currentOperation: {
          id: 'switchover-e2-x',
          kind: 'Switchover',
          trigger: 'Manual',
          from: 'region-b',
          to: 'region-a',
          epoch: 2,
          step: 'Quiescing',
          startedAt: new Date().toISOString(),
          stepStartedAt: new Date().toISOString(),
        },
      },
    };
    // The API server takes a moment to validate against the changed CRD: until then it refuses.
    await waitFor(
      () =>
        s.client.mergePatch(failoverPolicyType, ns, 'orders', newerStatus, 'status').then(
          () => true,
          () => undefined,
        ),
      { description: 'the API server to accept the newer step' },
    );
    const broken = await s.waitForPolicy(
      (st) => st.conditions?.find((c) => c.type === 'StatusUnreadable' && c.status === 'True'),
      'the StatusUnreadable condition',
    );
    expect(broken.message).toMatch(/step/);
    await waitForProbeRounds(s, 3);
    // Nothing was touched: not region-b (still the primary), not region-a, not DNS.
    expect(await s.writablePrimaries()).toEqual(['standby']);
    expect(await s.bind.dig(RECORD, 'A')).toEqual([STANDBY_ADDRESS]);
    expect((await s.policy()).status).toMatchObject({
      activePrimary: 'region-a',
      currentOperation: { step: 'Quiescing' },
    });

    // Clearing status is the documented way out: the primary is learned from the world again.
    await s.client.mergePatch(failoverPolicyType, ns, 'orders', { status: null }, 'status');
    const status = await s.waitForPolicy(
      (st) =>
        st.activePrimary && !st.conditions?.some((c) => c.type === 'StatusUnreadable') ? st : undefined,
      'the status rebuilt from the world',
    );
    expect(status).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
    expect(status.currentOperation).toBeUndefined();
    expect(await s.writablePrimaries()).toEqual(['standby']);
  });
});

/** Adds a step to the FailoverPolicy CRD's operation steps, as a newer version's CRD would. */
async function allowStep(cp: ControlPlane, step: string): Promise<void> {
  const api = cp.kubeConfig().makeApiClient(ApiextensionsV1Api);
  const name = 'failoverpolicies.regionfailover.io';
  const crd = await api.readCustomResourceDefinition({ name });
  const props =
    crd.spec.versions[0]?.schema?.openAPIV3Schema?.properties?.status?.properties?.currentOperation
      ?.properties;
  props?.step?._enum?.push(step);
  await api.replaceCustomResourceDefinition({ name, body: crd });
}
