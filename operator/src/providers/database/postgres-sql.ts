/**
 * The SQL side every database adapter shares: whoever runs it (self-managed, RDS, Aurora,
 * DigitalOcean), the database is PostgreSQL reachable over SQL, so observing it, writing the
 * heartbeat and fencing it are the same statements everywhere. Adapters add what only their
 * provider can do (promotion through a cloud API, say) on top of this.
 *
 * Privileges the operator's role needs: observing works for any role (pg_monitor adds the
 * pg_stat_replication columns); the heartbeat needs CREATE on the database the first time;
 * fencing needs a superuser, or at least ALTER SYSTEM on default_transaction_read_only,
 * EXECUTE on pg_reload_conf, pg_signal_backend (it cannot end superusers' sessions) and, for
 * Shutdown, ownership of every database.
 */
import pg from 'pg';
import { ProviderError, type ProviderErrorReason } from '../errors.ts';
import type { DatabaseConnection, DatabaseObservation, FenceRequest, ReplicaState } from './port.ts';

/** Where the operator keeps its heartbeat row: one row, the epoch and when it was written. */
export const HEARTBEAT_TABLE = 'regionfailover.heartbeat';

export interface PostgresSqlOptions {
  /** How long to wait for a connection (TCP, TLS and authentication). Default 5000. */
  connectTimeoutMs?: number;
  /** statement_timeout of every session; the client also gives up a little later. Default 10000. */
  statementTimeoutMs?: number;
  /** How long an unused pooled connection stays open. Default 30000. */
  idleTimeoutMs?: number;
  /** Pooled connections per database. Default 2: one probe and one action at a time. */
  maxConnections?: number;
  /** application_name, as pg_stat_activity shows the operator's sessions. */
  applicationName?: string;
  /**
   * A database that stays open when Shutdown fencing closes the others, used to observe and
   * fence from. Default "postgres" (DigitalOcean calls it "defaultdb").
   */
  maintenanceDatabase?: string;
  /** The clock for timestamps the operator writes (the epoch recorded when fencing). */
  now?: () => Date;
}

/** What fencing found and changed. */
interface FenceState {
  inRecovery: boolean;
  readOnly: boolean;
  epoch: number | undefined;
}

/** A pooled connection to one PostgreSQL database. Credentials never appear in messages or logs. */
export class PostgresSql {
  /** host:port/database, for messages. */
  readonly target: string;
  private readonly connection: DatabaseConnection;
  private readonly options: Required<PostgresSqlOptions>;
  private readonly pool: pg.Pool;

  constructor(connection: DatabaseConnection, options: PostgresSqlOptions = {}) {
    this.connection = connection;
    this.options = {
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      statementTimeoutMs: options.statementTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 30_000,
      maxConnections: options.maxConnections ?? 2,
      applicationName: options.applicationName ?? 'failover-operator',
      maintenanceDatabase: options.maintenanceDatabase ?? 'postgres',
      now: options.now ?? (() => new Date()),
    };
    this.target = `${connection.host}:${connection.port}/${connection.database}`;
    this.pool = new pg.Pool({
      ...this.clientConfig(connection.database),
      max: this.options.maxConnections,
      idleTimeoutMillis: this.options.idleTimeoutMs,
      allowExitOnIdle: true,
    });
    // A pooled connection the server ends while idle (restart, fencing) emits 'error'; the pool
    // drops it, and an unhandled 'error' event would crash the operator.
    this.pool.on('error', () => undefined);
  }

  /** Probes role, WAL positions, timeline, replay state, replicas and heartbeat. Never throws. */
  async observe(): Promise<DatabaseObservation> {
    const started = performance.now();
    const durationMs = () => Math.round(performance.now() - started);
    let failed: unknown;
    try {
      return {
        ...(await this.withClient((client) => this.readFacts(client, true))),
        durationMs: durationMs(),
      };
    } catch (err) {
      failed = err;
    }
    if (isDatabaseClosed(failed)) {
      // Shutdown fencing closed this database; the maintenance database still tells the rest.
      try {
        const facts = await this.withMaintenanceClient((client) => this.readFacts(client, false));
        return { ...facts, durationMs: durationMs() };
      } catch (err) {
        failed = err;
      }
    }
    const failure = classifyPostgresError(failed, this.target);
    return {
      reachable: false,
      role: 'Unknown',
      failure: { reason: failure.reason, message: failure.message },
      durationMs: durationMs(),
    };
  }

