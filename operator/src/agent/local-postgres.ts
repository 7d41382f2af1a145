/**
 * The agent's adapter for the PostgreSQL beside it: its data directory and the server programs
 * (pg_ctl, pg_controldata, pg_rewind, pg_basebackup, pg_waldump). Everything the agent learns
 * about the local server comes from here, read from the world on every call: after a crash of
 * the agent or the server, the data directory says where things stand.
 *
 * The programs run as the agent's own user, which must be the database's (PostgreSQL refuses to
 * run as root): the systemd unit and the sidecar example run the agent as `postgres`.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  access,
  appendFile,
  constants,
  copyFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  statfs,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import pg from 'pg';
import { formatLsn, parseLsn } from '../providers/database/lsn.ts';
import { HEARTBEAT_TABLE } from '../providers/database/postgres-sql.ts';
import { failpoint } from '../runtime/failpoints.ts';
import type { Login } from './upstream.ts';

export interface LocalPostgresOptions {
  dataDir: string;
  /** Directory with pg_ctl, pg_controldata, pg_rewind, pg_basebackup and pg_waldump. */
  binDir: string;
  /** Where the server's Unix socket is, and its port: the agent's own SQL way in. */
  socketDir: string;
  port: number;
  /** The role the agent logs in as over the socket (peer or trust authentication). */
  user: string;
  /** pg_ctl's log file for a server the agent starts. */
  logFile: string;
}

/** pg_controldata, the parts the agent needs. */
export interface ControlData {
  systemIdentifier: string;
  /** "shut down", "shut down in recovery", "in production", "in archive recovery", ... */
  state: string;
  checkpointLsn: string;
  redoLsn: string;
  timeline: number;
  walLogHints: boolean;
  checksums: boolean;
}

/** What the agent sees of its server. */
export interface LocalState {
  /** Set when the data directory cannot be used: the agent then refuses to act. */
  problem?: { reason: 'WrongDataDirectory' | 'PermissionDenied' | 'ToolFailed'; message: string };
  control?: ControlData;
  running: boolean;
  /** Running and in recovery (a standby). */
  inRecovery?: boolean;
  /** standby.signal is in the data directory: the next start is a standby's. */
  standbySignal: boolean;
  /** Where the local WAL ends, on the timeline it ends on. */
  walEnd?: string;
  walTimeline?: number;
  /** Running standby: the WAL receiver's upstream and status. */
  receiver?: { host?: string; port?: number; status?: string };
  /** Running: when its postmaster started, which tells two servers of one cluster apart. */
  startedAt?: string;
}

/** One line of a timeline history file: `timeline` ended at `switchLsn`. */
export interface TimelineSwitch {
  timeline: number;
  switchLsn: string;
}

export class ToolError extends Error {
  readonly tool: string;
  readonly output: string;
  constructor(tool: string, message: string, output: string) {
    super(message);
    this.tool = tool;
    this.output = output;
  }
}

/** Left in the data directory while pg_rewind runs. */
const REWIND_MARKER = 'failover-agent.rewinding';

/** Files a rewind or a re-clone would overwrite with the source's, which are this server's own. */
const LOCAL_CONFIGURATION = [
  'postgresql.conf',
  'postgresql.auto.conf',
  'pg_hba.conf',
  'pg_ident.conf',
  'server.crt',
  'server.key',
];

/** Left in a finished re-clone before it takes the data directory's place. */
const RECLONE_COMPLETE = 'failover-agent.reclone-complete';

/** Written first in a drill copy's directory, holding the drill's id: only such a directory is removed. */
export const DRILL_COPY_MARKER = 'failover-agent.drill-copy';
/** Written last, once the copy is made and configured: what the copy took. */
const DRILL_COPY_DONE = 'failover-agent.drill-copied';
/** Inside the copy's directory: its data directory, and the log of its server. */
const DRILL_COPY_DATA = 'pgdata';
const DRILL_COPY_LOG = 'postgresql.log';
/** sockaddr_un's limit on a Unix socket's path. */
const MAX_SOCKET_PATH = 107;

/** A throwaway copy of the standby for an isolated drill, beside the data directory. */
export interface DrillCopy {
  /** Holds the marker, the copy's data directory (pgdata), its log and its socket. */
  directory: string;
  drillId: string;
  /** Set once pg_basebackup finished and the copy was configured. */
  copied?: { copiedAt: string; copySeconds: number; copyBytes: number };
}

/** What the standby tells about itself for a copy of it. */
export interface DrillSource {
  databaseBytes: number;
  listenAddresses: string;
  /** Its configuration file, when it is not inside the data directory (and so not copied). */
  configFile?: string;
}

/** A drill copy that cannot be made as things are: trying again does not help. */
export class DrillCopyRefused extends Error {}

