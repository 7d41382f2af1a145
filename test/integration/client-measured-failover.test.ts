/**
 * A real failover measured from the client's side, on the real stack (PostgreSQL pair, control
 * plane, BIND, observers, the operator): with spec.canary.mode Always the operator's canary writes
 * through the DNS name all along, and when the primary crashes and the standby is promoted, the
 * failover's history entry says how long a client could not write and how many of its
 * acknowledged writes the new primary lacks.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { failoverPolicyType } from '../../operator/src/controllers/resources.ts';
import type { FailoverStack } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { stackStarter } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const start = stackStarter('cm');

describe('the continuous canary', () => {
  it('measures a real failover from the client side: client.measuredBy Canary, RTO, lost writes, Event and metrics', async () => {
    stack = await start();
    const s = stack;
    await s.waitUntilHealthy();
    const operator = s.operator;
    if (!operator) throw new Error('the stack has no operator');
    await s.client.mergePatch(failoverPolicyType, s.options.namespace, 'orders', {
      spec: { canary: { mode: 'Always', intervalMilliseconds: 200 } },
    });
    // The writer writes through the name before anything happens: rows on the primary.
    const continuousRows = async () => {
      const [row] = await s.pair.sql<{ n: string }>(
        'primary',
        "SELECT count(*)::text AS n FROM regionfailover.canary WHERE drill = 'continuous'",
      );
      return Number(row?.n ?? 0);
    };
    await waitFor(async () => ((await continuousRows().catch(() => 0)) >= 20 ? true : undefined), {
      description: 'the continuous canary writing to the primary through the name',
    });

    await s.pair.killPrimary();
    const report = await s.waitForPolicy(
      (st) => (st.history?.[0]?.client ? st.history[0] : undefined),
      'the failover measured by the canary',
      120_000,
    );
    const client = report.client;
    // What was seen, for the record of this run.
    process.stdout.write(
      `client-measured failover: ${JSON.stringify({ operatorRto: report.rtoSeconds, lostWrites: report.lostWrites, client })}\n`,
    );
    expect(report).toMatchObject({
      kind: 'Failover',
      trigger: 'Automatic',
      from: 'region-a',
      to: 'region-b',
      result: 'Succeeded',
    });
    expect(client).toMatchObject({ operationId: report.id, measuredBy: 'Canary' });
    expect(client?.rtoSeconds).toBeGreaterThan(0);
    expect(client?.acknowledged).toBeGreaterThan(10);
    // A crash may lose what the standby had not received: not guaranteed 0, but never more than
    // was acknowledged, and the report's lostWrites is the canary's count.
    expect(report.lostWrites).toBe(client?.rpoTransactions);
    expect(report.lostWrites).toBeGreaterThanOrEqual(0);
    expect(report.lostWrites).toBeLessThanOrEqual(client?.acknowledged ?? 0);
    // The writes stopped before the operation started (the crash), and resumed after it did.
    expect(Date.parse(client?.writesStoppedAt ?? '')).toBeLessThanOrEqual(Date.parse(report.startedAt));
    expect(Date.parse(client?.writesResumedAt ?? '')).toBeGreaterThan(Date.parse(report.startedAt));

    // Rows land on the new primary through the name, under the same key.
    const [onStandby] = await s.pair.sql<{ n: string }>(
      'standby',
      "SELECT count(*)::text AS n FROM regionfailover.canary WHERE drill = 'continuous'",
    );
    expect(Number(onStandby?.n)).toBeGreaterThan(0);

    const events = await waitFor(
      async () => {
        const list = await s.events();
        return list.some((e) => e.reason === 'ClientMeasured') ? list : undefined;
      },
      { description: 'a ClientMeasured Event' },
    );
    const event = events.find((e) => e.reason === 'ClientMeasured');
    expect(event?.type).toBe('Normal');
    expect(event?.note).toMatch(
      /failover .* from region-a to region-b, measured by the canary: writes stopped for/,
    );

    const labels = { namespace: s.options.namespace, policy: 'orders', kind: 'Failover' };
    await waitFor(
      async () => ((await operator.metric('failover_client_rto_seconds', labels)) > 0 ? true : undefined),
      {
        description: 'the client RTO in the metrics',
      },
    );
    expect(await operator.metric('failover_client_rto_seconds', labels)).toBe(client?.rtoSeconds);
    expect(await operator.metric('failover_client_lost_writes', labels)).toBe(report.lostWrites);
  });
});
