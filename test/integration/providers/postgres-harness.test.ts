/**
 * The PostgreSQL harness itself: a real primary and a streaming standby on loopback, replay that
 * can be paused, a primary that can be killed and restarted, and nothing left running or on disk.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresPair, startPostgresPair } from '../../harness/postgres.ts';
import { HarnessError, isAlive } from '../../harness/processes.ts';
import { waitFor } from '../../harness/wait.ts';

const pairs: PostgresPair[] = [];
afterAll(async () => {
  await Promise.all(pairs.map((p) => p.stop()));
});

async function startPair(name: string): Promise<PostgresPair> {
  const pair = await startPostgresPair({ name });
  pairs.push(pair);
  return pair;
}

describe('a started pair', () => {
  let pair: PostgresPair;
  beforeAll(async () => {
    pair = await startPair('harness');
    console.warn(`[postgres harness] pair started in ${pair.startupMs} ms`);
  });

  it('has a primary and a hot standby streaming through its slot under its application_name', async () => {
    expect(pair.startupMs).toBeGreaterThan(0);
    const [primary] = await pair.sql('primary', 'SELECT pg_is_in_recovery() AS r');
    const [standby] = await pair.sql('standby', 'SELECT pg_is_in_recovery() AS r');
    expect(primary?.r).toBe(false);
    expect(standby?.r).toBe(true);
    const replication = await pair.sql('primary', 'SELECT application_name, state FROM pg_stat_replication');
    expect(replication).toEqual([{ application_name: 'standby', state: 'streaming' }]);
    const slots = await pair.sql('primary', 'SELECT slot_name, slot_type, active FROM pg_replication_slots');
    expect(slots).toEqual([{ slot_name: 'standby', slot_type: 'physical', active: true }]);
  });

  it('listens on 127.0.0.1 only and asks TCP clients for a scram-sha-256 password', async () => {
    const [row] = await pair.sql('primary', "SELECT current_setting('listen_addresses') AS listen");
    expect(row?.listen).toBe('127.0.0.1');
    const session = await pair.connect('primary');
    try {
      const { rows } = await session.query(
        'SELECT current_user AS who, (SELECT rolpassword LIKE $1 FROM pg_authid WHERE rolname = current_user) AS scram',
        ['SCRAM-SHA-256$%'],
      );
      expect(rows[0]).toEqual({ who: pair.user, scram: true });
    } finally {
      await session.end();
    }
    const wrong = new pg.Client({ ...pair.connection('primary'), password: 'not-the-password' });
    wrong.on('error', () => undefined);
    await expect(wrong.connect()).rejects.toMatchObject({ code: '28P01' });
  });

  it('streams a write load: every committed row reaches the standby', async () => {
    const load = pair.startWriteLoad({ ratePerSecond: 40 });
    await waitFor(() => load.progress().committed >= 20, { description: '20 committed inserts' });
    const result = await load.stop();
    expect(result.failed).toBe(0);
    expect(result.lastId).toBeGreaterThanOrEqual(result.committed);
    await pair.waitForReplayCatchUp();
    const [row] = await pair.sql<{ n: string; last: string }>(
      'standby',
      'SELECT count(*) AS n, max(id) AS last FROM write_load',
    );
    expect(Number(row?.n)).toBeGreaterThanOrEqual(result.committed);
    expect(Number(row?.last)).toBe(result.lastId);
  });

  it('pauses replay while WAL keeps arriving, and catches up after resuming', async () => {
    await pair.pauseReplay();
    const load = pair.startWriteLoad({ ratePerSecond: 40 });
    try {
      const [before] = await pair.sql<{ replay: string }>(
        'standby',
        'SELECT pg_last_wal_replay_lsn()::text AS replay',
      );
      await waitFor(
        async () => {
          const [row] = await pair.sql<{ received_ahead: boolean; replay: string }>(
            'standby',
            `SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn() AS received_ahead,
                    pg_last_wal_replay_lsn()::text AS replay`,
          );
          return row?.received_ahead && row.replay === before?.replay;
        },
        { description: 'WAL received but not replayed' },
      );
    } finally {
      await load.stop();
      await pair.resumeReplay();
    }
    await pair.waitForReplayCatchUp();
  });
});

describe('outages', () => {
  it('a killed primary takes its backends with it, refuses connections, and recovers on start', async () => {
    const pair = await startPair('outage');
    const session = await pair.connect('primary');
    const postmaster = pair.primary.pid ?? 0;
    const backends = childrenOf(postmaster);
    expect(backends.length).toBeGreaterThan(3);

    await pair.killPrimary();
    expect(pair.primary.running).toBe(false);
    expect([postmaster, ...backends].filter(runningProcess)).toEqual([]);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    const client = new pg.Client(pair.connection('primary'));
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await pair.startPrimary();
    await pair.waitForStreaming();
    await pair.sql('primary', 'INSERT INTO write_load (payload) VALUES ($1)', ['after restart']);
    await pair.waitForReplayCatchUp();
    expect(readFileSync(pair.primary.logPath, 'utf8')).toMatch(/was interrupted|not properly shut down/);
  });

  it('a frozen server keeps its port open but answers nothing until thawed', async () => {
    const pair = await startPair('frozen');
    pair.primary.freeze();
    try {
      const client = new pg.Client({ ...pair.connection('primary'), connectionTimeoutMillis: 1_000 });
      client.on('error', () => undefined);
      await expect(client.connect()).rejects.toThrow(/timeout/);
    } finally {
      pair.primary.thaw();
    }
    expect(await pair.sql('primary', 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
  });
});

describe('cleanup and failures', () => {
  it('stop ends both servers and removes the directory', async () => {
    const pair = await startPostgresPair({ name: 'cleanup' });
    const pids = [pair.primary.pid ?? 0, pair.standby.pid ?? 0];
    const all = [...pids, ...pids.flatMap(childrenOf)];
    expect(existsSync(pair.dir)).toBe(true);
    await pair.stop();
    expect(all.filter(runningProcess)).toEqual([]);
    expect(existsSync(pair.dir)).toBe(false);
    await pair.stop();
  });

  it('a harness process killed with SIGKILL takes its servers with it', async () => {
    const script = `
      import { startPostgresPair } from './test/harness/postgres.ts';
      const pair = await startPostgresPair({ name: 'orphan' });
      console.log(JSON.stringify({ dir: pair.dir, pids: [pair.primary.pid, pair.standby.pid] }));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const started = await waitFor(
      () => (out.includes('\n') ? (JSON.parse(out) as { dir: string; pids: number[] }) : undefined),
      { description: 'the child to start a pair', timeoutMs: 120_000 },
    );
    const all = [...started.pids, ...started.pids.flatMap(childrenOf)];
    expect(all.filter(runningProcess).length).toBeGreaterThan(4);
    child.kill('SIGKILL');
    await waitFor(() => all.every((pid) => !runningProcess(pid)), {
      description: 'the orphaned servers and their backends to exit',
    });
    rmSync(started.dir, { recursive: true, force: true });
  });

  it('a port already taken fails with the step and the fix, and leaves nothing running', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'failover-pg-taken-test-'));
    try {
      const err = await startPostgresPair({ name: 'taken', dir, ports: { standby: port } }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HarnessError);
      expect((err as HarnessError).step).toBe('start postgres (taken standby)');
      expect((err as Error).message).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(await postmastersUnder(dir)).toEqual([]);
    } finally {
      blocker.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a server that refuses its configuration fails with the step, the log path and the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'failover-pg-bad-config-test-'));
    try {
      const err = await startPostgresPair({
        name: 'bad',
        dir,
        settings: { shared_buffers: "'lots'" },
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HarnessError);
      expect((err as HarnessError).step).toBe('start postgres (bad primary)');
      expect((err as HarnessError).logPath).toBe(join(dir, 'primary.log'));
      expect((err as Error).message).toMatch(/exited early.*invalid value for parameter "shared_buffers"/s);
      expect(await postmastersUnder(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Postmasters whose command line names a data directory under `dir`. */
async function postmastersUnder(dir: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)('ps', ['-eo', 'args=']);
  return stdout.split('\n').filter((args) => args.includes(`-D ${dir}`));
}

/** Direct children of `pid` (a postmaster's backends and auxiliary processes), from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => procStat(Number(entry))?.ppid === pid)
    .map(Number);
}

/** Alive and not a zombie. */
function runningProcess(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z' && isAlive(pid);
}

function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}
