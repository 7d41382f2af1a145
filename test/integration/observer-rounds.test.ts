/**
 * An observer's rounds against the shared control plane: a round whose databases do not answer
 * holds none of the observer's few workers until they do. On the worst day a region is lost and
 * every policy whose primary was there goes silent at once; waited for, each round held a worker
 * to its probe's deadline, and the policies queued behind them were not looked at for
 * (policies / workers) intervals. The observer runs in this process; the databases are servers
 * that accept connections and never answer, and ports where nothing listens.
 */
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FailoverObservationSpec } from '../../operator/src/api/v1alpha1/index.ts';
import {
  failoverObservationType,
  failoverPolicyType,
  replicaClusterType,
} from '../../operator/src/controllers/resources.ts';
import { Observer } from '../../operator/src/observer/observer.ts';
import { systemClock } from '../../operator/src/runtime/clock.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { silentLogger } from '../../operator/src/runtime/logger.ts';
import { Metrics } from '../../operator/src/runtime/metrics.ts';
import { installCrds } from '../harness/crds.ts';
import { freePort } from '../harness/ports.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const ns = `observer-rounds-${process.pid}`;
let client: KubeClient;
let observer: Observer | undefined;
const held: Socket[] = [];
const silent = createServer((socket) => held.push(socket));

const cluster = (name: string, port: number): KubeObject => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'ReplicaCluster',
  metadata: { name, namespace: ns },
  spec: {
    region: name,
    provider: { type: 'SelfManaged' },
    connection: {
      host: '127.0.0.1',
      port,
      database: 'app',
      sslMode: 'disable',
      credentialsSecretRef: { name: 'pg' },
    },
    dnsTarget: '127.0.0.1',
  },
});

async function policy(name: string, port: number): Promise<void> {
  await client.create(replicaClusterType, ns, cluster(`${name}-a`, port));
  await client.create(replicaClusterType, ns, cluster(`${name}-b`, port));
  await client.create(failoverPolicyType, ns, {
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'FailoverPolicy',
    metadata: { name, namespace: ns },
    spec: {
      primary: `${name}-a`,
      standbys: [`${name}-b`],
      dns: {
        provider: { type: 'Route53', route53: { hostedZoneId: 'ZTEST' } },
        zone: 'example.com',
        name: `${name}.example.com`,
      },
      promotion: { mode: 'Manual' },
    },
  });
}

/** The observations published so far, by policy. */
async function published(): Promise<Map<string, FailoverObservationSpec>> {
  const items = (await client.list<KubeObject>(failoverObservationType, ns)).items;
  return new Map(
    items.map((o) => [(o.spec as FailoverObservationSpec).policy, o.spec as FailoverObservationSpec]),
  );
}

beforeAll(async () => {
  const kc = sharedKubeConfig();
  await installCrds(kc);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'pg' }, stringData: { username: 'failover', password: 'unused' } },
  });
  client = new KubeClient(kc);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await observer?.stop(5_000);
  for (const socket of held) socket.destroy();
  silent.close();
  await sharedKubeConfig()
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name: ns })
    .catch(() => undefined);
});

describe('an observer with more silent policies than workers', () => {
  it('looks at a policy queued behind them within its first interval, and judges every silent one', {
    timeout: 120_000,
  }, async () => {
    const silentPort = (silent.address() as AddressInfo).port;
    // Three times the observer's 8 workers, each silent until the probes' 3 s connect timeout. Listed
    // (and so queued) in name order: the refused policy comes last.
    const names = Array.from({ length: 24 }, (_, i) => `silent-${String(i).padStart(2, '0')}`);
    for (const name of names) await policy(name, silentPort);
    await policy('zz-refused', await freePort());

    observer = new Observer({
      client,
      clock: systemClock,
      log: silentLogger,
      metrics: new Metrics(),
      name: 'region-c',
      namespace: ns,
    });
    await observer.start();
    const refused = await waitFor(
      async () => {
        const all = await published();
        return all.has('zz-refused') ? all : undefined;
      },
      { description: 'the refused policy observed', intervalMs: 50, timeoutMs: 60_000 },
    );
    expect(refused.get('zz-refused')?.clusters.every((c) => !c.reachable)).toBe(true);
    // Observed before the silent policies' first verdicts, which come at their connect timeout.
    // Waited for, the first 8 held every worker to it, and so did the next 8, and the next.
    const silentSeen = names.filter((n) => refused.has(n));
    expect(silentSeen.length, `observed before it: ${silentSeen.join(', ')}`).toBeLessThan(8);

    // Positive control: the silent ones were silent, and each is judged unreachable at its deadline.
    expect(held.length).toBeGreaterThan(0);
    const all = await waitFor(
      async () => {
        const now = await published();
        return names.every((n) => now.has(n)) ? now : undefined;
      },
      { description: 'every silent policy observed', timeoutMs: 60_000 },
    );
    for (const name of names) {
      const seen = all.get(name);
      expect(
        seen?.clusters.map((c) => [c.name, c.reachable, c.failureReason]),
        name,
      ).toEqual([
        [`${name}-a`, false, 'Timeout'],
        [`${name}-b`, false, 'Timeout'],
      ]);
    }
  });
});
