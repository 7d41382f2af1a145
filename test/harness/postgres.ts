/**
 * A real PostgreSQL primary and a streaming standby on free loopback ports, for tests and the
 * local environment: initdb, a physical replication slot, pg_basebackup -R, scram-sha-256 over
 * TCP. Both servers run in the foreground as children with a parent-death signal (never pg_ctl,
 * which daemonizes), so a test run that dies takes them with it.
 *
 * Node names are the roles the servers start in: after a promotion the node called 'standby' is
 * the primary, and the node called 'primary' is whatever the test made of it.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import type { DatabaseConnection } from '../../operator/src/providers/database/port.ts';
import { assertPortFree, freePort } from './ports.ts';
import {
  HarnessError,
  isAlive,
  logTail,
  ManagedProcess,
  type StartOptions,
  sweepStaleTempDirs,
} from './processes.ts';
import { waitFor } from './wait.ts';

const TEMP_PREFIX = 'failover-pg-';
/** The oldest major version with everything used here (pg_get_wal_replay_pause_state, pg_promote). */
const MIN_MAJOR_VERSION = 14;
/** Unix socket paths are limited to 107 bytes by sockaddr_un. */
const MAX_SOCKET_PATH = 107;

export type PostgresNodeName = 'primary' | 'standby';

export interface PostgresPairOptions {
  /** A short name for messages, process titles and the temp directory, such as "region-a". */
  name?: string;
  /** Where to keep data and logs. Default: a fresh temp directory, removed on stop. */
  dir?: string;
  /** Fixed ports; free ones are chosen when omitted. */
  ports?: { primary?: number; standby?: number };
  /**
   * Loopback addresses to listen on, 127.0.0.1 by default. Two addresses with one port make the
   * pair look like two hosts, so a DNS A record can move clients from one to the other.
   */
  hosts?: { primary?: string; standby?: string };
  /**
   * Servers to run inside a network namespace (see netns.ts), listening on an address there
   * given in `hosts`: the namespace's name, and the network its clients come from, which
   * pg_hba.conf lets in beside loopback.
   */
  namespaces?: Partial<Record<PostgresNodeName, ServerNamespace>>;
  /** Networks beside loopback that pg_hba.conf lets in (a cluster's pods). */
  clientNetworks?: string[];
  /** More addresses a server listens on (region B reachable from region A's namespace). */
  alsoListen?: Partial<Record<PostgresNodeName, string>>;
  /** The application database, created on the primary. Default "app". */
  database?: string;
  /** The operator's login role (a superuser here). Default "failover". */
  user?: string;
  /** Its password. Default: random. */
  password?: string;
  /** application_name the standby streams as, as pg_stat_replication shows it. Default "standby". */
  standbyName?: string;
  /**
   * Serve TLS with a self-signed certificate for 127.0.0.1 and refuse TCP clients without it.
   * `caPath` is the certificate to trust. Default false: plain TCP.
   */
  tls?: boolean;
  /** Extra postgresql.conf settings for both servers, written verbatim (quote strings yourself). */
  settings?: Record<string, string | number>;
  /** How long a server may take to accept connections. */
  readyTimeoutMs?: number;
  /** PostgreSQL's bin directory. Default: $FAILOVER_PG_BIN, `pg_config --bindir`, /usr/lib/postgresql/<v>/bin. */
  binDir?: string;
}

export interface ServerNamespace {
  /** As `ip netns list` shows it. */
  name: string;
  /** CIDR of the clients' side, e.g. the host's end of the link. */
  clientNetwork: string;
}

export interface WriteLoadOptions {
  /** Inserts per second, each its own transaction. */
  ratePerSecond: number;
  /** Where to write. Default: the node called 'primary'. */
  node?: PostgresNodeName;
  /** Payload size per row, so WAL (and lag, when replay is paused) grows visibly. Default 200. */
  rowBytes?: number;
}

export interface WriteLoadResult {
  /** Inserts that committed (the server acknowledged the COMMIT). */
  committed: number;
  /** Inserts that failed, e.g. while the target was down or read-only. */
  failed: number;
  /** The id of the last committed row, 0 when none did. Ids only grow. */
  lastId: number;
  /** The last failure's message, when there was one. */
  lastError?: string;
}

export interface WriteLoad {
  /** Counters so far; the load keeps running. */
  progress(): WriteLoadResult;
  /** Stops the load after the insert in flight and returns the final counters. */
  stop(): Promise<WriteLoadResult>;
}

