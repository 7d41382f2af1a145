/**
 * Maintenance mode with real parts: a PostgreSQL pair, the control plane, BIND, observers and the
 * operator, and `kubectl failover pause|resume` run as a person would. While the policy is paused,
 * a killed primary is found down by quorum (the positive control) and nothing fails over; once it
 * is resumed, the held-back failover runs.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus } from '../../operator/src/api/v1alpha1/index.ts';
import { repoRoot } from '../harness/chart-tools.ts';
import type { FailoverStack } from '../harness/failover-stack.ts';
import { STANDBY_ADDRESS } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { stackStarter, waitForProbeRounds } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const start = stackStarter('maint');

/** The plugin, as a person runs it, against the stack's namespace. */
function plugin(s: FailoverStack, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, KUBECONFIG: s.options.kubeconfigPath };
  return new Promise((resolve) => {
    execFile(
      join(repoRoot, 'bin', 'kubectl-failover'),
      [...args, '-n', s.options.namespace],
      { env, timeout: 60_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const condition = (st: FailoverPolicyStatus, type: string) => st.conditions?.find((c) => c.type === type);

describe('a paused policy (maintenance mode)', () => {
  it('fails nothing over while paused, says what it holds back, and fails over once resumed', {
    timeout: 300_000,
  }, async () => {
    const s = await start();
    stack = s;
    await s.waitUntilHealthy();

    const paused = await plugin(s, ['pause', 'orders', '--reason', 'kernel upgrade in region-a']);
    expect(paused, paused.stderr).toMatchObject({ code: 0 });
    expect(paused.stdout).toMatch(/paused \(kernel upgrade in region-a\)/);
    expect(paused.stdout).toMatch(/The operator acknowledged it: paused since/);
    const acknowledged = (await s.policy()).status;
    expect(acknowledged.phase).toBe('Paused');
    expect(condition(acknowledged, 'Paused')).toMatchObject({ status: 'True', reason: 'Maintenance' });
    // Exported just after the status write the plugin saw.
    const pausedMetric = () => s.operator?.metric('failover_policy_paused', { policy: 'orders' });
    await waitFor(async () => (await pausedMetric()) === 1 || undefined, {
      description: 'failover_policy_paused 1',
    });

    await s.pair.killPrimary();
    // Positive control: the observers find region-a down by quorum; only the pause holds it back.
    const blocked = await s.waitForPolicy((st) => {
      const c = condition(st, 'FailoverBlocked');
      return c?.status === 'True' && c.reason === 'Paused' ? st : undefined;
    }, 'the failover held back by the pause');
    expect(condition(blocked, 'PrimaryAvailable')).toMatchObject({ status: 'False' });
    expect(condition(blocked, 'Paused')?.message).toMatch(/held back now: failing over region-a/);
    // Well past detection and the hold-down, still nothing has moved.
    await waitForProbeRounds(s, 5, 'region-b');
    const still = (await s.policy()).status;
    expect(still).toMatchObject({ activePrimary: 'region-a', epoch: 0 });
    expect(still.currentOperation).toBeUndefined();
    expect(still.history ?? []).toEqual([]);
    expect(await s.writablePrimaries()).toEqual([]);

    const resumed = await plugin(s, ['resume', 'orders']);
    expect(resumed, resumed.stderr).toMatchObject({ code: 0 });
    expect(resumed.stdout).toMatch(/resumed/);
    const done = await s.waitForPolicy(
      (st) => (st.history?.[0]?.kind === 'Failover' && !st.currentOperation ? st : undefined),
      'the failover the pause held back',
    );
    expect(done.history?.[0]).toMatchObject({ from: 'region-a', to: 'region-b', result: 'Succeeded' });
    expect(done.pausedSince).toBeUndefined();
    expect(condition(done, 'Paused')).toMatchObject({ status: 'False', reason: 'Active' });
    expect(await s.writablePrimaries()).toEqual(['standby']);
    await waitFor(async () => ((await s.dnsAnswer()).join() === STANDBY_ADDRESS ? true : undefined), {
      description: 'DNS on region-b',
    });
    await waitFor(async () => (await pausedMetric()) === 0 || undefined, {
      description: 'failover_policy_paused 0',
    });
  });
});
