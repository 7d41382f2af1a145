/**
 * One server under two names. A standby's ReplicaCluster that names the primary's server (a
 * copied host; or the application's DNS name, which after a failover reaches the new primary)
 * makes that server look like a second writer beside itself. Fencing that "stray" would fence the
 * primary: the operator must see the two are one server, say so, and touch neither.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { replicaClusterType } from '../../operator/src/controllers/resources.ts';
import {
  type FailoverStack,
  PRIMARY_ADDRESS,
  STANDBY_ADDRESS,
  type StackCluster,
} from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { expectPrimaryKept, stackStarter, waitForProbeRounds } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const start = stackStarter('os');

/**
 * Points `cluster`'s connection at `host` and waits until its probes are answered by a primary
 * there: the positive control that the operator really reaches that server through the name.
 */
async function pointAt(s: FailoverStack, cluster: StackCluster, host: string): Promise<void> {
  await s.client.mergePatch(replicaClusterType, s.options.namespace, cluster, {
    spec: { connection: { host } },
  });
  await waitFor(async () => (await s.clusterStatus(cluster)).role === 'Primary' || undefined, {
    description: `${cluster}'s probes answered by the primary at ${host}`,
  });
}

/** The policy's ClustersResolved, once it says two clusters are one server. */
function oneServerSaid(s: FailoverStack, description: string) {
  return s.waitForPolicy(
    (st) =>
      st.conditions?.find(
        (c) => c.type === 'ClustersResolved' && c.status === 'False' && c.reason === 'OneServer',
      ),
    description,
  );
}

describe('two ReplicaClusters naming one server', () => {
  it('fences nothing, says which clusters are one server, and goes on once each names its own', async () => {
    stack = await start();
    const s = stack;
    const ns = s.options.namespace;
    await s.waitUntilHealthy();
    await pointAt(s, 'region-b', PRIMARY_ADDRESS);
    const held = await oneServerSaid(s, 'the policy to say region-a and region-b are one server');
    expect(held.message).toMatch(/^region-a and region-b are one server/);
    // Several detection windows pass: no fence, no operation; the primary still takes writes.
    await expectPrimaryKept(s);
    // A restarted operator knows no server at first; whichever name answers first, nothing is fenced.
    await s.operator?.kill();
    await s.startOperator();
    await waitForProbeRounds(s, 2 * s.options.failureThreshold, 'region-c');
    await oneServerSaid(s, 'OneServer again after the restart');
    await expectPrimaryKept(s);
    expect((await s.policy()).status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
    expect((await s.events()).map((e) => e.reason)).toContain('OneServer');
    expect((await s.events()).map((e) => e.reason)).not.toContain('StrayPrimary');
    // Each names its own server again: the policy is whole and ready, as before.
    await s.client.mergePatch(replicaClusterType, ns, 'region-b', {
      spec: { connection: { host: STANDBY_ADDRESS } },
    });
    await s.waitForPolicy(
      (st) => st.conditions?.some((c) => c.type === 'ClustersResolved' && c.status === 'True'),
      'ClustersResolved again',
    );
    await s.waitUntilHealthy();
    expect((await s.policy()).status.history ?? []).toEqual([]);
  });
});

describe("the old primary's name reaching the new primary after a failover", () => {
  it('is no stray beside it: the new primary is not fenced', async () => {
    stack = await start();
    const s = stack;
    await s.waitUntilFailoverReady();
    await s.pair.killPrimary();
    await s.waitForPolicy(
      (st) => st.history?.[0]?.result === 'Succeeded' && !st.currentOperation,
      'the failover to region-b',
    );
    // As a connection naming the application's DNS name would after the failover moved it.
    await pointAt(s, 'region-a', STANDBY_ADDRESS);
    await oneServerSaid(s, 'the policy to say region-a and region-b are one server');
    for (let window = 0; window < 3; window++) {
      await waitForProbeRounds(s, s.options.failureThreshold, 'region-c');
      const { status } = await s.policy();
      expect(status.activePrimary).toBe('region-b');
      expect(status.currentOperation).toBeUndefined();
      expect(status.history?.map((r) => r.kind)).toEqual(['Failover']);
    }
    expect(await s.writablePrimaries()).toEqual(['standby']);
    expect((await s.events()).map((e) => e.reason)).not.toContain('StrayPrimary');
  });
});
