/**
 * The application beside a database counts: with requireHealthyAppEndpoints, an automatic
 * failover waits while the standby region's application does not answer healthy, and goes ahead
 * once it does. Every part real: the stack's databases, BIND, observers and operator, and an HTTP
 * server on loopback standing for region B's application.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { failoverPolicyType, replicaClusterType } from '../../operator/src/controllers/resources.ts';
import type { FailoverStack } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { observationsOf, stackStarter, waitForProbeRounds } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;
let app: Server | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
  app?.closeAllConnections();
  await new Promise((r) => (app ? app.close(r) : r(undefined)));
  app = undefined;
});

const start = stackStarter('app');

describe('an automatic failover into a region whose application is down', () => {
  it('waits until the application answers healthy, then fails over', async () => {
    stack = await start();
    const s = stack;
    let answer = 503;
    app = createServer((_req, res) => {
      res.writeHead(answer);
      res.end();
    });
    await new Promise<void>((resolve) => app?.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(app.address() as AddressInfo).port}/healthz`;
    const ns = s.options.namespace;
    await s.client.mergePatch(replicaClusterType, ns, 'region-b', {
      spec: { appEndpoints: [{ name: 'api', url }] },
    });
    await s.client.mergePatch(failoverPolicyType, ns, 'orders', {
      spec: { promotion: { requireHealthyAppEndpoints: true } },
    });

    // Positive control: the operator and the observers see region B's application down.
    await waitFor(
      async () => {
        const st = await s.clusterStatus('region-b');
        return st.appEndpoints?.[0]?.healthy === false && st.appEndpoints[0].statusCode === 503
          ? st
          : undefined;
      },
      { description: 'region-b showing its application down' },
    );
    expect(
      (await s.clusterStatus('region-b')).conditions?.find((c) => c.type === 'AppEndpointsHealthy'),
    ).toMatchObject({
      status: 'False',
      reason: 'HttpStatus',
    });
    await waitFor(
      async () =>
        ((await observationsOf(s, 'region-b')).length >= 2 &&
          (
            await s.client.list(
              {
                group: 'regionfailover.io',
                version: 'v1alpha1',
                plural: 'failoverobservations',
                kind: 'FailoverObservation',
              },
              ns,
            )
          ).items.every((o) =>
            (o.spec as { clusters: { name: string; appEndpointsHealthy?: boolean }[] }).clusters.some(
              (c) => c.name === 'region-b' && c.appEndpointsHealthy === false,
            ),
          )) ||
        undefined,
      { description: 'every observer reporting region-b’s application down' },
    );
    await s.waitForPolicy(
      (st) => st.conditions?.find((c) => c.type === 'FailoverReady' && c.reason === 'AppEndpointsUnhealthy'),
      'FailoverReady False: the standby region’s application is down',
    );

    await s.pair.killPrimary();
    const blocked = await s.waitForPolicy(
      (st) => st.conditions?.find((c) => c.type === 'FailoverBlocked' && c.status === 'True'),
      'the failover held back',
    );
    expect(blocked).toMatchObject({
      reason: 'AppEndpointsUnhealthy',
      message: expect.stringMatching(/region-b.*\(api\)/),
    });
    await waitForProbeRounds(s, 3);
    expect((await s.policy()).status.currentOperation).toBeUndefined();
    expect(await s.writablePrimaries()).toEqual([]);

    answer = 200;
    const report = await s.waitForPolicy((st) => st.history?.[0], 'the failover once the application is up');
    expect(report).toMatchObject({
      kind: 'Failover',
      trigger: 'Automatic',
      to: 'region-b',
      result: 'Succeeded',
    });
    expect(await s.writablePrimaries()).toEqual(['standby']);
  });
});
