/**
 * The canary writer for PostgreSQL: numbered rows inserted through the policy's DNS name every
 * `intervalMs`, one session at a time, the way an application would write. Whatever goes wrong
 * (no answer, no connection, a read-only server, a timeout) drops the session and counts a
 * failure; the next attempt resolves the name again. Runs in the background (setTimeout), so
 * nothing the operator does waits on it.
 *
 * Rows go to `regionfailover.canary` in the application database, beside the operator's
 * heartbeat (postgres-sql.ts), keyed by (drill, writer, seq). The writer keeps the sequence
 * numbers each server acknowledged, in runs: a run ends when the name leads to another cluster
 * or another server (a new system identifier or timeline). When the first write of a new run is
 * acknowledged, the same session counts which of the previous run's acknowledged rows the new
 * server lacks: the writes a client lost in the move (RPO).
 *
 * Privileges: INSERT, SELECT and DELETE on the table, and CREATE on the database the first time
 * (the heartbeat needs the same). Unlike the heartbeat, the canary never asks for a read-write
 * transaction: a fenced primary must refuse it as it refuses the application.
 */
import pg from 'pg';
import { Counter } from 'prom-client';
import type { Logger } from '../../runtime/logger.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import { classifyPostgresError, sslConfig } from '../database/postgres-sql.ts';
import { ProviderError } from '../errors.ts';
import type { CanaryRun, CanarySnapshot, CanaryTarget, CanaryWriter } from './port.ts';

export const CANARY_TABLE = 'regionfailover.canary';
/** application_name of the writer's sessions, as pg_stat_activity shows them. */
export const CANARY_APPLICATION_NAME = 'failover-canary';
/** Acknowledged sequence numbers a run keeps for the missing count: about 3 hours at 10 a second. */
export const MAX_SEQS_PER_RUN = 100_000;
/**
 * After the server refuses the canary's login, attempts back off (doubling from the interval) to
 * this at most: a wrong password must not become a login storm in the server log, or lock the
 * account where failed logins are counted.
 */
const REFUSED_LOGIN_BACKOFF_MAX_MS = 10_000;

const PRUNE_EVERY_MS = 60_000;
const DEFAULT_RECHECK_DNS_MS = 1_000;

export interface PostgresCanaryOptions {
  log?: Logger;
  /** Counts attempts in failover_canary_writes_total{namespace,policy,result}. */
  metrics?: Metrics;
  /** The clock for the acknowledgement times in runs. */
  now?: () => Date;
  /** Connect timeout and statement timeout, ms. Default 1000: a client that waits longer is down. */
  timeoutMs?: number;
  /** Acknowledged sequence numbers kept per run. Default MAX_SEQS_PER_RUN. */
  maxSeqsPerRun?: number;
}

/** The server a session reached. */
interface Session {
  client: pg.Client;
  address: string;
  cluster: string;
  /** system identifier and timeline: a promotion or another server behind the name changes it. */
  server: string;
  /** When DNS was last asked whether the name still leads here (performance.now()). */
  dnsCheckedAt: number;
}

interface Run extends CanaryRun {
  /** cluster and server: acknowledgements with another key start a new run. */
  key: string;
  /** The acknowledged sequence numbers kept (the newest, up to the bound). */
  seqs: number[];
  /** Whether the next run's server was asked for them (or refused to say: no RPO then). */
  counted: boolean;
}

export class PostgresCanaryWriter implements CanaryWriter {
  private readonly target: CanaryTarget;
  private readonly log: Logger | undefined;
  private readonly writes: Counter<'namespace' | 'policy' | 'result'> | undefined;
  private readonly labels: { namespace: string; policy: string };
  private readonly now: () => Date;
  private readonly timeoutMs: number;
  private readonly maxSeqs: number;
  private readonly startedAt: string;
  private readonly runs: Run[] = [];
  private failed = 0;
  private seq = 0;
  private session: Session | undefined;
  /** Sessions being ended: stop() waits for them, an attempt does not. */
  private readonly closing = new Set<Promise<void>>();
  /** The address the last new session was tried at, for messages. */
  private triedAddress: string | undefined;
  private prunedAt: number | undefined;
  /** Whether the last attempt failed: a streak of failures is logged once, at its start. */
  private failing = false;
  private running = true;
  private timer: NodeJS.Timeout | undefined;
  private attempt: Promise<void> | undefined;
  private stopped: Promise<CanarySnapshot> | undefined;

