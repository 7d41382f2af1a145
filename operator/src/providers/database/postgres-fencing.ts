/**
 * The statements behind ReadOnly and Shutdown fencing, and behind undoing them. PostgresSql
 * (postgres-sql.ts) decides when they run and on which session; this module knows what they do.
 *
 * A fence changes the server in three places, in this order, so that every prefix of it is a
 * state that running the fence again (or unfence) completes:
 *
 * 1. `default_transaction_read_only = on` with ALTER SYSTEM (postgresql.auto.conf, not
 *    replicated). It comes first: a server that holds fence records is always read-only by
 *    default, unless it stopped being fenced (the last paragraph). PostgresSql then records the
 *    epoch in the heartbeat, while the application database still lets the operator in.
 * 2. One record per database in `regionfailover.fenced_database` in the maintenance database,
 *    saying what its connection limit and ALLOW_CONNECTIONS were before, written in the same
 *    transaction as `CONNECTION LIMIT 0` (and, for Shutdown, `ALLOW_CONNECTIONS false`). A record
 *    is written once and kept until the database is restored, so the limit that comes back is
 *    the one from before the first fence, whatever ran in between.
 * 3. The sessions that could still write are ended.
 *
 * pg_database is a catalog: the limits, and the records, replicate to the standby. A standby that
 * is promoted therefore inherits them; `restoreRecordedDatabases` with a maximum epoch undoes
 * such leftovers on a server that takes writes (see PostgresSql.writeHeartbeat).
 */
import pg from 'pg';
import { ProviderError } from '../errors.ts';

/** Where a fence remembers what it changed, in the maintenance database. */
export const FENCE_RECORDS_TABLE = 'regionfailover.fenced_database';

type Session = pg.PoolClient | pg.Client;

/** What a fence or an unfence needs to know about the server, read from one session. */
export interface ServerFacts {
  inRecovery: boolean;
  /** default_transaction_read_only as this session sees it. */
  readOnly: boolean;
  role: string;
  superuser: boolean;
  canAlterSystem: boolean;
  canReload: boolean;
  canSignal: boolean;
  canReadStats: boolean;
  /** The records table, and its schema, exist in this (the maintenance) database. */
  recordsTable: boolean;
  recordsSchema: boolean;
  /** The role can create the records table, or read and change it where it exists. */
  canKeepRecords: boolean;
  /** Every database (templates included), with its record when there is one. */
  databases: DatabaseFacts[];
}

export interface DatabaseFacts {
  oid: number;
  name: string;
  connectionLimit: number;
  allowConnections: boolean;
  template: boolean;
  /** The role may ALTER it (owns it, or is a member of its owner). */
  owned: boolean;
  record?: FenceRecord;
}

export interface FenceRecord {
  connectionLimitBefore: number;
  allowConnectionsBefore: boolean;
  epoch: number;
  fencedAt: Date;
}