  /** Whether the server is in recovery (a standby). Throws ProviderError. */
  async isInRecovery(): Promise<boolean> {
    const [row] = await this.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
    return row?.in_recovery === true;
  }

  /** Whether the server's default is read-only (it was fenced). Throws ProviderError. */
  async isReadOnly(): Promise<boolean> {
    const [row] = await this.query<{ read_only: boolean }>(
      "SELECT current_setting('default_transaction_read_only') = 'on' AS read_only",
    );
    return row?.read_only === true;
  }

  /**
   * Runs one statement on a pooled session and returns its rows. `timeoutMs` raises the
   * statement timeout for this statement only (pg_promote waits longer than a probe).
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    params: unknown[] = [],
    opts: { timeoutMs?: number } = {},
  ): Promise<R[]> {
    try {
      return await this.withClient(async (client) => {
        if (opts.timeoutMs === undefined) return (await client.query<R>(text, params)).rows;
        await client.query('BEGIN');
        try {
          await client.query(`SET LOCAL statement_timeout = ${Math.ceil(opts.timeoutMs)}`);
          const { rows } = await client.query<R>({
            text,
            values: params,
            query_timeout: opts.timeoutMs + this.options.connectTimeoutMs,
          } as pg.QueryConfig);
          await client.query('COMMIT');
          return rows;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
    } catch (err) {
      throw classifyPostgresError(err, this.target);
    }
  }

  /**
   * Writes the heartbeat row on a primary, creating the table if it is missing. Refuses to
   * lower the epoch: a higher one there means a newer failover fenced this database, and
   * overwriting it would erase the mark that tells clients so.
   */
  async writeHeartbeat(epoch: number, at: Date): Promise<void> {
    assertEpoch(epoch);
    try {
      await this.withClient(async (client) => {
        const written = await this.upsertHeartbeat(client, epoch, at, 'refuse-lower');
        if (written === undefined) {
          const stored = await readHeartbeat(client);
          throw new ProviderError(
            'PreconditionFailed',
            `${this.target} holds heartbeat epoch ${stored?.epoch}, newer than ${epoch}: a later failover ` +
              'fenced this database; it must not act as primary for the older epoch',
            { retryable: false },
          );
        }
      });
    } catch (err) {
      throw classifyPostgresError(err, this.target);
    }
  }

  /**
   * Fences this database, if it is a primary, so the old primary cannot keep taking writes:
   *
   * - EpochOnly records the new epoch in the heartbeat row (clients that check it stop).
   * - ReadOnly sets default_transaction_read_only = on with ALTER SYSTEM (it survives a restart),
   *   reloads the configuration, ends every other client session so none keeps writing, and
   *   records the epoch. Limit: a client that explicitly asks for a read-write transaction
   *   (BEGIN READ WRITE) can still write; Shutdown, or stopping the server, rules that out.
   * - Shutdown does all of ReadOnly, then sets ALLOW_CONNECTIONS false on every database except
   *   the maintenance database and the templates and ends the sessions left in them. SQL cannot
   *   stop the server; this stops applications connecting. Limit: the maintenance database stays
   *   open (read-only by default) for the operator and for an administrator to undo it
   *   (ALTER DATABASE ... ALLOW_CONNECTIONS true; ALTER SYSTEM RESET default_transaction_read_only).
   *
   * A standby accepts no writes, so there is nothing to fence and nothing changes. Each step
   * checks before it acts, so running it again changes nothing.
   */
  async fence(request: FenceRequest): Promise<{ detail: string }> {
    assertEpoch(request.epoch);
    try {
      if (request.mode === 'Shutdown') return await this.fenceShutdown(request.epoch);
      return await this.withClient(async (client) => {
        const state = await readFenceState(client);
        if (state.inRecovery) return { detail: standbyDetail(this.target) };
        if (request.mode === 'EpochOnly') {
          return { detail: await this.recordEpoch(client, state, request.epoch) };
        }
        return { detail: (await this.fenceReadOnly(client, state, request.epoch)).join('; ') };
      });
    } catch (err) {
      if (isDatabaseClosed(err)) {
        // An earlier Shutdown fence is stricter than what is asked now.
        return { detail: `${this.connection.database} already closed to connections (Shutdown fencing)` };
      }
      throw classifyPostgresError(err, this.target);
    }
  }