/** A drill id as a directory name: what a path may hold, short enough for the socket beside it. */
export function drillCopyName(drillId: string): string {
  const safe = drillId.replace(/[^A-Za-z0-9_-]/g, '-');
  if (safe.length <= 40) return safe;
  return `${safe.slice(0, 28)}-${createHash('sha256').update(drillId).digest('hex').slice(0, 11)}`;
}

/** A server program's arguments and the environment it gets on top of the agent's. */
export interface Command {
  args: string[];
  env: Record<string, string>;
}

/** pg_rewind of `dataDir` from the running server `source` logs in to; its password in the environment. */
export function rewindCommand(dataDir: string, source: Login): Command {
  return {
    args: ['--target-pgdata', dataDir, '--source-server', source.conninfo, '--progress'],
    env: { PGPASSWORD: source.password },
  };
}

/**
 * Whether pg_rewind's output (with --progress) shows it reached the point where it modifies the
 * target: it prints "need to copy" just before (pg_rewind.c, perform_rewind).
 */
export function rewindStartedCopying(output: string): boolean {
  return /need to copy \d+ MB/.test(output);
}

/** pg_basebackup into `directory` from the server `source` logs in to; its password in the environment. */
export function basebackupCommand(directory: string, source: Login): Command {
  return {
    args: ['-D', directory, '-d', source.conninfo, '--wal-method=stream', '--checkpoint=fast'],
    env: { PGPASSWORD: source.password },
  };
}

export class LocalPostgres {
  readonly opts: LocalPostgresOptions;
  /** Rejoins changing the data directory now (rewind, re-clone, standby configuration). */
  private changing = 0;
  /** The split-brain guard's read-only line being written (readOnlyAtStart), if it is. */
  private readOnlyWrite: Promise<unknown> = Promise.resolve();
  constructor(opts: LocalPostgresOptions) {
    this.opts = opts;
  }

