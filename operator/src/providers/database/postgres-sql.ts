/**
 * The SQL side every database adapter shares: whoever runs it (self-managed, RDS, Aurora,
 * DigitalOcean), the database is PostgreSQL reachable over SQL, so observing it, writing the
 * heartbeat and fencing it are the same statements everywhere. Adapters add what only their
 * provider can do (promotion through a cloud API, say) on top of this.
 *
 * Privileges the operator's role needs: observing works for any role (pg_monitor adds the
 * pg_stat_replication and pg_stat_wal_receiver columns); the heartbeat needs CREATE on the
 * database the first time. Fencing and unfencing need a superuser, or all of: ALTER SYSTEM on
 * default_transaction_read_only, EXECUTE on pg_reload_conf, pg_signal_backend, pg_read_all_stats
 * (or pg_monitor), CREATE on the maintenance database, and ownership of (or membership in the
 * owner of) every database. docs/fencing.md has the details; a fence names what is missing.
 */
import { connect as connectSocket, isIP, Socket } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import pg from 'pg';
import { KeyedAdmission } from '../../runtime/admission.ts';
import { ProviderError, type ProviderErrorReason } from '../errors.ts';
import type { DatabaseConnection, DatabaseObservation, FenceRequest, ReplicaState } from './port.ts';
import {
  applyFence,
  endSessions,
  isRecordedFence,
  missingFencePrivileges,
  missingUnfencePrivileges,
  planFence,
  type RestoredDatabases,
  readServerFacts,
  restoreRecordedDatabases,
} from './postgres-fencing.ts';
import { type NamedWalSender, WalSenderNames, type WalSenderRow } from './wal-senders.ts';

/** Where the operator keeps its heartbeat row: one row, the epoch and when it was written. */
export const HEARTBEAT_TABLE = 'regionfailover.heartbeat';

/**
 * The end of the heartbeat's upsert (`INSERT … AS h`), for the heartbeat alone and inside the
 * probe's statement: refused where a newer epoch, or a newer operation's fence mark, is recorded;
 * an older mark is taken off. Returns the epoch written and the OIDs of the databases refusing
 * connections ("" when none: see checkRefusingDatabases).
 */
const HEARTBEAT_REFUSING_LOWER = `ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch, written_at = EXCLUDED.written_at, fenced_epoch = NULL
    WHERE h.epoch <= EXCLUDED.epoch AND COALESCE(h.fenced_epoch, 0) <= EXCLUDED.epoch
    RETURNING epoch,
      (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_database
        WHERE datconnlimit = 0 OR (NOT datallowconn AND NOT datistemplate)) AS refusing`;

export interface PostgresSqlOptions {
  /**
   * How long a caller waits for a session (TCP, TLS and authentication), and the server for
   * the TCP connection. Default 5000. A probe's session the server accepted and is still starting
   * when the probe stops waiting is not dropped: see sessionStartTimeoutMs.
   */
  connectTimeoutMs?: number;
  /**
   * How much longer a probe's session the server accepted may take to start (TLS,
   * authentication, its backend) once the probe stopped waiting; it then goes to the pool, and
   * the next probe waits for it rather than open another. Default 10000; 0 drops it with the
   * probe's wait, as pg-pool does. A loaded server that starts sessions slower than the connect
   * timeout thus serves the next probe; dropping them threw away its work (a fork and a SCRAM
   * exchange each) and asked for it again every probe, so that a server slow for a moment stayed
   * unreachable to every prober for as long as they reconnected.
   */
  sessionStartTimeoutMs?: number;
  /** statement_timeout of every session; the client also gives up a little later. Default 10000. */
  statementTimeoutMs?: number;
  /**
   * How long an unused pooled connection stays open. Default 300000: far longer than any probe
   * interval, so a prober that falls behind (a burst of new policies, a loaded server) still
   * finds its connections open. With 30 s, observers 30 s behind at 500 policies opened a new
   * session for every probe, each a backend fork and a cold catalog cache on the server, which
   * kept them behind: the load that slowed them came from their own reconnects.
   */
  idleTimeoutMs?: number;
  /** Pooled connections per database. Default 2: one probe and one action at a time. */
  maxConnections?: number;
  /** application_name, as pg_stat_activity shows the operator's sessions. */
  applicationName?: string;
  /**
   * A database that no fence closes to the operator, used to observe and fence from, and where
   * a fence keeps its records. Default "postgres" (DigitalOcean calls it "defaultdb").
   */
  maintenanceDatabase?: string;
  /** The clock for timestamps the operator writes (the epoch recorded when fencing). */
  now?: () => Date;
  /**
   * Told when a heartbeat found and undid a fence that no longer holds (see writeHeartbeat), with
   * what was put back; for a log line or an event.
   */
  onLeftoverFenceRestored?: (detail: string) => void;
}

/**
 * Sessions probes in this process open to one server at a time; the others wait their turn.
 * Each costs the server a backend and both sides a SCRAM exchange (and TLS): thousands asked at
 * once (a restarted operator, a healed partition, databases sharing a server) made every one of
 * them slower than the connect timeout. In turn, each is quick. 16 keep a server 100 ms away
 * opening over 30 a second. Actions (a fence, a promotion) never wait their turn behind probes.
 */
export const MAX_SESSION_STARTS_PER_SERVER = 16;
const SESSION_STARTS = new KeyedAdmission(MAX_SESSION_STARTS_PER_SERVER);

/** A session on either kind of connection. */
type Session = pg.PoolClient | pg.Client;

/** A pooled session being opened, and whether a caller still waits for it (see checkOut). */
interface Opening {
  session: Promise<pg.PoolClient>;
  waited: boolean;
  /** Whether a probe took it over after the one it was opened for gave up: it is not kept twice. */
  handedOver: boolean;
  /** Set once it is open, or once it failed. */
  client?: pg.PoolClient;
  failed?: unknown;
}

/**
 * Who asks for a session. A probe takes a session still starting for the probe before it, and
 * opens new ones in turn with the other probes of the server (SESSION_STARTS). An action opens
 * its own, at once, as pg-pool would: a session kept for probes may be one that never finishes
 * (its far side went silent after the handshake), and a fence is not retried on a timeout.
 */
type Caller = 'probe' | 'action';

/** What recording the epoch found and did. */
interface EpochStep {
  changed: boolean;
  /** The epoch the heartbeat row holds now; undefined when the database could not be reached. */
  recorded?: number;
  detail: string;
}

/** A pooled connection to one PostgreSQL database. Credentials never appear in messages or logs. */
export class PostgresSql {
  /** host:port/database, for messages. */
  readonly target: string;
  /** host:port: the server, whatever the database. */
  private readonly server: string;
  private readonly connection: DatabaseConnection;
  private readonly options: Required<PostgresSqlOptions>;
  private readonly pool: pg.Pool;
  /** The refusing databases the last heartbeat looked into for a leftover fence. */
  private leftoverCheckedFor = '';
  /** Whether this connection has made sure the heartbeat table has its fence-mark column. */
  private heartbeatSchemaChecked = false;
  /** The last probe found no heartbeat table in the target database (before the first heartbeat). */
  private heartbeatTableMissing = false;
  /**
   * The last session this pool tried to open was refused before a byte was exchanged, or none has
   * been opened yet: a restarted operator's first probes of thousands of refusing servers would
   * otherwise each build a pg client (~17 MiB of old-space garbage at 4,000 clusters, in the
   * seconds that set a restart's peak). One more TCP handshake per server that does accept.
   */
  private refusedAtConnect = true;
  /**
   * The last probe with the heartbeat found a writable primary with the heartbeat table: the next
   * one asks both in one statement (see observeWithHeartbeat).
   */
  private heartbeatInline = false;
  /** A primary's WAL senders' names, so a probe need not read every backend's activity. */
  private readonly walSenders = new WalSenderNames();
  /** A probe's session still starting after the probe stopped waiting: the next probe waits for it. */
  private starting: Opening | undefined;
  /** Sessions being opened; close() does not wait for them. */
  private openings = 0;
  private closed = false;

