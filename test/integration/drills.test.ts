/**
 * Scheduled drills against the real stack. The pair here is self-managed PostgreSQL, whose former
 * primary nothing turns back into a standby after a switchover, so a drill could go out but not
 * come back: the operator must refuse to start it, say why, and let the alerts see a drill that
 * did not pass. The drill's legs are ordinary switchovers, tested for real in failover.test.ts;
 * the way out and back is covered by decide's unit tests (drill.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { failoverPolicyType } from '../../operator/src/controllers/resources.ts';
import { type FailoverStack, PRIMARY_ADDRESS } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { stackStarter } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const start = stackStarter('dr');

describe('a scheduled drill', () => {
  it('that could not switch back is not started: filed as Aborted with the reason, in status, events and metrics', async () => {
    stack = await start();
    await stack.waitUntilHealthy();
    const operator = stack.operator;
    if (!operator) throw new Error('the stack has no operator');
    // Every minute, so one is due within a minute of now.
    await stack.client.mergePatch(failoverPolicyType, stack.options.namespace, 'orders', {
      spec: { drills: { schedule: '* * * * *', holdSeconds: 0, abortIfLagSecondsAbove: 5 } },
    });
    const scheduled = await stack.waitForPolicy((st) => st.nextDrillTime, 'the next drill time in status');
    expect(new Date(scheduled).getUTCSeconds()).toBe(0);
    await waitFor(
      async () =>
        (await operator.metric('failover_drill_next_timestamp_seconds')) ===
        new Date(scheduled).getTime() / 1000,
      { description: 'the next drill time in the metrics' },
    );

    const report = await stack.waitForPolicy((st) => st.drills?.[0], 'the first drill report', 150_000);
    expect(report).toMatchObject({
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'region-a',
      result: 'Aborted',
    });
    expect(report.reason).toMatch(/does not make a former primary a standby again.*could not switch back/);

    // Nothing moved: same primary, same epoch, no operation, DNS and writes where they were.
    const { status } = await stack.policy();
    expect(status).toMatchObject({ activePrimary: 'region-a', epoch: 0, phase: 'Healthy' });
    expect(status.history ?? []).toEqual([]);
    expect(status.currentOperation).toBeUndefined();
    expect(status.drill).toBeUndefined();
    expect(new Date(status.nextDrillTime ?? 0).getTime()).toBeGreaterThan(new Date(scheduled).getTime());
    expect(await stack.writablePrimaries()).toEqual(['primary']);
    expect(await stack.writeThroughDns()).toBe(PRIMARY_ADDRESS);

    // What the chart's "drill failed" alert reads, and the Warning a person sees in kubectl.
    await waitFor(async () => (await operator.metric('failover_drills_total', { result: 'Aborted' })) >= 1, {
      description: 'the skipped drill counted',
    });
    expect(await operator.metric('failover_drill_last_succeeded')).toBe(0);
    const events = await waitFor(
      async () => {
        const list = await stack?.events();
        return list?.some((e) => e.reason === 'DrillFailed') ? list : undefined;
      },
      { description: 'a DrillFailed event' },
    );
    expect(events.find((e) => e.reason === 'DrillFailed')).toMatchObject({ type: 'Warning' });
  });

  it('is not scheduled while suspended', async () => {
    stack = await start();
    await stack.waitUntilHealthy();
    await stack.client.mergePatch(failoverPolicyType, stack.options.namespace, 'orders', {
      spec: { drills: { schedule: '* * * * *' } },
    });
    await stack.waitForPolicy((st) => st.nextDrillTime, 'the next drill time in status');
    await stack.client.mergePatch(failoverPolicyType, stack.options.namespace, 'orders', {
      spec: { drills: { suspend: true } },
    });
    await stack.waitForPolicy(
      (st) => (st.nextDrillTime === undefined ? st : undefined),
      'no next drill time',
    );
    const operator = stack.operator;
    await waitFor(
      async () => !(await operator?.metrics())?.includes('failover_drill_next_timestamp_seconds{'),
      {
        description: 'the next drill time gone from the metrics',
      },
    );
  });
});