  /**
   * Undoes a ReadOnly fence: for a planned switchover that could not finish, so the old primary
   * takes writes again. Only ever called before the standby was promoted.
   */
  async unfence(): Promise<{ detail: string }> {
    try {
      return await this.withClient(async (client) => {
        const { rows } = await client.query<{ ro: string }>(
          "SELECT current_setting('default_transaction_read_only') AS ro",
        );
        if (rows[0]?.ro !== 'on') {
          return { detail: 'not fenced read-only' };
        }
        await client.query('ALTER SYSTEM RESET default_transaction_read_only');
        await client.query('SELECT pg_reload_conf()');
        return { detail: 'default_transaction_read_only reset (ALTER SYSTEM RESET, configuration reloaded)' };
      });
    } catch (err) {
      throw classifyPostgresError(err, this.target);
    }
  }

  /** Ends every pooled connection. */
  async close(): Promise<void> {
    await this.pool.end();
  }

  private async fenceReadOnly(
    client: pg.PoolClient | pg.Client,
    state: FenceState,
    epoch: number,
  ): Promise<string[]> {
    if (state.readOnly && (state.epoch ?? -1) >= epoch) {
      return [`already fenced read-only with epoch ${state.epoch} recorded`];
    }
    const done: string[] = [];
    if (!state.readOnly) {
      // ALTER SYSTEM cannot run in a transaction block, and is allowed in a read-only session.
      await client.query('ALTER SYSTEM SET default_transaction_read_only = on');
      await client.query('SELECT pg_reload_conf()');
      done.push('default_transaction_read_only = on (ALTER SYSTEM, configuration reloaded)');
    } else {
      done.push('already read-only');
    }
    // Sessions opened before the reload could still be inside a read-write transaction.
    done.push(`ended ${await terminateClientSessions(client)} other client session(s)`);
    done.push(await this.recordEpoch(client, state, epoch));
    return done;
  }

  private async fenceShutdown(epoch: number): Promise<{ detail: string }> {
    const done: string[] = [];
    let inRecovery = false;
    // The operator's own pooled session stays open; it is not an application's.
    let ownPid: number | undefined;
    try {
      await this.withClient(async (client) => {
        const state = await readFenceState(client);
        inRecovery = state.inRecovery;
        ownPid = Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
        if (!inRecovery) done.push(...(await this.fenceReadOnly(client, state, epoch)));
      });
    } catch (err) {
      // Closed by an earlier Shutdown: the epoch was recorded before it was closed.
      if (!isDatabaseClosed(err)) throw err;
      done.push(`${this.connection.database} already closed to connections`);
    }
    if (inRecovery) return { detail: standbyDetail(this.target) };
    await this.withMaintenanceClient(async (client) => {
      const state = await readFenceState(client);
      if (state.inRecovery) return;
      if (!state.readOnly) {
        await client.query('ALTER SYSTEM SET default_transaction_read_only = on');
        await client.query('SELECT pg_reload_conf()');
        done.push('default_transaction_read_only = on');
      }
      const { rows } = await client.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname <> current_database() ORDER BY datname',
      );
      if (rows.length > 0) {
        // The session is read-only by default now; ALTER DATABASE needs a read-write transaction.
        await client.query('BEGIN READ WRITE');
        try {
          for (const { datname } of rows) {
            await client.query(`ALTER DATABASE ${pg.escapeIdentifier(datname)} ALLOW_CONNECTIONS false`);
          }
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        done.push(`closed to new connections: ${rows.map((r) => r.datname).join(', ')}`);
      }
      // Anyone still in a closed database: connected while it was being closed, or left over.
      const late = await terminateClientSessions(client, { spare: ownPid, closedDatabasesOnly: true });
      if (late > 0) done.push(`ended ${late} more client session(s)`);
    });
    return { detail: done.join('; ') };
  }