  constructor(target: CanaryTarget, options: PostgresCanaryOptions = {}) {
    this.target = target;
    this.log = options.log?.child({ canary: target.drillId, writer: target.writer });
    this.writes = options.metrics ? canaryWritesCounter(options.metrics) : undefined;
    const [namespace = '', policy = ''] = (target.policyKey ?? '').split('/');
    this.labels = { namespace, policy };
    this.now = options.now ?? (() => new Date());
    this.timeoutMs = options.timeoutMs ?? 1_000;
    this.maxSeqs = options.maxSeqsPerRun ?? MAX_SEQS_PER_RUN;
    this.startedAt = this.now().toISOString();
    this.schedule(0);
  }

  /** Logins refused in a row: the attempts back off while it is not 0. */
  private refusedLogins = 0;
  /** Why the last failed attempt failed, for the drill's report. */
  private lastError: string | undefined;

  snapshot(): CanarySnapshot {
    return {
      drillId: this.target.drillId,
      writer: this.target.writer,
      startedAt: this.startedAt,
      failed: this.failed,
      ...(this.lastError ? { lastError: this.lastError } : {}),
      runs: this.runs.map(({ key: _key, seqs: _seqs, counted: _counted, ...run }) => ({ ...run })),
    };
  }

  stop(): Promise<CanarySnapshot> {
    this.stopped ??= (async () => {
      this.running = false;
      clearTimeout(this.timer);
      await this.attempt;
      this.dropSession();
      await Promise.all(this.closing);
      return this.snapshot();
    })();
    return this.stopped;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      const started = performance.now();
      this.attempt = this.writeOnce().finally(() => {
        if (!this.running) return;
        const next = this.refusedLogins
          ? Math.min(REFUSED_LOGIN_BACKOFF_MAX_MS, this.target.intervalMs * 2 ** this.refusedLogins)
          : this.target.intervalMs - (performance.now() - started);
        this.schedule(Math.max(0, next));
      });
    }, delayMs);
  }

  /** One attempt: a session, one insert, and what an acknowledgement obliges. Never throws. */
  private async writeOnce(): Promise<void> {
    let session: Session;
    let seq: number;
    try {
      session = await this.currentSession();
      seq = ++this.seq;
      await session.client.query(`INSERT INTO ${CANARY_TABLE} (drill, writer, seq) VALUES ($1, $2, $3)`, [
        this.target.drillId,
        this.target.writer,
        seq,
      ]);
    } catch (err) {
      this.countFailure(err);
      this.dropSession();
      return;
    }
    this.refusedLogins = 0;
    this.acknowledge(session, seq);
    try {
      await this.countMissing(session);
      await this.prune(session);
    } catch (err) {
      // The write itself was acknowledged; the count is retried in the next session on this server.
      this.log?.info({ err: describe(err, session.address) }, 'canary bookkeeping failed; reconnecting');
      this.dropSession();
    }
  }

  /** The session to write in: the current one while DNS still leads to it, else a new one. */
  private async currentSession(): Promise<Session> {
    const recheckMs = this.target.recheckDnsMs ?? DEFAULT_RECHECK_DNS_MS;
    const current = this.session;
    if (current && recheckMs > 0 && performance.now() - current.dnsCheckedAt >= recheckMs) {
      // A DNS failure keeps the session: a client whose resolver hiccups goes on writing.
      const address = await this.target.resolve().catch(() => undefined);
      current.dnsCheckedAt = performance.now();
      if (address !== undefined && address !== current.address) {
        this.log?.info({ from: current.address, to: address }, 'canary: the name moved; reconnecting');
        this.dropSession();
      }
    }
    if (this.session) return this.session;
    this.triedAddress = undefined;
    const address = await this.target.resolve();
    if (address === undefined) {
      throw new ProviderError('NotFound', 'canary: the DNS name has no answer at its authoritative servers');
    }
    this.triedAddress = address;
    const client = new pg.Client(this.clientConfig(address));
    // A session the server ends between attempts emits 'error'; the next query fails and says so.
    client.on('error', () => undefined);
    try {
      await client.connect();
      if (this.target.requireClusterName !== undefined)
        await requireClusterName(client, this.target.requireClusterName);
      const server = await readServer(client);
      if (!server.hasTable) await createCanaryTable(client);
      this.session = {
        client,
        address,
        cluster: this.target.clusterOf(address) ?? address,
        server: server.identity,
        dnsCheckedAt: performance.now(),
      };
      return this.session;
    } catch (err) {
      this.endInBackground(client);
      throw err;
    }
  }

  private clientConfig(address: string): pg.ClientConfig {
    const t = this.target;
    return {
      host: address,
      port: t.port,
      database: t.database,
      user: t.user,
      password: t.password,
      ssl: sslConfig(t.sslMode, t.serverName),
      connectionTimeoutMillis: this.timeoutMs,
      statement_timeout: this.timeoutMs,
      lock_timeout: this.timeoutMs,
      // The server enforces statement_timeout; this catches a server that does not answer at all.
      query_timeout: this.timeoutMs + 500,
      application_name: CANARY_APPLICATION_NAME,
      keepAlive: true,
    };
  }

  private acknowledge(session: Session, seq: number): void {
    const at = this.now().toISOString();
    this.failing = false;
    this.writes?.inc({ ...this.labels, result: 'acknowledged' });
    const key = `${session.cluster}|${session.server}`;
    const run = this.runs.at(-1);
    if (run?.key === key) {
      run.lastSeq = seq;
      run.acknowledged++;
      run.lastAt = at;
      run.seqs.push(seq);
      // Dropped in chunks, not one shift per write; the newest are where losses happen.
      if (run.seqs.length > this.maxSeqs + 1_000) run.seqs.splice(0, run.seqs.length - this.maxSeqs);
      return;
    }
    if (run) {
      this.log?.info(
        { from: run.cluster, to: session.cluster, gapMs: Date.parse(at) - Date.parse(run.lastAt) },
        'canary writes landed on another server',
      );
    }
    this.runs.push({
      key,
      cluster: session.cluster,
      address: session.address,
      firstSeq: seq,
      lastSeq: seq,
      acknowledged: 1,
      firstAt: at,
      lastAt: at,
      seqs: [seq],
      counted: false,
    });
    // Only the run before the new one is ever counted; older ones need their seqs no more.
    for (const older of this.runs.slice(0, -2)) older.seqs = [];
  }

  /**
   * Counts, in the session that just landed the first writes of a new run, which acknowledged
   * rows of the run before it this server lacks. Once per run: its seqs are then let go.
   */
  private async countMissing(session: Session): Promise<void> {
    const previous = this.runs.at(-2);
    if (!previous || previous.counted) return;
    const kept = previous.seqs.slice(-this.maxSeqs);
    let present: number;
    try {
      const { rows } = await session.client.query<{ present: string }>(
        `SELECT count(*)::text AS present FROM ${CANARY_TABLE} WHERE drill = $1 AND writer = $2 AND seq = ANY($3::bigint[])`,
        [this.target.drillId, this.target.writer, kept],
      );
      present = Number(rows[0]?.present ?? 0);
    } catch (err) {
      // A broken session is retried in the next one on this server; a refusal (no SELECT on the
      // table) would refuse again: that move goes without an RPO.
      if (!isStatementError(err)) throw err;
      this.log?.warn({ err: describe(err, session.address) }, 'canary: cannot count missing rows');
      previous.counted = true;
      previous.seqs = [];
      return;
    }
    previous.missing = kept.length - present;
    previous.missingOf = kept.length;
    previous.counted = true;
    previous.seqs = [];
    const detail = {
      from: previous.cluster,
      to: session.cluster,
      missing: previous.missing,
      of: previous.acknowledged,
      ...(kept.length < previous.acknowledged ? { counted: kept.length } : {}),
    };
    if (previous.missing > 0) this.log?.warn(detail, 'canary rows acknowledged before the move are missing');
    else this.log?.info(detail, 'canary rows acknowledged before the move are all there');
  }

  /** Deletes rows past retention, at most once a minute, on whichever primary is written to. */
  private async prune(session: Session): Promise<void> {
    const now = performance.now();
    if (this.prunedAt !== undefined && now - this.prunedAt < PRUNE_EVERY_MS) return;
    // Before the attempt: a role without DELETE is told once a minute, not on every write.
    this.prunedAt = now;
    try {
      await session.client.query(
        `DELETE FROM ${CANARY_TABLE} WHERE written_at < clock_timestamp() - make_interval(days => $1)`,
        [this.target.retentionDays],
      );
    } catch (err) {
      if (!isStatementError(err)) throw err;
      this.log?.warn({ err: describe(err, session.address) }, 'canary: cannot delete rows past retention');
    }
  }

  private countFailure(err: unknown): void {
    this.failed++;
    const reason = err instanceof ProviderError ? err.reason : classifyPostgresError(err, '').reason;
    this.refusedLogins = reason === 'AuthenticationFailed' ? Math.min(this.refusedLogins + 1, 16) : 0;
    this.writes?.inc({ ...this.labels, result: 'failed' });
    const detail = { err: describe(err, this.session?.address ?? this.triedAddress), failed: this.failed };
    this.lastError = detail.err.slice(0, 512);
    if (!this.failing) this.log?.info(detail, 'canary write failed; retrying every interval');
    else this.log?.debug(detail, 'canary write failed');
    this.failing = true;
  }

  /** Lets the session go; its goodbye is not waited for (a silent server would hold the loop). */
  private dropSession(): void {
    const session = this.session;
    this.session = undefined;
    if (session) this.endInBackground(session.client);
  }

  private endInBackground(client: pg.Client): void {
    const ending: Promise<void> = endQuietly(client).finally(() => this.closing.delete(ending));
    this.closing.add(ending);
  }
}

