import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { operation } from '../api/v1alpha1/index.ts';
import { mergePatchFor, recloneSuffix, unfinishedDemotion } from './agent.ts';
import { compareHistories, discardRefusal } from './divergence.ts';
import { wantedCopy } from './drill-copy.ts';
import {
  basebackupCommand,
  drillCopyName,
  LocalPostgres,
  parseControlData,
  parseTimelineHistory,
  rewindCommand,
} from './local-postgres.ts';
import { conninfo, loginTo } from './upstream.ts';

describe('agent: the pure parts', () => {
  it('a report patch removes nested fields the last report had (a new task inherits nothing)', () => {
    const before = {
      task: { operationId: 'a', stoppedLsn: '0/1', phase: 'Succeeded' },
      problem: { reason: 'X' },
    };
    const next = { task: { operationId: 'b', phase: 'Running' } };
    expect(mergePatchFor(before, next)).toEqual({
      problem: null,
      task: { operationId: 'b', phase: 'Running', stoppedLsn: null },
    });
  });

  it('compares a former primary with the primary’s timeline history', () => {
    const primary = {
      timeline: 2,
      walPosition: '0/5000000',
      history: parseTimelineHistory('1\t0/3000398\tno recovery target specified\n'),
    };
    expect(compareHistories({ timeline: 1, walEnd: '0/3000398' }, primary)).toMatchObject({
      relation: 'Behind',
      divergedBytes: 0,
    });
    expect(compareHistories({ timeline: 1, walEnd: '0/3000730' }, primary)).toMatchObject({
      relation: 'Diverged',
      forkLsn: '0/3000398',
      divergedBytes: 0x398,
    });
    expect(compareHistories({ timeline: 3, walEnd: '0/1' }, primary).relation).toBe('Unrelated');
    expect(compareHistories({ timeline: 2, walEnd: '0/4000000' }, primary).relation).toBe('Behind');
  });

  it('discards on a request no more than it showed; under reprotect.mode Automatic, whatever it finds', () => {
    const found = (divergedTransactions?: number) => ({
      primary: 'b',
      assessedAt: '2026-12-01T00:00:00Z',
      relation: 'Diverged' as const,
      divergedBytes: 8192,
      ...(divergedTransactions !== undefined ? { divergedTransactions } : {}),
      message: 'diverged',
    });
    const requested = {
      trigger: 'Manual' as const,
      allowDataLoss: true,
      discarded: { bytes: 4096, transactions: 3 },
    };
    expect(discardRefusal(requested, 'RequireRequest', found(3))).toBeUndefined();
    expect(discardRefusal(requested, 'RequireRequest', found(4))?.reason).toBe('DivergenceGrew');
    expect(discardRefusal(requested, 'Automatic', found(undefined))?.reason).toBe('DivergenceGrew');
    expect(discardRefusal({ trigger: 'Manual' }, 'Automatic', found(1))?.reason).toBe('WouldDiscard');
    expect(discardRefusal({ trigger: 'Manual' }, 'Manual', found(0))).toBeUndefined();
    // Started by the operator: bound by the mode now, not by the assessment it started from.
    const automatic = {
      trigger: 'Automatic' as const,
      allowDataLoss: true,
      discarded: { bytes: 4096, transactions: 3 },
    };
    expect(discardRefusal(automatic, 'Automatic', found(40))).toBeUndefined();
    expect(discardRefusal({ trigger: 'Automatic' }, 'Automatic', found(2))).toBeUndefined();
    // The mode changed to RequireRequest while it ran: a person decides again.
    expect(discardRefusal(automatic, 'RequireRequest', found(40))?.reason).toBe('DivergenceGrew');
    expect(discardRefusal({ trigger: 'Automatic' }, 'RequireRequest', found(2))?.reason).toBe('WouldDiscard');
  });

  it('reads pg_controldata', () => {
    const text = [
      'pg_control version number:            1300',
      'Database system identifier:           7714122470937997949',
      'Database cluster state:               shut down',
      'Latest checkpoint location:           0/30096A8',
      "Latest checkpoint's REDO location:    0/3009670",
      "Latest checkpoint's TimeLineID:       1",
      'wal_log_hints setting:                on',
      'Data page checksum version:           0',
    ].join('\n');
    expect(parseControlData(text)).toEqual({
      systemIdentifier: '7714122470937997949',
      state: 'shut down',
      checkpointLsn: '0/30096A8',
      redoLsn: '0/3009670',
      timeline: 1,
      walLogHints: true,
      checksums: false,
    });
  });

  it('quotes every connection string value, a quote and a backslash in a password included', () => {
    const text = conninfo({ host: 'db', port: 5432, sslMode: 'require', user: 'rep', password: "a'b\\c" });
    expect(text).toBe("host='db' port='5432' user='rep' sslmode='require' password='a\\'b\\\\c'");
  });
});

