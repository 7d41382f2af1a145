/**
 * Fencing against a real primary and standby, from the side of the applications it must stop:
 * what a non-superuser role can still do after ReadOnly and Shutdown (nothing that writes), what
 * a superuser can, how unfence puts every database back exactly, how a fence interrupted at any
 * point converges when run again, how a promoted standby sheds the fence it inherited through
 * replication, and what the standby's WAL receiver reports. docs/fencing.md states the same.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseConnection } from '../../../operator/src/providers/database/port.ts';
import { FENCE_RECORDS_TABLE } from '../../../operator/src/providers/database/postgres-fencing.ts';
import {
  PostgresSql,
  type PostgresSqlOptions,
} from '../../../operator/src/providers/database/postgres-sql.ts';
import { type PostgresNodeName, type PostgresPair, startPostgresPair } from '../../harness/postgres.ts';
import { waitFor } from '../../harness/wait.ts';

const pairs: PostgresPair[] = [];
const providers: PostgresSql[] = [];
const sessions: pg.Client[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.end().catch(() => undefined)));
  await Promise.all(providers.map((p) => p.close()));
  await Promise.all(pairs.map((p) => p.stop()));
});

/** A role applications log in as: a member of the databases' owner, like most applications. */
const APP = { user: 'app_writer', password: randomBytes(12).toString('hex') };
/** The operator's role when it is not a superuser, with the grants docs/fencing.md lists. */
const OPERATOR = { user: 'fence_operator', password: randomBytes(12).toString('hex') };

async function startPair(name: string): Promise<PostgresPair> {
  const pair = await startPostgresPair({ name });
  pairs.push(pair);
  // `app` (the harness's) and `shop` belong to app_owner; shop has a limit of its own to restore.
  await pair.primary.query(
    `CREATE ROLE app_owner NOLOGIN;
     CREATE ROLE ${APP.user} LOGIN PASSWORD '${APP.password}' IN ROLE app_owner;
     ALTER DATABASE app OWNER TO app_owner;`,
  );
  await pair.primary.query('CREATE DATABASE shop OWNER app_owner CONNECTION LIMIT 7');
  await pair.sql('primary', `GRANT SELECT, INSERT ON write_load TO ${APP.user}`);
  return pair;
}

function sqlSide(
  pair: PostgresPair,
  node: PostgresNodeName,
  options: PostgresSqlOptions & { as?: typeof OPERATOR } = {},
) {
  const { as, ...rest } = options;
  const p = new PostgresSql(pair.connection(node, as ?? {}), { connectTimeoutMs: 3_000, ...rest });
  providers.push(p);
  return p;
}

/** A session as `who`, like an application's. */
async function connectAs(
  pair: PostgresPair,
  node: PostgresNodeName,
  who: { user: string; password: string },
  database = pair.database,
): Promise<pg.Client> {
  const c: DatabaseConnection = pair.connection(node, { ...who, database });
  const client = new pg.Client({ ...c, ssl: false, connectionTimeoutMillis: 5_000, query_timeout: 30_000 });
  client.on('error', () => undefined);
  await client.connect();
  sessions.push(client);
  return client;
}

/** The error connecting as `who` fails with; fails the test if it connects. */
async function refusal(
  pair: PostgresPair,
  node: PostgresNodeName,
  who: { user: string; password: string },
  database?: string,
): Promise<{ code?: string; message: string }> {
  const outcome = await connectAs(pair, node, who, database).then(
    (c) => c,
    (err: unknown) => err as { code?: string; message: string },
  );
  if (outcome instanceof pg.Client)
    throw new Error(`${who.user} could connect to ${database ?? pair.database}`);
  return outcome;
}

function insertAs(client: pg.Client, payload: string): Promise<unknown> {
  return client.query('INSERT INTO write_load (payload) VALUES ($1)', [payload]);
}

async function limits(
  pair: PostgresPair,
  node: PostgresNodeName = 'primary',
): Promise<Record<string, number>> {
  const rows = await pair
    .server(node)
    .query<{ datname: string; datconnlimit: number }>(
      "SELECT datname, datconnlimit FROM pg_database WHERE datname <> 'template0' ORDER BY datname",
    );
  return Object.fromEntries(rows.map((r) => [r.datname, r.datconnlimit]));
}