/**
 * The server behind a session: its system identifier and, on a primary, its timeline (a standby
 * has none to give; its refusal of the insert says the rest), and whether the table exists.
 */
async function readServer(client: pg.Client): Promise<{ identity: string; hasTable: boolean }> {
  const { rows } = await client.query<{ system: string; walfile: string | null; has_table: boolean }>(
    `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system,
            CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END AS walfile,
            to_regclass('${CANARY_TABLE}') IS NOT NULL AS has_table`,
  );
  const row = rows[0];
  // A WAL file name starts with the timeline in 8 hex digits.
  const timeline = row?.walfile ? Number.parseInt(row.walfile.slice(0, 8), 16) : 'standby';
  return { identity: `${row?.system}/${timeline}`, hasTable: row?.has_table === true };
}

/**
 * Refuses a server whose cluster_name is not the one expected: an isolated drill's canary writes
 * only into the drill's copy (started with cluster_name set to the drill id), never into a
 * production server a wrong record or port would lead it to.
 */
async function requireClusterName(client: pg.Client, expected: string): Promise<void> {
  const { rows } = await client.query<{ name: string }>(`SELECT current_setting('cluster_name') AS name`);
  const name = rows[0]?.name ?? '';
  if (name !== expected)
    throw new ProviderError(
      'Rejected',
      `canary: the server reached has cluster_name "${name}", not the drill copy's "${expected}": no write`,
      { retryable: true },
    );
}

