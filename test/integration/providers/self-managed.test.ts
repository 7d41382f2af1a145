/**
 * The self-managed PostgreSQL provider against a real primary and streaming standby: what it
 * observes (roles, LSNs, lag, heartbeat, failures), promotion with pg_promote(), and fencing.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isLsn, replicationLagBytes } from '../../../operator/src/providers/database/lsn.ts';
import type { DatabaseObservation } from '../../../operator/src/providers/database/port.ts';
import { COMMIT_LOCALLY } from '../../../operator/src/providers/database/postgres-sql.ts';
import {
  SelfManagedPostgres,
  type SelfManagedPostgresOptions,
} from '../../../operator/src/providers/database/self-managed.ts';
import { ProviderError } from '../../../operator/src/providers/errors.ts';
import { freePort } from '../../harness/ports.ts';
import { type PostgresNodeName, type PostgresPair, startPostgresPair } from '../../harness/postgres.ts';
import { TcpProxy } from '../../harness/tcp-proxy.ts';
import { waitFor } from '../../harness/wait.ts';

const pairs: PostgresPair[] = [];
const providers: SelfManagedPostgres[] = [];
const sessions: pg.Client[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.end().catch(() => undefined)));
  await Promise.all(providers.map((p) => p.close()));
  await Promise.all(pairs.map((p) => p.stop()));
});

async function startPair(name: string): Promise<PostgresPair> {
  const pair = await startPostgresPair({ name });
  pairs.push(pair);
  return pair;
}

function provider(
  pair: PostgresPair,
  node: PostgresNodeName,
  options: SelfManagedPostgresOptions & { connection?: Partial<ReturnType<PostgresPair['connection']>> } = {},
): SelfManagedPostgres {
  const { connection, ...rest } = options;
  const p = new SelfManagedPostgres(pair.connection(node, connection), { connectTimeoutMs: 3_000, ...rest });
  providers.push(p);
  return p;
}

async function session(pair: PostgresPair, node: PostgresNodeName): Promise<pg.Client> {
  const client = await pair.connect(node);
  sessions.push(client);
  return client;
}

/** The LSN of a reachable observation; fails the test if there is none. */
function lsnOf(o: DatabaseObservation): string {
  if (!o.lsn) throw new Error(`observation has no LSN: ${JSON.stringify(o)}`);
  return o.lsn;
}

function insertRow(client: pg.Client, payload: string): Promise<unknown> {
  return client.query('INSERT INTO write_load (payload) VALUES ($1)', [payload]);
}

