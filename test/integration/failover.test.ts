/**
 * Failover with every part real: control plane, PostgreSQL primary and standby, BIND with TSIG,
 * two observer processes and the operator process. Each rule of the safety case gets a test that
 * tries to break it.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { FailoverStack, PRIMARY_ADDRESS, RECORD, STANDBY_ADDRESS } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

let stack: FailoverStack | undefined;
let n = 0;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

function start(options: Partial<Parameters<typeof FailoverStack.start>[0]> = {}) {
  n++;
  return FailoverStack.start({
    name: `fo${n}`,
    kubeConfig: sharedKubeConfig(),
    kubeconfigPath: inject('controlPlane').kubeconfigPath,
    namespace: `failover-${process.pid}-${n}`,
    ...options,
  });
}

async function healthy(s: FailoverStack) {
  await s.waitForPolicy(
    (st) =>
      st.phase === 'Healthy' && st.conditions?.some((c) => c.type === 'DnsReady' && c.status === 'True'),
    'a healthy policy with DNS in place',
  );
  expect(await s.dnsAnswer()).toEqual([PRIMARY_ADDRESS]);
}

describe('automatic failover', () => {
  it('promotes the standby when the primary region dies, moves DNS, and leaves exactly one primary', async () => {
    stack = await start();
    await healthy(stack);
    const load = stack.pair.startWriteLoad({ ratePerSecond: 50 });
    await waitFor(() => load.progress().committed > 20, { description: 'some committed writes' });

    await stack.pair.killPrimary();
    const report = await stack.waitForPolicy((st) => st.history?.[0], 'a finished failover');
    const written = await load.stop();

    expect(report).toMatchObject({
      kind: 'Failover',
      trigger: 'Automatic',
      from: 'region-a',
      to: 'region-b',
      epoch: 1,
      result: 'Succeeded',
    });
    const { status } = await stack.policy();
    expect(status).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
    expect(await stack.dnsAnswer()).toEqual([STANDBY_ADDRESS]);
    // dig agrees, and the epoch is published beside the record for clients and the old primary.
    expect(await stack.bind.dig(RECORD, 'A')).toEqual([STANDBY_ADDRESS]);
    expect(await stack.bind.dig(`_failover.${RECORD}`, 'TXT')).toEqual([
      `"owner=${stack.options.namespace}/orders" "epoch=1"`,
    ]);
    expect(await stack.writablePrimaries()).toEqual(['standby']);
    expect(await stack.writeThroughDns()).toBe(STANDBY_ADDRESS);
    // Inside the budget: what the standby lacks is at most what the load wrote in the budget's time.
    const [row] = await stack.pair.standby.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM write_load',
      [],
      'app',
    );
    expect(written.committed - Number(row?.n ?? 0)).toBeLessThanOrEqual(stack.options.maxLagSeconds * 50);

    // The old primary comes back as a primary: the operator fences it, no automatic failback.
    await stack.pair.startPrimary();
    await waitFor(async () => (await stack?.clusterStatus('region-a'))?.role === 'Fenced', {
      description: 'the returning old primary to be fenced',
      timeoutMs: 60_000,
    });
    expect(await stack.writablePrimaries()).toEqual(['standby']);
    expect((await stack.policy()).status.activePrimary).toBe('region-b');
  });
});