async function createCanaryTable(client: pg.Client): Promise<void> {
  try {
    await client.query(`BEGIN;
      CREATE SCHEMA IF NOT EXISTS regionfailover;
      CREATE TABLE IF NOT EXISTS ${CANARY_TABLE} (
        drill text,
        writer text,
        seq bigint,
        written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (drill, writer, seq)
      );
      COMMENT ON TABLE ${CANARY_TABLE} IS
        'Written by the failover operator''s canary during drills: numbered rows through the DNS name, to measure from the client side how long writes stopped and which acknowledged ones a switch lost. Rows older than the retention are deleted.';
      COMMIT`);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    // Another writer created it at the same moment: what we wanted exists.
    const code = (err as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P07') throw err;
  }
}

/** Ends a session without waiting on a server that no longer answers. */
async function endQuietly(client: pg.Client): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().then(
    () => true,
    () => true,
  );
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), 1_000);
  });
  if (!(await Promise.race([ended, late]))) {
    // A silent server never answers the goodbye: close the socket ourselves.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }
  clearTimeout(timer);
}

/** An error the server sent about one statement (not FATAL): the session itself still works. */
function isStatementError(err: unknown): boolean {
  const { code, severity } = (err ?? {}) as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && severity === 'ERROR';
}

/** A failure as the operator's classification words it, with where it happened. */
function describe(err: unknown, address: string | undefined): string {
  return classifyPostgresError(err, address ?? 'the DNS name').message;
}

/** failover_canary_writes_total, registered once in the operator's registry. */
function canaryWritesCounter(metrics: Metrics): Counter<'namespace' | 'policy' | 'result'> {
  const name = 'failover_canary_writes_total';
  const existing = metrics.registry.getSingleMetric(name);
  if (existing) return existing as Counter<'namespace' | 'policy' | 'result'>;
  return new Counter({
    name,
    help: 'Canary writes through the DNS name during drills: acknowledged, or failed (no answer, no connection, refused, read-only)',
    labelNames: ['namespace', 'policy', 'result'] as const,
    registers: [metrics.registry],
  });
}