  /** Records `epoch` in the heartbeat row, even on a read-only primary; never lowers it. */
  private async recordEpoch(
    client: pg.PoolClient | pg.Client,
    state: FenceState,
    epoch: number,
  ): Promise<string> {
    if ((state.epoch ?? -1) >= epoch) return `epoch ${state.epoch} already recorded`;
    await this.upsertHeartbeat(client, epoch, this.options.now(), 'keep-higher');
    return `epoch ${epoch} recorded`;
  }

  /**
   * Inserts or updates the heartbeat row, creating the table if it is missing. Returns the epoch
   * written, or undefined when 'refuse-lower' found a higher epoch. 'keep-higher' runs in an
   * explicit read-write transaction so it works on a primary fenced read-only.
   */
  private async upsertHeartbeat(
    client: pg.PoolClient | pg.Client,
    epoch: number,
    at: Date,
    policy: 'refuse-lower' | 'keep-higher',
  ): Promise<number | undefined> {
    const upsert =
      policy === 'refuse-lower'
        ? `INSERT INTO ${HEARTBEAT_TABLE} AS h (id, epoch, written_at) VALUES (true, $1, $2)
           ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch, written_at = EXCLUDED.written_at
           WHERE h.epoch <= EXCLUDED.epoch
           RETURNING epoch`
        : `INSERT INTO ${HEARTBEAT_TABLE} AS h (id, epoch, written_at) VALUES (true, $1, $2)
           ON CONFLICT (id) DO UPDATE SET epoch = GREATEST(h.epoch, EXCLUDED.epoch), written_at = EXCLUDED.written_at
           RETURNING epoch`;
    const run = async () => {
      // A read-write transaction is explicit only when fencing: a heartbeat must fail on a fenced primary.
      if (policy === 'keep-higher') await client.query('BEGIN READ WRITE');
      try {
        const { rows } = await client.query<{ epoch: string }>(upsert, [epoch, at]);
        if (policy === 'keep-higher') await client.query('COMMIT');
        return rows[0] === undefined ? undefined : Number(rows[0].epoch);
      } catch (err) {
        if (policy === 'keep-higher') await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    };
    try {
      return await run();
    } catch (err) {
      const code = sqlState(err);
      if (code !== '42P01' && code !== '3F000') throw err;
    }
    await createHeartbeatTable(client, policy === 'keep-higher');
    return run();
  }

  /** Gathers the observation on one session; `inTargetDatabase` is false on the maintenance database. */
  private async readFacts(
    client: pg.PoolClient | pg.Client,
    inTargetDatabase: boolean,
  ): Promise<Omit<DatabaseObservation, 'durationMs'>> {
    const [recovery] = (
      await client.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery')
    ).rows;
    // The heartbeat lives in the target database; from the maintenance database it is out of reach.
    const heartbeat = inTargetDatabase ? await readHeartbeat(client) : undefined;
    if (recovery?.in_recovery) {
      const { rows } = await client.query<{
        replay_lsn: string | null;
        receive_lsn: string | null;
        pause_state: string;
        timeline: number | null;
      }>(
        // The timeline being received, else the one of the last restartpoint: SQL shows no other.
        `SELECT pg_last_wal_replay_lsn()::text AS replay_lsn,
                pg_last_wal_receive_lsn()::text AS receive_lsn,
                pg_get_wal_replay_pause_state() AS pause_state,
                COALESCE((SELECT received_tli FROM pg_stat_wal_receiver),
                         (pg_control_checkpoint()).timeline_id) AS timeline`,
      );
      const row = rows[0];
      return {
        reachable: true,
        role: 'Standby',
        ...(row?.replay_lsn ? { lsn: row.replay_lsn } : {}),
        ...(row?.receive_lsn ? { receiveLsn: row.receive_lsn } : {}),
        ...(row?.timeline != null ? { timeline: Number(row.timeline) } : {}),
        replayPaused: row?.pause_state !== undefined && row.pause_state !== 'not paused',
        ...(heartbeat ? { heartbeat } : {}),
      };
    }
    const { rows } = await client.query<{
      lsn: string;
      walfile: string;
      read_only: boolean;
      closed: boolean;
    }>(
      `SELECT pg_current_wal_lsn()::text AS lsn,
              pg_walfile_name(pg_current_wal_lsn()) AS walfile,
              current_setting('default_transaction_read_only') = 'on' AS read_only,
              COALESCE((SELECT NOT datallowconn FROM pg_database WHERE datname = $1), false) AS closed`,
      [this.connection.database],
    );
    const row = rows[0];
    const replicas = await readReplicas(client);
    return {
      reachable: true,
      role: row?.read_only || row?.closed ? 'Fenced' : 'Primary',
      ...(row ? { lsn: row.lsn } : {}),
      // A WAL file name starts with the timeline in 8 hex digits; it changes the moment a promotion ends.
      ...(row ? { timeline: Number.parseInt(row.walfile.slice(0, 8), 16) } : {}),
      replicas,
      ...(heartbeat ? { heartbeat } : {}),
    };
  }

  private clientConfig(database: string): pg.ClientConfig {
    const c = this.connection;
    return {
      host: c.host,
      port: c.port,
      database,
      user: c.user,
      password: c.password,
      ssl: sslConfig(c.sslMode),
      connectionTimeoutMillis: this.options.connectTimeoutMs,
      statement_timeout: this.options.statementTimeoutMs,
      lock_timeout: Math.min(this.options.statementTimeoutMs, 5_000),
      // The server enforces statement_timeout; this catches a server that does not answer at all.
      query_timeout: this.options.statementTimeoutMs + this.options.connectTimeoutMs,
      application_name: this.options.applicationName,
      keepAlive: true,
    };
  }

  private async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // While checked out, a client whose server dies emits 'error' with nobody listening (the
    // pool only listens to idle clients), which would crash the process. The failure still
    // reaches `fn` through its pending query.
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    try {
      const result = await fn(client);
      client.off('error', onError);
      client.release(broken);
      return result;
    } catch (err) {
      client.off('error', onError);
      // A connection-level failure (no SQLSTATE) leaves the session unusable: drop it.
      client.release(broken ?? (sqlState(err) === undefined || isFatal(err) ? (err as Error) : undefined));
      throw err;
    }
  }