async function records(pair: PostgresPair, node: PostgresNodeName = 'primary'): Promise<string[]> {
  const [exists] = await pair
    .server(node)
    .query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [FENCE_RECORDS_TABLE]);
  if (!exists?.present) return [];
  const rows = await pair
    .server(node)
    .query<{ datname: string }>(`SELECT datname FROM ${FENCE_RECORDS_TABLE} ORDER BY datname`);
  return rows.map((r) => r.datname);
}

/**
 * Waits until no other superuser session is open: the harness's own sessions end a moment after
 * their client does, and one still exiting when a fence starts would count among those it ends.
 */
async function settle(pair: PostgresPair): Promise<void> {
  await waitFor(
    async () =>
      (
        await pair.primary.query<{ n: string }>(
          "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND usename = 'postgres' AND pid <> pg_backend_pid()",
        )
      )[0]?.n === '0',
    { description: 'the harness sessions to end', timeoutMs: 10_000, intervalMs: 100 },
  );
}

/** The psql script docs/fencing.md gives administrators to undo a fence by hand. */
function undoByHandScript(): string {
  const doc = readFileSync(new URL('../../../docs/fencing.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Undoing a fence by hand'));
  const script = /```sql\n([\s\S]*?)```/.exec(section)?.[1];
  if (!script) throw new Error('docs/fencing.md has no sql block under "Undoing a fence by hand"');
  return script;
}

async function readOnlyDefault(pair: PostgresPair): Promise<string | undefined> {
  const [row] = await pair.primary.query<{ ro: string }>(
    "SELECT current_setting('default_transaction_read_only') AS ro",
  );
  return row?.ro;
}

const BEFORE = { app: -1, postgres: -1, shop: 7, template1: -1 };
const TOO_MANY = { code: '53300', message: expect.stringMatching(/too many connections for database/) };

