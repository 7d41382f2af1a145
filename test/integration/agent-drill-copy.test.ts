/**
 * The database agent's side of an isolated drill, with real parts: a PostgreSQL pair, the
 * control plane, and the agent beside the standby as a process. The policy's status.drill is set
 * by hand, as the operator would set it (the operator is stopped once the pair is healthy and the
 * heartbeat written, so nothing else writes the status): the agent copies its standby, promotes
 * the copy on a spare port, and removes it when the drill no longer wants it; a killed agent's
 * leftovers are removed by the next one, and a directory without the agent's marker never is.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentReport } from '../../operator/src/api/v1alpha1/index.ts';
import { failoverPolicyType } from '../../operator/src/controllers/resources.ts';
import { type FailoverStack, STANDBY_ADDRESS } from '../harness/failover-stack.ts';
import { acceptsConnections, freePort } from '../harness/ports.ts';
import { postgresBinDir } from '../harness/postgres.ts';
import { waitFor } from '../harness/wait.ts';
import { ROOMY_LEASE, stackStarter } from './failover-fixtures.ts';

type DrillCopyReport = NonNullable<AgentReport['drillCopy']>;

let stack: FailoverStack;
const start = stackStarter('dc', { primaryLease: ROOMY_LEASE });

beforeAll(async () => {
  // A standby can only be copied when the primary writes full pages (pg_basebackup refuses otherwise).
  stack = await start({ pgSettings: { full_page_writes: 'on' } });
  // The operator writes the heartbeat the copy is judged by, then leaves status.drill to the test.
  await stack.waitUntilHealthy();
  await stack.operator?.stop();
  // Enough data that a copy takes seconds: an agent can be killed, or a drill cancelled, mid-copy.
  await stack.pair.sql(
    'primary',
    'CREATE TABLE bulk AS SELECT repeat(md5(i::text), 32) AS t FROM generate_series(1, 400000) i',
  );
  await stack.pair.waitForReplayCatchUp();
}, 240_000);

afterAll(async () => {
  if (!stack) return;
  stopLeftoverCopies(stack);
  await stack.stop();
});

/** A test that failed half way may leave a copy's server running: stopped before the stack goes. */
function stopLeftoverCopies(s: FailoverStack): void {
  const dataDir = s.pair.standby.dataDir;
  for (const name of readdirSync(dirname(dataDir))) {
    const pgdata = join(dirname(dataDir), name, 'pgdata');
    if (!name.startsWith(`${basename(dataDir)}.drill-`) || !existsSync(join(pgdata, 'postmaster.pid')))
      continue;
    const ctl = [join(postgresBinDir(), 'pg_ctl'), 'stop', '-D', pgdata, '-m', 'immediate'];
    try {
      if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', ...ctl]);
      else execFileSync(ctl[0] as string, ctl.slice(1));
    } catch {
      // not running
    }
  }
}

/** The pg_basebackup processes (and their WAL streamers) filling `directory`. */
function copiers(directory: string): number[] {
  return readdirSync('/proc')
    .filter((pid) => /^\d+$/.test(pid))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return basename(argv[0] ?? '') === 'pg_basebackup' && argv.includes(join(directory, 'pgdata'));
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function setDrill(drill: Record<string, unknown> | null): Promise<void> {
  await stack.client.mergePatch(
    failoverPolicyType,
    stack.options.namespace,
    'orders',
    { status: { drill } },
    'status',
  );
}

function isolatedDrill(id: string, port: number, leg: string) {
  return {
    id,
    mode: 'Isolated',
    from: 'region-a',
    to: 'region-b',
    startedAt: new Date().toISOString(),
    leg,
    isolated: { recordName: `_drill.db.failover.test`, port },
  };
}

function copyReport(
  drillId: string,
  phase: DrillCopyReport['phase'],
  timeoutMs = 120_000,
): Promise<DrillCopyReport> {
  return waitFor(
    async () => {
      const copy = (await stack.agentReport('region-b'))?.drillCopy;
      if (copy?.drillId === drillId && copy.phase === 'Failed' && phase !== 'Failed')
        throw new Error(`the drill copy failed: ${copy.message}`);
      return copy?.drillId === drillId && copy.phase === phase ? copy : undefined;
    },
    { description: `the drill copy of ${drillId} ${phase}`, timeoutMs },
  ).catch(async (err: Error) => {
    // A timeout alone says nothing about why: what the agent last reported and logged.
    const report = JSON.stringify((await stack.agentReport('region-b'))?.drillCopy);
    const log = stack.agents.get('region-b')?.logs().split('\n').slice(-20).join('\n');
    throw new Error(`${err.message}\nlast report: ${report}\nagent log tail:\n${log}`);
  });
}

/** Whether anything accepts TCP connections on the standby's address at `port`. */
const listening = (port: number) => acceptsConnections(STANDBY_ADDRESS, port);

async function onCopy<T>(port: number, use: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: STANDBY_ADDRESS,
    port,
    user: stack.pair.user,
    password: stack.pair.password,
    database: stack.pair.database,
    connectionTimeoutMillis: 5000,
  });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

