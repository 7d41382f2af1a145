/**
 * The active primary as the agent sees it: over a replication connection, the way a standby
 * would reach it. IDENTIFY_SYSTEM says which database system and timeline it is; TIMELINE_HISTORY
 * says where each earlier timeline ended, which is where a former primary's history left it.
 */
import pg from 'pg';
import { parseTimelineHistory, type TimelineSwitch } from './local-postgres.ts';

export interface UpstreamAddress {
  host: string;
  port: number;
  sslMode: 'disable' | 'require' | 'verify-ca' | 'verify-full';
  user: string;
  password: string;
}

export interface UpstreamIdentity {
  systemIdentifier: string;
  timeline: number;
  /** Its current WAL flush position. */
  walPosition: string;
  /** The switch points of every timeline before the current one. */
  history: TimelineSwitch[];
}

/**
 * How a program the agent starts logs in: a libpq connection string without the password, and
 * the password, which goes into that program's environment (PGPASSWORD) only. Any local user can
 * read a command line (ps, /proc/<pid>/cmdline); a process's environment only its owner and root.
 */
export interface Login {
  conninfo: string;
  password: string;
}

/**
 * A libpq connection string for the primary, password included: what primary_conninfo needs (a
 * standby has nowhere else to take it from). A program the agent starts gets `loginTo` instead.
 */
export function conninfo(a: UpstreamAddress, extra: Record<string, string> = {}): string {
  return connectionString({ ...addressFields(a), password: a.password, ...extra });
}

/**
 * The primary as pg_rewind and pg_basebackup reach it: the password kept off their command lines.
 * A connect timeout and TCP keepalives: a primary whose region starts dropping packets mid-copy
 * ends the program within about a minute, not at its own timeout an hour (or a day) later.
 */
export function loginTo(a: UpstreamAddress, extra: Record<string, string> = {}): Login {
  return {
    conninfo: connectionString({ ...addressFields(a), ...PROGRAM_CONNECTION, ...extra }),
    password: a.password,
  };
}

const PROGRAM_CONNECTION = {
  connect_timeout: '10',
  keepalives: '1',
  keepalives_idle: '30',
  keepalives_interval: '10',
  keepalives_count: '3',
};

function addressFields(a: UpstreamAddress): Record<string, string> {
  return { host: a.host, port: String(a.port), user: a.user, sslmode: a.sslMode };
}

/** libpq's key='value' form, every value quoted (a quote and a backslash escaped). */
export function connectionString(fields: Record<string, string>): string {
  const quote = (v: string) => `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(' ');
}

/** Asks the primary who it is and where its timelines forked. Throws when it cannot be reached. */
export function identifyUpstream(a: UpstreamAddress): Promise<UpstreamIdentity> {
  return withUpstream(a, { replication: true, queryTimeoutMs: 10_000 }, async (client) => {
    const id = (
      await client.query<{ systemid: string; timeline: number; xlogpos: string }>('IDENTIFY_SYSTEM')
    ).rows[0];
    if (!id) throw new Error('IDENTIFY_SYSTEM returned nothing');
    const timeline = Number(id.timeline);
    let history: TimelineSwitch[] = [];
    if (timeline > 1) {
      const row = (await client.query<{ content: string | Buffer }>(`TIMELINE_HISTORY ${timeline}`)).rows[0];
      history = parseTimelineHistory(String(row?.content ?? ''));
    }
    return { systemIdentifier: String(id.systemid), timeline, walPosition: id.xlogpos, history };
  });
}

/**
 * Makes sure the primary's control file names its current timeline: right after a promotion it
 * still names the old one until the first checkpoint, and pg_rewind, which reads it, then says
 * "no rewind required" for a database that diverged. Asks for a CHECKPOINT (PostgreSQL 15+: the
 * role needs pg_checkpoint) and reports whether the control file caught up.
 */
export function checkpointOnTimeline(a: UpstreamAddress, timeline: number): Promise<boolean> {
  return withUpstream(a, { queryTimeoutMs: 60_000 }, async (client) => {
    const current = async () =>
      Number(
        (await client.query<{ t: number }>('SELECT timeline_id AS t FROM pg_control_checkpoint()')).rows[0]
          ?.t,
      );
    if ((await current()) >= timeline) return true;
    await client.query('CHECKPOINT').catch(() => undefined);
    return (await current()) >= timeline;
  });
}

/** When the primary's postmaster started: the same as the local one's means they are one server. */
export function upstreamStartedAt(a: UpstreamAddress): Promise<string | undefined> {
  return withUpstream(
    a,
    { queryTimeoutMs: 10_000 },
    async (client) =>
      (await client.query<{ t: string }>('SELECT pg_postmaster_start_time()::text AS t')).rows[0]?.t,
  );
}

/**
 * Connects to the primary as the replication role, hands the session to `use`, and closes it
 * whatever happens. A replication session speaks the walsender's commands (IDENTIFY_SYSTEM), not
 * SQL; a normal one goes to the `postgres` database. The client's 'error' events are swallowed: a
 * session dropped between queries shows as the next query failing, and must not crash the agent.
 */
async function withUpstream<T>(
  a: UpstreamAddress,
  opts: { replication?: boolean; queryTimeoutMs: number },
  use: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    host: a.host,
    port: a.port,
    user: a.user,
    password: a.password,
    database: opts.replication ? 'replication' : 'postgres',
    ssl:
      a.sslMode === 'disable'
        ? false
        : { rejectUnauthorized: a.sslMode === 'verify-full' || a.sslMode === 'verify-ca' },
    // pg takes the replication flag at runtime but its types do not declare it.
    ...(opts.replication ? { replication: 'true' } : {}),
    connectionTimeoutMillis: 5_000,
    query_timeout: opts.queryTimeoutMs,
  } as pg.ClientConfig);
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