/** Finds PostgreSQL's server binaries (initdb, postgres, pg_basebackup) and checks the version. */
export function postgresBinDir(explicit?: string): string {
  const candidates = [explicit, process.env.FAILOVER_PG_BIN, pgConfigBinDir(), '/usr/lib/postgresql/15/bin'];
  const installed = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql')
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => `/usr/lib/postgresql/${v}/bin`)
    : [];
  const bin = [...candidates, ...installed].find(
    (dir) => dir && ['initdb', 'postgres', 'pg_basebackup'].every((b) => existsSync(join(dir, b))),
  );
  if (!bin) {
    throw new HarnessError(
      'find PostgreSQL',
      `no directory with initdb, postgres and pg_basebackup: install the PostgreSQL ${MIN_MAJOR_VERSION}+ ` +
        'server (the Debian package "postgresql") or set FAILOVER_PG_BIN to its bin directory',
    );
  }
  const version = execFileSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' });
  const major = Number(/(\d+)(?:\.\d+)?/.exec(version)?.[1]);
  if (!(major >= MIN_MAJOR_VERSION)) {
    throw new HarnessError(
      'find PostgreSQL',
      `${bin} is ${version.trim()}; version ${MIN_MAJOR_VERSION} or newer is needed`,
    );
  }
  return bin;
}