async function startAgentDyingAt(point: string): Promise<void> {
  const agent = await stack.startAgent('region-b', { failpoints: point });
  await waitFor(async () => !agent.running || undefined, {
    description: `the agent to reach ${point} and die there`,
    timeoutMs: 120_000,
  });
  expect(agent.logs()).toContain(`failpoint ${point}: SIGKILL`);
}

describe('an isolated drill copy beside the standby', () => {
  it('copies the standby, promotes the copy on the spare port, then removes it; the standby and primary untouched', async () => {
    const port = await freePort();
    const drillId = 'drill-20261201060000001';
    await stack.startAgent('region-b');
    await waitFor(async () => (await stack.agentReport('region-b'))?.server === 'Standby' || undefined, {
      description: 'the agent beside region-b to report',
    });
    await setDrill(isolatedDrill(drillId, port, 'Copying'));

    const serving = await copyReport(drillId, 'Serving');
    process.stdout.write(
      `drill copy: ${serving.copyBytes} bytes in ${serving.copySeconds} s; promoted in ${serving.promotionSeconds} s; newest heartbeat ${serving.newestHeartbeatAt} (copied ${serving.copiedAt})\n`,
    );
    expect(serving).toMatchObject({ port, directory: `${stack.pair.standby.dataDir}.drill-${drillId}` });
    expect(serving.copyBytes).toBeGreaterThan(100_000_000);
    expect(serving.copySeconds).toBeGreaterThan(0);
    expect(serving.promotionSeconds).toBeGreaterThan(0);
    expect(serving.newestHeartbeatAt).toBeDefined();
    expect(Date.parse(serving.newestHeartbeatAt ?? '')).toBeLessThanOrEqual(
      Date.parse(serving.copiedAt ?? ''),
    );

    // The copy is a primary that takes writes, over the network on the standby's address.
    const copied = await onCopy(port, async (c) => {
      await c.query('CREATE TABLE drill_probe (n int)');
      await c.query('INSERT INTO drill_probe VALUES (1), (2)');
      const { rows } = await c.query<{ n: string; recovery: boolean; name: string }>(
        "SELECT (SELECT count(*) FROM drill_probe)::text AS n, pg_is_in_recovery() AS recovery, current_setting('cluster_name') AS name",
      );
      return rows[0];
    });
    expect(copied).toEqual({ n: '2', recovery: false, name: `drill-${drillId}` });

    // The standby still a standby streaming from the primary; the primary never saw the copy's write.
    const [standby] = await stack.pair.sql<{ recovery: boolean; status: string }>(
      'standby',
      'SELECT pg_is_in_recovery() AS recovery, (SELECT status FROM pg_stat_wal_receiver) AS status',
      [],
      'postgres',
    );
    expect(standby).toEqual({ recovery: true, status: 'streaming' });
    const [primary] = await stack.pair.sql<{ recovery: boolean; probe: string | null; senders: string }>(
      'primary',
      "SELECT pg_is_in_recovery() AS recovery, to_regclass('public.drill_probe')::text AS probe, (SELECT count(*) FROM pg_stat_replication)::text AS senders",
    );
    expect(primary).toEqual({ recovery: false, probe: null, senders: '1' });
    await stack.pair.sql('primary', "INSERT INTO write_load (payload) VALUES ('during the drill')");
    await stack.pair.waitForReplayCatchUp();
    expect(
      await stack.pair.sql('standby', "SELECT 1 FROM write_load WHERE payload = 'during the drill'"),
    ).toHaveLength(1);

    // Pointing and Writing keep it; Cleaning removes it.
    await setDrill({ leg: 'Writing' });
    await setDrill({ leg: 'Cleaning' });
    const removed = await copyReport(drillId, 'Removed');
    expect(removed.finishedAt).toBeDefined();
    expect(existsSync(serving.directory)).toBe(false);
    expect(await listening(port)).toBe(false);
    const [after] = await stack.pair.sql<{ recovery: boolean; status: string }>(
      'standby',
      'SELECT pg_is_in_recovery() AS recovery, (SELECT status FROM pg_stat_wal_receiver) AS status',
      [],
      'postgres',
    );
    expect(after).toEqual({ recovery: true, status: 'streaming' });
    await setDrill(null);
    await stack.agents.get('region-b')?.stop();
  });

  it('an agent killed mid-copy resumes; one started after the drill removes the copy left, never an unmarked directory', async () => {
    const port = await freePort();
    const drillId = 'drill-20261201060000002';
    const dataDir = stack.pair.standby.dataDir;
    const foreign = `${dataDir}.drill-not-ours`;
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'keep-me'), 'someone else’s\n');

    await setDrill(isolatedDrill(drillId, port, 'Copying'));
    // Killed while pg_basebackup runs: the marked directory stays, the copier may run on.
    await startAgentDyingAt('drill-copy:copying');
    const directory = `${dataDir}.drill-${drillId}`;
    expect(existsSync(join(directory, 'failover-agent.drill-copy'))).toBe(true);
    // Its pg_basebackup (and the WAL streamer it forked) outlive it.
    expect(copiers(directory).length).toBeGreaterThan(0);
    // The next agent takes it up, still wanted: the copy is made again and serves.
    await stack.startAgent('region-b');
    const serving = await copyReport(drillId, 'Serving');
    process.stdout.write(
      `after a kill mid-copy: ${serving.copyBytes} bytes in ${serving.copySeconds} s; promoted in ${serving.promotionSeconds} s\n`,
    );
    expect(
      await onCopy(port, async (c) => (await c.query('SELECT pg_is_in_recovery() AS r')).rows[0]),
    ).toEqual({
      r: false,
    });
    expect(copiers(directory)).toEqual([]);

    // Killed while the copy serves, and the drill gone from status before the next agent starts.
    await stack.agents.get('region-b')?.kill();
    expect(await listening(port)).toBe(true);
    await setDrill(null);
    await stack.startAgent('region-b');
    const removed = await copyReport(drillId, 'Removed');
    expect(removed.message).toMatch(/deleted/);
    expect(existsSync(directory)).toBe(false);
    expect(await listening(port)).toBe(false);
    // Named like a copy but without the marker: not the agent's to delete.
    expect(existsSync(join(foreign, 'keep-me'))).toBe(true);
    const [standby] = await stack.pair.sql<{ recovery: boolean }>(
      'standby',
      'SELECT pg_is_in_recovery() AS recovery',
      [],
      'postgres',
    );
    expect(standby?.recovery).toBe(true);
  });
  it('a drill cancelled while pg_basebackup runs stops it, and the part copied is removed', async () => {
    if (!stack.agents.get('region-b')?.running) await stack.startAgent('region-b');
    const port = await freePort();
    const drillId = 'drill-20261201060000003';
    const directory = `${stack.pair.standby.dataDir}.drill-${drillId}`;
    await setDrill(isolatedDrill(drillId, port, 'Copying'));
    await waitFor(() => existsSync(join(directory, 'pgdata', 'base')) || undefined, {
      description: 'pg_basebackup to be copying',
      timeoutMs: 60_000,
    });
    const cancelledAt = performance.now();
    await setDrill({ leg: 'Cleaning' });
    const removed = await copyReport(drillId, 'Removed');
    const seconds = (performance.now() - cancelledAt) / 1000;
    process.stdout.write(
      `a copy cancelled mid-way: removed ${seconds.toFixed(2)} s after the drill let it go\n`,
    );
    expect(removed.copySeconds).toBeUndefined();
    expect(copiers(directory)).toEqual([]);
    expect(existsSync(directory)).toBe(false);
    expect(await listening(port)).toBe(false);
    expect(stack.agents.get('region-b')?.logs()).toContain('stopping pg_basebackup');
  });
});