describe('observing a healthy pair', () => {
  let pair: PostgresPair;
  let primary: SelfManagedPostgres;
  let standby: SelfManagedPostgres;
  beforeAll(async () => {
    pair = await startPair('observe');
    primary = provider(pair, 'primary');
    standby = provider(pair, 'standby');
  });

  it('sees the primary with its streaming standby, and the standby in recovery', async () => {
    const p = await primary.observe();
    expect(p).toMatchObject({ reachable: true, role: 'Primary', timeline: 1 });
    expect(p.failure).toBeUndefined();
    expect(isLsn(lsnOf(p))).toBe(true);
    expect(p.replicas).toEqual([
      expect.objectContaining({
        applicationName: 'standby',
        state: 'streaming',
        clientAddr: '127.0.0.1',
        syncState: 'async',
      }),
    ]);
    // No synchronous standby is named: commits do not wait for one.
    expect(p.commitsWaitFor).toBeUndefined();
    expect(p.durationMs).toBeGreaterThanOrEqual(0);

    const s = await standby.observe();
    expect(s).toMatchObject({ reachable: true, role: 'Standby', timeline: 1, replayPaused: false });
    expect(isLsn(lsnOf(s))).toBe(true);
    expect(isLsn(s.receiveLsn ?? '')).toBe(true);
    expect(s.replicas).toBeUndefined();
  });

  it("names its WAL senders from memory, reading backends' activity only for a sender not seen before", async () => {
    // The probe statement's rows, as pg hands them back: which senders it named itself.
    type Sender = { pid: number; activity: { application_name: string } | null };
    const seen: Sender[][] = [];
    const query = pg.Client.prototype.query;
    const spy = vi.spyOn(pg.Client.prototype, 'query').mockImplementation(function (
      this: pg.Client,
      ...args: unknown[]
    ) {
      const result = (query as (...a: unknown[]) => unknown).apply(this, args);
      const name = (args[0] as { name?: string } | undefined)?.name;
      if (name?.startsWith('failover-probe') && result instanceof Promise)
        // A statement that fails (the heartbeat table not there yet) is asked again without it.
        result.then(
          (r: pg.QueryResult<{ facts: { replicas: Sender[] | null } }>) =>
            seen.push(r.rows[0]?.facts.replicas ?? []),
          () => undefined,
        );
      return result;
    } as typeof query);
    const fresh = provider(pair, 'primary');
    try {
      const first = await fresh.observe();
      const second = await fresh.observe();
      expect(second.replicas).toEqual(first.replicas);
      expect(second.replicas).toEqual([
        expect.objectContaining({ applicationName: 'standby', clientAddr: '127.0.0.1' }),
      ]);
      const [pid] = seen.map((rows) => rows[0]?.pid);
      expect(seen.map((rows) => rows.map((r) => r.activity?.application_name ?? null))).toEqual([
        ['standby'],
        [null],
      ]);

      // The standby's connection ends and it connects again: a new sender, named by reading it.
      const admin = await session(pair, 'primary');
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_replication');
      const again = await waitFor(
        async () => {
          const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_replication');
          return rows[0] && rows[0].pid !== pid ? rows[0].pid : undefined;
        },
        { description: 'the standby to connect again with a new WAL sender' },
      );
      seen.length = 0;
      expect((await fresh.observe()).replicas).toEqual([
        expect.objectContaining({ applicationName: 'standby', clientAddr: '127.0.0.1' }),
      ]);
      expect(seen).toEqual([
        [
          expect.objectContaining({
            pid: again,
            activity: expect.objectContaining({ application_name: 'standby' }),
          }),
        ],
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  it('writes the heartbeat on the primary, creating its table, and the standby replays it', async () => {
    expect((await primary.observe()).heartbeat).toBeUndefined();
    const at = new Date('2026-01-05T10:00:00.000Z');
    await primary.writeHeartbeat(1, at);
    expect((await primary.observe()).heartbeat).toEqual({ epoch: 1, writtenAt: at });
    await waitFor(async () => (await standby.observe()).heartbeat?.writtenAt.getTime() === at.getTime(), {
      description: 'the standby to replay the heartbeat',
    });
    const onStandby = await standby.writeHeartbeat(1, new Date()).catch((e: unknown) => e);
    expect(onStandby).toBeInstanceOf(ProviderError);
    expect(onStandby).toMatchObject({ reason: 'Rejected', message: expect.stringMatching(/read-only/) });
  });

  it('an idle pair shows near-zero byte lag once the heartbeat has replayed', async () => {
    const at = new Date();
    await primary.writeHeartbeat(1, at);
    await waitFor(async () => (await standby.observe()).heartbeat?.writtenAt.getTime() === at.getTime(), {
      description: 'the standby to replay the latest heartbeat',
    });
    const lag = await waitFor(
      async () => {
        const bytes = replicationLagBytes(lsnOf(await primary.observe()), lsnOf(await standby.observe()));
        return bytes <= 1024 ? { bytes } : undefined;
      },
      { description: 'byte lag of an idle pair to be at most 1 KiB', timeoutMs: 30_000 },
    );
    expect(lag.bytes).toBeLessThanOrEqual(1024);
  });

  it('with replay paused under write load, byte lag grows and the replayed heartbeat ages; both recover', async () => {
    // What the controller does every probe: heartbeat on the primary, then both observations.
    const probe = async () => {
      const at = new Date();
      await primary.writeHeartbeat(1, at);
      const p = await primary.observe();
      const s = await standby.observe();
      const replayedAt = s.heartbeat?.writtenAt.getTime() ?? 0;
      return {
        p,
        s,
        lagBytes: replicationLagBytes(lsnOf(p), lsnOf(s)),
        heartbeatAgeMs: at.getTime() - replayedAt,
      };
    };

    await pair.pauseReplay();
    const load = pair.startWriteLoad({ ratePerSecond: 50 });
    try {
      const first = await waitFor(
        async () => {
          const x = await probe();
          return x.s.replayPaused && x.lagBytes > 0 ? x : undefined;
        },
        { description: 'replay paused and some lag' },
      );
      const later = await waitFor(
        async () => {
          const x = await probe();
          return x.lagBytes > first.lagBytes + 20_000 && x.heartbeatAgeMs > 2_000 ? x : undefined;
        },
        { description: 'lag to grow by 20 kB and the replayed heartbeat to be 2 s old' },
      );
      // Received but not replayed: the gap is replay, not the network.
      expect(replicationLagBytes(later.s.receiveLsn ?? '0/0', lsnOf(later.s))).toBeGreaterThan(0);
      expect(later.p.replicas?.[0]?.replayLsn).toBe(lsnOf(later.s));
    } finally {
      await pair.resumeReplay();
      await load.stop();
    }
    const recovered = await waitFor(
      async () => {
        const x = await probe();
        return !x.s.replayPaused && x.lagBytes <= 1024 && x.heartbeatAgeMs < 1_000 ? x : undefined;
      },
      { description: 'lag and heartbeat age to recover after resume' },
    );
    expect(recovered.lagBytes).toBeLessThanOrEqual(1024);
  });

  it('a closed port is Unreachable, reported without throwing', async () => {
    const closed = provider(pair, 'primary', { connection: { port: await freePort() } });
    const o = await closed.observe();
    expect(o).toMatchObject({ reachable: false, role: 'Unknown', failure: { reason: 'Unreachable' } });
    expect(o.failure?.message).toMatch(/ECONNREFUSED/);
  });

  it('a wrong password is AuthenticationFailed and the message says what to fix, without the password', async () => {
    const wrong = provider(pair, 'primary', { connection: { password: 'wrong-password-1234' } });
    const o = await wrong.observe();
    expect(o).toMatchObject({ reachable: false, failure: { reason: 'AuthenticationFailed' } });
    expect(o.failure?.message).toMatch(/password authentication failed.*credentials Secret/);
    expect(o.failure?.message).not.toContain('wrong-password-1234');
    await expect(wrong.writeHeartbeat(1, new Date())).rejects.toMatchObject({
      reason: 'AuthenticationFailed',
    });
  });

  it('TLS required of a server without TLS is TlsFailed', async () => {
    const tls = provider(pair, 'primary', { connection: { sslMode: 'require' } });
    expect(await tls.observe()).toMatchObject({ reachable: false, failure: { reason: 'TlsFailed' } });
  });

  it('a database that does not exist is NotFound', async () => {
    const missing = provider(pair, 'primary', { connection: { database: 'no_such_db' } });
    expect(await missing.observe()).toMatchObject({
      reachable: false,
      failure: { reason: 'NotFound', message: expect.stringMatching(/connection\.database/) },
    });
  });

  it('a frozen server is a Timeout within the connect timeout', async () => {
    const impatient = provider(pair, 'primary', { connectTimeoutMs: 1_000, statementTimeoutMs: 1_000 });
    pair.primary.freeze();
    try {
      const o = await impatient.observe();
      expect(o).toMatchObject({ reachable: false, failure: { reason: 'Timeout' } });
      expect(o.durationMs).toBeLessThan(5_000);
    } finally {
      pair.primary.thaw();
    }
    expect(await impatient.observe()).toMatchObject({ reachable: true, role: 'Primary' });
  });

  it('a session slower to start than the connect timeout is kept and answers a later probe, on no new connection', async () => {
    const target = pair.connection('primary');
    // Each new connection's first answer comes 1.5 s after it opened (forks and SCRAM under load),
    // after the probes' 1 s connect timeout.
    const slow = await TcpProxy.start(target, '127.0.0.1', { startDelayMs: 1_500 });
    const limited = await TcpProxy.start(target, '127.0.0.1', { startDelayMs: 1_500 });
    try {
      const patient = provider(pair, 'primary', { connectTimeoutMs: 1_000, connection: { port: slow.port } });
      // The slowness is seen: the probe's wait for a session ends at the connect timeout.
      const first = await patient.observe();
      expect(first).toMatchObject({ reachable: false, failure: { reason: 'Timeout' } });
      const connections = slow.accepted;
      // The session the server went on starting answers the next probe; none is opened beside it.
      const answered = await waitFor(
        async () => {
          const o = await patient.observe();
          return o.reachable ? o : undefined;
        },
        { description: 'a probe answered on the session started for the first', timeoutMs: 10_000 },
      );
      expect(answered).toMatchObject({ role: 'Primary' });
      expect(slow.accepted).toBe(connections);
      expect((await patient.observe()).durationMs).toBeLessThan(1_000);

      // Control, as before: a session dropped with the probe's wait (sessionStartTimeoutMs 0)
      // is asked for again by every probe, and no probe is ever answered.
      const hasty = provider(pair, 'primary', {
        connectTimeoutMs: 1_000,
        sessionStartTimeoutMs: 0,
        connection: { port: limited.port },
      });
      expect(await hasty.observe()).toMatchObject({ reachable: false, failure: { reason: 'Timeout' } });
      const before = limited.accepted;
      for (let i = 0; i < 3; i++) {
        expect(await hasty.observe()).toMatchObject({ reachable: false, failure: { reason: 'Timeout' } });
      }
      // (A fourth when the first probe's dropped session is failed only after the next probe
      // began: that probe asks with a bare socket first, as before any first session.)
      expect(limited.accepted - before).toBeGreaterThanOrEqual(3);

      // A provider closed while a session is still starting for it does not wait for that session.
      const closing = provider(pair, 'primary', {
        connectTimeoutMs: 500,
        connection: { port: limited.port },
      });
      expect(await closing.observe()).toMatchObject({ reachable: false, failure: { reason: 'Timeout' } });
      const closedIn = performance.now();
      await closing.close();
      expect(performance.now() - closedIn).toBeLessThan(500);
    } finally {
      await Promise.all([slow.stop(), limited.stop()]);
    }
  });
});

describe("the active primary's probe and heartbeat in one statement", () => {
  let pair: PostgresPair;
  let primary: SelfManagedPostgres;
  beforeAll(async () => {
    pair = await startPair('inline');
    primary = provider(pair, 'primary');
  });

  /**
   * What `fn` sends, counted as the statements sessions were given; not the setting a session
   * opened within it starts with (a fence before ends the pooled sessions).
   */
  async function statementsOf<T>(fn: () => Promise<T>): Promise<{ result: T; statements: number }> {
    const spy = vi.spyOn(pg.Client.prototype, 'query');
    try {
      const result = await fn();
      const sent = spy.mock.calls.filter(([q]) => q !== COMMIT_LOCALLY);
      return { result, statements: sent.length };
    } finally {
      spy.mockRestore();
    }
  }

  it('writes the first heartbeat in two steps (creating the table), then asks both in one statement', async () => {
    const first = new Date('2026-03-01T10:00:00.000Z');
    const r1 = await primary.observeWithHeartbeat(1, first);
    expect(r1.heartbeatError).toBeUndefined();
    expect(r1.observation).toMatchObject({ reachable: true, role: 'Primary', timeline: 1 });
    expect((await primary.observe()).heartbeat).toEqual({ epoch: 1, writtenAt: first });

    const second = new Date('2026-03-01T10:00:05.000Z');
    const { result: r2, statements } = await statementsOf(() => primary.observeWithHeartbeat(1, second));
    expect(statements).toBe(1);
    expect(r2.heartbeatError).toBeUndefined();
    // The facts of one snapshot, from before this heartbeat: as observe() reads ahead of writeHeartbeat().
    const plain = await primary.observe();
    expect(r2.observation).toMatchObject({
      reachable: true,
      role: 'Primary',
      timeline: plain.timeline,
      replicas: [expect.objectContaining({ applicationName: 'standby', state: 'streaming' })],
      heartbeat: { epoch: 1, writtenAt: first },
    });
    expect(isLsn(lsnOf(r2.observation))).toBe(true);
    expect(plain.heartbeat).toEqual({ epoch: 1, writtenAt: second });
  });

  it('never lowers the epoch: a newer one stands, and the heartbeat says why it was not written', async () => {
    await primary.writeHeartbeat(5, new Date('2026-03-01T10:01:00.000Z'));
    for (let i = 0; i < 2; i++) {
      const r = await primary.observeWithHeartbeat(4, new Date());
      expect(r.observation).toMatchObject({ role: 'Primary', heartbeat: { epoch: 5 } });
      expect(r.heartbeatError).toMatchObject({
        reason: 'PreconditionFailed',
        message: expect.stringMatching(/epoch 5, newer than 4/),
      });
    }
    expect((await primary.observe()).heartbeat).toMatchObject({ epoch: 5 });
  });

  it('a primary fenced since the last probe is observed Fenced, and gets no heartbeat', async () => {
    await primary.observeWithHeartbeat(5, new Date());
    const before = new Date('2026-03-01T10:02:00.000Z');
    const { statements } = await statementsOf(() => primary.observeWithHeartbeat(5, before));
    expect(statements).toBe(1);
    await primary.fence({ operationId: 'op-inline', epoch: 6, mode: 'ReadOnly' });
    const r = await primary.observeWithHeartbeat(5, new Date());
    expect(r).toEqual({ observation: expect.objectContaining({ reachable: true, role: 'Fenced' }) });
    expect((await primary.observe()).heartbeat).toEqual({ epoch: 5, writtenAt: before, fencedEpoch: 6 });
    await primary.unfence();
    await primary.observeWithHeartbeat(5, new Date());
  });

  it('a database closed to connections (its sessions kept) is Fenced, and gets no heartbeat', async () => {
    const last = new Date('2026-03-01T10:03:00.000Z');
    await primary.observeWithHeartbeat(5, new Date());
    const { statements } = await statementsOf(() => primary.observeWithHeartbeat(5, last));
    expect(statements).toBe(1);
    // From another database: PostgreSQL does not close the one a session is in.
    const c = pair.connection('primary');
    const admin = new pg.Client({
      host: c.host,
      port: c.port,
      user: c.user,
      password: c.password,
      database: 'postgres',
    });
    await admin.connect();
    sessions.push(admin);
    const db = pair.database;
    await admin.query(`ALTER DATABASE ${db} ALLOW_CONNECTIONS false`);
    try {
      const r = await primary.observeWithHeartbeat(5, new Date());
      expect(r).toEqual({ observation: expect.objectContaining({ reachable: true, role: 'Fenced' }) });
      expect((await primary.observe()).heartbeat).toEqual({ epoch: 5, writtenAt: last });
    } finally {
      await admin.query(`ALTER DATABASE ${db} ALLOW_CONNECTIONS true`);
    }
  });

  it('a heartbeat that cannot take its row lock leaves the observation standing, and is not tried twice', async () => {
    // The probes' timeouts: the statement's lock wait is its own (1 s), well within them.
    const quick = provider(pair, 'primary', { statementTimeoutMs: 5_000 });
    await quick.observeWithHeartbeat(5, new Date());
    expect((await statementsOf(() => quick.observeWithHeartbeat(5, new Date()))).statements).toBe(1);
    const holder = await session(pair, 'primary');
    await holder.query('BEGIN');
    await holder.query('SELECT * FROM regionfailover.heartbeat FOR UPDATE');
    try {
      const { result, statements } = await statementsOf(() => quick.observeWithHeartbeat(5, new Date()));
      expect(result.observation).toMatchObject({ reachable: true, role: 'Primary' });
      expect(result.heartbeatError).toMatchObject({
        reason: 'Timeout',
        message: expect.stringMatching(/55P03/),
      });
      // The statement with the heartbeat, then the probe alone: not the heartbeat's lock wait again.
      expect(statements).toBe(2);
    } finally {
      await holder.query('ROLLBACK');
    }
  });

  it('the standby is observed as one, with nothing written and nothing to report', async () => {
    const standby = provider(pair, 'standby');
    for (let i = 0; i < 2; i++) {
      expect(await standby.observeWithHeartbeat(5, new Date())).toEqual({
        observation: expect.objectContaining({ reachable: true, role: 'Standby' }),
      });
    }
  });
});

describe('a primary whose synchronous standby is gone', () => {
  // Synchronous replication to a standby that never answers (a lost region, a cut link): every
  // commit on the primary waits for it. The operator's own writes must not: waited for, the
  // probe's heartbeat held the probe past its deadline and counted a working primary as failed,
  // and a fence's every commit waited out the statement timeout.
  let pair: PostgresPair;

  /** Commits an application's row on `node` and waits until the commit waits for a synchronous standby. */
  async function applicationCommitWaits(node: PostgresNodeName, description: string): Promise<void> {
    const app = await session(pair, node);
    void app.query("INSERT INTO write_load (payload) VALUES ('waits for a standby')").catch(() => undefined);
    await waitFor(
      async () =>
        (
          await pair.sql<{ n: string }>(
            node,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
          )
        )[0]?.n !== '0',
      { timeoutMs: 15_000, description },
    );
  }

  beforeAll(async () => {
    pair = await startPair('sync-gone');
    await pair.sql('primary', "ALTER SYSTEM SET synchronous_standby_names = 'gone'");
    await pair.sql('primary', 'SELECT pg_reload_conf()');
    // Positive control: an application's commit does wait for the standby that is gone.
    await applicationCommitWaits('primary', 'an application commit waiting for the synchronous standby');
  });
  afterAll(async () => {
    // Let the applications' commits go.
    for (const node of ['primary', 'standby'] as const)
      await pair
        ?.sql(node, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        .catch(() => undefined);
  });

  // A statement timeout far beyond any probe deadline: waiting for the standby would show.
  const patient = { statementTimeoutMs: 30_000 };

  it('is observed as a primary whose commits wait for a synchronous standby, until one is connected as one', async () => {
    const primary = provider(pair, 'primary', patient);
    expect(await primary.observe()).toMatchObject({ role: 'Primary', commitsWaitFor: 'gone' });
    // The standby that streams, named: it becomes the synchronous one, and commits go through.
    await pair.sql('primary', "ALTER SYSTEM SET synchronous_standby_names = 'standby'");
    await pair.sql('primary', 'SELECT pg_reload_conf()');
    try {
      const seen = await waitFor(
        async () => {
          const o = await primary.observe();
          return o.replicas?.some((r) => r.syncState === 'sync') ? o : undefined;
        },
        { timeoutMs: 15_000, description: 'the standby to be the synchronous one' },
      );
      expect(seen.commitsWaitFor).toBeUndefined();
    } finally {
      await pair.sql('primary', "ALTER SYSTEM SET synchronous_standby_names = 'gone'");
      await pair.sql('primary', 'SELECT pg_reload_conf()');
    }
    // Two asked for, one connected: commits still wait.
    await pair.sql('primary', "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 2 (standby, gone)'");
    await pair.sql('primary', 'SELECT pg_reload_conf()');
    try {
      await waitFor(
        async () => (await primary.observe()).commitsWaitFor === 'FIRST 2 (standby, gone)' || undefined,
        { timeoutMs: 15_000, description: 'commits to wait for a second synchronous standby' },
      );
    } finally {
      await pair.sql('primary', "ALTER SYSTEM SET synchronous_standby_names = 'gone'");
      await pair.sql('primary', 'SELECT pg_reload_conf()');
    }
    await waitFor(async () => (await primary.observe()).commitsWaitFor === 'gone' || undefined, {
      timeoutMs: 15_000,
      description: 'commits to wait for the gone standby again',
    });
    // Sessions that commit locally by default (the database's setting) do not wait: no claim.
    // (The catalog change itself commits locally, or it would wait for the standby that is gone.)
    await pair.sql(
      'primary',
      `SET synchronous_commit = local; ALTER DATABASE ${pair.database} SET synchronous_commit = local`,
    );
    try {
      const fresh = provider(pair, 'primary', patient);
      expect(await fresh.observe()).toMatchObject({ role: 'Primary' });
      expect((await fresh.observe()).commitsWaitFor).toBeUndefined();
    } finally {
      await pair.sql(
        'primary',
        `SET synchronous_commit = local; ALTER DATABASE ${pair.database} RESET synchronous_commit`,
      );
    }
  });

  it('the heartbeat, first in two steps and then in the probe, commits without waiting for it', async () => {
    const primary = provider(pair, 'primary', patient);
    for (const [i, at] of [
      new Date('2026-03-02T10:00:00.000Z'),
      new Date('2026-03-02T10:00:05.000Z'),
    ].entries()) {
      const started = performance.now();
      const r = await primary.observeWithHeartbeat(1, at);
      expect(r.heartbeatError, `heartbeat ${i + 1}`).toBeUndefined();
      expect(r.observation).toMatchObject({ reachable: true, role: 'Primary' });
      // Well within the probes' own statement timeout (5 s) and deadline (the interval).
      expect(performance.now() - started, `heartbeat ${i + 1}`).toBeLessThan(3_000);
      expect((await primary.observe()).heartbeat).toMatchObject({ epoch: 1, writtenAt: at });
    }
  });

  it('a fence, and the unfence after it, do not wait for it', async () => {
    const primary = provider(pair, 'primary', patient);
    await primary.writeHeartbeat(1, new Date());
    const fenced = performance.now();
    await primary.fence({ operationId: 'op-sync-gone', epoch: 2, mode: 'ReadOnly' });
    expect(performance.now() - fenced).toBeLessThan(3_000);
    expect(await primary.observe()).toMatchObject({ role: 'Fenced', heartbeat: { fencedEpoch: 2 } });
    const unfenced = performance.now();
    await primary.unfence();
    expect(performance.now() - unfenced).toBeLessThan(3_000);
    // The reload reaches the pooled session when its backend next goes idle: a probe a moment on.
    await waitFor(async () => ((await primary.observe()).role === 'Primary' ? true : undefined), {
      description: 'the unfenced primary observed as Primary',
      timeoutMs: 10_000,
    });
  });

  it('a standby promoted with synchronous standbys configured (none connected) records its epoch', async () => {
    // A symmetric setup: the standby names synchronous standbys too, and once promoted has none.
    await pair.sql('standby', "ALTER SYSTEM SET synchronous_standby_names = '*'");
    await pair.sql('standby', 'SELECT pg_reload_conf()');
    const standby = provider(pair, 'standby', patient);
    const started = performance.now();
    expect(await standby.promote({ operationId: 'op-sync-gone', epoch: 3 })).toMatchObject({
      state: 'Promoted',
    });
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(await standby.observe()).toMatchObject({ role: 'Primary', heartbeat: { epoch: 3 } });
    // Positive control: an application's commit on the new primary waits for a synchronous standby.
    await applicationCommitWaits(
      'standby',
      'an application commit on the new primary waiting for a synchronous standby',
    );
  });
});

describe('a server that refuses connections, then comes back', () => {
  it('is asked with a bare socket while it refuses or before its first session, with the same failure, and observed at once when back', async () => {
    const pair = await startPair('refusing');
    const primary = provider(pair, 'primary');
    expect(await primary.observe()).toMatchObject({ reachable: true, role: 'Primary' });
    await pair.killPrimary();
    // The pooled session dies with the server first ("Connection terminated"), then connecting is refused.
    const refused = await waitFor(
      async () => {
        const o = await primary.observe();
        return /ECONNREFUSED/.test(o.failure?.message ?? '') ? o : undefined;
      },
      { description: 'a refused connection', timeoutMs: 10_000 },
    );
    expect(refused).toMatchObject({ reachable: false, role: 'Unknown', failure: { reason: 'Unreachable' } });
    const opened = vi.spyOn(pg.Pool.prototype, 'connect');
    try {
      // Refused again: the same finding, and no pg client made for it.
      expect(await primary.observe()).toEqual({ ...refused, durationMs: expect.any(Number) });
      expect(opened).not.toHaveBeenCalled();
      // Nor for the first probe of a provider that never had a session (a restarted operator's).
      expect(await provider(pair, 'primary').observe()).toMatchObject({
        reachable: false,
        failure: { reason: 'Unreachable', message: refused.failure?.message },
      });
      expect(opened).not.toHaveBeenCalled();

      await pair.startPrimary();
      expect(await primary.observe()).toMatchObject({ reachable: true, role: 'Primary' });
      expect(opened).toHaveBeenCalledTimes(1);
    } finally {
      opened.mockRestore();
    }
  });
});

describe('promotion and fencing the old primary', () => {
  let pair: PostgresPair;
  let primary: SelfManagedPostgres;
  let standby: SelfManagedPostgres;
  beforeAll(async () => {
    pair = await startPair('promote');
    primary = provider(pair, 'primary');
    standby = provider(pair, 'standby');
    await primary.writeHeartbeat(1, new Date());
    await pair.waitForReplayCatchUp();
  });

  it('a killed primary is reachable:false with reason Unreachable, and observe does not throw', async () => {
    expect(await primary.observe()).toMatchObject({ reachable: true, role: 'Primary' });
    await pair.killPrimary();
    const o = await primary.observe();
    expect(o).toMatchObject({ reachable: false, role: 'Unknown', failure: { reason: 'Unreachable' } });
  });

  it('promote turns the standby into a writable primary on the next timeline, with the new epoch', async () => {
    const before = await standby.observe();
    expect(before).toMatchObject({ role: 'Standby', heartbeat: { epoch: 1 } });

    expect(await standby.promote({ operationId: 'op-promote', epoch: 2 })).toEqual({
      state: 'Promoted',
      alreadyPrimary: false,
    });

    const after = await standby.observe();
    expect(after).toMatchObject({ reachable: true, role: 'Primary', heartbeat: { epoch: 2 } });
    expect(after.timeline).toBe((before.timeline ?? 0) + 1);
    await insertRow(await session(pair, 'standby'), 'written on the new primary');
  });

  it('a second promote is a no-op', async () => {
    const before = await standby.observe();
    expect(await standby.promote({ operationId: 'op-promote', epoch: 2 })).toEqual({
      state: 'Promoted',
      alreadyPrimary: true,
    });
    const after = await standby.observe();
    expect(after.timeline).toBe(before.timeline);
    expect(after.heartbeat).toEqual(before.heartbeat);
  });

  it('the old primary comes back as a second primary; ReadOnly fencing stops writes, open sessions included', async () => {
    await pair.startPrimary();
    expect(await primary.observe()).toMatchObject({ role: 'Primary', timeline: 1, heartbeat: { epoch: 1 } });

    const idle = await session(pair, 'primary');
    const inTransaction = await session(pair, 'primary');
    await insertRow(idle, 'split brain write');
    await inTransaction.query('BEGIN');
    await insertRow(inTransaction, 'uncommitted when fenced');

    const { detail } = await primary.fence({ operationId: 'op-promote', epoch: 2, mode: 'ReadOnly' });
    const ended =
      /default_transaction_read_only = on.*epoch 2 recorded.*connection limit 0 .*ended (\d+) other client session/.exec(
        detail,
      );
    // At least the two sessions opened here (a harness session that is just closing may add one).
    expect(Number(ended?.[1])).toBeGreaterThanOrEqual(2);

    // Sessions open before the fence were ended, the open transaction with them.
    await expect(insertRow(idle, 'after fence')).rejects.toThrow();
    await expect(inTransaction.query('COMMIT')).rejects.toThrow();
    const [row] = await pair.sql<{ n: string }>(
      'primary',
      "SELECT count(*) AS n FROM write_load WHERE payload IN ('uncommitted when fenced', 'after fence')",
    );
    expect(Number(row?.n)).toBe(0);
    // New sessions are read-only.
    await expect(insertRow(await session(pair, 'primary'), 'new session')).rejects.toMatchObject({
      code: '25006',
    });

    // Marked by the fencing operation's epoch; the row's own epoch stays the one it was primary at.
    expect(await primary.observe()).toMatchObject({
      reachable: true,
      role: 'Fenced',
      heartbeat: { epoch: 1, fencedEpoch: 2 },
    });
    await expect(primary.writeHeartbeat(2, new Date())).rejects.toMatchObject({ reason: 'Rejected' });
    await expect(primary.promote({ operationId: 'op-wrong', epoch: 3 })).rejects.toMatchObject({
      reason: 'Rejected',
      message: expect.stringMatching(/fenced former primary/),
    });
  });

  it('fencing ReadOnly again changes nothing, and the fence survives a restart', async () => {
    const opened = await session(pair, 'primary');
    const { detail } = await primary.fence({ operationId: 'op-promote', epoch: 2, mode: 'ReadOnly' });
    expect(detail).toBe('already fenced read-only with epoch 2 recorded');
    // Not ended the second time: nothing was done.
    expect((await opened.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);

    await pair.stopPrimary();
    await pair.startPrimary();
    expect(await primary.observe()).toMatchObject({ role: 'Fenced', heartbeat: { fencedEpoch: 2 } });
    await expect(insertRow(await session(pair, 'primary'), 'after restart')).rejects.toMatchObject({
      code: '25006',
    });
  });

  it('unfence (a rolled-back switchover) makes it take writes again, and is a no-op once done', async () => {
    expect(await primary.unfence()).toEqual({
      detail:
        'connection limit restored on app (-1), postgres (-1), template1 (-1); fence mark cleared; default_transaction_read_only reset (ALTER SYSTEM RESET, configuration reloaded)',
    });
    await insertRow(await session(pair, 'primary'), 'after unfence');
    expect(await primary.unfence()).toEqual({ detail: 'not fenced read-only' });
  });
});

describe('a promotion that takes longer than one call', () => {
  it('is Pending after pg_promote waited its few seconds, and Promoted on a later call once recovery ended', async () => {
    const pair = await startPair('promote-pending');
    const standby = provider(pair, 'standby', { promoteWaitSeconds: 1 });
    // The startup process carries out the promotion; held (SIGSTOP), it cannot end recovery.
    const [startup] = await pair.sql<{ pid: number }>(
      'standby',
      "SELECT pid FROM pg_stat_activity WHERE backend_type = 'startup'",
    );
    if (!startup) throw new Error('the standby has no startup process');
    process.kill(startup.pid, 'SIGSTOP');
    try {
      const request = { operationId: 'op-slow', epoch: 2 };
      for (const call of [1, 2]) {
        const started = performance.now();
        const outcome = await standby.promote(request);
        const ms = performance.now() - started;
        expect(outcome, `call ${call}`).toEqual({
          state: 'Pending',
          detail: expect.stringContaining('still in recovery 1 s after pg_promote()'),
        });
        // pg_promote's own wait, and no more.
        expect(ms, `call ${call}`).toBeLessThan(3_000);
      }
      expect(await standby.observe()).toMatchObject({ reachable: true, role: 'Standby' });
    } finally {
      process.kill(startup.pid, 'SIGCONT');
    }
    const outcome = await waitFor(
      async () => {
        const o = await standby.promote({ operationId: 'op-slow', epoch: 2 });
        return o.state === 'Promoted' ? o : undefined;
      },
      { description: 'the standby to finish its promotion', timeoutMs: 30_000 },
    );
    expect(outcome).toEqual({ state: 'Promoted', alreadyPrimary: false });
    expect(await standby.observe()).toMatchObject({
      reachable: true,
      role: 'Primary',
      heartbeat: { epoch: 2 },
    });
  });
});

describe('EpochOnly and Shutdown fencing', () => {
  let pair: PostgresPair;
  let primary: SelfManagedPostgres;
  let standby: SelfManagedPostgres;
  beforeAll(async () => {
    pair = await startPair('fence');
    primary = provider(pair, 'primary');
    standby = provider(pair, 'standby');
  });

  it('never fences a database that holds a newer epoch than the fencing operation: it is the primary', async () => {
    await primary.writeHeartbeat(3, new Date());
    for (const mode of ['ReadOnly', 'Shutdown', 'EpochOnly'] as const) {
      const refused = await primary.fence({ operationId: 'op-old', epoch: 2, mode }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ reason: 'PreconditionFailed', retryable: false });
    }
    expect(await primary.observe()).toMatchObject({ role: 'Primary', heartbeat: { epoch: 3 } });
    await insertRow(await session(pair, 'primary'), 'the primary still takes writes');
  });

  it('EpochOnly records the epoch and nothing else; a heartbeat of an older epoch cannot lower it', async () => {
    await primary.writeHeartbeat(3, new Date());
    const writer = await session(pair, 'primary');
    expect(await primary.fence({ operationId: 'op-epoch', epoch: 4, mode: 'EpochOnly' })).toEqual({
      detail: 'epoch 4 recorded',
    });
    expect(await primary.fence({ operationId: 'op-epoch', epoch: 4, mode: 'EpochOnly' })).toEqual({
      detail: 'epoch 4 already recorded',
    });
    expect(await primary.observe()).toMatchObject({
      role: 'Primary',
      heartbeat: { epoch: 3, fencedEpoch: 4 },
    });
    await insertRow(writer, 'still writable');

    const stale = await primary.writeHeartbeat(3, new Date()).catch((e: unknown) => e);
    expect(stale).toMatchObject({
      reason: 'PreconditionFailed',
      message: expect.stringMatching(/epoch 4, newer than 3/),
    });
  });

  it('fencing a standby changes nothing: it takes no writes', async () => {
    const { detail } = await standby.fence({ operationId: 'op-epoch', epoch: 4, mode: 'ReadOnly' });
    expect(detail).toMatch(/in recovery \(a standby\)/);
    expect(await standby.observe()).toMatchObject({ role: 'Standby' });
  });

  it('Shutdown closes the databases to new connections and ends sessions; observe still says Fenced', async () => {
    const before = await session(pair, 'primary');
    const { detail } = await primary.fence({ operationId: 'op-shut', epoch: 5, mode: 'Shutdown' });
    expect(detail).toMatch(
      /default_transaction_read_only = on.*epoch 5 recorded.*closed to new connections: app/,
    );

    await expect(before.query('SELECT 1')).rejects.toThrow();
    await expect(pair.connect('primary')).rejects.toMatchObject({ code: '55000' });
    // A provider without a session from before sees it through the maintenance database.
    const o = await provider(pair, 'primary').observe();
    expect(o).toMatchObject({ reachable: true, role: 'Fenced', timeline: 1 });
    expect(isLsn(lsnOf(o))).toBe(true);
    await expect(provider(pair, 'primary').writeHeartbeat(6, new Date())).rejects.toMatchObject({
      reason: 'Rejected',
      message: expect.stringMatching(/ALLOW_CONNECTIONS false/),
    });
    // The mark was recorded before the database closed; the standby replays it.
    await waitFor(async () => (await standby.observe()).heartbeat?.fencedEpoch === 5, {
      description: 'the standby to replay the mark of epoch 5',
    });
  });

  it('Shutdown again changes nothing, from the operator that fenced or from a new one', async () => {
    // Fenced and closed already: nothing more is done, whichever operator asks, and the epoch in the
    // closed database is not re-read (it was recorded before the database was closed).
    const again = await primary.fence({ operationId: 'op-shut', epoch: 5, mode: 'Shutdown' });
    expect(again.detail).toBe(
      "already fenced read-only and closed; app refuses the operator's connections (ALLOW_CONNECTIONS false): the epoch recorded there was not checked",
    );
    const fresh = provider(pair, 'primary');
    const fromNew = await fresh.fence({ operationId: 'op-shut', epoch: 5, mode: 'Shutdown' });
    expect(fromNew.detail).toBe(
      "already fenced read-only and closed; app refuses the operator's connections (ALLOW_CONNECTIONS false): the epoch recorded there was not checked",
    );
    const third = await fresh.fence({ operationId: 'op-shut', epoch: 5, mode: 'Shutdown' });
    expect(third.detail).toBe(
      "already fenced read-only and closed; app refuses the operator's connections (ALLOW_CONNECTIONS false): the epoch recorded there was not checked",
    );
    const readOnly = await fresh.fence({ operationId: 'op-shut', epoch: 5, mode: 'ReadOnly' });
    expect(readOnly.detail).toBe(
      "already fenced read-only; app refuses the operator's connections (ALLOW_CONNECTIONS false): the epoch recorded there was not checked",
    );
    expect(await fresh.observe()).toMatchObject({ reachable: true, role: 'Fenced' });
  });
});

describe('a pair that requires TLS', () => {
  let pair: PostgresPair;
  beforeAll(async () => {
    pair = await startPostgresPair({ name: 'tls', tls: true });
    pairs.push(pair);
  });

  it('is observed over TLS with sslMode require, and replicates over TLS', async () => {
    expect(await provider(pair, 'primary').observe()).toMatchObject({ reachable: true, role: 'Primary' });
    expect(await provider(pair, 'standby').observe()).toMatchObject({ reachable: true, role: 'Standby' });
    const rows = await pair.sql(
      'primary',
      'SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)',
    );
    expect(rows).toEqual([{ ssl: true }]);
  });

  it('without TLS is TlsFailed: the server refuses unencrypted clients, and the message says to set sslMode', async () => {
    const o = await provider(pair, 'primary', { connection: { sslMode: 'disable' } }).observe();
    expect(o).toMatchObject({ reachable: false, failure: { reason: 'TlsFailed' } });
    expect(o.failure?.message).toMatch(/no encryption.*sslMode/);
  });

  it('verify-full against a certificate nobody trusts is TlsFailed', async () => {
    const o = await provider(pair, 'primary', { connection: { sslMode: 'verify-full' } }).observe();
    expect(o).toMatchObject({ reachable: false, failure: { reason: 'TlsFailed' } });
    expect(o.failure?.message).toMatch(/SELF_SIGNED|self.signed/i);
  });
});
