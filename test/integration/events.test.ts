/**
 * Events against the real API server: one Event per happening, repeats folded into its
 * `series.count`, a new Event when the folded one is gone, and every Event the API server did not
 * take counted in failover_events_dropped_total.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../operator/src/runtime/clock.ts';
import { EventRecorder, eventType } from '../../operator/src/runtime/events.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { silentLogger } from '../../operator/src/runtime/logger.ts';
import { Metrics } from '../../operator/src/runtime/metrics.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const ns = `events-${process.pid}`;
let client: KubeClient;

beforeAll(async () => {
  const admin = sharedKubeConfig();
  client = new KubeClient(admin);
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
});

interface Event extends KubeObject {
  reason: string;
  series?: { count: number };
  regarding: { name: string };
}

const regarding = (namespace: string, name: string): KubeObject => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'FailoverPolicy',
  metadata: { name, namespace, uid: `${namespace}-${name}` },
});

describe('EventRecorder against the API server', () => {
  it('folds repeats into one Event, starts a new one when it is gone, and counts what the API server refused', async () => {
    const metrics = new Metrics();
    const recorder = new EventRecorder({
      client,
      clock: new ManualClock(),
      log: silentLogger,
      controller: 'regionfailover.io/operator',
      instance: 'events-test',
      metrics,
    });
    const note = { type: 'Warning' as const, reason: 'DnsCheckFailed', action: 'CheckDns', note: 'refused' };
    const events = async () =>
      (await client.list<Event>(eventType, ns)).items.filter((e) => e.regarding.name === 'orders');

    await recorder.record(regarding(ns, 'orders'), note);
    await recorder.record(regarding(ns, 'orders'), note);
    await recorder.record(regarding(ns, 'orders'), note);
    const [folded, ...others] = await events();
    expect(others).toEqual([]);
    expect(folded?.series?.count).toBe(3);

    await client.delete(eventType, ns, folded?.metadata.name ?? '');
    await recorder.record(regarding(ns, 'orders'), note);
    const after = await events();
    expect(after).toHaveLength(1);
    expect(after[0]?.metadata.name).not.toBe(folded?.metadata.name);

    // A namespace that does not exist: the API server refuses the Event.
    await recorder.record(regarding(`${ns}-missing`, 'orders'), note);
    const dropped = (await metrics.eventsDropped.get()).values;
    expect(dropped).toEqual([expect.objectContaining({ labels: { reason: 'ApiError' }, value: 1 })]);
  });
});
