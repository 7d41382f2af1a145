/**
 * The database agent SIGKILLed at each local step of a reprotect and of a switchover's demotion,
 * with real parts (a PostgreSQL pair, the control plane, BIND, observers, the operator and the
 * agents as processes). The kills come from crash points in the agent (FAILOVER_FAILPOINTS):
 * each agent process dies at the point named, nothing flushed, and a new one takes the step up
 * from status and the data directory alone. Throughout: never two writable primaries.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FailoverStack, StackCluster } from '../harness/failover-stack.ts';
import { STANDBY_ADDRESS } from '../harness/failover-stack.ts';
import { waitFor } from '../harness/wait.ts';
import { WriterSampler } from '../harness/writers.ts';
import { ROOMY_LEASE, stackStarter } from './failover-fixtures.ts';

let stack: FailoverStack | undefined;
let sampler: WriterSampler | undefined;

afterEach(async () => {
  await sampler?.stop();
  sampler = undefined;
  await stack?.stop();
  stack = undefined;
});

const start = stackStarter('rc', { primaryLease: ROOMY_LEASE });

/** Starts the agent beside `cluster` armed to SIGKILL itself at `point`, and waits until it has. */
async function agentDyingAt(s: FailoverStack, cluster: StackCluster, point: string): Promise<void> {
  const agent = await s.startAgent(cluster, { failpoints: point });
  await waitFor(async () => !agent.running || undefined, {
    description: `the agent beside ${cluster} to reach ${point} and die there`,
    timeoutMs: 120_000,
  });
  expect(agent.logs()).toContain(`failpoint ${point}: SIGKILL`);
}

/**
 * A lossy failover to region B, region A assessed, then its agent killed and a reprotect of it
 * requested (accepting the loss): resolves with the operation once it waits in Rejoining.
 */
async function rejoinAskedWithAgentDown(s: FailoverStack) {
  await s.waitUntilHealthy();
  await Promise.all([s.startAgent('region-a'), s.startAgent('region-b')]);
  sampler = new WriterSampler(s);
  await s.failOverLosingWrites(3);
  await s.waitForAssessment();
  await s.agents.get('region-a')?.kill();
  await s.requestPromotion({ id: 'rejoin', target: 'region-a', kind: 'Reprotect', allowDataLoss: true });
  return s.waitForPolicy(
    (st) => (st.currentOperation?.step === 'Rejoining' ? st.currentOperation : undefined),
    'the Rejoining step',
  );
}

const rewindable = { wal_log_hints: 'on', full_page_writes: 'on' };

describe('reprotect with the agent or the operator killed', () => {
  it('an agent down when the rejoin is asked for, and an operator SIGKILLed mid-step: each resumes from status, one primary throughout', async () => {
    stack = await start({ pgSettings: rewindable, mode: 'Manual' });
    const waiting = await rejoinAskedWithAgentDown(stack);
    expect(waiting.kind).toBe('Reprotect');
    // The operator dies with it; a new agent takes the step up from status alone...
    await stack.operator?.kill();
    await stack.startAgent('region-a');
    await waitFor(
      async () => (await stack?.agentReport('region-a'))?.task?.phase === 'Succeeded' || undefined,
      { description: 'the new agent to rejoin region-a', timeoutMs: 60_000 },
    );
    expect(stack.pair.primary.running).toBe(true);
    // ...and a new operator finishes the operation from the agent's report and the world.
    await stack.startOperator();
    const done = await stack.waitForPolicy(
      (st) => (st.history?.[0]?.kind === 'Reprotect' && !st.currentOperation ? st.history[0] : undefined),
      'the reprotect to finish after the restarts',
    );
    expect(done).toMatchObject({ id: waiting.id, result: 'Succeeded' });
    await sampler?.stop();
    expect(sampler?.twoWriters).toBe(0);
    expect(await stack.writablePrimaries()).toEqual(['standby']);
  });

  it('the agent killed at each step: an interrupted rewind, a re-clone killed before and between its renames, a kill before the start: it ends a streaming standby, the old directory kept once', async () => {
    stack = await start({ pgSettings: rewindable, mode: 'Manual', reprotect: { allowReclone: true } });
    const op = await rejoinAskedWithAgentDown(stack);
    // Killed with pg_rewind's marker written: the directory is no longer to be trusted...
    await agentDyingAt(stack, 'region-a', 'rewind:marked');
    // ...so the next agent re-clones; killed once the copy is complete but not yet in place,
    await agentDyingAt(stack, 'region-a', 'reclone:copied');
    // then between the two renames (no data directory at all for a moment),
    await agentDyingAt(stack, 'region-a', 'reclone:set-aside');
    const dataDir = stack.pair.primary.dataDir;
    expect(existsSync(dataDir)).toBe(false);
    // and after the copy is configured as a standby, before it is started.
    await agentDyingAt(stack, 'region-a', 'rejoin:configured');
    expect(existsSync(join(dataDir, 'standby.signal'))).toBe(true);
    expect(stack.pair.primary.running).toBe(false);

    await stack.startAgent('region-a');
    const done = await stack.waitForPolicy(
      (st) => (st.history?.[0]?.id === op.id && !st.currentOperation ? st.history[0] : undefined),
      'the reprotect to finish after four agent kills',
    );
    expect(done).toMatchObject({ kind: 'Reprotect', result: 'Succeeded' });
    const task = (await stack.agentReport('region-a'))?.task;
    expect(task).toMatchObject({ operationId: op.id, phase: 'Succeeded', method: 'Reclone' });
    // The diverged directory is kept aside exactly once, rows and all; no half copy is left.
    const siblings = readdirSync(dirname(dataDir)).filter(
      (n) => n.startsWith(`${basename(dataDir)}.before-`) || n === `${basename(dataDir)}.reclone`,
    );
    expect(siblings).toEqual([basename(task?.keptDataDirectory ?? '?')]);
    expect(existsSync(join(task?.keptDataDirectory ?? '?', 'PG_VERSION'))).toBe(true);

    await stack.pair.sql('standby', "INSERT INTO write_load (payload) VALUES ('after')");
    await waitFor(
      async () =>
        (
          await stack?.pair.sql<{ n: string }>(
            'primary',
            "SELECT count(*)::text AS n FROM write_load WHERE payload = 'after'",
          )
        )?.[0]?.n === '1' || undefined,
      { description: 'region A, re-cloned, to replay a row written on region B' },
    );
    await sampler?.stop();
    expect(sampler?.samples.length).toBeGreaterThan(10);
    expect(sampler?.twoWriters).toBe(0);
    expect(await stack.writablePrimaries()).toEqual(['standby']);
    expect(await stack.dnsAnswer()).toEqual([STANDBY_ADDRESS]);
  });
});