describe('a demotion the switchover went past', () => {
  const task = {
    operationId: 'sw-1',
    action: 'Demote' as const,
    phase: 'Running' as const,
    startedAt: '2026-12-01T00:00:00Z',
    stoppedLsn: '0/3000028',
  };
  const record = {
    id: 'sw-1',
    kind: 'Switchover' as const,
    trigger: 'Manual' as const,
    from: 'a',
    to: 'b',
    epoch: 2,
    result: 'Succeeded' as const,
    startedAt: '2026-12-01T00:00:00Z',
    completedAt: '2026-12-01T00:00:09Z',
  };

  it('is finished as a standby of the target once the switchover ended with the target primary', () => {
    expect(unfinishedDemotion(task, { activePrimary: 'b', history: [record] }, 'a')).toEqual({
      resume: { id: 'sw-1', kind: 'Switchover', from: 'a', to: 'b' },
    });
  });

  it('is left alone when nothing was stopped, it already ended, or another operation runs', () => {
    const { stoppedLsn: _, ...notStopped } = task;
    expect(unfinishedDemotion(notStopped, { activePrimary: 'b', history: [record] }, 'a')).toBeUndefined();
    expect(
      unfinishedDemotion({ ...task, phase: 'Succeeded' }, { activePrimary: 'b', history: [record] }, 'a'),
    ).toBeUndefined();
    expect(unfinishedDemotion(undefined, { activePrimary: 'b' }, 'a')).toBeUndefined();
    const other = operation.parse({
      ...{ id: 'rp-2', kind: 'Reprotect', trigger: 'Manual', from: 'a', to: 'b', epoch: 2 },
      ...{ step: 'Rejoining', startedAt: record.startedAt, stepStartedAt: record.startedAt },
    });
    expect(
      unfinishedDemotion(task, { activePrimary: 'b', currentOperation: other, history: [record] }, 'a'),
    ).toBeUndefined();
  });

  it('waits, while the switchover runs, until the operator took this checkpoint and went on to promote', () => {
    const running = (step: string, over: Record<string, unknown> = {}) =>
      operation.parse({
        ...{ id: 'sw-1', kind: 'Switchover', trigger: 'Manual', from: 'a', to: 'b', epoch: 2, step },
        ...{ startedAt: record.startedAt, stepStartedAt: record.startedAt, demoted: true },
        ...{ stoppedLsn: task.stoppedLsn, ...over },
      });
    const during = (op: ReturnType<typeof running>) =>
      unfinishedDemotion(task, { activePrimary: 'a', currentOperation: op }, 'a');
    expect(during(running('RepointingDns'))).toEqual({
      resume: { id: 'sw-1', kind: 'Switchover', from: 'a', to: 'b' },
    });
    expect(during(running('Demoting'))).toBeUndefined();
    expect(during(running('RollingBack'))).toBeUndefined();
    expect(during(running('Promoting', { demoted: false }))).toBeUndefined();
    expect(during(running('Promoting', { stoppedLsn: '0/2000000' }))).toBeUndefined();
  });

  it('is closed, not resumed, once the target is not the primary or the switchover is forgotten', () => {
    const aborted = { ...record, result: 'Aborted' as const };
    expect(unfinishedDemotion(task, { activePrimary: 'a', history: [aborted] }, 'a')).toHaveProperty('close');
    expect(unfinishedDemotion(task, { activePrimary: 'c', history: [record] }, 'a')).toHaveProperty('close');
    expect(unfinishedDemotion(task, { activePrimary: 'b', history: [] }, 'a')).toHaveProperty('close');
  });
});

