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

/** A libpq connection string for the primary, as primary_conninfo, pg_rewind and pg_basebackup take it. */
export function conninfo(a: UpstreamAddress, extra: Record<string, string> = {}): string {
  const quote = (v: string) => `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  const fields: Record<string, string> = {
    host: a.host,
    port: String(a.port),
    user: a.user,
    password: a.password,
    sslmode: a.sslMode,
    ...extra,
  };
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(' ');
}

/** Asks the primary who it is and where its timelines forked. Throws when it cannot be reached. */
export async function identifyUpstream(a: UpstreamAddress): Promise<UpstreamIdentity> {
  const client = new pg.Client({
    host: a.host,
    port: a.port,
    user: a.user,
    password: a.password,
    database: 'replication',
    ssl:
      a.sslMode === 'disable'
        ? false
        : { rejectUnauthorized: a.sslMode === 'verify-full' || a.sslMode === 'verify-ca' },
    replication: 'true',
    connectionTimeoutMillis: 5_000,
    query_timeout: 10_000,
  } as pg.ClientConfig);
  client.on('error', () => undefined);
  await client.connect();
  try {
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
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Makes sure the primary's control file names its current timeline: right after a promotion it
 * still names the old one until the first checkpoint, and pg_rewind, which reads it, then says
 * "no rewind required" for a database that diverged. Asks for a CHECKPOINT (PostgreSQL 15+: the
 * role needs pg_checkpoint) and reports whether the control file caught up.
 */
export async function checkpointOnTimeline(a: UpstreamAddress, timeline: number): Promise<boolean> {
  const client = new pg.Client({
    host: a.host,
    port: a.port,
    user: a.user,
    password: a.password,
    database: 'postgres',
    ssl:
      a.sslMode === 'disable'
        ? false
        : { rejectUnauthorized: a.sslMode === 'verify-full' || a.sslMode === 'verify-ca' },
    connectionTimeoutMillis: 5_000,
    query_timeout: 60_000,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const current = async () =>
      Number(
        (await client.query<{ t: number }>('SELECT timeline_id AS t FROM pg_control_checkpoint()')).rows[0]
          ?.t,
      );
    if ((await current()) >= timeline) return true;
    await client.query('CHECKPOINT').catch(() => undefined);
    return (await current()) >= timeline;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** When the primary's postmaster started: the same as the local one's means they are one server. */
export async function upstreamStartedAt(a: UpstreamAddress): Promise<string | undefined> {
  const client = new pg.Client({
    host: a.host,
    port: a.port,
    user: a.user,
    password: a.password,
    database: 'postgres',
    ssl:
      a.sslMode === 'disable'
        ? false
        : { rejectUnauthorized: a.sslMode === 'verify-full' || a.sslMode === 'verify-ca' },
    connectionTimeoutMillis: 5_000,
    query_timeout: 10_000,
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<{ t: string }>('SELECT pg_postmaster_start_time()::text AS t')).rows[0]?.t;
  } finally {
    await client.end().catch(() => undefined);
  }
}