export async function readServerFacts(client: Session): Promise<ServerFacts> {
  const { rows } = await client.query<{
    in_recovery: boolean;
    read_only: boolean;
    role: string;
    superuser: boolean;
    version: number;
    can_reload: boolean;
    can_signal: boolean;
    can_read_stats: boolean;
    records_table: boolean;
    records_schema: boolean;
    can_keep_records: boolean;
  }>(
    // Looked up in the catalogs: to_regclass fails on a schema the role may not use. Privileges are
    // asked by OID; given NULL (an object that does not exist) they return NULL.
    `WITH schema AS (SELECT oid FROM pg_namespace WHERE nspname = 'regionfailover'),
          records AS (SELECT c.oid FROM pg_class c JOIN schema s ON c.relnamespace = s.oid
                       WHERE c.relname = 'fenced_database')
     SELECT pg_is_in_recovery() AS in_recovery,
            current_setting('default_transaction_read_only') = 'on' AS read_only,
            current_user AS role,
            r.rolsuper AS superuser,
            current_setting('server_version_num')::int AS version,
            has_function_privilege('pg_reload_conf()', 'EXECUTE') AS can_reload,
            pg_has_role('pg_signal_backend', 'USAGE') AS can_signal,
            pg_has_role('pg_read_all_stats', 'USAGE') AS can_read_stats,
            EXISTS (SELECT 1 FROM records) AS records_table,
            EXISTS (SELECT 1 FROM schema) AS records_schema,
            CASE
              WHEN EXISTS (SELECT 1 FROM records) THEN
                has_schema_privilege((SELECT oid FROM schema), 'USAGE')
                AND has_table_privilege((SELECT oid FROM records), 'SELECT')
                AND has_table_privilege((SELECT oid FROM records), 'INSERT')
                AND has_table_privilege((SELECT oid FROM records), 'UPDATE')
                AND has_table_privilege((SELECT oid FROM records), 'DELETE')
              WHEN EXISTS (SELECT 1 FROM schema) THEN
                has_schema_privilege((SELECT oid FROM schema), 'USAGE')
                AND has_schema_privilege((SELECT oid FROM schema), 'CREATE')
              ELSE has_database_privilege(current_database(), 'CREATE')
            END AS can_keep_records
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const row = rows[0];
  if (!row) throw new Error('cannot read the role of the current session');
  let canAlterSystem = row.superuser;
  // GRANT ALTER SYSTEM ON PARAMETER exists from PostgreSQL 15; before it only superusers may.
  if (!canAlterSystem && row.version >= 150_000) {
    const { rows: granted } = await client.query<{ ok: boolean }>(
      "SELECT has_parameter_privilege('default_transaction_read_only', 'ALTER SYSTEM') AS ok",
    );
    canAlterSystem = granted[0]?.ok === true;
  }
  return {
    inRecovery: row.in_recovery,
    readOnly: row.read_only,
    role: row.role,
    superuser: row.superuser,
    canAlterSystem,
    canReload: row.can_reload,
    canSignal: row.can_signal,
    canReadStats: row.can_read_stats,
    recordsTable: row.records_table,
    recordsSchema: row.records_schema,
    canKeepRecords: row.can_keep_records === true,
    databases: await readDatabases(client, row.records_table && row.can_keep_records === true),
  };
}

async function readDatabases(client: Session, withRecords: boolean): Promise<DatabaseFacts[]> {
  // datconnlimit -2 marks a database that an interrupted DROP DATABASE left invalid (PostgreSQL 16+).
  const { rows } = await client.query<{
    oid: string;
    datname: string;
    datconnlimit: number;
    datallowconn: boolean;
    datistemplate: boolean;
    owned: boolean;
  }>(
    `SELECT oid::int8 AS oid, datname, datconnlimit, datallowconn, datistemplate,
            pg_has_role(datdba, 'USAGE') AS owned
       FROM pg_database WHERE datconnlimit <> -2 ORDER BY datname`,
  );
  const records = withRecords ? await readRecords(client) : new Map<number, FenceRecord>();
  return rows.map((r) => {
    const record = records.get(Number(r.oid));
    return {
      oid: Number(r.oid),
      name: r.datname,
      connectionLimit: r.datconnlimit,
      allowConnections: r.datallowconn,
      template: r.datistemplate,
      owned: r.owned,
      ...(record ? { record } : {}),
    };
  });
}

async function readRecords(client: Session): Promise<Map<number, FenceRecord>> {
  const { rows } = await client.query<{
    database_oid: string;
    connection_limit_before: number;
    allow_connections_before: boolean;
    epoch: string;
    fenced_at: Date;
  }>(
    `SELECT database_oid::int8 AS database_oid, connection_limit_before, allow_connections_before, epoch, fenced_at
       FROM ${FENCE_RECORDS_TABLE}`,
  );
  return new Map(
    rows.map((r) => [
      Number(r.database_oid),
      {
        connectionLimitBefore: r.connection_limit_before,
        allowConnectionsBefore: r.allow_connections_before,
        epoch: Number(r.epoch),
        fencedAt: r.fenced_at,
      },
    ]),
  );
}

/** Which databases a fence changes, from the facts of the server and the mode. */
export interface FencePlan {
  /** Databases that get CONNECTION LIMIT 0 (non-superusers refused). */
  limit: DatabaseFacts[];
  /** Shutdown: databases that get ALLOW_CONNECTIONS false (everyone refused). */
  close: DatabaseFacts[];
}

/**
 * The databases a fence covers. With a superuser, every database that accepts connections (and
 * every other one but template0): superusers are exempt from connection limits, so the operator
 * still gets in, and non-superusers then cannot open a session anywhere, not even to lift a
 * limit from another database as a database owner could. A role that is not a superuser needs
 * one database left open to observe and fence from, the maintenance database, and cannot change
 * the templates it does not own: the fence then covers every other database. When the
 * application database is itself the maintenance database, such a role cannot fence it at all.
 * Shutdown closes every database but the templates and the maintenance database.
 */
export function planFence(
  facts: ServerFacts,
  mode: 'ReadOnly' | 'Shutdown',
  names: { target: string; maintenance: string },
): FencePlan {
  if (names.target === names.maintenance && !facts.superuser) {
    throw new ProviderError(
      'Rejected',
      `${mode} fencing by a role that is not a superuser leaves the maintenance database "${names.maintenance}" ` +
        `open, to observe the fenced server through, and "${names.maintenance}" is also the application ` +
        'database: set maintenanceDatabase to a database the applications do not use, or let the operator log in as a superuser',
      { retryable: false },
    );
  }
  const limit = facts.superuser
    ? facts.databases.filter((d) => d.allowConnections || !d.template)
    : facts.databases.filter((d) => !d.template && d.name !== names.maintenance);
  const close =
    mode === 'Shutdown' ? facts.databases.filter((d) => !d.template && d.name !== names.maintenance) : [];
  return { limit, close };
}

/** What the role lacks to carry out `plan` (empty when nothing): one phrase per privilege. */
export function missingFencePrivileges(
  facts: ServerFacts,
  plan: FencePlan,
  names: { maintenance: string },
): string[] {
  if (facts.superuser) return [];
  const role = pg.escapeIdentifier(facts.role);
  const missing: string[] = [];
  if (!facts.readOnly && !facts.canAlterSystem) {
    missing.push(
      `ALTER SYSTEM on default_transaction_read_only (PostgreSQL 15+: GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO ${role})`,
    );
  }
  if (!facts.readOnly && !facts.canReload) {
    missing.push(`EXECUTE on pg_reload_conf() (GRANT EXECUTE ON FUNCTION pg_reload_conf() TO ${role})`);
  }
  if (!facts.canSignal)
    missing.push(`membership in pg_signal_backend, to end sessions (GRANT pg_signal_backend TO ${role})`);
  if (!facts.canReadStats) {
    missing.push(
      `membership in pg_read_all_stats or pg_monitor, to see every session (GRANT pg_monitor TO ${role})`,
    );
  }
  if (!facts.canKeepRecords) missing.push(recordsPrivilege(facts, names.maintenance));
  const closing = new Set(plan.close.filter((d) => d.allowConnections).map((d) => d.name));
  const notOwned = [...new Map([...plan.limit, ...plan.close].map((d) => [d.name, d])).values()]
    .filter((d) => (d.connectionLimit !== 0 || closing.has(d.name)) && !d.owned)
    .map((d) => d.name);
  if (notOwned.length > 0) {
    missing.push(
      `ownership of database(s) ${notOwned.join(', ')} (ALTER DATABASE … OWNER TO ${role}, or GRANT <owner> TO ${role})`,
    );
  }
  return missing;
}

/** What `applyFence` changed. */
export interface FenceChanges {
  /** Databases whose limit went to 0, with the limit each had just before (the record keeps the first). */
  limited: { name: string; before: number }[];
  /** Databases closed to connections (Shutdown). */
  closed: string[];
  /** When this fence first took effect: sessions older than this may be in a read-write transaction. */
  fencedSince: Date;
  /** Every database that now refuses non-superusers, and every one that refuses everyone. */
  refusingNonSuperusers: string[];
  refusingEveryone: string[];
}

/**
 * Writes the records and sets the limits (and for Shutdown closes the databases) in one
 * read-write transaction on `client`, a session in the maintenance database. `fresh` says the
 * server was not read-only when this fence began: records then only survive for databases that
 * still carry a fence (a promoted standby's inherited limits, not yet restored); the others
 * describe a state that an administrator has since undone and are replaced.
 */
export async function applyFence(
  client: Session,
  plan: FencePlan,
  opts: { epoch: number; fresh: boolean; maintenance: string },
): Promise<FenceChanges> {
  await createRecordsTable(client);
  await client.query('BEGIN READ WRITE');
  try {
    // Two operators fencing at once take turns; a fence and a restore never interleave.
    await client.query(`LOCK TABLE ${FENCE_RECORDS_TABLE} IN SHARE ROW EXCLUSIVE MODE`);
    if (opts.fresh) {
      await client.query(
        `DELETE FROM ${FENCE_RECORDS_TABLE} f
          WHERE NOT EXISTS (SELECT 1 FROM pg_database d
                             WHERE d.oid = f.database_oid AND (d.datconnlimit = 0 OR NOT d.datallowconn))`,
      );
      await client.query(`UPDATE ${FENCE_RECORDS_TABLE} SET fenced_at = now(), epoch = $1`, [opts.epoch]);
    }
    // Read again under the lock: the facts the plan came from may be a moment old.
    const current = new Map((await readDatabases(client, true)).map((d) => [d.oid, d]));
    const limited: FenceChanges['limited'] = [];
    const closed: string[] = [];
    const closing = new Set(plan.close.map((d) => d.oid));
    const covered = [...new Map([...plan.limit, ...plan.close].map((d) => [d.oid, d])).keys()];
    for (const oid of covered) {
      const db = current.get(oid);
      if (!db) continue;
      if (!db.record) {
        await client.query(
          `INSERT INTO ${FENCE_RECORDS_TABLE}
             (database_oid, datname, connection_limit_before, allow_connections_before, epoch, fenced_at)
           VALUES ($1, $2, $3, $4, $5, now())`,
          [db.oid, db.name, db.connectionLimit, db.allowConnections, opts.epoch],
        );
      }
      const id = pg.escapeIdentifier(db.name);
      if (db.connectionLimit !== 0) {
        await client.query(`ALTER DATABASE ${id} CONNECTION LIMIT 0`);
        limited.push({ name: db.name, before: db.connectionLimit });
      }
      // A session cannot close the database it is in; the maintenance database stays open anyway.
      if (closing.has(oid) && db.allowConnections && db.name !== opts.maintenance) {
        await client.query(`ALTER DATABASE ${id} ALLOW_CONNECTIONS false`);
        closed.push(db.name);
      }
    }
    const { rows } = await client.query<{ since: Date | null }>(
      `SELECT max(fenced_at) AS since FROM ${FENCE_RECORDS_TABLE}`,
    );
    const { rows: refusing } = await client.query<{ datname: string; everyone: boolean }>(
      `SELECT datname, NOT datallowconn AS everyone FROM pg_database
        WHERE datconnlimit = 0 OR (NOT datallowconn AND NOT datistemplate) ORDER BY datname`,
    );
    await client.query('COMMIT');
    return {
      limited,
      closed,
      fencedSince: rows[0]?.since ?? new Date(),
      refusingNonSuperusers: refusing.map((r) => r.datname),
      refusingEveryone: refusing.filter((r) => r.everyone).map((r) => r.datname),
    };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** What `restoreRecordedDatabases` put back. */
export interface RestoredDatabases {
  /** Databases whose limit was set back, and to what. */
  limits: { name: string; limit: number }[];
  /** Databases opened to connections again. */
  reopened: string[];
  /** Records dropped (including those of databases that no longer exist). */
  records: number;
}

/**
 * Puts every recorded database back as it was before the fence and drops the records, in one
 * read-write transaction on `client` (a session in the maintenance database). With `leftover`,
 * only on a server that takes writes (out of recovery, not read-only by default) and only records
 * of a fence at or below `leftover.maxEpoch`: records a promoted standby inherited, or that stayed
 * after an administrator undid the read-only default by hand. Returns undefined when that server
 * is not in such a state.
 */
export async function restoreRecordedDatabases(
  client: Session,
  leftover?: { maxEpoch: number },
): Promise<RestoredDatabases | undefined> {
  if (!(await recordsTablePresent(client))) return { limits: [], reopened: [], records: 0 };
  await client.query('BEGIN READ WRITE');
  try {
    await client.query(`LOCK TABLE ${FENCE_RECORDS_TABLE} IN SHARE ROW EXCLUSIVE MODE`);
    if (leftover) {
      const { rows } = await client.query<{ writable: boolean }>(
        `SELECT NOT pg_is_in_recovery() AND current_setting('default_transaction_read_only') = 'off' AS writable`,
      );
      if (!rows[0]?.writable) {
        await client.query('ROLLBACK');
        return undefined;
      }
    }
    const databases = new Map((await readDatabases(client, true)).map((d) => [d.oid, d]));
    const { rows: records } = await client.query<{ database_oid: string }>(
      `SELECT database_oid::int8 AS database_oid FROM ${FENCE_RECORDS_TABLE}
        WHERE $1::bigint IS NULL OR epoch <= $1::bigint ORDER BY datname`,
      [leftover?.maxEpoch ?? null],
    );
    const restored: RestoredDatabases = { limits: [], reopened: [], records: 0 };
    for (const { database_oid } of records) {
      const db = databases.get(Number(database_oid));
      const record = db?.record;
      if (db && record) {
        const id = pg.escapeIdentifier(db.name);
        if (db.connectionLimit !== record.connectionLimitBefore) {
          await client.query(`ALTER DATABASE ${id} CONNECTION LIMIT ${record.connectionLimitBefore}`);
          restored.limits.push({ name: db.name, limit: record.connectionLimitBefore });
        }
        if (!db.allowConnections && record.allowConnectionsBefore) {
          await client.query(`ALTER DATABASE ${id} ALLOW_CONNECTIONS true`);
          restored.reopened.push(db.name);
        }
      }
      await client.query(`DELETE FROM ${FENCE_RECORDS_TABLE} WHERE database_oid = $1`, [database_oid]);
      restored.records += 1;
    }
    await client.query('COMMIT');
    return restored;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** What `endSessions` did. */
export interface EndedSessions {
  ended: number;
  /** Superusers' sessions that should have ended but the role may not end (it is no superuser). */
  leftOpen: number;
}

/**
 * Ends the client sessions (not replication connections) that could still write:
 * - every session opened before the fence took effect (`fencedSince`): it may be inside a
 *   read-write transaction, or switch its session to read-write;
 * - every non-superuser session in a database that now refuses non-superusers: it slipped in
 *   while the fence was being set up;
 * - every session in a database closed to everyone (Shutdown).
 * This session is spared, and so are the operator's own other sessions (its role and
 * application_name: its pool) except in closed databases. Waits up to 5 s for each to go.
 */
export async function endSessions(
  client: Session,
  opts: {
    fencedSince: Date;
    refusingNonSuperusers: string[];
    refusingEveryone: string[];
    superuser: boolean;
    applicationName: string;
  },
): Promise<EndedSessions> {
  const { rows } = await client.query<{ ended: string; left_open: string }>(
    `WITH sessions AS (
       SELECT a.pid, a.datname, a.backend_start, COALESCE(r.rolsuper, false) AS super,
              (a.usename = current_user AND a.application_name = $5) AS operator
         FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
        WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
     ), doomed AS (
       SELECT * FROM sessions
        WHERE datname = ANY($3::text[])
           OR (NOT operator AND ((NOT super AND datname = ANY($2::text[])) OR backend_start < $1))
     )
     SELECT count(*) FILTER (WHERE CASE WHEN super AND NOT $4 THEN false ELSE pg_terminate_backend(pid, 5000) END) AS ended,
            count(*) FILTER (WHERE super AND NOT $4) AS left_open
       FROM doomed`,
    [
      opts.fencedSince,
      opts.refusingNonSuperusers,
      opts.refusingEveryone,
      opts.superuser,
      opts.applicationName,
    ],
  );
  return { ended: Number(rows[0]?.ended ?? 0), leftOpen: Number(rows[0]?.left_open ?? 0) };
}

async function createRecordsTable(client: Session): Promise<void> {
  if (await recordsTablePresent(client)) return;
  try {
    // Explicitly read-write: the server may already be read-only by default (step 1 of the fence).
    await client.query(`BEGIN READ WRITE;
      CREATE SCHEMA IF NOT EXISTS regionfailover;
      CREATE TABLE IF NOT EXISTS ${FENCE_RECORDS_TABLE} (
        database_oid oid PRIMARY KEY,
        datname name NOT NULL,
        connection_limit_before integer NOT NULL,
        allow_connections_before boolean NOT NULL,
        epoch bigint NOT NULL CHECK (epoch >= 0),
        fenced_at timestamptz NOT NULL
      );
      COMMENT ON TABLE ${FENCE_RECORDS_TABLE} IS
        'Written by the failover operator while it fences this server: each database''s connection limit and ALLOW_CONNECTIONS from before the fence, restored by unfence.';
      COMMIT`);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    // Another session created it at the same moment: what we wanted exists.
    const code = (err as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P07') throw err;
  }
}

/** Whether `database` is one a fence recorded (the records live in the maintenance database). */
export async function isRecordedFence(client: Session, database: string): Promise<boolean> {
  if (!(await recordsTablePresent(client))) return false;
  const { rows } = await client.query<{ recorded: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${FENCE_RECORDS_TABLE} WHERE datname = $1) AS recorded`,
    [database],
  );
  return rows[0]?.recorded === true;
}