describe('ReadOnly, with the operator logged in as a superuser', () => {
  let pair: PostgresPair;
  let primary: PostgresSql;
  beforeAll(async () => {
    pair = await startPair('fence-su');
    primary = sqlSide(pair, 'primary');
    await primary.writeHeartbeat(1, new Date());
  });

  it('ends the sessions of non-superusers and refuses them every database; no path to a write is left', async () => {
    const idle = await connectAs(pair, 'primary', APP);
    const inTransaction = await connectAs(pair, 'primary', APP);
    const switchedOff = await connectAs(pair, 'primary', APP, 'shop');
    await insertAs(idle, 'before the fence');
    await inTransaction.query('BEGIN READ WRITE');
    await insertAs(inTransaction, 'uncommitted when fenced');
    await switchedOff.query('SET default_transaction_read_only = off');
    expect(await limits(pair)).toEqual(BEFORE);
    await settle(pair);

    const { detail } = await primary.fence({ operationId: 'op-2', epoch: 2, mode: 'ReadOnly' });
    expect(detail).toBe(
      'default_transaction_read_only = on (ALTER SYSTEM, configuration reloaded); epoch 2 recorded; ' +
        'connection limit 0 (non-superusers refused) on app (was -1), postgres (was -1), shop (was 7), ' +
        'template1 (was -1); ended 3 other client session(s)',
    );

    // Every session from before is gone, its open transaction with it.
    for (const s of [idle, inTransaction, switchedOff]) await expect(s.query('SELECT 1')).rejects.toThrow();
    const [row] = await pair.sql<{ n: string }>(
      'primary',
      "SELECT count(*) AS n FROM write_load WHERE payload = 'uncommitted when fenced'",
    );
    expect(Number(row?.n)).toBe(0);
    // No new session anywhere: not the application database, and not another one from which an
    // owner could lift the limit (ALTER DATABASE app CONNECTION LIMIT -1) or write instead.
    for (const database of ['app', 'shop', 'postgres', 'template1']) {
      expect(await refusal(pair, 'primary', APP, database)).toMatchObject({
        ...TOO_MANY,
        message: expect.stringContaining(`"${database}"`),
      });
    }
    // So BEGIN READ WRITE and SET default_transaction_read_only = off have no session to run in.
  });

  it('a superuser still gets in, read-only by default, and can write only by asking for it', async () => {
    expect(await readOnlyDefault(pair)).toBe('on');
    await expect(
      pair.sql('primary', "INSERT INTO write_load (payload) VALUES ('superuser')"),
    ).rejects.toMatchObject({
      code: '25006',
    });
    // What docs/fencing.md warns about: superusers are not fenced by ReadOnly.
    await pair.sql(
      'primary',
      "BEGIN READ WRITE; INSERT INTO write_load (payload) VALUES ('superuser, explicitly'); COMMIT",
    );
  });

  it('observe says Fenced with the new epoch; fencing again changes nothing', async () => {
    expect(await primary.observe()).toMatchObject({
      reachable: true,
      role: 'Fenced',
      heartbeat: { fencedEpoch: 2 },
    });
    const opened = await pair.connect('primary');
    expect(await primary.fence({ operationId: 'op-2', epoch: 2, mode: 'ReadOnly' })).toEqual({
      detail: 'already fenced read-only with epoch 2 recorded',
    });
    // Not ended: a superuser's session opened after the fence is not the fence's business.
    expect((await opened.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await opened.end();
    expect(await records(pair)).toEqual(['app', 'postgres', 'shop', 'template1']);
  });

  it('converges when a database was reset by hand in between, and unfence still restores the limit from before', async () => {
    await pair.primary.query('BEGIN READ WRITE; ALTER DATABASE shop CONNECTION LIMIT -1; COMMIT');
    await settle(pair);
    const slipped = await connectAs(pair, 'primary', APP, 'shop');
    const { detail } = await primary.fence({ operationId: 'op-2', epoch: 2, mode: 'ReadOnly' });
    expect(detail).toBe(
      'already read-only; epoch 2 already recorded; connection limit 0 (non-superusers refused) on shop (was -1); ' +
        'ended 1 other client session(s)',
    );
    await expect(slipped.query('SELECT 1')).rejects.toThrow();
    expect(await refusal(pair, 'primary', APP, 'shop')).toMatchObject(TOO_MANY);
  });

  it('unfence gives every database its limit from before and lets the application write again', async () => {
    expect(await primary.unfence()).toEqual({
      detail:
        'connection limit restored on app (-1), postgres (-1), shop (7), template1 (-1); fence mark cleared; ' +
        'default_transaction_read_only reset (ALTER SYSTEM RESET, configuration reloaded)',
    });
    expect(await limits(pair)).toEqual(BEFORE);
    expect(await records(pair)).toEqual([]);
    const writer = await connectAs(pair, 'primary', APP);
    await insertAs(writer, 'after unfence');
    await writer.end();
    expect(await primary.observe()).toMatchObject({ role: 'Primary' });
    expect(await primary.unfence()).toEqual({ detail: 'not fenced read-only' });
  });

  it('converges when the operator died right after the read-only default, before any limit', async () => {
    // The first statement of a fence, and a session that an application opened around then.
    await pair.primary.query('ALTER SYSTEM SET default_transaction_read_only = on');
    await pair.primary.query('SELECT pg_reload_conf()');
    const opened = await connectAs(pair, 'primary', APP);
    await settle(pair);
    const { detail } = await primary.fence({ operationId: 'op-3', epoch: 3, mode: 'ReadOnly' });
    expect(detail).toBe(
      'already read-only; epoch 3 recorded; connection limit 0 (non-superusers refused) on app (was -1), ' +
        'postgres (was -1), shop (was 7), template1 (was -1); ended 1 other client session(s)',
    );
    await expect(opened.query('SELECT 1')).rejects.toThrow();
    expect(await refusal(pair, 'primary', APP)).toMatchObject(TOO_MANY);
  });

  it('converges when an unfence died after restoring the databases, before the read-only default', async () => {
    // What unfence does first, by hand: every recorded limit back, the records gone.
    await pair.primary.query(
      `BEGIN READ WRITE;
       ALTER DATABASE app CONNECTION LIMIT -1; ALTER DATABASE postgres CONNECTION LIMIT -1;
       ALTER DATABASE shop CONNECTION LIMIT 7; ALTER DATABASE template1 CONNECTION LIMIT -1;
       DELETE FROM ${FENCE_RECORDS_TABLE};
       COMMIT`,
    );
    // Still read-only by default: the fence still marks the server.
    expect(await primary.observe()).toMatchObject({ role: 'Fenced' });
    expect(await primary.unfence()).toEqual({
      detail:
        'fence mark cleared; default_transaction_read_only reset (ALTER SYSTEM RESET, configuration reloaded)',
    });
    expect(await limits(pair)).toEqual(BEFORE);
    await insertAs(await connectAs(pair, 'primary', APP), 'after the second unfence');
  });
});

describe('Shutdown', () => {
  let pair: PostgresPair;
  let primary: PostgresSql;
  beforeAll(async () => {
    pair = await startPair('fence-shut');
    primary = sqlSide(pair, 'primary');
  });

  it('also closes the application databases to superusers; the maintenance database stays open to them', async () => {
    await settle(pair);
    const { detail } = await primary.fence({ operationId: 'op-5', epoch: 5, mode: 'Shutdown' });
    expect(detail).toBe(
      'default_transaction_read_only = on (ALTER SYSTEM, configuration reloaded); epoch 5 recorded; ' +
        'connection limit 0 (non-superusers refused) on app (was -1), postgres (was -1), shop (was 7), ' +
        'template1 (was -1); closed to new connections: app, shop; ended 1 other client session(s)',
    );
    // That one was the operator's own pooled session, which recorded the epoch in app: nobody
    // keeps a session in a closed database.
    expect(await refusal(pair, 'primary', APP)).toMatchObject({ code: '55000' });
    expect(await refusal(pair, 'primary', APP, 'postgres')).toMatchObject(TOO_MANY);
    await expect(pair.connect('primary')).rejects.toMatchObject({ code: '55000' });
    expect(await pair.primary.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    // A fresh operator sees it through the maintenance database.
    expect(await sqlSide(pair, 'primary').observe()).toMatchObject({ reachable: true, role: 'Fenced' });
    expect(await sqlSide(pair, 'primary').fence({ operationId: 'op-5', epoch: 5, mode: 'Shutdown' })).toEqual(
      {
        detail:
          "already fenced read-only and closed; app refuses the operator's connections (ALLOW_CONNECTIONS false): the epoch recorded there was not checked",
      },
    );
  });

  it('is undone by an administrator with the psql script docs/fencing.md gives', async () => {
    execFileSync(
      'psql',
      ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', pair.primary.socketDir, '-p', String(pair.primary.port)],
      {
        input: undoByHandScript(),
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGUSER: 'postgres', PGDATABASE: 'postgres' },
      },
    );
    expect(await limits(pair)).toEqual(BEFORE);
    expect(await pair.primary.query('SELECT datname FROM pg_database WHERE NOT datallowconn')).toEqual([
      { datname: 'template0' },
    ]);
    expect(await records(pair)).toEqual([]);
    await insertAs(await connectAs(pair, 'primary', APP), 'after the administrator');
    expect(await sqlSide(pair, 'primary').observe()).toMatchObject({ role: 'Primary' });
  });
});

describe('ReadOnly with an operator role that is not a superuser, through a promotion', () => {
  let pair: PostgresPair;
  let primary: PostgresSql;
  let standby: PostgresSql;
  const restored: string[] = [];
  beforeAll(async () => {
    pair = await startPair('fence-role');
    await pair.primary.query(
      `CREATE ROLE ${OPERATOR.user} LOGIN PASSWORD '${OPERATOR.password}' IN ROLE app_owner`,
    );
    primary = sqlSide(pair, 'primary', { as: OPERATOR, onLeftoverFenceRestored: (d) => restored.push(d) });
    standby = sqlSide(pair, 'standby', { as: OPERATOR, onLeftoverFenceRestored: (d) => restored.push(d) });
    await primary.writeHeartbeat(1, new Date());
    // The standby must know the role before the operator logs in there.
    await pair.waitForReplayCatchUp();
  });

  it('a streaming standby reports its WAL receiver streaming, heard from moments ago', async () => {
    // As a superuser: fence_operator has no grants yet, so pg_stat_wal_receiver hides the details.
    const asSuperuser = sqlSide(pair, 'standby');
    await pair.sql('primary', "INSERT INTO write_load (payload) VALUES ('wake the walsender')");
    const seen = await waitFor(
      async () => {
        const o = await asSuperuser.observe();
        return (o.walReceiver?.lastMessageAgeSeconds ?? 99) < 5 ? o : undefined;
      },
      { description: 'the standby to hear from the primary within 5 s' },
    );
    expect(seen.walReceiver).toEqual({ streaming: true, lastMessageAgeSeconds: expect.any(Number) });
  });

  it('without pg_read_all_stats the receiver is hidden, and walReceiver says nothing rather than false', async () => {
    expect(await standby.observe()).toMatchObject({ reachable: true, role: 'Standby' });
    expect((await standby.observe()).walReceiver).toBeUndefined();
  });

  it('refuses to fence, naming every missing privilege, and changes nothing', async () => {
    const err = await primary
      .fence({ operationId: 'op-2', epoch: 2, mode: 'ReadOnly' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'Rejected', retryable: false });
    const message = (err as Error).message;
    for (const needed of [
      'GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO "fence_operator"',
      'GRANT EXECUTE ON FUNCTION pg_reload_conf() TO "fence_operator"',
      'GRANT pg_signal_backend TO "fence_operator"',
      'GRANT pg_monitor TO "fence_operator"',
      'GRANT CREATE ON DATABASE "postgres" TO "fence_operator"',
    ]) {
      expect(message).toContain(needed);
    }
    expect(await limits(pair)).toEqual(BEFORE);
    expect(await readOnlyDefault(pair)).toBe('off');
  });

  it('with the grants docs/fencing.md lists, fences every database but the maintenance database', async () => {
    // docs/fencing.md, "What the operator's role needs" (app_owner membership: beforeAll).
    await pair.primary.query(
      `GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only TO ${OPERATOR.user};
       GRANT EXECUTE ON FUNCTION pg_reload_conf() TO ${OPERATOR.user};
       GRANT pg_signal_backend, pg_monitor TO ${OPERATOR.user};
       GRANT CREATE ON DATABASE postgres TO ${OPERATOR.user};`,
    );
    const before = await connectAs(pair, 'primary', APP);
    await settle(pair);
    const { detail } = await primary.fence({ operationId: 'op-2', epoch: 2, mode: 'ReadOnly' });
    expect(detail).toBe(
      'default_transaction_read_only = on (ALTER SYSTEM, configuration reloaded); epoch 2 recorded; ' +
        'connection limit 0 (non-superusers refused) on app (was -1), shop (was 7); ended 1 other client session(s)',
    );
    await expect(before.query('SELECT 1')).rejects.toThrow();
    expect(await refusal(pair, 'primary', APP)).toMatchObject(TOO_MANY);
    // The operator is refused too, and observes through the maintenance database.
    expect(await refusal(pair, 'primary', OPERATOR)).toMatchObject(TOO_MANY);
    const fresh = sqlSide(pair, 'primary', { as: OPERATOR });
    expect(await fresh.observe()).toMatchObject({ reachable: true, role: 'Fenced', lsn: expect.any(String) });
    expect(await fresh.isReadOnly()).toBe(true);
    // What docs/fencing.md says such a fence leaves open: the maintenance database.
    const inMaintenance = await connectAs(pair, 'primary', APP, 'postgres');
    expect((await inMaintenance.query('SHOW default_transaction_read_only')).rows).toEqual([
      { default_transaction_read_only: 'on' },
    ]);
    await inMaintenance.end();
  });

  it('a standby replays the limits: the operator still observes it, and the standby catches up', async () => {
    await pair.waitForReplayCatchUp();
    expect(await limits(pair, 'standby')).toMatchObject({ app: 0, shop: 0 });
    expect(await standby.observe()).toMatchObject({
      reachable: true,
      role: 'Standby',
      walReceiver: { streaming: true },
    });
  });

  it('when the primary stops, the standby reports that its WAL receiver no longer streams', async () => {
    await pair.stopPrimary();
    const seen = await waitFor(
      async () => {
        const o = await standby.observe();
        return o.walReceiver?.streaming === false ? o : undefined;
      },
      { description: 'the standby to report its WAL receiver not streaming' },
    );
    expect(seen).toMatchObject({ reachable: true, role: 'Standby' });
  });

  it('the promoted standby sheds the inherited fence with its first heartbeat, limits exactly as before', async () => {
    await pair.sql('standby', 'SELECT pg_promote()');
    await waitFor(async () => (await standby.observe()).role === 'Primary', {
      description: 'the standby to be a primary',
    });
    // Inherited through replication: the application is refused on the new primary too.
    expect(await refusal(pair, 'standby', APP)).toMatchObject(TOO_MANY);
    await standby.writeHeartbeat(2, new Date());
    expect(await limits(pair, 'standby')).toEqual(BEFORE);
    expect(await records(pair, 'standby')).toEqual([]);
    expect(restored).toEqual([
      expect.stringMatching(/takes writes at epoch 2 .*connection limit restored on app \(-1\), shop \(7\)/),
    ]);
    await insertAs(await connectAs(pair, 'standby', APP), 'on the new primary');
    expect(await standby.observe()).toMatchObject({ role: 'Primary', heartbeat: { epoch: 2 } });
  });
});