  /**
   * Runs one of the server programs; rejects with its output on a non-zero exit. `env` is added
   * to that program's environment only, never the agent's.
   */
  run(tool: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
    return new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(
        join(this.opts.binDir, tool),
        args,
        {
          timeout: opts.timeoutMs ?? 60_000,
          maxBuffer: 64 * 1024 * 1024,
          env: { ...process.env, LC_ALL: 'C', ...opts.env },
        },
        (err, stdout, stderr) => {
          if (err)
            reject(
              new ToolError(
                tool,
                `${tool} failed: ${(stderr || err.message).trim().slice(-800)}`,
                stdout + stderr,
              ),
            );
          else resolve({ stdout, stderr });
        },
      );
    });
  }

  /** Everything the agent needs to know about the server, read afresh. */
  async inspect(): Promise<LocalState> {
    const { dataDir } = this.opts;
    const standbySignal = await exists(join(dataDir, 'standby.signal'));
    try {
      await access(join(dataDir, 'PG_VERSION'), constants.R_OK);
      await access(join(dataDir, 'global', 'pg_control'), constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return {
        running: false,
        standbySignal,
        problem:
          code === 'EACCES'
            ? {
                reason: 'PermissionDenied',
                message: `cannot read ${dataDir}: run the agent as the database's user (postgres)`,
              }
            : {
                reason: 'WrongDataDirectory',
                message: `${dataDir} is not a PostgreSQL data directory (no PG_VERSION or global/pg_control): check --data-dir`,
              },
      };
    }
    let control: ControlData;
    try {
      control = parseControlData((await this.run('pg_controldata', ['-D', dataDir])).stdout);
    } catch (err) {
      return {
        running: false,
        standbySignal,
        problem: { reason: 'ToolFailed', message: (err as Error).message.slice(0, 1000) },
      };
    }
    const running = await this.isRunning();
    const state: LocalState = { control, running, standbySignal };
    if (running) {
      try {
        Object.assign(state, await this.sqlFacts());
      } catch {
        // Starting up, shutting down or refusing connections: the data directory still tells.
      }
    }
    if (!state.walEnd) Object.assign(state, await this.walEndOnDisk(control).catch(() => ({})));
    return state;
  }

  /** Whether a server runs on the data directory (pg_ctl status: its postmaster.pid is alive). */
  async isRunning(dataDir = this.opts.dataDir): Promise<boolean> {
    try {
      await this.run('pg_ctl', ['status', '-D', dataDir], { timeoutMs: 10_000 });
      return true;
    } catch {
      return false;
    }
  }

  private async sqlFacts(): Promise<Partial<LocalState>> {
    return this.withSql(async (c) => {
      const { rows } = await c.query<{
        in_recovery: boolean;
        end_lsn: string | null;
        timeline: number | null;
        host: string | null;
        port: number | null;
        status: string | null;
        started: string;
      }>(`SELECT pg_is_in_recovery() AS in_recovery, pg_postmaster_start_time()::text AS started,
                 CASE WHEN pg_is_in_recovery()
                      THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                      ELSE pg_current_wal_insert_lsn() END::text AS end_lsn,
                 CASE WHEN pg_is_in_recovery()
                      -- A standby's last checkpoint can be on an older timeline than what it replays.
                      THEN greatest(r.received_tli,
                                    (SELECT min_recovery_end_timeline FROM pg_control_recovery()),
                                    (SELECT timeline_id FROM pg_control_checkpoint()))
                      -- A primary's is older right after a promotion, until its first checkpoint.
                      ELSE ('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int
                 END AS timeline,
                 r.sender_host AS host, r.sender_port AS port, r.status
            FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true`);
      const row = rows[0];
      if (!row) return {};
      return {
        inRecovery: row.in_recovery,
        startedAt: row.started,
        ...(row.end_lsn ? { walEnd: row.end_lsn } : {}),
        ...(row.timeline ? { walTimeline: row.timeline } : {}),
        ...(row.in_recovery
          ? {
              receiver: {
                ...(row.host ? { host: row.host } : {}),
                ...(row.port ? { port: row.port } : {}),
                ...(row.status ? { status: row.status } : {}),
              },
            }
          : {}),
      };
    });
  }

  /**
   * Where the WAL on disk ends, for a stopped server: after a clean shutdown, its shutdown
   * checkpoint; after a crash, the last valid record pg_waldump finds from the last checkpoint on.
   */
  async walEndOnDisk(control: ControlData): Promise<Pick<LocalState, 'walEnd' | 'walTimeline'>> {
    const clean = control.state === 'shut down' || control.state === 'shut down in recovery';
    const out = await this.waldump(control.timeline, clean ? control.checkpointLsn : control.redoLsn);
    return { walEnd: out.end ?? control.checkpointLsn, walTimeline: control.timeline };
  }

  /**
   * Reads WAL records with pg_waldump from `start` (to `end`, or as far as there are any), and
   * returns where the last one ended and how many transactions committed on the way. pg_waldump
   * stops with an error at the end of the WAL; that is how the end is found, not a failure.
   */
  async waldump(
    timeline: number,
    start: string,
    end?: string,
  ): Promise<{ end?: string; commits: number; complete: boolean }> {
    const args = ['-p', join(this.opts.dataDir, 'pg_wal'), '-t', String(timeline), '-s', start];
    if (end) args.push('-e', end);
    let output: string;
    let complete = true;
    try {
      output = (await this.run('pg_waldump', args, { timeoutMs: 120_000 })).stdout;
    } catch (err) {
      if (!(err instanceof ToolError)) throw err;
      output = err.output;
      // Reaching the end of what is on disk before `end` is expected: anything else is not.
      // The end of what is on disk: not a failure. A file missing at the start is not the end.
      complete = !end || /invalid record length|invalid magic number/.test(err.output);
    }
    let commits = 0;
    let last: string | undefined;
    for (const line of output.split('\n')) {
      const m = /len \(rec\/tot\):\s*\d+\/\s*(\d+), .*lsn: ([0-9A-F]+\/[0-9A-F]+)/.exec(line);
      if (!m) continue;
      last = formatLsn(parseLsn(m[2] ?? '0/0') + BigInt(m[1] ?? 0));
      if (/rmgr: Transaction .*desc: COMMIT/.test(line)) commits++;
    }
    // Nothing read at all says nothing about how many transactions are there.
    return { ...(last ? { end: last } : {}), commits, complete: complete && last !== undefined };
  }

  /** A fast shutdown: sessions ended, a shutdown checkpoint written, standbys sent the last WAL. */
  async stop(): Promise<void> {
    if (!(await this.isRunning())) return;
    // Shorter than the operator's wait for a demotion, so a stop that hangs is seen as failed first.
    await this.run('pg_ctl', ['stop', '-D', this.opts.dataDir, '-m', 'fast', '-w', '-t', '60'], {
      timeoutMs: 70_000,
    });
  }

  /** Starts the server and waits until it accepts connections (or fails). */
  async start(): Promise<void> {
    if (await this.isRunning()) return;
    await this.run('pg_ctl', ['start', '-D', this.opts.dataDir, '-l', this.opts.logFile, '-w', '-t', '120'], {
      timeoutMs: 130_000,
    });
  }

  /**
   * Makes the next start a standby's of `conninfo`: standby.signal, and primary_conninfo in
   * postgresql.auto.conf. A read-only fence left there by the operator goes too: a standby takes
   * no writes, and once promoted the operator decides what it may take.
   */
  configureStandby(conninfo: string, dataDir = this.opts.dataDir): Promise<void> {
    return this.changingDirectory(() => this.configureStandbyNow(conninfo, dataDir));
  }

  private async configureStandbyNow(conninfo: string, dataDir: string): Promise<void> {
    const auto = join(dataDir, 'postgresql.auto.conf');
    const before = (await readFile(auto, 'utf8').catch(() => '')).split('\n');
    const kept = before.filter(
      (l) => !/^\s*(primary_conninfo|primary_slot_name|default_transaction_read_only)\s*=/.test(l),
    );
    // The configuration file's own quoting over libpq's: backslashes and quotes escaped again.
    const quoted = conninfo.replaceAll('\\', '\\\\').replaceAll("'", "''");
    const lines = [...kept.filter((l) => l.trim() !== ''), `primary_conninfo = '${quoted}'`];
    // standby.signal first: killed between the two, the next start is a standby's, never a
    // writable primary's with its fence already lifted.
    const signal = join(dataDir, 'standby.signal');
    await writeFile(signal, '', { mode: 0o600 });
    await syncFile(signal);
    await writeOwnerOnly(auto, `${lines.join('\n')}\n`);
  }

  /**
   * pg_rewind against the running primary `source` logs in to, keeping this server's own
   * configuration files, which pg_rewind would replace with the source's.
   */
  rewind(source: Login, standbyOf: string): Promise<string> {
    return this.changingDirectory(() => this.rewindNow(source, standbyOf));
  }

  private async rewindNow(source: Login, standbyOf: string): Promise<string> {
    // A pg_rewind cut short leaves a directory nobody should start or rewind again (its own WAL
    // after the fork is already overwritten): the marker says so until one finishes.
    const marker = join(this.opts.dataDir, REWIND_MARKER);
    await writeFile(marker, `${new Date().toISOString()}\n`, { mode: 0o600 });
    await syncFile(marker);
    failpoint('rewind:marked');
    const said = await this.keepingConfiguration(async () => {
      const { args, env } = rewindCommand(this.opts.dataDir, source);
      try {
        const { stdout, stderr } = await this.run('pg_rewind', args, { timeoutMs: 3_600_000, env });
        return `${stdout}${stderr}`.trim().split('\n').slice(-3).join('; ');
      } catch (err) {
        // pg_rewind writes nothing to the target before its point of no return, which --progress
        // announces ("need to copy N MB"): failed before it (the source refused or restarted, a
        // missing grant, a timeout on connect), the directory is as it was, and may be rewound again.
        if (err instanceof ToolError && !rewindStartedCopying(err.output)) await rm(marker, { force: true });
        throw err;
      }
    });
    // A standby's configuration before the marker goes: whatever starts this directory next (the
    // agent, a unit, a container's entrypoint) starts a standby, never a second primary.
    if (!/no rewind required/.test(said)) await this.configureStandby(standbyOf);
    await rm(marker, { force: true });
    return said;
  }

  /**
   * A fence owed while the server is down, made before it can start: `default_transaction_read_only
   * = on` in postgresql.auto.conf, the line the fence's own ALTER SYSTEM writes (and its unfence
   * resets), so the server comes up read-only instead of taking writes until the guard's next
   * round. Not for a directory that starts as a standby (standby.signal: a rejoin under way or
   * done). Whether it wrote.
   */
  readOnlyAtStart(): Promise<boolean> {
    // A rejoin changing the directory makes it a standby: nothing to add, and a read-modify-write
    // of its configuration beside it could write back what it replaced (primary_conninfo). One
    // that starts meanwhile waits for this short write (changingDirectory).
    if (this.changing > 0) return Promise.resolve(false);
    const write = this.readOnlyAtStartNow();
    this.readOnlyWrite = write.catch(() => undefined);
    return write;
  }

  private async changingDirectory<T>(work: () => Promise<T>): Promise<T> {
    this.changing++;
    try {
      await this.readOnlyWrite;
      return await work();
    } finally {
      this.changing--;
    }
  }

  private async readOnlyAtStartNow(): Promise<boolean> {
    const { dataDir } = this.opts;
    if (await exists(join(dataDir, 'standby.signal'))) return false;
    const auto = join(dataDir, 'postgresql.auto.conf');
    const before = await readFile(auto, 'utf8').catch(() => undefined);
    if (before === undefined) return false;
    const lines = before.split('\n');
    if (lines.some((l) => /^\s*default_transaction_read_only\s*=\s*'?on'?\s*$/.test(l))) return false;
    const kept = lines.filter((l) => l.trim() !== '' && !/^\s*default_transaction_read_only\s*=/.test(l));
    await writeOwnerOnly(auto, `${[...kept, "default_transaction_read_only = 'on'"].join('\n')}\n`);
    return true;
  }

  /** A pg_rewind started here and never finished. */
  rewindInterrupted(): Promise<boolean> {
    return exists(join(this.opts.dataDir, REWIND_MARKER));
  }

  /**
   * A fresh copy of the primary with pg_basebackup. The old data directory is moved aside, never
   * deleted: what it held may matter to someone. Returns where it went.
   *
   * The copy is synced and marked complete before the two renames that swap it in; an agent killed
   * between them finds no data directory, and `finishReclone` completes the swap.
   */
  reclone(source: Login, suffix: string, standbyOf: string): Promise<string> {
    return this.changingDirectory(() => this.recloneNow(source, suffix, standbyOf));
  }

  private async recloneNow(source: Login, suffix: string, standbyOf: string): Promise<string> {
    const { dataDir } = this.opts;
    const fresh = `${dataDir}.reclone`;
    const kept = `${dataDir}.before-${suffix}`;
    await rm(fresh, { recursive: true, force: true });
    const { args, env } = basebackupCommand(fresh, source);
    await this.run('pg_basebackup', args, { timeoutMs: 24 * 3_600_000, env });
    for (const file of LOCAL_CONFIGURATION) {
      if (await exists(join(dataDir, file))) await copyFile(join(dataDir, file), join(fresh, file));
    }
    // A standby before it is complete: a copy swapped in is never started as a second primary.
    await this.configureStandby(standbyOf, fresh);
    await writeFile(join(fresh, RECLONE_COMPLETE), `${kept}\n`, { mode: 0o600 });
    await syncFile(join(fresh, RECLONE_COMPLETE));
    failpoint('reclone:copied');
    if (!(await exists(kept))) await rename(dataDir, kept);
    failpoint('reclone:set-aside');
    await this.swapIn(fresh);
    return kept;
  }

  /**
   * Completes a re-clone cut short between its two renames: the data directory is gone, a complete
   * copy waits beside it. Returns where the old directory was kept, or undefined when there was
   * nothing to finish (a copy that never completed is left for the next re-clone to replace).
   */
  finishReclone(): Promise<string | undefined> {
    return this.changingDirectory(() => this.finishRecloneNow());
  }

  private async finishRecloneNow(): Promise<string | undefined> {
    const { dataDir } = this.opts;
    const fresh = `${dataDir}.reclone`;
    if (await exists(dataDir)) return undefined;
    const kept = (await readFile(join(fresh, RECLONE_COMPLETE), 'utf8').catch(() => undefined))?.trim();
    if (kept === undefined) return undefined;
    await this.swapIn(fresh);
    return kept;
  }

  private async swapIn(fresh: string): Promise<void> {
    await rename(fresh, this.opts.dataDir);
    await rm(join(this.opts.dataDir, RECLONE_COMPLETE), { force: true });
    await syncFile(dirname(this.opts.dataDir));
  }

  /** Where the copy for `drillId` goes: beside the data directory, on the same file system. */
  drillCopyDirectory(drillId: string): string {
    return `${this.opts.dataDir}.drill-${drillCopyName(drillId)}`;
  }

  /**
   * The drill copies beside the data directory: only directories holding the marker, which names
   * their drill. A directory without it is someone else's, and nothing here ever touches it.
   */
  async drillCopies(): Promise<DrillCopy[]> {
    const parent = dirname(this.opts.dataDir);
    const prefix = `${basename(this.opts.dataDir)}.drill-`;
    const names = await readdir(parent).catch(() => [] as string[]);
    const copies: DrillCopy[] = [];
    for (const name of names.filter((n) => n.startsWith(prefix)).sort()) {
      const directory = join(parent, name);
      const drillId = await readDrillMarker(directory);
      if (drillId === undefined) continue;
      const done = await readFile(join(directory, DRILL_COPY_DONE), 'utf8').catch(() => undefined);
      let copied: DrillCopy['copied'];
      try {
        copied = done ? (JSON.parse(done) as DrillCopy['copied']) : undefined;
      } catch {
        copied = undefined;
      }
      copies.push({ directory, drillId, ...(copied ? { copied } : {}) });
    }
    return copies;
  }

  /** What the standby says about itself that a copy of it needs: its size and how it is reached. */
  async drillSource(): Promise<DrillSource> {
    return this.withSql(async (c) => {
      const { rows } = await c.query<{
        bytes: string;
        listen: string;
        config: string;
        data: string;
      }>(`SELECT (SELECT sum(pg_database_size(oid)) FROM pg_database)::text AS bytes,
                 current_setting('listen_addresses') AS listen,
                 current_setting('config_file') AS config,
                 current_setting('data_directory') AS data`);
      const row = rows[0];
      if (!row) throw new Error('the standby told nothing about itself');
      return {
        databaseBytes: Number(row.bytes),
        listenAddresses: row.listen,
        // Debian keeps it in /etc, outside the data directory: the copy then reads the same file.
        ...(resolve(dirname(row.config)) !== resolve(row.data) ? { configFile: row.config } : {}),
      };
    });
  }

  /** Free bytes on the file system the copies go to. */
  async drillSpace(): Promise<number> {
    const s = await statfs(dirname(this.opts.dataDir));
    return s.bavail * s.bsize;
  }

  /**
   * pg_basebackup of the local standby (`source`: its socket, as the replication role) into a new
   * copy for `drillId`. The marker goes first, so whatever happens next, the directory is known
   * to be a drill copy (and removable); the copy is made a standby without an upstream, its
   * completion recorded last. A copy a killed agent left half done is started again.
   */
  async copyForDrill(drillId: string, source: Login, now: () => Date): Promise<DrillCopy> {
    const directory = this.drillCopyDirectory(drillId);
    this.refuseDataDirectory(directory);
    const marked = await readDrillMarker(directory);
    if (marked !== undefined && marked !== drillId)
      throw new Error(`${directory} is the copy of drill ${marked}, not of ${drillId}`);
    if (marked === undefined) {
      if (await exists(directory))
        throw new Error(
          `${directory} exists and is not a drill copy (no ${DRILL_COPY_MARKER}): move it away, the agent never deletes it`,
        );
      await mkdir(directory, { mode: 0o700 });
      await writeFile(join(directory, DRILL_COPY_MARKER), `${drillId}\n`, { mode: 0o600 });
      await syncFile(join(directory, DRILL_COPY_MARKER));
      await syncFile(dirname(directory));
    }
    await this.stopDrillCopier(directory);
    const pgdata = join(directory, DRILL_COPY_DATA);
    await rm(pgdata, { recursive: true, force: true });
    await rm(join(directory, DRILL_COPY_DONE), { force: true });
    const started = performance.now();
    const { args, env } = basebackupCommand(pgdata, source);
    const copying = this.run('pg_basebackup', args, { timeoutMs: 24 * 3_600_000, env });
    failpoint('drill-copy:copying');
    await copying;
    const copySeconds = (performance.now() - started) / 1000;
    // Its own markers only: a rewind or re-clone marker copied from the standby means nothing here.
    for (const file of [REWIND_MARKER, RECLONE_COMPLETE]) await rm(join(pgdata, file), { force: true });
    // A standby with nothing to stream from: it replays what it copied, then waits to be promoted.
    const auto = join(pgdata, 'postgresql.auto.conf');
    const lines = (await readFile(auto, 'utf8').catch(() => ''))
      .split('\n')
      .filter((l) => !/^\s*(primary_conninfo|primary_slot_name)\s*=/.test(l) && l.trim() !== '');
    await writeFile(auto, `${lines.join('\n')}\n`, { mode: 0o600 });
    await writeFile(join(pgdata, 'standby.signal'), '', { mode: 0o600 });
    const copied = { copiedAt: now().toISOString(), copySeconds, copyBytes: await directoryBytes(pgdata) };
    await writeFile(join(directory, DRILL_COPY_DONE), `${JSON.stringify(copied)}\n`, { mode: 0o600 });
    await syncFile(join(directory, DRILL_COPY_DONE));
    return { directory, drillId, copied };
  }

  /** Whether the copy's server runs, and whether it was promoted (its control file says so). */
  async drillCopyServer(copy: DrillCopy): Promise<{ running: boolean; promoted: boolean }> {
    const pgdata = join(copy.directory, DRILL_COPY_DATA);
    const running = await this.isRunning(pgdata);
    const control = parseControlData((await this.run('pg_controldata', ['-D', pgdata])).stdout);
    return { running, promoted: control.state === 'in production' || control.state === 'shut down' };
  }

  /**
   * Starts the copy on `port`, on the standby's addresses and in its own socket directory (the
   * copy's), with nothing that reaches outside it: no archiving, no restore_command, no upstream,
   * no walsenders, no synchronous standbys to wait for. Hot standby is off: with no walsenders it
   * could not start (a hot standby needs as many as the primary had), and nobody should read it
   * before it is promoted.
   */
  async startDrillCopy(copy: DrillCopy, port: number, source: DrillSource): Promise<void> {
    const pgdata = join(copy.directory, DRILL_COPY_DATA);
    this.refuseDataDirectory(pgdata);
    if (await this.isRunning(pgdata)) return;
    const socket = join(copy.directory, `.s.PGSQL.${port}`);
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH)
      throw new DrillCopyRefused(
        `the copy's socket ${socket} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter --data-dir path`,
      );
    const settings: Record<string, string> = {
      ...(source.configFile ? { config_file: source.configFile } : {}),
      // Over whatever the configuration says: never the standby's own data directory.
      data_directory: pgdata,
      listen_addresses: source.listenAddresses,
      unix_socket_directories: copy.directory,
      cluster_name: `drill-${drillCopyName(copy.drillId)}`,
      external_pid_file: '',
      logging_collector: 'off',
      hot_standby: 'off',
      max_wal_senders: '0',
      archive_mode: 'off',
      archive_command: '',
      restore_command: '',
      primary_conninfo: '',
      primary_slot_name: '',
      recovery_min_apply_delay: '0',
      synchronous_standby_names: '',
      default_transaction_read_only: 'off',
      // Nothing of production's outside work runs on the copy: no subscription's apply worker
      // taking over its slot on the publisher, no preloaded job runner (pg_cron) running jobs.
      max_logical_replication_workers: '0',
      shared_preload_libraries: '',
    };
    const shell = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`;
    const options = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${shell(`${k}=${v}`)}`)];
    const log = join(copy.directory, DRILL_COPY_LOG);
    try {
      await this.run(
        'pg_ctl',
        ['start', '-D', pgdata, '-l', log, '-w', '-t', '120', '-o', options.join(' ')],
        {
          timeoutMs: 130_000,
        },
      );
    } catch (err) {
      const tail = (await readFile(log, 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => /FATAL|ERROR|PANIC/.test(l))
        .slice(-3)
        .join('; ');
      throw new ToolError('pg_ctl', `${(err as Error).message}${tail ? `: ${tail}` : ''} (log: ${log})`, '');
    }
  }

  /**
   * Promotes the started copy and waits until it takes a write: the seconds from the request
   * until then (pg_ctl promote: the copy takes no connections before, hot standby being off).
   */
  async promoteDrillCopy(copy: DrillCopy, port: number): Promise<number> {
    const pgdata = join(copy.directory, DRILL_COPY_DATA);
    this.refuseDataDirectory(pgdata);
    const started = performance.now();
    await this.run('pg_ctl', ['promote', '-D', pgdata, '-w', '-t', '60'], { timeoutMs: 70_000 });
    for (;;) {
      try {
        await this.drillCopyWrite(copy, port);
        return (performance.now() - started) / 1000;
      } catch (err) {
        if (performance.now() - started > 60_000)
          throw new Error(`the promoted copy took no write within 60 s: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /**
   * A write on the copy (a transaction id, committed), proving it is a primary; and the newest
   * heartbeat in `database`, which says how fresh the standby's data was when it was copied.
   */
  async drillCopyWrite(
    copy: DrillCopy,
    port: number,
    database = 'postgres',
  ): Promise<{ heartbeatAt?: Date }> {
    return this.withSql(
      async (c) => {
        const { rows } = await c.query<{ recovery: boolean }>('SELECT pg_is_in_recovery() AS recovery');
        if (rows[0]?.recovery !== false) throw new Error('the copy is still in recovery');
        await c.query('SELECT pg_current_xact_id()');
        const present = await c.query<{ present: boolean }>(
          `SELECT to_regclass('${HEARTBEAT_TABLE}') IS NOT NULL AS present`,
        );
        if (!present.rows[0]?.present) return {};
        const hb = await c.query<{ at: Date | null }>(`SELECT max(written_at) AS at FROM ${HEARTBEAT_TABLE}`);
        const at = hb.rows[0]?.at;
        return at ? { heartbeatAt: at } : {};
      },
      { socketDir: copy.directory, port, database },
    );
  }

  /**
   * Stops the copy's server (immediate: nothing in it is kept) and deletes its directory; only a
   * directory holding the marker, and never the data directory or its server.
   */
  async removeDrillCopy(copy: Pick<DrillCopy, 'directory'>): Promise<void> {
    const { directory } = copy;
    this.refuseDataDirectory(directory);
    if ((await readDrillMarker(directory)) === undefined)
      throw new Error(`${directory} holds no ${DRILL_COPY_MARKER}: not a drill copy, left alone`);
    await this.stopDrillCopier(directory);
    const pgdata = join(directory, DRILL_COPY_DATA);
    if (await this.isRunning(pgdata)) {
      const pidOf = async (dir: string) =>
        (await readFile(join(dir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]?.trim();
      const own = await pidOf(this.opts.dataDir);
      if (own && own === (await pidOf(pgdata)))
        throw new Error(`${pgdata}/postmaster.pid names the standby's own server (${own}): left alone`);
      await this.run('pg_ctl', ['stop', '-D', pgdata, '-m', 'immediate', '-w', '-t', '60'], {
        timeoutMs: 70_000,
      });
    }
    await rm(directory, { recursive: true, force: true });
  }

  /** Stops the pg_basebackup filling the copy in `directory`, if one runs; the copy stays, to be removed. */
  async abandonDrillCopy(directory: string): Promise<void> {
    if ((await readDrillMarker(directory)) !== undefined) await this.stopDrillCopier(directory);
  }

  /** A pg_basebackup filling the copy (a killed agent's, or one abandoned): stopped, and waited for. */
  private async stopDrillCopier(directory: string): Promise<void> {
    // Found by what they run, not by a pid: pg_basebackup forks a WAL streamer, and a killed
    // agent leaves both running (holding the output pipes a new wait would hang on).
    const target = join(directory, DRILL_COPY_DATA);
    const copiers = async () => {
      const found: number[] = [];
      for (const pid of await readdir('/proc').catch(() => [] as string[])) {
        if (!/^\d+$/.test(pid)) continue;
        const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
        if (basename(argv[0] ?? '') === 'pg_basebackup' && argv.includes(target)) found.push(Number(pid));
      }
      return found;
    };
    const signal = (pids: number[], sig: NodeJS.Signals) => {
      for (const pid of pids) {
        try {
          process.kill(pid, sig);
        } catch {
          // gone already
        }
      }
    };
    let left = await copiers();
    if (left.length === 0) return;
    signal(left, 'SIGTERM');
    for (let i = 0; i < 100 && left.length > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      left = await copiers();
    }
    signal(left, 'SIGKILL');
  }

  private refuseDataDirectory(path: string): void {
    const own = resolve(this.opts.dataDir);
    const p = resolve(path);
    if (p === own || p.startsWith(`${own}/`) || own.startsWith(`${p}/`))
      throw new Error(`${path} is (in) the data directory ${own}: a drill copy never touches it`);
  }

  private async keepingConfiguration<T>(work: () => Promise<T>): Promise<T> {
    const saved = new Map<string, Buffer>();
    for (const file of LOCAL_CONFIGURATION) {
      const content = await readFile(join(this.opts.dataDir, file)).catch(() => undefined);
      if (content) saved.set(file, content);
    }
    try {
      return await work();
    } finally {
      for (const [file, content] of saved)
        await writeFile(join(this.opts.dataDir, file), content, { mode: 0o600 });
    }
  }

  private async withSql<T>(
    use: (client: pg.Client) => Promise<T>,
    at: { socketDir: string; port: number; database?: string } = this.opts,
  ): Promise<T> {
    const client = new pg.Client({
      host: at.socketDir,
      port: at.port,
      user: this.opts.user,
      database: at.database ?? 'postgres',
      connectionTimeoutMillis: 5_000,
      query_timeout: 10_000,
      application_name: 'failover-agent',
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await use(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Appends one line to the agent's notes in the server log directory, for people reading later. */
  async note(line: string): Promise<void> {
    await appendFile(this.opts.logFile, `${new Date().toISOString()} failover-agent: ${line}\n`).catch(
      () => undefined,
    );
  }
}

export function parseControlData(text: string): ControlData {
  const field = (name: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}:`));
    if (line === undefined) throw new Error(`pg_controldata printed no "${name}"`);
    return line.slice(name.length + 1).trim();
  };
  return {
    systemIdentifier: field('Database system identifier'),
    state: field('Database cluster state'),
    checkpointLsn: field('Latest checkpoint location'),
    redoLsn: field("Latest checkpoint's REDO location"),
    timeline: Number(field("Latest checkpoint's TimeLineID")),
    walLogHints: field('wal_log_hints setting') === 'on',
    checksums: field('Data page checksum version') !== '0',
  };
}

/** Parses a timeline history file: `<timeline>\t<switch LSN>\t<reason>` per line. */
export function parseTimelineHistory(content: string): TimelineSwitch[] {
  return content
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .flatMap((l) => {
      const [tli, lsn] = l.split(/\s+/);
      return tli && lsn && /^\d+$/.test(tli) ? [{ timeline: Number(tli), switchLsn: lsn }] : [];
    });
}

/** fsync of a file, or of a directory (its entries: a rename made durable). */
/**
 * Replaces a file's content, readable by its owner only whatever mode it had (a data directory
 * made with group access has 0640 files): primary_conninfo holds the replication password.
 * Emptied, then narrowed, then written and synced: at no moment can the group read the password.
 */
async function writeOwnerOnly(path: string, content: string): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, (await stat(path)).isDirectory() ? 'r' : 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function readDrillMarker(directory: string): Promise<string | undefined> {
  const text = await readFile(join(directory, DRILL_COPY_MARKER), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : text.trim();
}

/** The bytes of the regular files under `directory`, as du --apparent-size counts them. */
async function directoryBytes(directory: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(directory, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    total += (await stat(join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