function pgConfigBinDir(): string | undefined {
  try {
    return execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

/** The system user servers run as: initdb and postgres refuse root, so root hands over to "postgres". */
interface ServerIdentity {
  runAs?: string;
  uid?: number;
  gid?: number;
}

function serverIdentity(): ServerIdentity {
  if (process.getuid?.() !== 0) return {};
  try {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    return { runAs: 'postgres', uid: id('-u'), gid: id('-g') };
  } catch {
    throw new HarnessError(
      'find PostgreSQL',
      'running as root, and initdb refuses root, but there is no "postgres" system user to run it as: ' +
        'install the PostgreSQL server package (it creates the user) or run the tests as a normal user',
    );
  }
}

/** One PostgreSQL server (postmaster and its backends) in the pair. */
export class PostgresServer {
  readonly name: PostgresNodeName;
  /** The pair's name and this node's, for messages: "region-a primary". */
  readonly label: string;
  /** The loopback address it listens on. */
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly logPath: string;
  readonly socketDir: string;
  /** The network namespace it runs in; undefined: this host's. */
  readonly namespace: ServerNamespace | undefined;
  private process?: ManagedProcess;
  private frozen: number[] = [];
  private readonly bin: string;
  private readonly identity: ServerIdentity;
  private readonly readyTimeoutMs: number;

  constructor(init: {
    name: PostgresNodeName;
    label: string;
    host: string;
    port: number;
    dir: string;
    socketDir: string;
    bin: string;
    identity: ServerIdentity;
    readyTimeoutMs: number;
    namespace?: ServerNamespace;
  }) {
    this.name = init.name;
    this.namespace = init.namespace;
    this.label = init.label;
    this.host = init.host;
    this.port = init.port;
    this.dataDir = join(init.dir, init.name);
    this.logPath = join(init.dir, `${init.name}.log`);
    this.socketDir = init.socketDir;
    this.bin = init.bin;
    this.identity = init.identity;
    this.readyTimeoutMs = init.readyTimeoutMs;
  }

  /** Whether the postmaster runs (it may be frozen), started by the harness or by an agent's pg_ctl. */
  get running(): boolean {
    return (this.process?.running ?? false) || this.externalPid() !== undefined;
  }

  /** The postmaster's pid while it runs. */
  get pid(): number | undefined {
    return this.process?.running ? this.process.pid : this.externalPid();
  }

  /**
   * A postmaster the harness did not start (a database agent restarted it with pg_ctl), from
   * postmaster.pid in the data directory, while that process lives.
   */
  private externalPid(): number | undefined {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (!(pid > 0) || isGone(pid)) return undefined;
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres') ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stops a postmaster the harness did not start: `signal`, then SIGKILL for it and its backends. */
  private async stopExternal(signal: NodeJS.Signals): Promise<void> {
    const pid = this.externalPid();
    if (!pid) return;
    const backends = childPids(pid);
    signalQuietly(pid, signal);
    try {
      await waitFor(() => isGone(pid), {
        description: `${this.label} to exit`,
        timeoutMs: 15_000,
        intervalMs: 50,
      });
    } catch {
      for (const p of [pid, ...backends]) signalQuietly(p, 'SIGKILL');
    }
    await this.reapBackends(backends);
  }

  /** Starts the postmaster on its data directory and resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.running) return;
    const step = `start postgres (${this.label})`;
    // Nothing on this host can bind a namespace's address to check it; a fresh namespace has it free.
    if (!this.namespace) await assertPortFree(this.port, step, this.host);
    const proc = ManagedProcess.start({
      name: `postgres (${this.label})`,
      ...this.launch(join(this.bin, 'postgres'), ['-D', this.dataDir]),
      logPath: this.logPath,
      env: serverEnv(),
    });
    this.process = proc;
    let outcome: 'ready' | 'exited';
    try {
      // An exit ends the wait at once (waitFor would retry a thrown error until its deadline).
      outcome = await waitFor(
        async () => {
          if (!proc.running) return 'exited' as const;
          await this.query('SELECT 1', [], 'postgres');
          return 'ready' as const;
        },
        {
          description: `${proc.name} to accept connections`,
          timeoutMs: this.readyTimeoutMs,
          intervalMs: 100,
        },
      );
    } catch (err) {
      await this.kill();
      throw new HarnessError(
        step,
        `never accepted connections: ${(err as Error).message}\n${logTail(this.logPath)}`,
        this.logPath,
      );
    }
    if (outcome === 'exited') {
      await proc.stop();
      throw new HarnessError(
        step,
        `exited early with ${proc.exitCode}:\n${logTail(this.logPath)}`,
        this.logPath,
      );
    }
  }

  /**
   * How to run `command`: as the server user, inside the namespace when there is one. Entering
   * a namespace needs root, so the server user is taken on inside it, by a second setpriv that
   * also renews the parent-death signal (changing user clears it). ip and setpriv exec in
   * turn, so the pid the harness holds is the postmaster's.
   */
  private launch(command: string, args: string[]): Pick<StartOptions, 'command' | 'args' | 'runAs'> {
    if (!this.namespace) return { command, args, runAs: this.identity.runAs };
    const { runAs } = this.identity;
    const identity = runAs ? [`--reuid=${runAs}`, `--regid=${runAs}`, '--init-groups'] : [];
    return {
      command: 'ip',
      args: [
        'netns',
        'exec',
        this.namespace.name,
        'setpriv',
        '--pdeathsig',
        'SIGKILL',
        ...identity,
        '--',
        command,
        ...args,
      ],
    };
  }

  /** A fast shutdown (SIGINT): open sessions are ended, a shutdown checkpoint is written. */
  async stop(): Promise<void> {
    this.thaw();
    // The postmaster exits only after its backends have, so there is nothing left to reap.
    await this.process?.stop('SIGINT', 15_000);
    await this.stopExternal('SIGINT');
  }

  /**
   * Kills the postmaster and every backend with SIGKILL at once, as a crashed host would: no
   * shutdown checkpoint, sessions cut mid-flight, the port closed. `start` runs crash recovery.
   */
  async kill(): Promise<void> {
    const proc = this.process;
    if (!proc?.running || !proc.pid) {
      await proc?.stop();
      const external = this.externalPid();
      if (external) {
        signalQuietly(external, 'SIGSTOP');
        const backends = childPids(external);
        for (const pid of backends) signalQuietly(pid, 'SIGKILL');
        signalQuietly(external, 'SIGKILL');
        this.frozen = [];
        await this.reapBackends([external, ...backends]);
      }
      return;
    }
    // Stopped first, so the postmaster cannot fork a backend between listing and killing.
    proc.signal('SIGSTOP');
    const backends = childPids(proc.pid);
    for (const pid of backends) signalQuietly(pid, 'SIGKILL');
    await proc.kill();
    this.frozen = [];
    await this.reapBackends(backends);
  }

  /**
   * Freezes the postmaster and its backends (SIGSTOP): the port stays open and the kernel still
   * accepts connections, but nothing answers, so clients time out instead of being refused.
   */
  freeze(): void {
    const pid = this.pid;
    if (!pid || this.frozen.length > 0) return;
    signalQuietly(pid, 'SIGSTOP');
    this.frozen = [pid, ...childPids(pid)];
    for (const child of this.frozen.slice(1)) signalQuietly(child, 'SIGSTOP');
  }

  /** Undoes `freeze`. */
  thaw(): void {
    for (const pid of this.frozen.slice().reverse()) signalQuietly(pid, 'SIGCONT');
    this.frozen = [];
  }

  /** A query as the bootstrap superuser over the Unix socket (trusted; only this host's root and postgres reach it). */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    params: unknown[] = [],
    database = 'postgres',
  ): Promise<R[]> {
    const client = new pg.Client({
      host: this.socketDir,
      port: this.port,
      user: 'postgres',
      database,
      connectionTimeoutMillis: 5_000,
      query_timeout: 30_000,
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<R>(text, params)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Waits until the backends of a killed postmaster are gone: they hold its shared memory. */
  private async reapBackends(backends: number[]): Promise<void> {
    await waitFor(() => backends.every(isGone), {
      description: `the backends of ${this.label} to exit`,
      timeoutMs: 15_000,
      intervalMs: 50,
    });
  }
}

/**
 * A primary and a streaming standby. Start with `startPostgresPair`; `stop` ends both servers and
 * removes the temp directory whatever state the tests left them in.
 */
export class PostgresPair {
  readonly name: string;
  readonly dir: string;
  readonly primary: PostgresServer;
  readonly standby: PostgresServer;
  /** The application database. */
  readonly database: string;
  /** The operator's role and password (a superuser). */
  readonly user: string;
  readonly password: string;
  /** application_name and replication slot name of the standby. */
  readonly standbyName: string;
  /** Whether TCP clients must use TLS; see PostgresPairOptions.tls. */
  readonly tls: boolean;
  /** With `tls`: the self-signed server certificate, which clients trust as their CA. */
  readonly caPath: string | undefined;
  /** How long `start` took, for reports. */
  startupMs = 0;
  private readonly ownsDir: boolean;
  private readonly bin: string;
  private readonly identity: ServerIdentity;
  private readonly replicationPassword = randomBytes(16).toString('hex');
  /** The role standbys stream as; it may also run pg_rewind against a primary (see createRolesAndDatabase). */
  get replication(): { user: string; password: string } {
    return { user: 'replicator', password: this.replicationPassword };
  }
  private readonly superuserPassword = randomBytes(16).toString('hex');
  private readonly settings: Record<string, string | number>;
  private readonly loads = new Set<RunningWriteLoad>();
  private readonly alsoListen: Partial<Record<PostgresNodeName, string>>;
  private readonly clientNetworks: string[];

  private constructor(init: {
    name: string;
    dir: string;
    ownsDir: boolean;
    bin: string;
    identity: ServerIdentity;
    ports: { primary: number; standby: number };
    opts: PostgresPairOptions;
  }) {
    const { opts } = init;
    this.name = init.name;
    this.dir = init.dir;
    this.ownsDir = init.ownsDir;
    this.bin = init.bin;
    this.identity = init.identity;
    this.database = opts.database ?? 'app';
    this.user = opts.user ?? 'failover';
    this.password = opts.password ?? randomBytes(16).toString('hex');
    this.standbyName = opts.standbyName ?? 'standby';
    this.settings = opts.settings ?? {};
    this.alsoListen = opts.alsoListen ?? {};
    this.clientNetworks = opts.clientNetworks ?? [];
    this.tls = opts.tls ?? false;
    this.caPath = this.tls ? join(init.dir, 'ca.crt') : undefined;
    const common = {
      dir: init.dir,
      bin: init.bin,
      identity: init.identity,
      readyTimeoutMs: opts.readyTimeoutMs ?? 60_000,
    };
    this.primary = new PostgresServer({
      ...common,
      name: 'primary',
      label: `${init.name} primary`,
      // One socket directory per server: with two addresses the servers may share a port number.
      socketDir: join(init.dir, 'sockets', 'p'),
      host: init.opts.hosts?.primary ?? '127.0.0.1',
      port: init.ports.primary,
      ...(opts.namespaces?.primary ? { namespace: opts.namespaces.primary } : {}),
    });
    this.standby = new PostgresServer({
      ...common,
      name: 'standby',
      label: `${init.name} standby`,
      socketDir: join(init.dir, 'sockets', 's'),
      host: init.opts.hosts?.standby ?? '127.0.0.1',
      port: init.ports.standby,
      ...(opts.namespaces?.standby ? { namespace: opts.namespaces.standby } : {}),
    });
  }

  /** Creates both clusters and resolves once the standby streams from the primary. */
  static async start(opts: PostgresPairOptions = {}): Promise<PostgresPair> {
    const t0 = performance.now();
    const bin = postgresBinDir(opts.binDir);
    const identity = serverIdentity();
    sweepStaleTempDirs(TEMP_PREFIX);
    const name = opts.name ?? 'pg';
    const ownsDir = opts.dir === undefined;
    const dir = resolve(
      opts.dir ?? join(tmpdir(), `${TEMP_PREFIX}${process.pid}-${name}-${randomBytes(3).toString('hex')}`),
    );
    const ports = {
      primary: opts.ports?.primary ?? (await freePort()),
      standby: opts.ports?.standby ?? (await freePort()),
    };
    const pair = new PostgresPair({ name, dir, ownsDir, bin, identity, ports, opts });
    try {
      pair.prepareDirectories();
      await pair.initPrimary();
      await pair.primary.start();
      await pair.createRolesAndDatabase();
      await pair.cloneStandby();
      await pair.standby.start();
      await pair.waitForStreaming();
    } catch (err) {
      // Keep the logs the error points at while this process lives; remove them when it exits.
      await pair.stop({ keepDir: true });
      if (ownsDir && !process.env.FAILOVER_KEEP_DIRS) {
        process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      }
      throw err;
    }
    pair.startupMs = Math.round(performance.now() - t0);
    return pair;
  }

  /** The server called `node`. */
  server(node: PostgresNodeName): PostgresServer {
    return node === 'primary' ? this.primary : this.standby;
  }

  /** How the operator reaches `node`: TCP on loopback, scram-sha-256, TLS (unverified) when `tls`. */
  connection(node: PostgresNodeName, overrides: Partial<DatabaseConnection> = {}): DatabaseConnection {
    return {
      host: this.server(node).host,
      port: this.server(node).port,
      database: this.database,
      sslMode: this.tls ? 'require' : 'disable',
      user: this.user,
      password: this.password,
      ...overrides,
    };
  }

  /** A postgres:// URI for psql and humans. It contains the (throw-away) password. */
  connectionUri(node: PostgresNodeName): string {
    const c = this.connection(node);
    return `postgresql://${c.user}:${c.password}@${c.host}:${c.port}/${c.database}?sslmode=${c.sslMode}`;
  }

  /**
   * An open session to `node` over TCP as the operator role, like an application's; the caller
   * ends it. Errors the server sends while it is idle (say, when it is terminated) are kept, not thrown.
   */
  async connect(node: PostgresNodeName): Promise<pg.Client> {
    const c = this.connection(node);
    const client = new pg.Client({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      password: c.password,
      ssl: this.caPath ? { ca: readFileSync(this.caPath, 'utf8') } : false,
      connectionTimeoutMillis: 5_000,
      query_timeout: 30_000,
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  /** Runs `text` on `node` in the application database as the bootstrap superuser. */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
    node: PostgresNodeName,
    text: string,
    params: unknown[] = [],
    database = this.database,
  ): Promise<R[]> {
    return this.server(node).query<R>(text, params, database);
  }

  /** Inserts rows into `write_load` at a steady rate until stopped; failures are counted, not thrown. */
  startWriteLoad(opts: WriteLoadOptions): WriteLoad {
    if (!(opts.ratePerSecond > 0)) {
      throw new HarnessError('start write load', `ratePerSecond must be > 0, got ${opts.ratePerSecond}`);
    }
    const load = new RunningWriteLoad(
      () => this.connect(opts.node ?? 'primary'),
      1000 / opts.ratePerSecond,
      'x'.repeat(opts.rowBytes ?? 200),
      () => this.loads.delete(load),
    );
    this.loads.add(load);
    return load;
  }

  /** Pauses WAL replay on the standby (it keeps receiving) and waits until replay has stopped. */
  async pauseReplay(node: PostgresNodeName = 'standby'): Promise<void> {
    await this.sql(node, 'SELECT pg_wal_replay_pause()');
    await waitFor(
      async () =>
        (await this.sql<{ s: string }>(node, 'SELECT pg_get_wal_replay_pause_state() AS s'))[0]?.s ===
        'paused',
      { description: `WAL replay on ${this.server(node).label} to pause`, timeoutMs: 30_000, intervalMs: 50 },
    );
  }

  /** Resumes WAL replay on the standby. */
  async resumeReplay(node: PostgresNodeName = 'standby'): Promise<void> {
    await this.sql(node, 'SELECT pg_wal_replay_resume()');
  }

  /**
   * Waits until `standby` has replayed everything `primary` had written when this was called.
   * Replay must not be paused.
   */
  async waitForReplayCatchUp(
    opts: { primary?: PostgresNodeName; standby?: PostgresNodeName; timeoutMs?: number } = {},
  ): Promise<void> {
    const from = opts.primary ?? 'primary';
    const to = opts.standby ?? 'standby';
    const [row] = await this.sql<{ lsn: string }>(from, 'SELECT pg_current_wal_lsn()::text AS lsn');
    const target = row?.lsn ?? '0/0';
    await waitFor(
      async () =>
        (
          await this.sql<{ done: boolean }>(to, 'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [
            target,
          ])
        )[0]?.done === true,
      {
        description: `${this.server(to).label} to replay up to ${target}`,
        timeoutMs: opts.timeoutMs ?? 60_000,
        intervalMs: 50,
      },
    );
  }

  /** Waits until the primary's pg_stat_replication shows the standby streaming. */
  async waitForStreaming(timeoutMs = 60_000): Promise<void> {
    try {
      await waitFor(
        async () =>
          (
            await this.sql<{ state: string }>(
              'primary',
              'SELECT state FROM pg_stat_replication WHERE application_name = $1',
              [this.standbyName],
            )
          )[0]?.state === 'streaming',
        {
          description: `${this.standby.label} to stream from ${this.primary.label}`,
          timeoutMs,
          intervalMs: 100,
        },
      );
    } catch (err) {
      throw new HarnessError(
        `wait for streaming (${this.name})`,
        `${(err as Error).message}\n${logTail(this.standby.logPath)}`,
        this.standby.logPath,
      );
    }
  }

  /** A fast shutdown of the node called 'primary'. */
  stopPrimary(): Promise<void> {
    return this.primary.stop();
  }

  /** SIGKILLs the node called 'primary' (postmaster and backends), as a crashed host would. */
  killPrimary(): Promise<void> {
    return this.primary.kill();
  }

  /** Starts the node called 'primary' again on its data directory (after stop or kill). */
  startPrimary(): Promise<void> {
    return this.primary.start();
  }

  /** Stops write loads and both servers, then removes the temp directory. Safe to call twice. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    await Promise.all([...this.loads].map((l) => l.stop()));
    this.primary.thaw();
    this.standby.thaw();
    // The standby first: a primary's fast shutdown waits for its walsenders to send the rest.
    await this.standby.stop();
    await this.primary.stop();
    if (this.ownsDir && !opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  private prepareDirectories(): void {
    const sockets = join(this.dir, 'sockets');
    const socketPath = join(
      this.primary.socketDir,
      `.s.PGSQL.${Math.max(this.primary.port, this.standby.port)}`,
    );
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      throw new HarnessError(
        `prepare directories (${this.name})`,
        `the Unix socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter TMPDIR or dir`,
      );
    }
    mkdirSync(sockets, { recursive: true, mode: 0o700 });
    this.giveToServerUser(this.dir);
    this.giveToServerUser(sockets);
    for (const server of [this.primary, this.standby]) {
      mkdirSync(server.socketDir, { recursive: true, mode: 0o700 });
      this.giveToServerUser(server.socketDir);
    }
  }

  private giveToServerUser(path: string): void {
    const { uid, gid } = this.identity;
    if (uid !== undefined && gid !== undefined) chownSync(path, uid, gid);
  }

  private async initPrimary(): Promise<void> {
    const pwfile = join(this.dir, 'superuser.pw');
    writeFileSync(pwfile, `${this.superuserPassword}\n`, { mode: 0o600 });
    this.giveToServerUser(pwfile);
    try {
      await this.runToCompletion(`initdb (${this.primary.label})`, {
        name: `initdb (${this.primary.label})`,
        command: join(this.bin, 'initdb'),
        args: [
          '-D',
          this.primary.dataDir,
          '-U',
          'postgres',
          `--pwfile=${pwfile}`,
          '--auth-local=trust',
          '--auth-host=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C',
          '--no-sync',
          '--no-instructions',
        ],
        logPath: join(this.dir, 'initdb.log'),
      });
    } finally {
      rmSync(pwfile, { force: true });
    }
    // Local sockets are trusted: only root and postgres can enter the 0700 socket directory.
    // With TLS, a TCP client without it matches no line and is refused ("no encryption").
    const tcp = this.tls ? 'hostssl' : 'host';
    // Clients of a server in a namespace come from the host's end of its link.
    const networks = [
      '127.0.0.0/8',
      ...[this.primary, this.standby].flatMap((s) => (s.namespace ? [s.namespace.clientNetwork] : [])),
      ...this.clientNetworks,
    ];
    writeFileSync(
      join(this.primary.dataDir, 'pg_hba.conf'),
      [
        'local all all trust',
        'local replication all trust',
        ...networks.flatMap((network) => [
          `${tcp} all all ${network} scram-sha-256`,
          `${tcp} replication all ${network} scram-sha-256`,
        ]),
        '',
      ].join('\n'),
    );
    if (this.tls) await this.makeCertificate();
    appendFileSync(join(this.primary.dataDir, 'postgresql.conf'), this.configFor(this.primary));
  }

  /** A self-signed certificate for 127.0.0.1 in the data directory (pg_basebackup copies it). */
  private async makeCertificate(): Promise<void> {
    const key = join(this.primary.dataDir, 'server.key');
    const cert = join(this.primary.dataDir, 'server.crt');
    await this.runToCompletion(`make TLS certificate (${this.name})`, {
      name: `openssl (${this.name})`,
      command: 'openssl',
      args: [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      logPath: join(this.dir, 'openssl.log'),
    });
    // PostgreSQL refuses a key that others can read.
    chmodSync(key, 0o600);
    copyFileSync(cert, join(this.dir, 'ca.crt'));
  }

  /** postgresql.conf lines for `server`; appended, so they win over initdb's defaults. */
  private configFor(server: PostgresServer): string {
    const settings: Record<string, string | number> = {
      listen_addresses: `'${[server.host, this.alsoListen[server === this.primary ? 'primary' : 'standby']].filter(Boolean).join(',')}'`,
      port: server.port,
      unix_socket_directories: `'${server.socketDir}'`,
      unix_socket_permissions: '0700',
      cluster_name: `'${server.label.replaceAll("'", '')}'`,
      max_connections: 40,
      shared_buffers: "'16MB'",
      // Throw-away data: durability is not what these servers test, start-up time is.
      fsync: 'off',
      full_page_writes: 'off',
      wal_level: 'replica',
      max_wal_senders: 5,
      max_replication_slots: 5,
      wal_keep_size: "'128MB'",
      max_wal_size: "'256MB'",
      hot_standby: 'on',
      hot_standby_feedback: 'on',
      // Quick feedback and reconnection, so lag and outages show within a second or two.
      wal_receiver_status_interval: "'1s'",
      wal_retrieve_retry_interval: "'1s'",
      password_encryption: "'scram-sha-256'",
      log_line_prefix: "'%m [%p] %q%u@%d '",
      logging_collector: 'off',
      ...(this.tls ? { ssl: 'on', ssl_cert_file: "'server.crt'", ssl_key_file: "'server.key'" } : {}),
      ...this.settings,
    };
    const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
    return `\n# failover-operator test harness\n${lines.join('\n')}\n`;
  }

  private async createRolesAndDatabase(): Promise<void> {
    const step = `create roles and database (${this.name})`;
    try {
      const lit = pg.escapeLiteral;
      const id = pg.escapeIdentifier;
      await this.primary.query(
        `CREATE ROLE ${id(this.user)} LOGIN SUPERUSER PASSWORD ${lit(this.password)};
         CREATE ROLE replicator LOGIN REPLICATION PASSWORD ${lit(this.replicationPassword)};
         -- What pg_rewind needs of its source (PostgreSQL docs, pg_rewind), so a former primary
         -- can be rewound from whichever server is primary, with the role standbys use.
         GRANT EXECUTE ON function pg_catalog.pg_ls_dir(text, boolean, boolean) TO replicator;
         GRANT EXECUTE ON function pg_catalog.pg_stat_file(text, boolean) TO replicator;
         GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text) TO replicator;
         GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO replicator;
         -- A new primary's control file names its timeline only after a checkpoint, and pg_rewind reads it.
         GRANT pg_checkpoint TO replicator;
         ALTER ROLE postgres PASSWORD ${lit(this.superuserPassword)};`,
      );
      await this.primary.query(`CREATE DATABASE ${id(this.database)} OWNER ${id(this.user)}`);
      await this.primary.query(
        `CREATE TABLE public.write_load (
           id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
           payload text NOT NULL
         );
         -- Stored as written, uncompressed: each row adds its full size to the WAL (and the lag).
         ALTER TABLE public.write_load ALTER COLUMN payload SET STORAGE EXTERNAL;
         ALTER TABLE public.write_load OWNER TO ${id(this.user)};`,
        [],
        this.database,
      );
    } catch (err) {
      throw new HarnessError(step, (err as Error).message, this.primary.logPath);
    }
  }

  private async cloneStandby(): Promise<void> {
    await this.runToCompletion(`pg_basebackup (${this.standby.label})`, {
      name: `pg_basebackup (${this.standby.label})`,
      command: join(this.bin, 'pg_basebackup'),
      args: [
        // A connection string, so -R copies application_name into primary_conninfo.
        '-d',
        `host=${this.primary.host} port=${this.primary.port} user=replicator application_name=${this.standbyName}`,
        '-D',
        this.standby.dataDir,
        '--wal-method=stream',
        '--checkpoint=fast',
        '--create-slot',
        `--slot=${this.standbyName}`,
        '--write-recovery-conf',
        '--no-sync',
      ],
      logPath: join(this.dir, 'pg_basebackup.log'),
      env: { ...serverEnv(), PGPASSWORD: this.replicationPassword },
    });
    // The copy carries the primary's settings; these lines come later and win.
    appendFileSync(join(this.standby.dataDir, 'postgresql.conf'), this.configFor(this.standby));
  }

  /** Runs a one-shot command (initdb, pg_basebackup) as the server user; fails with its log. */
  private async runToCompletion(
    step: string,
    opts: Omit<StartOptions, 'runAs'>,
    timeoutMs = 120_000,
  ): Promise<void> {
    const proc = ManagedProcess.start({ env: serverEnv(), ...opts, runAs: this.identity.runAs });
    const timer = setTimeout(() => void proc.kill(), timeoutMs);
    const status = await proc.waitForExit();
    clearTimeout(timer);
    await proc.stop();
    if (status !== 0) {
      throw new HarnessError(
        step,
        `${opts.command} exited with ${status}:\n${logTail(opts.logPath)}`,
        opts.logPath,
      );
    }
  }
}

/** Starts a primary and a streaming standby; see PostgresPair. */
export function startPostgresPair(opts: PostgresPairOptions = {}): Promise<PostgresPair> {
  return PostgresPair.start(opts);
}

class RunningWriteLoad implements WriteLoad {
  private committed = 0;
  private failed = 0;
  private lastId = 0;
  private lastError: string | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  private readonly done: Promise<void>;
  private readonly connect: () => Promise<pg.Client>;
  private readonly intervalMs: number;
  private readonly payload: string;
  private readonly onStopped: () => void;

  constructor(connect: () => Promise<pg.Client>, intervalMs: number, payload: string, onStopped: () => void) {
    this.connect = connect;
    this.intervalMs = intervalMs;
    this.payload = payload;
    this.onStopped = onStopped;
    this.done = this.run();
  }

  progress(): WriteLoadResult {
    return {
      committed: this.committed,
      failed: this.failed,
      lastId: this.lastId,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
    };
  }

  async stop(): Promise<WriteLoadResult> {
    this.stopping = true;
    this.wake?.();
    await this.done;
    return this.progress();
  }

  private async run(): Promise<void> {
    let client: pg.Client | undefined;
    let due = performance.now();
    while (!this.stopping) {
      try {
        client ??= await this.connect();
        const res = await client.query<{ id: string }>(
          'INSERT INTO public.write_load (payload) VALUES ($1) RETURNING id',
          [this.payload],
        );
        this.committed += 1;
        this.lastId = Number(res.rows[0]?.id ?? this.lastId);
      } catch (err) {
        this.failed += 1;
        this.lastError = (err as Error).message;
        await client?.end().catch(() => undefined);
        client = undefined;
      }
      due += this.intervalMs;
      const delay = due - performance.now();
      // After a stall (server down, slow connect) carry on at the rate instead of bursting.
      if (delay <= 0) due = performance.now();
      else
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, delay);
        });
    }
    await client?.end().catch(() => undefined);
    this.onStopped();
  }
}

/** A clean environment for server processes: no PG* variables from the caller leak in. */
function serverEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C', TZ: 'UTC' };
}

/** Children of `pid`, from /proc (a postmaster's backends and auxiliary processes). */
function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat?.ppid === pid) children.push(Number(entry));
  }
  return children;
}

function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may itself contain spaces or parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** Gone, or a zombie nobody has reaped yet (it holds no memory or sockets). */
function isGone(pid: number): boolean {
  const stat = procStat(pid);
  return stat === undefined || stat.state === 'Z' || !isAlive(pid);
}

function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