/** What the role lacks to undo a fence: the read-only default, and the recorded databases. */
export function missingUnfencePrivileges(facts: ServerFacts, maintenance: string): string[] {
  if (facts.superuser) return [];
  const role = pg.escapeIdentifier(facts.role);
  const missing: string[] = [];
  if (facts.readOnly && !facts.canAlterSystem) {
    missing.push(
      `ALTER SYSTEM on default_transaction_read_only (PostgreSQL 15+: GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO ${role})`,
    );
  }
  if (facts.readOnly && !facts.canReload) {
    missing.push(`EXECUTE on pg_reload_conf() (GRANT EXECUTE ON FUNCTION pg_reload_conf() TO ${role})`);
  }
  const recorded = facts.databases.filter((d) => d.record);
  if (facts.recordsTable && !facts.canKeepRecords) missing.push(recordsPrivilege(facts, maintenance));
  const notOwned = recorded
    .filter(
      (d) =>
        !d.owned &&
        (d.connectionLimit !== d.record?.connectionLimitBefore ||
          (!d.allowConnections && d.record?.allowConnectionsBefore)),
    )
    .map((d) => d.name);
  if (notOwned.length > 0) {
    missing.push(
      `ownership of database(s) ${notOwned.join(', ')} (ALTER DATABASE … OWNER TO ${role}, or GRANT <owner> TO ${role})`,
    );
  }
  return missing;
}

