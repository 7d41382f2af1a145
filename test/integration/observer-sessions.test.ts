/**
 * An observer's pooled sessions to a database stay open for minutes unused (a prober that falls
 * behind must find them open), so a deleted ReplicaCluster's sessions are closed when it is
 * deleted, not when the pool's idle timeout runs out: they hold connection slots and keep its
 * database from being dropped. Real stack: databases, BIND, observers and operator.
 */
import { afterEach, describe, it } from 'vitest';
import { replicaClusterType } from '../../operator/src/controllers/resources.ts';
import type { FailoverStack } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { stackStarter } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const start = stackStarter('obs-sessions');

describe('an observer and a deleted ReplicaCluster', () => {
  it('closes its sessions to the deleted cluster’s database', async () => {
    stack = await start();
    const s = stack;
    // region-b is the standby server; only the observers' sessions are counted.
    const observerSessions = async () =>
      Number(
        (
          await s.pair.standby.query<{ n: string }>(
            "SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name LIKE 'failover-observer-%'",
          )
        )[0]?.n ?? 0,
      );
    // Positive control: both observers probe region-b.
    await waitFor(async () => (await observerSessions()) >= 2 || undefined, {
      description: 'both observers holding sessions on region-b’s server',
    });
    await s.client.delete(replicaClusterType, s.options.namespace, 'region-b');
    await waitFor(async () => (await observerSessions()) === 0 || undefined, {
      description: 'no observer session left on region-b’s server (the idle timeout is 5 minutes)',
      timeoutMs: 60_000,
    });
  });
});