  constructor(connection: DatabaseConnection, options: PostgresSqlOptions = {}) {
    if (options.connectTimeoutMs !== undefined && !(options.connectTimeoutMs > 0))
      throw new Error(`connectTimeoutMs must be positive, got ${options.connectTimeoutMs}`);
    if (options.sessionStartTimeoutMs !== undefined && !(options.sessionStartTimeoutMs >= 0))
      throw new Error(`sessionStartTimeoutMs must be 0 or more, got ${options.sessionStartTimeoutMs}`);
    this.connection = connection;
    this.options = {
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      sessionStartTimeoutMs: options.sessionStartTimeoutMs ?? 10_000,
      statementTimeoutMs: options.statementTimeoutMs ?? 10_000,
      idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
      maxConnections: options.maxConnections ?? 2,
      applicationName: options.applicationName ?? 'failover-operator',
      maintenanceDatabase: options.maintenanceDatabase ?? 'postgres',
      now: options.now ?? (() => new Date()),
      onLeftoverFenceRestored: options.onLeftoverFenceRestored ?? (() => undefined),
    };
    this.target = `${connection.host}:${connection.port}/${connection.database}`;
    this.server = `${connection.host}:${connection.port}`;
    this.pool = new pg.Pool({
      ...this.clientConfig(connection.database),
      // Callers wait connectTimeoutMs (checkOut); the pool gives a session up only after this.
      connectionTimeoutMillis: this.options.connectTimeoutMs + this.options.sessionStartTimeoutMs,
      stream: () => this.tcpWithin(this.options.connectTimeoutMs),
      max: this.options.maxConnections,
      idleTimeoutMillis: this.options.idleTimeoutMs,
      allowExitOnIdle: true,
    });
    // A pooled connection the server ends while idle (restart, fencing) emits 'error'; the pool
    // drops it, and an unhandled 'error' event would crash the operator.
    this.pool.on('error', () => undefined);
    // Queued on the new session before whatever it was opened for (pg runs a session's queries
    // in order); a failure leaves commits waiting as before, and the statement after says why.
    this.pool.on('connect', (client) => void client.query(COMMIT_LOCALLY).catch(() => undefined));
  }