/** Whether the records table exists, from the catalogs (to_regclass fails on a schema the role may not use). */
async function recordsTablePresent(client: Session): Promise<boolean> {
  const { rows } = await client.query<{ present: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'regionfailover' AND c.relname = 'fenced_database') AS present`,
  );
  return rows[0]?.present === true;
}

/** The privilege the role lacks to keep fence records, for the state the maintenance database is in. */
function recordsPrivilege(facts: ServerFacts, maintenance: string): string {
  const role = pg.escapeIdentifier(facts.role);
  if (facts.recordsTable) {
    return `SELECT, INSERT, UPDATE and DELETE on ${FENCE_RECORDS_TABLE} and USAGE on its schema in "${maintenance}" (GRANT USAGE ON SCHEMA regionfailover TO ${role}; GRANT SELECT, INSERT, UPDATE, DELETE ON ${FENCE_RECORDS_TABLE} TO ${role})`;
  }
  if (facts.recordsSchema) {
    return `USAGE and CREATE on the schema regionfailover in "${maintenance}", for ${FENCE_RECORDS_TABLE} (GRANT USAGE, CREATE ON SCHEMA regionfailover TO ${role})`;
  }
  return `CREATE on the maintenance database "${maintenance}", for ${FENCE_RECORDS_TABLE} (GRANT CREATE ON DATABASE ${pg.escapeIdentifier(maintenance)} TO ${role})`;
}