describe('switchover with the agent killed mid-demotion', () => {
  it('killed right after the clean stop: the next agent finds the shutdown checkpoint, and the old primary follows without a rewind', async () => {
    stack = await start({ pgSettings: rewindable, mode: 'Manual' });
    await stack.waitUntilHealthy();
    await stack.startAgent('region-b');
    const doomed = await stack.startAgent('region-a', { failpoints: 'demote:stopped' });
    await waitFor(async () => (await stack?.agentReport('region-a'))?.server === 'Primary' || undefined, {
      description: 'the agent beside region-a to report',
    });
    sampler = new WriterSampler(stack);
    await stack.requestPromotion({ id: 'switch', target: 'region-b', kind: 'Switchover' });
    await waitFor(async () => !doomed.running || undefined, {
      description: 'the agent beside region-a to stop it and die',
      timeoutMs: 120_000,
    });
    expect(doomed.logs()).toContain('failpoint demote:stopped: SIGKILL');
    expect(stack.pair.primary.running).toBe(false);

    await stack.startAgent('region-a');
    const done = await stack.waitForPolicy(
      (st) => (st.history?.[0]?.kind === 'Switchover' && !st.currentOperation ? st.history[0] : undefined),
      'the switchover to finish',
    );
    expect(done).toMatchObject({ result: 'Succeeded', to: 'region-b' });
    expect(await stack.endedAgentTask('region-a')).toMatchObject({
      action: 'Demote',
      phase: 'Succeeded',
      method: 'Restart',
    });
    await waitFor(
      async () =>
        (
          await stack?.pair.sql<{ state: string }>(
            'standby',
            "SELECT state FROM pg_stat_replication WHERE application_name = 'region-a'",
            [],
            'postgres',
          )
        )?.[0]?.state === 'streaming' || undefined,
      { description: 'region A to stream from region B' },
    );
    await sampler.stop();
    expect(sampler.twoWriters).toBe(0);
    expect(await stack.writablePrimaries()).toEqual(['standby']);
  });

  it('killed once configured as a standby, before the start: the switchover goes on without it, and the next agent starts it as a standby of the new primary', async () => {
    stack = await start({ pgSettings: rewindable, mode: 'Manual', reprotect: { mode: 'Manual' } });
    await stack.waitUntilHealthy();
    await stack.startAgent('region-b');
    const doomed = await stack.startAgent('region-a', { failpoints: 'demote:configured' });
    await waitFor(async () => (await stack?.agentReport('region-a'))?.server === 'Primary' || undefined, {
      description: 'the agent beside region-a to report',
    });
    sampler = new WriterSampler(stack);
    await stack.requestPromotion({ id: 'switch', target: 'region-b', kind: 'Switchover' });
    await waitFor(async () => !doomed.running || undefined, {
      description: 'the agent beside region-a to configure it as a standby and die',
      timeoutMs: 120_000,
    });
    expect(doomed.logs()).toContain('failpoint demote:configured: SIGKILL');
    expect(stack.pair.primary.running).toBe(false);
    // The shutdown checkpoint was reported and replayed: the operator needs nothing more of region A.
    const done = await stack.waitForPolicy(
      (st) => (st.history?.[0]?.kind === 'Switchover' && !st.currentOperation ? st.history[0] : undefined),
      'the switchover to finish with region A stopped',
    );
    expect(done).toMatchObject({ result: 'Succeeded', to: 'region-b' });
    const left = (await stack.agentReport('region-a'))?.task;
    expect(left).toMatchObject({ operationId: done.id, action: 'Demote', phase: 'Running' });
    expect(left?.stoppedLsn).toBeTruthy();
    expect(stack.pair.primary.running).toBe(false);

    // Started after the operation ended, the agent still finishes the demotion it was given.
    await stack.startAgent('region-a');
    expect(await stack.endedAgentTask('region-a', () => [done.id])).toMatchObject({
      action: 'Demote',
      phase: 'Succeeded',
      method: 'Restart',
    });
    await stack.waitForPolicy(
      (st) => st.conditions?.find((c) => c.type === 'Redundant' && c.status === 'True'),
      'region A a replicating standby of region B',
    );
    await sampler.stop();
    expect(sampler.twoWriters).toBe(0);
    expect(await stack.writablePrimaries()).toEqual(['standby']);
    // The clean path: the target replayed the shutdown checkpoint before it was promoted.
    await stack.eventsWith(['PrimaryDemoted']);
  });
});