  /**
   * Probes role, WAL positions, timeline, replay state, WAL receiver, replicas and heartbeat.
   * Never throws.
   */
  async observe(): Promise<DatabaseObservation> {
    const started = performance.now();
    const durationMs = () => Math.round(performance.now() - started);
    let failed: unknown;
    try {
      return {
        ...(await this.withClient((client) => this.readFacts(client, true), 'probe')),
        durationMs: durationMs(),
      };
    } catch (err) {
      failed = err;
    }
    if (isRefusedByDatabase(failed)) {
      // A fence refuses the operator this database (Shutdown closed it, or ReadOnly set its
      // connection limit to 0 and the role is not a superuser); the maintenance database still
      // tells the rest.
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
    const [row] = await this.query<{ in_recovery: boolean }>(
      'SELECT pg_is_in_recovery() AS in_recovery',
      [],
      {
        serverWide: true,
      },
    );
    return row?.in_recovery === true;
  }

  /** Whether the server's default is read-only (it was fenced). Throws ProviderError. */
  async isReadOnly(): Promise<boolean> {
    const [row] = await this.query<{ read_only: boolean }>(
      "SELECT current_setting('default_transaction_read_only') = 'on' AS read_only",
      [],
      { serverWide: true },
    );
    return row?.read_only === true;
  }

  /**
   * Runs one statement on a pooled session and returns its rows. `timeoutMs` raises the
   * statement timeout for this statement only (pg_promote waits longer than a probe).
   * `serverWide` says the statement concerns the whole server, not the application database
   * (pg_promote, pg_is_in_recovery): when a fence refuses the operator that database, it runs in
   * the maintenance database instead.
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    params: unknown[] = [],
    opts: { timeoutMs?: number; serverWide?: boolean } = {},
  ): Promise<R[]> {
    const run = async (client: Session): Promise<R[]> => {
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
    };
    try {
      try {
        return await this.withClient(run);
      } catch (err) {
        if (!opts.serverWide || !isRefusedByDatabase(err)) throw err;
        return await this.withMaintenanceClient(run);
      }
    } catch (err) {
      throw classifyPostgresError(err, this.target);
    }
  }

  /**
   * Writes the heartbeat row on a primary, creating the table if it is missing. Refuses to
   * lower the epoch: a higher one there means a newer failover fenced this database, and
   * overwriting it would erase the mark that tells clients so.
   *
   * A server that takes the heartbeat for `epoch` is the primary at that epoch. If it still holds
   * the records of a fence at or below that epoch, the fence no longer holds and its databases
   * are put back as they were before it: a promoted standby inherits its old primary's
   * connection limits through replication (see postgres-fencing.ts). For a role that is not a
   * superuser those limits refuse the heartbeat itself, so that case is undone first.
   */
  async writeHeartbeat(epoch: number, at: Date): Promise<void> {
    assertEpoch(epoch);
    try {
      let refusing: string;
      try {
        refusing = await this.withClient((client) => this.writeOwnHeartbeat(client, epoch, at));
      } catch (err) {
        if (!isRefusedByDatabase(err) || !(await this.restoreLeftoverFence(epoch))) throw err;
        refusing = await this.withClient((client) => this.writeOwnHeartbeat(client, epoch, at));
      }
      await this.checkRefusingDatabases(epoch, refusing);
    } catch (err) {
      throw classifyPostgresError(err, this.target);
    }
  }

  /**
   * observe(), then writeHeartbeat() when the observation is a writable primary, as the active
   * primary's probe needs them; the heartbeat's failure is returned, not thrown. Never throws.
   *
   * Once a heartbeat has gone through on this database, both are one statement (one round trip,
   * one snapshot): the probe's facts, and the upsert under the same conditions a Primary
   * observation has (not in recovery, not read-only, the database not closed). A server that is
   * no longer a writable primary refuses the whole statement (a standby or a read-only default
   * cannot run an INSERT), and the two steps apart then say what it is; so do a missing table or
   * column, or a database that refuses the operator. Half the round trips of the active
   * primaries' probes, and half of their share of the operator's socket and parsing work.
   */
  async observeWithHeartbeat(epoch: number, at: Date): Promise<ObservedWithHeartbeat> {
    assertEpoch(epoch);
    if (!this.heartbeatInline) return this.observeThenHeartbeat(epoch, at);
    const started = performance.now();
    const durationMs = () => Math.round(performance.now() - started);
    let row: ProbeWithHeartbeatRow | undefined;
    try {
      row = await this.withClient(
        async (client) =>
          (
            await client.query<{ facts: ProbeWithHeartbeatRow }>({
              name: 'failover-probe-heartbeat',
              text: PROBE_AND_HEARTBEAT,
              values: [this.connection.database, epoch, at, ...this.walSenders.known(performance.now())],
            })
          ).rows[0]?.facts,
        'probe',
      );
    } catch (err) {
      this.heartbeatInline = false;
      const judged = judgeCombinedFailure(err);
      if (judged === 'ask-apart') return this.observeThenHeartbeat(epoch, at);
      if (judged === 'write-failed') {
        // The read alone says what the server is; the heartbeat's failure is reported, as apart.
        return { observation: await this.observe(), heartbeatError: classifyPostgresError(err, this.target) };
      }
      const failure = classifyPostgresError(err, this.target);
      return {
        observation: {
          reachable: false,
          role: 'Unknown',
          failure: { reason: failure.reason, message: failure.message },
          durationMs: durationMs(),
        },
      };
    }
    // It always returns a row; should it not, the probe alone is asked.
    if (!row) return { observation: await this.observe() };
    // Read in the statement's snapshot: the row as it was before this heartbeat, as observe() reads it.
    const heartbeat = heartbeatOf(row.heartbeat);
    const observation = {
      ...observationOf(row, heartbeat, row.read_only === true || row.closed === true, this.sendersOf(row)),
      durationMs: durationMs(),
    };
    if (observation.role !== 'Primary') {
      this.heartbeatInline = false;
      return { observation };
    }
    if (row.written_epoch == null) {
      this.heartbeatInline = false;
      return { observation, heartbeatError: this.newerEpochError(epoch, heartbeat) };
    }
    try {
      await this.checkRefusingDatabases(epoch, row.refusing ?? '');
    } catch (err) {
      return { observation, heartbeatError: classifyPostgresError(err, this.target) };
    }
    return { observation };
  }

  /** observeWithHeartbeat as two round trips; a heartbeat that goes through makes the next one inline. */
  private async observeThenHeartbeat(epoch: number, at: Date): Promise<ObservedWithHeartbeat> {
    const observation = await this.observe();
    if (!observation.reachable || observation.role !== 'Primary') return { observation };
    try {
      await this.writeHeartbeat(epoch, at);
    } catch (err) {
      return { observation, heartbeatError: err as Error };
    }
    this.heartbeatInline = this.heartbeatSchemaChecked;
    this.heartbeatTableMissing = false;
    return { observation };
  }

  /**
   * Fences this database, if it is a primary, so the old primary cannot keep taking writes.
   * docs/fencing.md says exactly what each mode guarantees and what it does not:
   *
   * - EpochOnly records the new epoch in the heartbeat row (clients that check it stop).
   * - ReadOnly sets default_transaction_read_only = on with ALTER SYSTEM and reloads, records the
   *   epoch, sets CONNECTION LIMIT 0 on the databases (all of them when the operator's role is a
   *   superuser; otherwise all but the templates and the maintenance database), remembering each
   *   one's limit for unfence, and ends the sessions that could still write. Non-superusers can
   *   then neither connect nor keep a session; superusers are exempt from connection limits and
   *   can still write if they insist.
   * - Shutdown does all of ReadOnly and sets ALLOW_CONNECTIONS false on the same databases,
   *   which refuses superusers too; the maintenance database stays open.
   *
   * A standby accepts no writes, so there is nothing to fence and nothing changes. Every step
   * checks before it acts, and the steps are ordered so that running the fence again after an
   * interruption at any point completes it; `detail` says what this call changed.
   */
  async fence(request: FenceRequest): Promise<{ detail: string }> {
    assertEpoch(request.epoch);
    try {
      await this.refuseNewerEpoch(request.epoch);
      if (request.mode === 'EpochOnly') return { detail: await this.fenceEpochOnly(request.epoch) };
      return { detail: await this.fenceWrites(request.mode, request.epoch) };
    } catch (err) {
      throw classifyPostgresError(err, this.target);
    }
  }

  /**
   * Undoes a ReadOnly (or Shutdown) fence: for a planned switchover that could not finish, so
   * the old primary takes writes again. Only ever called before the standby was promoted. Puts
   * every database's connection limit and ALLOW_CONNECTIONS back as recorded, then resets the
   * read-only default (last, so that an interrupted unfence leaves a fence that still marks the
   * server, and running unfence again finishes it).
   */
  async unfence(): Promise<{ detail: string }> {
    try {
      return await this.withMaintenanceClient(async (client) => {
        const facts = await readServerFacts(client);
        if (facts.inRecovery) return { detail: `${this.target} is in recovery (a standby): nothing to undo` };
        const missing = missingUnfencePrivileges(facts, this.options.maintenanceDatabase);
        if (missing.length > 0) {
          throw new ProviderError(
            'Rejected',
            `PostgreSQL ${this.target}: unfencing needs what the role "${facts.role}" lacks: ` +
              `${missing.join('; ')}; or let the operator log in as a superuser`,
            { retryable: false },
          );
        }
        const done: string[] = [];
        const restored = await restoreRecordedDatabases(client);
        if (restored) done.push(...describeRestored(restored));
        // The mark goes with the fence: it was taken back before anything was promoted.
        if (await this.clearFenceMark()) done.push('fence mark cleared');
        if (facts.readOnly) {
          await client.query('ALTER SYSTEM RESET default_transaction_read_only');
          await client.query('SELECT pg_reload_conf()');
          done.push('default_transaction_read_only reset (ALTER SYSTEM RESET, configuration reloaded)');
        }
        return { detail: done.length > 0 ? done.join('; ') : 'not fenced read-only' };
      });
    } catch (err) {
      throw classifyPostgresError(err, this.target);
    }
  }

  /**
   * A database that holds a newer epoch than the fencing operation's was promoted by a later
   * one: it is the primary, whatever the caller believes, and is never fenced for an older epoch.
   * (Checked here, beside the database, as well as in decide, whose facts are a probe old.)
   */
  private async refuseNewerEpoch(epoch: number): Promise<void> {
    let stored: number | undefined;
    try {
      stored = await this.withClient(async (client) => (await readHeartbeat(client))?.epoch);
    } catch (err) {
      // Closed to the operator by an earlier fence: the fence itself sees to the rest.
      if (isRefusedByDatabase(err)) return;
      throw err;
    }
    if (stored !== undefined && stored > epoch) {
      throw new ProviderError(
        'PreconditionFailed',
        `${this.target} holds epoch ${stored}, newer than the fencing operation's ${epoch}: a later promotion made it primary; not fencing it`,
        { retryable: false },
      );
    }
  }

  /** Ends every pooled connection; a second call does nothing. */
  async close(): Promise<void> {
    // Once: pg-pool refuses a second end.
    if (this.closed) return;
    this.closed = true;
    const ended = this.pool.end();
    // A session still starting ends once it opens or gives up; nobody waits that long for it.
    if (this.openings > 0) void ended.catch(() => undefined);
    else await ended;
  }

  private async fenceEpochOnly(epoch: number): Promise<string> {
    try {
      return await this.withClient(async (client) => {
        const { rows } = await client.query<{ in_recovery: boolean }>(
          'SELECT pg_is_in_recovery() AS in_recovery',
        );
        if (rows[0]?.in_recovery) return standbyDetail(this.target);
        return (await this.recordEpoch(client, epoch)).detail;
      });
    } catch (err) {
      if (!isRefusedByDatabase(err)) throw err;
      // An earlier ReadOnly or Shutdown fence, stricter than this one, keeps the operator out.
      return `${refusedDetail(this.connection.database, err)}; fenced earlier`;
    }
  }

  /**
   * ReadOnly and Shutdown, from a session in the maintenance database (which no fence closes to
   * the operator: its limit does not apply to superusers, and it is left out for other roles),
   * in the order postgres-fencing.ts explains. Everything the role lacks is
   * named before anything changes.
   */
  private async fenceWrites(mode: 'ReadOnly' | 'Shutdown', epoch: number): Promise<string> {
    const names = { target: this.connection.database, maintenance: this.options.maintenanceDatabase };
    return this.withMaintenanceClient(async (client) => {
      const facts = await readServerFacts(client);
      if (facts.inRecovery) return standbyDetail(this.target);
      const plan = this.namingTarget(() => planFence(facts, mode, names));
      const missing = missingFencePrivileges(facts, plan, names);
      if (missing.length > 0) {
        throw new ProviderError(
          'Rejected',
          `PostgreSQL ${this.target}: ${mode} fencing needs what the role "${facts.role}" lacks: ` +
            `${missing.join('; ')}; or let the operator log in as a superuser`,
          { retryable: false },
        );
      }
      const done: string[] = [];
      const fresh = !facts.readOnly;
      if (fresh) {
        // ALTER SYSTEM cannot run in a transaction block.
        await client.query('ALTER SYSTEM SET default_transaction_read_only = on');
        await client.query('SELECT pg_reload_conf()');
        done.push('default_transaction_read_only = on (ALTER SYSTEM, configuration reloaded)');
      } else {
        done.push('already read-only');
      }
      // Before the connection limit, which may keep a role that is not a superuser out.
      const epochStep = await this.recordEpochInTarget(epoch);
      done.push(epochStep.detail);
      const changes = await applyFence(client, plan, { epoch, fresh, maintenance: names.maintenance });
      if (changes.limited.length > 0) {
        const list = changes.limited.map((d) => `${d.name} (was ${d.before})`).join(', ');
        done.push(`connection limit 0 (non-superusers refused) on ${list}`);
      }
      if (changes.closed.length > 0) done.push(`closed to new connections: ${changes.closed.join(', ')}`);
      const sessions = await endSessions(client, {
        ...changes,
        superuser: facts.superuser,
        applicationName: this.options.applicationName,
      });
      const changed = fresh || epochStep.changed || changes.limited.length > 0 || changes.closed.length > 0;
      if (changed || sessions.ended > 0) done.push(`ended ${sessions.ended} other client session(s)`);
      if (sessions.leftOpen > 0) {
        done.push(
          `left ${sessions.leftOpen} superuser session(s) open: the role "${facts.role}" is not a superuser and cannot end them`,
        );
      }
      if (!changed && sessions.ended === 0 && sessions.leftOpen === 0) {
        const what = `already fenced ${mode === 'ReadOnly' ? 'read-only' : 'read-only and closed'}`;
        return epochStep.recorded === undefined
          ? `${what}; ${epochStep.detail}`
          : `${what} with epoch ${epochStep.recorded} recorded`;
      }
      return done.join('; ');
    });
  }

  /** Runs `fn`, naming this server in a ProviderError it throws. */
  private namingTarget<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err;
      throw new ProviderError(err.reason, `PostgreSQL ${this.target}: ${err.message}`, {
        retryable: err.retryable,
        cause: err,
      });
    }
  }

  /** Records the epoch in the application database's heartbeat row, where clients look. */
  private async recordEpochInTarget(epoch: number): Promise<EpochStep> {
    try {
      return await this.withClient((client) => this.recordEpoch(client, epoch));
    } catch (err) {
      if (!isRefusedByDatabase(err)) throw err;
      return { changed: false, detail: refusedDetail(this.connection.database, err) };
    }
  }

  /**
   * Marks the heartbeat row with the fencing operation's epoch (`fenced_epoch`), even on a
   * read-only primary; never lowers a mark. The row's own `epoch` is left as it is.
   */
  private async recordEpoch(client: Session, epoch: number): Promise<EpochStep> {
    const stored = (await readHeartbeat(client))?.fencedEpoch;
    if (stored !== undefined && stored >= epoch) {
      return { changed: false, recorded: stored, detail: `epoch ${stored} already recorded` };
    }
    const written = await this.upsertHeartbeat(client, epoch, this.options.now(), 'mark-fenced');
    return { changed: true, recorded: written?.epoch ?? epoch, detail: `epoch ${epoch} recorded` };
  }

  /** Takes the fence mark off the heartbeat row (a rolled-back switchover). Whether there was one. */
  private async clearFenceMark(): Promise<boolean> {
    return this.withClient(async (client) => {
      const mark = (await readHeartbeat(client))?.fencedEpoch;
      if (mark === undefined) return false;
      await client.query('BEGIN READ WRITE');
      try {
        await client.query(`UPDATE ${HEARTBEAT_TABLE} SET fenced_epoch = NULL WHERE id`);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      return true;
    });
  }

  /** The heartbeat, refusing a lower epoch; returns the databases refusing connections ("" if none). */
  private async writeOwnHeartbeat(client: Session, epoch: number, at: Date): Promise<string> {
    const written = await this.upsertHeartbeat(client, epoch, at, 'refuse-lower');
    if (written === undefined) throw this.newerEpochError(epoch, await readHeartbeat(client));
    return written.refusing ?? '';
  }

  /** Why the heartbeat for `epoch` was refused: `stored`, the row found, holds a newer epoch or mark. */
  private newerEpochError(epoch: number, stored: { epoch: number; fencedEpoch?: number } | undefined) {
    const newer = Math.max(stored?.epoch ?? 0, stored?.fencedEpoch ?? 0);
    return new ProviderError(
      'PreconditionFailed',
      `${this.target} holds heartbeat epoch ${newer}, newer than ${epoch}: a later failover ` +
        'fenced this database; it must not act as primary for the older epoch',
      { retryable: false },
    );
  }

  /**
   * After a heartbeat: databases refusing connections may be a fence this primary inherited
   * (see writeHeartbeat). Looked at once per set of refusing databases: an administrator's own
   * CONNECTION LIMIT 0 has no records, and is left alone without a look on every heartbeat.
   */
  private async checkRefusingDatabases(epoch: number, refusing: string): Promise<void> {
    if (refusing === '' || refusing === this.leftoverCheckedFor) return;
    await this.restoreLeftoverFence(epoch);
    this.leftoverCheckedFor = refusing;
  }

  /**
   * Puts back the databases of a fence at or below `epoch` that no longer holds (see
   * writeHeartbeat). Returns whether there were records to act on.
   */
  private async restoreLeftoverFence(epoch: number): Promise<boolean> {
    let restored: RestoredDatabases | undefined;
    try {
      restored = await this.withMaintenanceClient((client) =>
        restoreRecordedDatabases(client, { maxEpoch: epoch }),
      );
    } catch (err) {
      // Without a maintenance database no fence can have kept records.
      if (err instanceof ProviderError && err.reason === 'NotFound') return false;
      throw err;
    }
    if (!restored || restored.records === 0) return false;
    this.options.onLeftoverFenceRestored(
      `${this.target} takes writes at epoch ${epoch} but held the records of an earlier fence ` +
        `(a standby inherits them through replication): ${describeRestored(restored).join('; ') || 'records dropped'}`,
    );
    return true;
  }

  /**
   * Inserts or updates the heartbeat row, creating the table if it is missing. Returns the epoch
   * written, or undefined when 'refuse-lower' found a higher epoch; 'refuse-lower' (the
   * heartbeat) also returns the OIDs of the databases refusing connections, in the same round
   * trip. 'mark-fenced' runs in an explicit read-write transaction so it works on a primary
   * fenced read-only.
   */
  private async upsertHeartbeat(
    client: Session,
    epoch: number,
    at: Date,
    policy: 'refuse-lower' | 'mark-fenced',
  ): Promise<{ epoch: number; refusing?: string } | undefined> {
    const upsert = policy === 'refuse-lower' ? HEARTBEAT_UPSERT : FENCE_MARK_UPSERT;
    const run = async () => {
      // A read-write transaction is explicit only when fencing: a heartbeat must fail on a fenced primary.
      const fencing = policy === 'mark-fenced';
      if (!this.heartbeatSchemaChecked) await addFenceMarkColumn(client);
      if (fencing) await client.query('BEGIN READ WRITE');
      try {
        const { rows } = await client.query<{ epoch: string; refusing?: string | null }>({
          name: `failover-heartbeat-${policy}`,
          text: upsert,
          values: [epoch, at],
        });
        if (fencing) await client.query('COMMIT');
        this.heartbeatSchemaChecked = true;
        const row = rows[0];
        return row === undefined ? undefined : { epoch: Number(row.epoch), refusing: row.refusing ?? '' };
      } catch (err) {
        if (fencing) await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    };
    try {
      return await run();
    } catch (err) {
      const code = sqlState(err);
      if (code !== '42P01' && code !== '3F000') throw err;
    }
    await createHeartbeatTable(client, policy === 'mark-fenced');
    return run();
  }

  /**
   * Gathers the observation on one session, in one statement (one round trip, one snapshot):
   * role, WAL positions, timeline, replay state, WAL receiver, replicas and, in the target
   * database, the heartbeat row. `inTargetDatabase` is false on the maintenance database, where
   * the heartbeat is out of reach. Before the first heartbeat the table does not exist yet, and
   * the statement is asked again without it.
   */
  private async readFacts(
    client: Session,
    inTargetDatabase: boolean,
  ): Promise<Omit<DatabaseObservation, 'durationMs'>> {
    // Named, so each pooled session parses it once (planning too, once PostgreSQL keeps a generic
    // plan): that was most of a probe's cost on the server.
    const ask = (withHeartbeat: boolean) =>
      client.query<{ facts: ProbeRow }>({
        name: withHeartbeat ? 'failover-probe-hb' : 'failover-probe',
        text: withHeartbeat ? PROBE_FACTS_WITH_HEARTBEAT : PROBE_FACTS_WITHOUT_HEARTBEAT,
        values: [this.connection.database, ...this.walSenders.known(performance.now())],
      });
    const inline = inTargetDatabase && !this.heartbeatTableMissing;
    let result: pg.QueryResult<{ facts: ProbeRow }>;
    try {
      result = await ask(inline);
    } catch (err) {
      const code = sqlState(err);
      if (!inline || (code !== '42P01' && code !== '3F000')) throw err;
      // Until the table exists, ask whether it does first rather than fail (and log an ERROR on
      // the server) every probe: two round trips, until the first heartbeat is seen.
      this.heartbeatTableMissing = true;
      result = await ask(false);
    }
    const row = result.rows[0]?.facts;
    if (!row) throw new Error('the probe statement returned no row');
    let heartbeat = heartbeatOf(row.heartbeat);
    if (inTargetDatabase && this.heartbeatTableMissing) {
      const found = await readHeartbeat(client);
      if (found) this.heartbeatTableMissing = false;
      // Read after the rest, a standby's heartbeat may be newer than the position read with it
      // (lag in seconds understated): a primary's is reported, a standby's from the next probe.
      heartbeat = row.in_recovery ? undefined : found;
    }
    // Every fence sets the read-only default first and resets it last. A database closed without
    // it is an administrator's doing, unless the closure is recorded: then it is a fence that no
    // longer holds (a promoted standby's inheritance), which the next heartbeat undoes.
    const fenced =
      !row.in_recovery &&
      (row.read_only === true ||
        (row.closed === true &&
          (inTargetDatabase || !(await isRecordedFence(client, this.connection.database)))));
    return observationOf(row, heartbeat, fenced, this.sendersOf(row));
  }

  /** A primary's WAL senders as pg_stat_replication shows them, named from memory where the row did not. */
  private sendersOf(row: ProbeRow): NamedWalSender[] {
    if (row.in_recovery) return [];
    // json_agg of no senders is NULL: none, which memory must learn too.
    return this.walSenders.name(row.replicas ?? [], row.server_started ?? '', performance.now());
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
      // Keepalives from 30 s idle (the OS waits 2 hours): a session unused for minutes in the
      // pool (idleTimeoutMs) stays known to the NATs and load balancers on the way, several of
      // which forget idle connections after about 4 minutes and leave a dead session to the
      // next probe.
      keepAlive: true,
      keepAliveInitialDelayMillis: 30_000,
    };
  }

  private async withClient<T>(
    fn: (client: pg.PoolClient) => Promise<T>,
    caller: Caller = 'action',
  ): Promise<T> {
    const client = await this.checkOut(caller);
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

  /**
   * A pooled session within connectTimeoutMs: an idle one, else (for a probe) the one still
   * starting for the probe before, else a new one. A probe's session still starting when the wait
   * ends is kept for the next probe (see sessionStartTimeoutMs), once; the caller fails as
   * pg-pool's own timeout words it.
   */
  private async checkOut(caller: Caller): Promise<pg.PoolClient> {
    const kept = caller === 'probe' && this.pool.idleCount === 0 ? this.starting : undefined;
    let opening: Opening;
    if (kept) {
      this.starting = undefined;
      kept.handedOver = true;
      opening = kept;
    } else opening = this.open(caller);
    opening.waited = true;
    const waitMs = this.options.connectTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const waitEnds = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), waitMs);
    });
    try {
      const client = await Promise.race([opening.session, waitEnds]);
      if (client) return client;
    } finally {
      clearTimeout(timer);
    }
    // Settled in the turn the wait ended: taken, or its failure given, all the same.
    if (opening.client) return opening.client;
    if (opening.failed !== undefined) throw opening.failed;
    opening.waited = false;
    // Kept for the next probe: one not kept (an action's, one kept before, one more beside the
    // one kept) still goes to the pool if it opens.
    if (caller === 'probe' && this.options.sessionStartTimeoutMs > 0 && !opening.handedOver && !this.starting)
      this.starting = opening;
    throw new Error('Connection terminated due to connection timeout', {
      cause: new Error(`timeout expired: no session within ${waitMs} ms`),
    });
  }

  /**
   * Asks the pool for a session: a probe's new one in turn with the other probes of the server
   * (SESSION_STARTS). One nobody waits for once it opens goes back to the pool.
   */
  private open(caller: Caller): Opening {
    // Only a new client starts a session: an idle one is handed over, and a full pool queues.
    const starts = this.pool.idleCount === 0 && this.pool.totalCount < this.options.maxConnections;
    const connect = async () => {
      if (this.closed) throw new Error('the connection was closed');
      // A server that refused the last session (nothing listening, no route, no such host), or
      // not yet asked, is asked with a bare socket first, which fails with the same error. A pg
      // client's objects are held by its socket's listeners until a full GC, so each refused
      // attempt left ~8 KiB in the old space: 4,000 refusing clusters every 5 s kept the heap at
      // 1.5 times the live one (1 KiB bare).
      if (starts && this.refusedAtConnect) await this.socketAccepts();
      return this.pool.connect();
    };
    const session =
      starts && caller === 'probe'
        ? SESSION_STARTS.enter(this.server).then(async (leave) => {
            try {
              return await connect();
            } finally {
              leave();
            }
          })
        : connect();
    const opening: Opening = { session, waited: true, handedOver: false };
    this.openings++;
    opening.session.then(
      (client) => {
        this.openings--;
        this.refusedAtConnect = false;
        opening.client = client;
        if (opening.waited) return;
        if (this.starting === opening) this.starting = undefined;
        client.release();
      },
      (err: unknown) => {
        this.openings--;
        opening.failed = err;
        // Anything but a refusal (a timeout: the host now drops packets) is left to pg to report.
        if (starts) this.refusedAtConnect = isRefusal(err);
        if (this.starting === opening) this.starting = undefined;
      },
    );
    return opening;
  }

  /**
   * The socket pg opens a pooled session on, destroyed when the server has not accepted its TCP
   * connection within `ms`: what is not yet accepted is not kept, only a session the server has
   * begun to start (a host that drops packets is asked again, from scratch, by the next caller).
   */
  private tcpWithin(ms: number): Socket {
    const socket = new Socket();
    const timer = setTimeout(
      () => socket.destroy(new Error(`timeout expired: no TCP connection within ${ms} ms`)),
      ms,
    ).unref();
    // Neither listener (nor the timer they hold) outlives the connect, on a socket kept for minutes.
    const settled = () => {
      clearTimeout(timer);
      socket.off('connect', settled);
      socket.off('close', settled);
    };
    socket.once('connect', settled);
    socket.once('close', settled);
    return socket;
  }

  /** Resolves once the server accepts a TCP connection (closed at once); else rejects as pg would. */
  private socketAccepts(): Promise<void> {
    const { host, port } = this.connection;
    const timeoutMs = this.options.connectTimeoutMs;
    return new Promise((resolve, reject) => {
      const socket = host.startsWith('/')
        ? connectSocket({ path: `${host}/.s.PGSQL.${port}` })
        : connectSocket({ host, port });
      const done = (err?: Error) => {
        if (timer) clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve();
      };
      // As pg-pool words its own connect timeout (0: none, as in pg).
      const timer =
        timeoutMs > 0
          ? setTimeout(
              () =>
                done(
                  new Error('Connection terminated due to connection timeout', {
                    cause: new Error('timeout expired'),
                  }),
                ),
              timeoutMs,
            ).unref()
          : undefined;
      socket.once('connect', () => done());
      socket.once('error', done);
    });
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
          'does not exist; set maintenanceDatabase to an existing database that applications do not use (fencing observes and keeps its records there)',
        { cause: err, retryable: false },
      );
    }
    try {
      await client.query(COMMIT_LOCALLY).catch(() => undefined);
      return await fn(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/**
 * Set on every session the operator (and the agent's fence) opens: its writes (the heartbeat, the
 * epoch, a fence's records and limits) commit once flushed on this server and never wait for a
 * synchronous standby. When that standby is the one lost or cut off, every commit on the primary
 * waits for it and no statement timeout ends the wait: the heartbeat held the active primary's
 * probe to its deadline every interval (a working primary counted as failed), a fence stalled at
 * its first commit, and a standby promoted under `synchronous_standby_names` never recorded its
 * epoch. Their WAL streams as any other. A statement rather than the `options` startup parameter,
 * which connection poolers refuse; set for the session, it needs one that keeps the session (a
 * direct connection or session pooling, as the named statements do), and the probe's heartbeat
 * sets it for its own transaction as well.
 */
export const COMMIT_LOCALLY = 'SET synchronous_commit = local';

interface ProbeRow {
  in_recovery: boolean;
  replay_lsn: string | null;
  receive_lsn: string | null;
  pause_state: string | null;
  timeline: number | null;
  receiver_running: boolean;
  receiver_status: string | null;
  receiver_age_seconds: number | null;
  lsn: string | null;
  walfile: string | null;
  read_only: boolean;
  closed: boolean;
  /** A primary's synchronous_standby_names. */
  sync_names: string | null;
  /**
   * Where names are set: synchronous_commit as a session of the operator's role and database
   * starts with it (the server's, or an ALTER ROLE/DATABASE default), before COMMIT_LOCALLY.
   */
  sync_commit: string | null;
  /** A primary's WAL senders; named where the statement read their names (see wal-senders.ts). */
  replicas: WalSenderRow[] | null;
  /**
   * The server's start time: it tells a primary's WAL senders' pids apart from another server's,
   * and one server named by two clusters from two servers.
   */
  server_started: string | null;
  /** The heartbeat row as JSON (a table an older operator created has no fenced_epoch). */
  heartbeat: { epoch: number | string; written_at: string; fenced_epoch?: number | string | null } | null;
}

/**
 * The probe as one statement. What only a standby can answer (replay) or only a primary
 * (pg_current_wal_lsn) is asked under CASE on the same row's pg_is_in_recovery(), so neither
 * raises on the other. pg_stat_wal_receiver has a row while a WAL receiver runs; to a role
 * without pg_read_all_stats it shows only the pid, every other column NULL (as do most of
 * pg_stat_replication's without pg_monitor). The timeline of a standby: the one being received,
 * else the one of the last restartpoint (SQL shows no other). $1: the application database,
 * whether connections to it are closed.
 *
 * `$${sendersKnown}` and the next parameter: the WAL sender pids whose names the prober knows,
 * and the start time of the server they were read from (see wal-senders.ts); `activity` is
 * `{}` for a sender whose backend ended between the two reads.
 */
function probeStatement(withHeartbeat: boolean, sendersKnown: number): string {
  const heartbeat = withHeartbeat ? `(SELECT to_jsonb(h) FROM ${HEARTBEAT_TABLE} h WHERE id)` : 'NULL::jsonb';
  const started = 'extract(epoch FROM pg_postmaster_start_time())::text';
  return `SELECT r.in_recovery,
      CASE WHEN r.in_recovery THEN pg_last_wal_replay_lsn()::text END AS replay_lsn,
      CASE WHEN r.in_recovery THEN pg_last_wal_receive_lsn()::text END AS receive_lsn,
      CASE WHEN r.in_recovery THEN pg_get_wal_replay_pause_state() END AS pause_state,
      CASE WHEN r.in_recovery THEN COALESCE(w.received_tli, (pg_control_checkpoint()).timeline_id) END AS timeline,
      w.pid IS NOT NULL AS receiver_running,
      w.status AS receiver_status,
      GREATEST(0, EXTRACT(epoch FROM clock_timestamp() - w.last_msg_receipt_time))::float8 AS receiver_age_seconds,
      CASE WHEN NOT r.in_recovery THEN pg_current_wal_lsn()::text END AS lsn,
      CASE WHEN NOT r.in_recovery THEN pg_walfile_name(pg_current_wal_lsn()) END AS walfile,
      current_setting('default_transaction_read_only') = 'on' AS read_only,
      COALESCE((SELECT NOT datallowconn FROM pg_database WHERE datname = $1), false) AS closed,
      CASE WHEN NOT r.in_recovery THEN current_setting('synchronous_standby_names') END AS sync_names,
      CASE WHEN NOT r.in_recovery AND current_setting('synchronous_standby_names') <> '' THEN
        (SELECT reset_val FROM pg_settings WHERE name = 'synchronous_commit') END AS sync_commit,
      CASE WHEN NOT r.in_recovery THEN (
        SELECT json_agg(json_build_object(
                 'pid', w.pid,
                 'activity', CASE WHEN w.pid = ANY($${sendersKnown}::int[]) AND ${started} = $${sendersKnown + 1} THEN NULL
                   ELSE COALESCE((SELECT json_build_object('application_name', s.application_name, 'client_addr', host(s.client_addr))
                           FROM pg_stat_get_activity(w.pid) s), '{}') END,
                 'state', w.state, 'sent_lsn', w.sent_lsn::text, 'replay_lsn', w.replay_lsn::text,
                 'replay_lag_seconds', EXTRACT(epoch FROM w.replay_lag)::float8, 'sync_state', w.sync_state))
          FROM pg_stat_get_wal_senders() w) END AS replicas,
      ${started} AS server_started,
      ${heartbeat} AS heartbeat
    FROM (SELECT pg_is_in_recovery() AS in_recovery) AS r
    LEFT JOIN pg_stat_wal_receiver w ON true`;
}

/**
 * A probe's row as one json column. pg describes and parses every column of every answer (the
 * row's description, a parser per column, the values): one column instead of sixteen took a
 * tenth to a seventh off pg's CPU for the probe statement (655 and 700 → 581 and 594 µs a query,
 * 200 sessions at 100 a second, runs in turn); in the operator's whole cost it is within the
 * runs' spread. JSON keeps each value's type as the columns had it (bigints aside: numbers, read
 * with Number() either way; a float8 NaN or Infinity would come as a string, and none can:
 * receiver_age_seconds is GREATEST(0, a difference of timestamps)).
 */
const asFacts = (select: string) => `SELECT row_to_json(f) AS facts FROM (${select}) f`;

/**
 * The heartbeat of a primary at `epoch` ($1, at $2): refused where a newer epoch, or a newer
 * operation's fence mark, is recorded; it takes an older mark off (a promoted standby inherits its
 * old primary's through replication). Built once: pg keeps each named statement's text per
 * session, and a text built per call was one more copy for every pooled session.
 */
const HEARTBEAT_UPSERT = `INSERT INTO ${HEARTBEAT_TABLE} AS h (id, epoch, written_at) VALUES (true, $1, $2)
           ${HEARTBEAT_REFUSING_LOWER}`;
/** A fence's mark at epoch $1 (at $2), which leaves `epoch` as it is. */
const FENCE_MARK_UPSERT = `INSERT INTO ${HEARTBEAT_TABLE} AS h (id, epoch, written_at, fenced_epoch) VALUES (true, 0, $2, $1)
           ON CONFLICT (id) DO UPDATE SET fenced_epoch = GREATEST(COALESCE(h.fenced_epoch, 0), EXCLUDED.fenced_epoch)
           RETURNING fenced_epoch AS epoch`;

/** The probe statement, built once: it is sent every probe. */
const PROBE_FACTS_WITH_HEARTBEAT = asFacts(probeStatement(true, 2));
const PROBE_FACTS_WITHOUT_HEARTBEAT = asFacts(probeStatement(false, 2));

/**
 * How long the heartbeat in the probe's statement waits for its row (set for that statement
 * alone, before the row is locked): a row held by another session (a long transaction on it)
 * must not keep the probe past its deadline, which would count the reachable primary as failed.
 */
const HEARTBEAT_LOCK_WAIT_MS = 1_000;

/**
 * The active primary's probe and heartbeat as one statement. Every part of a WITH sees one
 * snapshot, so the facts (the heartbeat row included) are those from before the upsert, as
 * observe() reads them ahead of writeHeartbeat(). The upsert is the heartbeat's (see
 * upsertHeartbeat), only where the facts make a Primary observation; a standby or a read-only
 * default refuses the whole statement before it runs (25006). $2: the epoch, $3: the time; $4 and $5 as
 * probeStatement's.
 */
const PROBE_AND_HEARTBEAT = `WITH facts AS MATERIALIZED (${probeStatement(true, 4)}),
  written AS (
    INSERT INTO ${HEARTBEAT_TABLE} AS h (id, epoch, written_at)
    SELECT true, $2::bigint, $3::timestamptz FROM facts
     WHERE NOT facts.in_recovery AND NOT facts.read_only AND NOT facts.closed
       AND set_config('lock_timeout', '${HEARTBEAT_LOCK_WAIT_MS}', true) IS NOT NULL
       AND set_config('synchronous_commit', 'local', true) IS NOT NULL
    ${HEARTBEAT_REFUSING_LOWER})
  ${asFacts('SELECT facts.*, (SELECT epoch FROM written) AS written_epoch, (SELECT refusing FROM written) AS refusing FROM facts')}`;

interface ProbeWithHeartbeatRow extends ProbeRow {
  /** The epoch the heartbeat wrote; null when it was not written (not a primary, or a newer epoch stands). */
  written_epoch: number | null;
  refusing: string | null;
}

/** What observeWithHeartbeat found, and why the heartbeat was not written when it was not. */
export interface ObservedWithHeartbeat {
  observation: DatabaseObservation;
  heartbeatError?: Error;
}

/** The observation a probe row makes; `fenced` is judged by the caller (see readFacts). */
function observationOf(
  row: ProbeRow,
  heartbeat: DatabaseObservation['heartbeat'],
  fenced: boolean,
  senders: NamedWalSender[],
): Omit<DatabaseObservation, 'durationMs'> {
  if (row.in_recovery) {
    const walReceiver = walReceiverOf(row);
    return {
      reachable: true,
      role: 'Standby',
      ...(row.server_started ? { server: row.server_started } : {}),
      ...(row.replay_lsn ? { lsn: row.replay_lsn } : {}),
      ...(row.receive_lsn ? { receiveLsn: row.receive_lsn } : {}),
      ...(row.timeline != null ? { timeline: Number(row.timeline) } : {}),
      replayPaused: row.pause_state != null && row.pause_state !== 'not paused',
      ...(walReceiver ? { walReceiver } : {}),
      ...(heartbeat ? { heartbeat } : {}),
    };
  }
  return {
    reachable: true,
    role: fenced ? 'Fenced' : 'Primary',
    ...(row.server_started ? { server: row.server_started } : {}),
    ...(row.lsn ? { lsn: row.lsn } : {}),
    // A WAL file name starts with the timeline in 8 hex digits; it changes the moment a promotion ends.
    ...(row.walfile ? { timeline: Number.parseInt(row.walfile.slice(0, 8), 16) } : {}),
    replicas: senders.map(replicaOf),
    ...(commitsWaitFor(row, senders) ? { commitsWaitFor: row.sync_names ?? '' } : {}),
    ...(heartbeat ? { heartbeat } : {}),
  };
}

/**
 * Whether a primary's clients' commits wait for synchronous standbys that are not there: some
 * are named, commits wait for them by default (as the operator's role and database start; a
 * client may set its own), and fewer are connected as such than the setting asks for
 * (`FIRST n (…)`, `ANY n (…)`, `n (…)`; a bare list or `*` asks for one). NULL sync states (a
 * role without pg_monitor) cannot tell: no claim.
 */
function commitsWaitFor(row: ProbeRow, replicas: readonly NamedWalSender[]): boolean {
  const names = row.sync_names?.trim();
  if (!names) return false;
  if (!['on', 'remote_write', 'remote_apply'].includes(row.sync_commit ?? 'on')) return false;
  if (replicas.some((r) => r.sync_state === null)) return false;
  const wanted = Number(/^(?:FIRST\s+|ANY\s+)?(\d+)\s*\(/i.exec(names)?.[1] ?? 1);
  const synchronous = replicas.filter((r) => r.sync_state === 'sync' || r.sync_state === 'quorum').length;
  return synchronous < wanted;
}

function heartbeatOf(
  row: ProbeRow['heartbeat'],
): { epoch: number; writtenAt: Date; fencedEpoch?: number } | undefined {
  if (!row) return undefined;
  return {
    epoch: Number(row.epoch),
    writtenAt: new Date(row.written_at),
    ...(row.fenced_epoch != null ? { fencedEpoch: Number(row.fenced_epoch) } : {}),
  };
}

function replicaOf(r: NamedWalSender): ReplicaState {
  return {
    applicationName: r.application_name,
    // Without pg_monitor most columns are NULL; state reads 'unknown' rather than lying.
    state: r.state ?? 'unknown',
    ...(r.client_addr ? { clientAddr: r.client_addr } : {}),
    ...(r.sent_lsn ? { sentLsn: r.sent_lsn } : {}),
    ...(r.replay_lsn ? { replayLsn: r.replay_lsn } : {}),
    ...(r.replay_lag_seconds != null ? { replayLagSeconds: r.replay_lag_seconds } : {}),
    ...(r.sync_state ? { syncState: r.sync_state } : {}),
  };
}

/**
 * Reads the heartbeat row, or undefined when the table or the row does not exist yet. As JSON,
 * so that a table an older operator created (without fenced_epoch) reads the same.
 */
async function readHeartbeat(
  client: pg.PoolClient | pg.Client,
): Promise<{ epoch: number; writtenAt: Date; fencedEpoch?: number } | undefined> {
  // A statement naming a missing table fails before it runs: ask whether it exists first.
  const { rows: exists } = await client.query<{ present: boolean }>(
    `SELECT to_regclass('${HEARTBEAT_TABLE}') IS NOT NULL AS present`,
  );
  if (!exists[0]?.present) return undefined;
  const { rows } = await client.query<{ heartbeat: ProbeRow['heartbeat'] }>(
    `SELECT to_jsonb(h) AS heartbeat FROM ${HEARTBEAT_TABLE} h WHERE id`,
  );
  return heartbeatOf(rows[0]?.heartbeat ?? null);
}

/**
 * The fence mark's column, for a table an older operator created without it: in its own
 * read-write transaction (it works on a fenced primary), and best effort — where it cannot be
 * added (another role owns the table), the statement that needs it says so.
 */
async function addFenceMarkColumn(client: pg.PoolClient | pg.Client): Promise<void> {
  try {
    await client.query(`BEGIN READ WRITE;
      ALTER TABLE ${HEARTBEAT_TABLE} ADD COLUMN IF NOT EXISTS fenced_epoch bigint CHECK (fenced_epoch >= 0);
      COMMIT`);
  } catch {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

async function createHeartbeatTable(client: pg.PoolClient | pg.Client, readWrite: boolean): Promise<void> {
  try {
    await client.query(`${readWrite ? 'BEGIN READ WRITE' : 'BEGIN'};
      CREATE SCHEMA IF NOT EXISTS regionfailover;
      CREATE TABLE IF NOT EXISTS ${HEARTBEAT_TABLE} (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        epoch bigint NOT NULL CHECK (epoch >= 0),
        written_at timestamptz NOT NULL,
        fenced_epoch bigint CHECK (fenced_epoch >= 0)
      );
      COMMENT ON TABLE ${HEARTBEAT_TABLE} IS
        'Written by the failover operator. epoch: the failover epoch this database was primary at (a standby: its primary''s), and when. fenced_epoch: set while an operation of that epoch has fenced or marked it; a client that finds fenced_epoch must stop writing here. One row.';
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

/**
 * TLS as libpq's sslmode means it. With `serverName`, verify-full checks the certificate against
 * that name instead of the host connected to: the canary connects to the address a DNS record
 * resolved to, and the name a client verifies is the record's.
 */
export function sslConfig(mode: DatabaseConnection['sslMode'], serverName?: string): pg.ClientConfig['ssl'] {
  switch (mode) {
    case 'disable':
      return false;
    case 'require':
      // Encrypted, server not verified: libpq's meaning of sslmode=require.
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      if (!serverName) return { rejectUnauthorized: true };
      return {
        rejectUnauthorized: true,
        // SNI carries names only (RFC 6066); an address is still checked below.
        ...(isIP(serverName) ? {} : { servername: serverName }),
        checkServerIdentity: (_host, cert) => checkServerIdentity(serverName, cert),
      };
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

/**
 * The server refused the connection because of the database's connection limit: with a fence's
 * CONNECTION LIMIT 0, every role but superusers. (53300 also means max_connections is used up,
 * "sorry, too many clients already", or a role's own limit: those are not about the database.)
 */
function isDatabaseLimited(err: unknown): boolean {
  return (
    sqlState(err) === '53300' && isFatal(err) && /connections for database/.test((err as Error).message ?? '')
  );
}

/**
 * What a failed probe-with-heartbeat statement says:
 * - 'probe-failed': the session was lost or never made (no SQLSTATE but a client-side query
 *   timeout, 08xxx, the server shutting down or starting up, a login refused): the probe's
 *   answer, as observe() would give it;
 * - 'write-failed': what may be the write's alone (a lock or statement timeout, disk full, out of
 *   memory, an I/O error, a commit that outwaited the client): the read is asked alone, and the
 *   heartbeat is not tried again (a lock waited for twice would outlast the probe);
 * - 'ask-apart': the server refused the statement for what it is now (a standby, read-only, no
 *   table or column, a database closed to the role): the two steps apart say what it is.
 */
function judgeCombinedFailure(err: unknown): 'probe-failed' | 'write-failed' | 'ask-apart' {
  const state = sqlState(err);
  if (state === undefined) {
    return /Query read timeout/i.test((err as Error | undefined)?.message ?? '')
      ? 'write-failed'
      : 'probe-failed';
  }
  if (isRefusedByDatabase(err)) return 'ask-apart';
  if (/^(08|28|57P0)/.test(state)) return 'probe-failed';
  if (/^(53|55P03|57|58|XX)/.test(state)) return 'write-failed';
  return 'ask-apart';
}

/** The application database refuses the operator's role, as a fence makes it. */
function isRefusedByDatabase(err: unknown): boolean {
  return isDatabaseClosed(err) || isDatabaseLimited(err);
}

function refusedDetail(database: string, err: unknown): string {
  const why = isDatabaseClosed(err)
    ? 'ALLOW_CONNECTIONS false'
    : 'CONNECTION LIMIT 0, and the role is not a superuser';
  return `${database} refuses the operator's connections (${why}): the epoch recorded there was not checked`;
}

function describeRestored(restored: RestoredDatabases): string[] {
  const done: string[] = [];
  if (restored.limits.length > 0) {
    done.push(
      `connection limit restored on ${restored.limits.map((d) => `${d.name} (${d.limit})`).join(', ')}`,
    );
  }
  if (restored.reopened.length > 0) done.push(`reopened to connections: ${restored.reopened.join(', ')}`);
  return done;
}

/**
 * The WAL receiver as far as the role may see it: no row means none runs; a row whose status is
 * NULL means the role lacks pg_read_all_stats, and nothing is claimed.
 */
function walReceiverOf(row: {
  receiver_running: boolean;
  receiver_status: string | null;
  receiver_age_seconds: number | null;
}): DatabaseObservation['walReceiver'] {
  if (!row.receiver_running) return { streaming: false };
  if (row.receiver_status === null) return undefined;
  return {
    streaming: row.receiver_status === 'streaming',
    ...(row.receiver_age_seconds != null ? { lastMessageAgeSeconds: row.receiver_age_seconds } : {}),
  };
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
/** Failures to open a connection at all, which the next attempt is likely to meet again. */
const REFUSAL_CODES = new Set([...UNREACHABLE_CODES].filter((c) => c !== 'ECONNRESET' && c !== 'EPIPE'));
const isRefusal = (err: unknown): boolean => {
  const code = (firstError(err) as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && REFUSAL_CODES.has(code);
};
/** Node reports a refused connection to every address of a host as an AggregateError: its first. */
const firstError = (err: unknown): unknown =>
  err instanceof AggregateError && err.errors.length > 0 ? err.errors[0] : err;
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
  const first = firstError(err);
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
    if (isDatabaseLimited(first)) {
      return make(
        'Rejected',
        `${message}: the database has CONNECTION LIMIT 0, which refuses every role but superusers (fenced ReadOnly, or limited by an administrator)`,
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
  // A connection reset or cut during the handshake is the network's ("Client network socket
  // disconnected before secure TLS connection was established"), not the server's TLS answer: a
  // TLS failure is the server answering, which counts no vote against a primary (detection.ts).
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) {
    return make('Unreachable', `unreachable: ${message}`);
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