  private async withMaintenanceClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const database = this.options.maintenanceDatabase;
    const client = new pg.Client(this.clientConfig(database));
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      if (sqlState(err) !== '3D000') throw err;
      throw new ProviderError(
        'NotFound',
        `PostgreSQL ${this.connection.host}:${this.connection.port}: the maintenance database "${database}" ` +
          'does not exist; set maintenanceDatabase to a database that Shutdown fencing may leave open',
        { cause: err, retryable: false },
      );
    }
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/** Reads the heartbeat row, or undefined when the table or the row does not exist yet. */
async function readHeartbeat(
  client: pg.PoolClient | pg.Client,
): Promise<{ epoch: number; writtenAt: Date } | undefined> {
  const { rows: exists } = await client.query<{ present: boolean }>(
    `SELECT to_regclass('${HEARTBEAT_TABLE}') IS NOT NULL AS present`,
  );
  if (!exists[0]?.present) return undefined;
  const { rows } = await client.query<{ epoch: string; written_at: Date }>(
    `SELECT epoch, written_at FROM ${HEARTBEAT_TABLE} WHERE id`,
  );
  const row = rows[0];
  return row ? { epoch: Number(row.epoch), writtenAt: row.written_at } : undefined;
}

async function readReplicas(client: pg.PoolClient | pg.Client): Promise<ReplicaState[]> {
  const { rows } = await client.query<{
    application_name: string;
    client_addr: string | null;
    state: string | null;
    sent_lsn: string | null;
    replay_lsn: string | null;
    replay_lag_seconds: number | null;
  }>(
    `SELECT application_name, host(client_addr) AS client_addr, state,
            sent_lsn::text AS sent_lsn, replay_lsn::text AS replay_lsn,
            EXTRACT(epoch FROM replay_lag)::float8 AS replay_lag_seconds
       FROM pg_stat_replication ORDER BY application_name, pid`,
  );
  return rows.map((r) => ({
    applicationName: r.application_name,
    // Without pg_monitor most columns are NULL; state reads 'unknown' rather than lying.
    state: r.state ?? 'unknown',
    ...(r.client_addr ? { clientAddr: r.client_addr } : {}),
    ...(r.sent_lsn ? { sentLsn: r.sent_lsn } : {}),
    ...(r.replay_lsn ? { replayLsn: r.replay_lsn } : {}),
    ...(r.replay_lag_seconds != null ? { replayLagSeconds: r.replay_lag_seconds } : {}),
  }));
}

