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
import {
  access,
  appendFile,
  constants,
  copyFile,
  open,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { formatLsn, parseLsn } from '../providers/database/lsn.ts';
import { failpoint } from '../runtime/failpoints.ts';

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

export class LocalPostgres {
  readonly opts: LocalPostgresOptions;
  constructor(opts: LocalPostgresOptions) {
    this.opts = opts;
  }

  /** Runs one of the server programs; rejects with its output on a non-zero exit. */
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

  private async isRunning(): Promise<boolean> {
    try {
      await this.run('pg_ctl', ['status', '-D', this.opts.dataDir], { timeoutMs: 10_000 });
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
  async configureStandby(conninfo: string, dataDir = this.opts.dataDir): Promise<void> {
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
    await writeFile(auto, `${lines.join('\n')}\n`, { mode: 0o600 });
    await syncFile(auto);
  }

  /**
   * pg_rewind against the running primary at `source` (a libpq connection string), keeping
   * this server's own configuration files, which pg_rewind would replace with the source's.
   */
  async rewind(source: string, standbyOf: string): Promise<string> {
    // A pg_rewind cut short leaves a directory nobody should start or rewind again (its own WAL
    // after the fork is already overwritten): the marker says so until one finishes.
    const marker = join(this.opts.dataDir, REWIND_MARKER);
    await writeFile(marker, `${new Date().toISOString()}\n`, { mode: 0o600 });
    await syncFile(marker);
    failpoint('rewind:marked');
    const said = await this.keepingConfiguration(async () => {
      const { stdout, stderr } = await this.run(
        'pg_rewind',
        ['--target-pgdata', this.opts.dataDir, '--source-server', source, '--progress'],
        { timeoutMs: 3_600_000 },
      );
      return `${stdout}${stderr}`.trim().split('\n').slice(-3).join('; ');
    });
    // A standby's configuration before the marker goes: whatever starts this directory next (the
    // agent, a unit, a container's entrypoint) starts a standby, never a second primary.
    if (!/no rewind required/.test(said)) await this.configureStandby(standbyOf);
    await rm(marker, { force: true });
    return said;
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
  async reclone(source: string, suffix: string, standbyOf: string): Promise<string> {
    const { dataDir } = this.opts;
    const fresh = `${dataDir}.reclone`;
    const kept = `${dataDir}.before-${suffix}`;
    await rm(fresh, { recursive: true, force: true });
    await this.run('pg_basebackup', ['-D', fresh, '-d', source, '--wal-method=stream', '--checkpoint=fast'], {
      timeoutMs: 24 * 3_600_000,
    });
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
  async finishReclone(): Promise<string | undefined> {
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

  private async withSql<T>(use: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      host: this.opts.socketDir,
      port: this.opts.port,
      user: this.opts.user,
      database: 'postgres',
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
async function syncFile(path: string): Promise<void> {
  const handle = await open(path, (await stat(path)).isDirectory() ? 'r' : 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