describe('the replication password stays off every command line', () => {
  const address = { host: 'db', port: 5432, sslMode: 'require' as const, user: 'rep', password: 's3cret-pw' };

  it('a login is the connection string without the password, and the password beside it', () => {
    const login = loginTo(address, { dbname: 'postgres' });
    expect(login.conninfo).toBe(
      "host='db' port='5432' user='rep' sslmode='require' connect_timeout='10' keepalives='1' keepalives_idle='30' keepalives_interval='10' keepalives_count='3' dbname='postgres'",
    );
    expect(login.password).toBe('s3cret-pw');
  });

  it('pg_rewind and pg_basebackup get it in their environment, not in their arguments', () => {
    const login = loginTo(address);
    for (const command of [
      rewindCommand('/var/lib/pg/data', login),
      basebackupCommand('/var/lib/pg/new', login),
    ]) {
      expect(command.args.join(' ')).not.toMatch(/s3cret-pw|password/);
      expect(command.args).toContain(login.conninfo);
      expect(command.env).toEqual({ PGPASSWORD: 's3cret-pw' });
    }
  });
});

describe('the local server programs, as the agent starts them', () => {
  let scratch = '';
  afterEach(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
    scratch = '';
  });

  /**
   * A LocalPostgres whose pg_rewind and pg_basebackup record the command line (what `ps` and
   * /proc/<pid>/cmdline show) and the PGPASSWORD they were started with, then end as the real
   * ones would: pg_rewind with nothing to rewind, pg_basebackup with its directory made. The real
   * programs, against a real primary that wants a password, run in test/integration/reprotect.test.ts.
   */
  async function recordingServer(rewind = 'echo "pg_rewind: no rewind required"') {
    scratch = await mkdtemp(join(tmpdir(), 'agent-argv-'));
    const binDir = join(scratch, 'bin');
    const dataDir = join(scratch, 'data');
    await mkdir(binDir);
    await mkdir(dataDir, { mode: 0o700 });
    await writeFile(join(dataDir, 'postgresql.auto.conf'), '# Do not edit this file manually!\n');
    const record = (tool: string, then: string) =>
      writeFile(
        join(binDir, tool),
        [
          '#!/bin/sh',
          `printf '%s\\n' "$0" "$@" > '${scratch}/${tool}.argv'`,
          `printf '%s' "$PGPASSWORD" > '${scratch}/${tool}.env'`,
          then,
          '',
        ].join('\n'),
        { mode: 0o755 },
      );
    await record('pg_rewind', rewind);
    await record('pg_basebackup', 'mkdir -p "$2"');
    const pg = new LocalPostgres({
      dataDir,
      binDir,
      socketDir: scratch,
      port: 5432,
      user: 'postgres',
      logFile: join(scratch, 'log'),
    });
    const seen = async (tool: string) => ({
      argv: await readFile(join(scratch, `${tool}.argv`), 'utf8'),
      password: await readFile(join(scratch, `${tool}.env`), 'utf8'),
    });
    return { pg, dataDir, seen };
  }

  it('rewind and re-clone hand the password to the program in its environment only', async () => {
    const { pg, seen } = await recordingServer();
    const address = {
      host: '127.0.0.1',
      port: 5432,
      sslMode: 'disable' as const,
      user: 'rep',
      password: 'pw-9f3a',
    };
    const standbyOf = conninfo(address, { application_name: 'region-b' });
    await pg.rewind(loginTo(address, { dbname: 'postgres' }), standbyOf);
    await pg.reclone(loginTo(address), '1-20261201030500123', standbyOf);
    for (const tool of ['pg_rewind', 'pg_basebackup']) {
      const { argv, password } = await seen(tool);
      expect(argv).toContain("host='127.0.0.1'");
      expect(argv).not.toMatch(/pw-9f3a|password/);
      expect(password).toBe('pw-9f3a');
    }
    // The child's environment, never the agent's own (which every other child inherits).
    expect(process.env.PGPASSWORD).toBeUndefined();
  });

  it('a pg_rewind that failed before its point of no return leaves the directory trusted; one that failed after, not', async () => {
    const address = {
      host: '127.0.0.1',
      port: 5432,
      sslMode: 'disable' as const,
      user: 'rep',
      password: 'pw',
    };
    const source = loginTo(address, { dbname: 'postgres' });
    // pg_rewind's own messages (LC_ALL=C, --progress): it writes to the target only after
    // "need to copy" (pg_rewind.c, perform_rewind).
    const before = [
      'echo "pg_rewind: connected to server" >&2',
      'echo "pg_rewind: error: could not fetch remote file "global/pg_control": ERROR:  permission denied for function pg_read_binary_file" >&2',
      'exit 1',
    ].join('\n');
    const after = [
      'echo "pg_rewind: servers diverged at WAL location 0/3000148 on timeline 1" >&2',
      'echo "pg_rewind: need to copy 52 MB (total source directory size is 77 MB)" >&2',
      'echo "pg_rewind: error: could not fetch remote file: server closed the connection unexpectedly" >&2',
      'exit 1',
    ].join('\n');
    for (const [script, trusted] of [
      [before, true],
      [after, false],
    ] as const) {
      const { pg } = await recordingServer(script);
      await expect(pg.rewind(source, 'host=b')).rejects.toThrow(/pg_rewind failed/);
      expect(await pg.rewindInterrupted()).toBe(!trusted);
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it('a stopped server owed a fence is made to start read-only, once, and never a directory that starts as a standby', async () => {
    const { pg, dataDir } = await recordingServer();
    const auto = join(dataDir, 'postgresql.auto.conf');
    await writeFile(
      auto,
      "# Do not edit this file manually!\nwork_mem = '8MB'\ndefault_transaction_read_only = 'off'\n",
    );
    expect(await pg.readOnlyAtStart()).toBe(true);
    expect(await readFile(auto, 'utf8')).toBe(
      "# Do not edit this file manually!\nwork_mem = '8MB'\ndefault_transaction_read_only = 'on'\n",
    );
    expect(await pg.readOnlyAtStart()).toBe(false);
    // Rejoining (standby.signal): it starts as a standby, and configureStandby drops the line.
    await writeFile(auto, '# Do not edit this file manually!\n');
    await writeFile(join(dataDir, 'standby.signal'), '');
    expect(await pg.readOnlyAtStart()).toBe(false);
    expect(await readFile(auto, 'utf8')).not.toContain('default_transaction_read_only');
  });

  it('the read-only line and a rejoin never interleave their writes of the configuration', async () => {
    const { pg, dataDir } = await recordingServer();
    const auto = join(dataDir, 'postgresql.auto.conf');
    // Started together, in both orders: the standby's primary_conninfo always survives.
    for (const first of ['readOnly', 'standby'] as const) {
      await rm(join(dataDir, 'standby.signal'), { force: true });
      await writeFile(auto, "# Do not edit this file manually!\nwork_mem = '8MB'\n");
      const both =
        first === 'readOnly'
          ? [pg.readOnlyAtStart(), pg.configureStandby("host='b'")]
          : [pg.configureStandby("host='b'"), pg.readOnlyAtStart()];
      await Promise.all(both);
      const text = await readFile(auto, 'utf8');
      expect(text, first).toContain("primary_conninfo = 'host=''b'''");
      expect(text, first).not.toContain('default_transaction_read_only');
    }
  });

  it("a standby's primary_conninfo, which holds the password, is readable by the owner only", async () => {
    const { pg, dataDir } = await recordingServer();
    const auto = join(dataDir, 'postgresql.auto.conf');
    // What initdb --allow-group-access leaves: the data directory's files readable by the group.
    await chmod(auto, 0o640);
    await pg.configureStandby("host='db' user='rep' password='pw-9f3a'");
    expect((await stat(auto)).mode & 0o777).toBe(0o600);
    expect(await readFile(auto, 'utf8')).toContain(
      `primary_conninfo = 'host=''db'' user=''rep'' password=''pw-9f3a'''`,
    );
    expect((await stat(join(dataDir, 'standby.signal'))).mode & 0o777).toBe(0o600);
  });
});

describe('where a re-clone keeps the old data directory', () => {
  it('is named by the operation epoch and start, not by the cluster name at the end of its id', () => {
    expect(recloneSuffix({ epoch: 5, id: 'reprotect-e5-20261201030500123-region-a' })).toBe(
      '5-20261201030500123',
    );
    expect(recloneSuffix({ epoch: 5, id: 'reprotect-e5-20261201030501456-region-a' })).not.toBe(
      recloneSuffix({ epoch: 5, id: 'reprotect-e5-20261201030500123-region-a' }),
    );
    expect(recloneSuffix({ epoch: 2, id: 'reprotect-e2-20261201030500-a' })).toBe('2-20261201030500');
  });
});

describe('isolated drill copies', () => {
  const drill = {
    id: 'drill-20261201060000123',
    mode: 'Isolated' as const,
    from: 'region-a',
    to: 'region-b',
    startedAt: '2026-12-01T06:00:00Z',
    leg: 'Copying' as const,
    isolated: { recordName: '_drill.db.example.com', port: 5433 },
  };

  it('is wanted of the standby the drill names, while the legs that use it last', () => {
    expect(wantedCopy(drill, 'region-b')).toEqual({ drillId: drill.id, port: 5433 });
    for (const leg of ['Pointing', 'Writing'] as const)
      expect(wantedCopy({ ...drill, leg }, 'region-b')).toBeDefined();
    for (const leg of ['Removing', 'Cleaning', 'Out', 'Holding'] as const)
      expect(wantedCopy({ ...drill, leg }, 'region-b')).toBeUndefined();
    expect(wantedCopy(drill, 'region-a')).toBeUndefined();
    expect(wantedCopy({ ...drill, mode: 'RoundTrip' }, 'region-b')).toBeUndefined();
    expect(wantedCopy({ ...drill, mode: undefined }, 'region-b')).toBeUndefined();
    expect(wantedCopy(undefined, 'region-b')).toBeUndefined();
  });

  it('names its directory after the drill: path-safe, short enough for a socket, distinct', () => {
    expect(drillCopyName(drill.id)).toBe(drill.id);
    expect(drillCopyName('a/../b c')).toBe('a----b-c');
    const long = drillCopyName(`x${'y'.repeat(120)}1`);
    expect(long.length).toBeLessThanOrEqual(40);
    expect(long).not.toBe(drillCopyName(`x${'y'.repeat(120)}2`));
  });

  it("a new drill's copy report inherits nothing of the last one's", () => {
    const before = {
      drillCopy: { drillId: 'a', phase: 'Removed', promotionSeconds: 0.2, finishedAt: 't' },
    };
    const next = { drillCopy: { drillId: 'b', phase: 'Copying' } };
    expect(mergePatchFor(before, next)).toEqual({
      drillCopy: { drillId: 'b', phase: 'Copying', promotionSeconds: null, finishedAt: null },
    });
  });
});