async function readFenceState(client: pg.PoolClient | pg.Client): Promise<FenceState> {
  const { rows } = await client.query<{ in_recovery: boolean; read_only: boolean }>(
    `SELECT pg_is_in_recovery() AS in_recovery,
            current_setting('default_transaction_read_only') = 'on' AS read_only`,
  );
  const heartbeat = await readHeartbeat(client).catch(() => undefined);
  return {
    inRecovery: rows[0]?.in_recovery === true,
    readOnly: rows[0]?.read_only === true,
    epoch: heartbeat?.epoch,
  };
}

/**
 * Ends every client session but this one (and `spare`), waiting up to 5 s for each to go;
 * returns how many ended. `closedDatabasesOnly` leaves sessions in open databases alone.
 */
async function terminateClientSessions(
  client: pg.PoolClient | pg.Client,
  opts: { spare?: number | undefined; closedDatabasesOnly?: boolean } = {},
): Promise<number> {
  const { rows } = await client.query<{ ended: string }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) AS ended
       FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND pid IS DISTINCT FROM $1
        AND (NOT $2 OR datname IN (SELECT datname FROM pg_database WHERE NOT datallowconn))`,
    [opts.spare ?? null, opts.closedDatabasesOnly ?? false],
  );
  return Number(rows[0]?.ended ?? 0);
}

async function createHeartbeatTable(client: pg.PoolClient | pg.Client, readWrite: boolean): Promise<void> {
  try {
    await client.query(`${readWrite ? 'BEGIN READ WRITE' : 'BEGIN'};
      CREATE SCHEMA IF NOT EXISTS regionfailover;
      CREATE TABLE IF NOT EXISTS ${HEARTBEAT_TABLE} (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        epoch bigint NOT NULL CHECK (epoch >= 0),
        written_at timestamptz NOT NULL
      );
      COMMENT ON TABLE ${HEARTBEAT_TABLE} IS
        'Written by the failover operator: the failover epoch this database last knew, and when. One row.';
      COMMIT`);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    // Another session created it at the same moment: what we wanted exists.
    const code = sqlState(err);
    if (code !== '23505' && code !== '42P07') throw err;
  }
}

function standbyDetail(target: string): string {
  return `${target} is in recovery (a standby): it accepts no writes, nothing to fence`;
}

function assertEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new ProviderError('Rejected', `epoch must be a non-negative integer, got ${epoch}`, {
      retryable: false,
    });
  }
}

function sslConfig(mode: DatabaseConnection['sslMode']): pg.ClientConfig['ssl'] {
  switch (mode) {
    case 'disable':
      return false;
    case 'require':
      // Encrypted, server not verified: libpq's meaning of sslmode=require.
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { rejectUnauthorized: true };
  }
}

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

function isFatal(err: unknown): boolean {
  const severity = (err as { severity?: unknown } | undefined)?.severity;
  return severity === 'FATAL' || severity === 'PANIC';
}

/** The server refused the connection because the database has ALLOW_CONNECTIONS false. */
function isDatabaseClosed(err: unknown): boolean {
  return sqlState(err) === '55000' && isFatal(err);
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_NONAME',
  'EADDRNOTAVAIL',
]);
const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'HOSTNAME_MISMATCH',
]);

/**
 * Turns whatever the pg driver or the network threw into a ProviderError with a reason from the
 * closed list and a message that says what to check. Never includes the password.
 */
export function classifyPostgresError(err: unknown, target: string): ProviderError {
  if (err instanceof ProviderError) return err;
  // Node reports a refused connection to every address of a host as an AggregateError.
  const first = err instanceof AggregateError && err.errors.length > 0 ? err.errors[0] : err;
  const message = (first as Error | undefined)?.message ?? String(first);
  const code = (first as { code?: unknown } | undefined)?.code;
  const state = sqlState(first);
  const make = (reason: ProviderErrorReason, text: string, retryable?: boolean) =>
    new ProviderError(reason, `PostgreSQL ${target}: ${text}`, {
      cause: err,
      ...(retryable === undefined ? {} : { retryable }),
    });

  if (state !== undefined) {
    if (state === '28P01' || state === '28000') {
      if (/SSL off|no encryption|SSL encryption/i.test(message)) {
        return make(
          'TlsFailed',
          `${message} (SQLSTATE ${state}): the server requires TLS; set connection.sslMode`,
        );
      }
      return make(
        'AuthenticationFailed',
        `${message} (SQLSTATE ${state}): check the username and password in the credentials Secret`,
      );
    }
    if (state === '57014' || state === '55P03') {
      return make('Timeout', `${message} (SQLSTATE ${state}): the statement or its lock wait timed out`);
    }
    if (state.startsWith('08') || state === '57P01' || state === '57P02' || state === '57P03') {
      return make(
        'Unreachable',
        `${message} (SQLSTATE ${state}): the server is starting, stopping or dropped the connection`,
      );
    }
    if (isDatabaseClosed(first)) {
      return make(
        'Rejected',
        `${message}: the database has ALLOW_CONNECTIONS false (fenced with Shutdown, or closed by an administrator)`,
        false,
      );
    }
    if (state === '3D000') {
      return make('NotFound', `${message}: check connection.database`, false);
    }
    if (state === '42501') {
      return make(
        'Rejected',
        `${message}: the operator's role lacks a privilege (fencing needs a superuser or the grants listed in the docs)`,
        false,
      );
    }
    if (state === '25006') {
      return make('Rejected', `${message}: the server is read-only (a standby, or a fenced primary)`, false);
    }
    return make('ProviderError', `${message} (SQLSTATE ${state})`);
  }
  if (
    typeof code === 'string' &&
    (TLS_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL'))
  ) {
    return make(
      'TlsFailed',
      `TLS handshake failed: ${message} (${code}); check connection.sslMode and the server certificate`,
    );
  }
  if (/does not support SSL|SSL|TLS|certificate/i.test(message) && !/timeout/i.test(message)) {
    return make(
      'TlsFailed',
      `${message}; check connection.sslMode (disable, require, verify-ca, verify-full)`,
    );
  }
  if (code === 'ETIMEDOUT' || /timeout|timed out/i.test(message)) {
    return make('Timeout', `no answer in time: ${message}`);
  }
  if (
    (typeof code === 'string' && UNREACHABLE_CODES.has(code)) ||
    /Connection terminated|ended unexpectedly/i.test(message)
  ) {
    return make('Unreachable', `unreachable: ${message}`);
  }
  if (/password|SASL|SCRAM/i.test(message)) {
    return make('AuthenticationFailed', `${message}: check the password in the credentials Secret`);
  }
  return make('ProviderError', message);
}
