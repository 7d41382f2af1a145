/**
 * A real BIND 9 `named` for tests and the local environment: one primary, dynamic zone on a free
 * loopback port (UDP and TCP), a TSIG key with a random secret that may update it, no
 * recursion. It can be frozen (clients time out), stopped, and restarted refusing updates; the
 * zone's data survives restarts in its journal. `nsupdate()` and `dig()` go through BIND's own
 * tools, so tests can change and check the zone independently of the code under test.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import dnsPacket from 'dns-packet';
import { assertPortFree, freePort } from './ports.ts';
import { HarnessError, logTail, ManagedProcess, sweepStaleTempDirs } from './processes.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);
const TEMP_PREFIX = 'failover-bind-';
const NAMED = process.env.FAILOVER_NAMED ?? '/usr/sbin/named';

export type BindTsigAlgorithm = 'hmac-sha256' | 'hmac-sha384' | 'hmac-sha512';

/**
 * Whether the key may update the zone. 'refuse' keeps the zone dynamic (its journal is still
 * read) but denies the key, so every update is answered REFUSED while queries still work.
 */
export type BindUpdatePolicy = 'allow' | 'refuse';

export interface BindOptions {
  /** A name for messages, such as "region-a". */
  name?: string;
  /** The zone, without trailing dot. Default: failover.test */
  zone?: string;
  /** Default: hmac-sha256. */
  algorithm?: BindTsigAlgorithm;
  /** Default: failover-key. */
  keyName?: string;
  /** Extra zone-file lines, such as `legacy 60 IN A 192.0.2.10` (relative names are in the zone). */
  records?: string[];
  updates?: BindUpdatePolicy;
  /** A fixed port; a free one is chosen when omitted. */
  port?: number;
  /** The address named listens on. Default: 127.0.0.1. */
  host?: string;
  /** Where to keep the configuration, zone, journal and log. Default: a temp dir, removed on stop. */
  dir?: string;
  readyTimeoutMs?: number;
}

/** The TSIG key the zone accepts, in the form the RFC 2136 provider and nsupdate take. */
export interface BindKey {
  name: string;
  algorithm: BindTsigAlgorithm;
  /** Base64. */
  secret: string;
}

/** Whether a UDP socket can bind 127.0.0.1:port (freePort only checks TCP). */
function udpPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolveFree) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolveFree(false);
    });
    socket.bind(port, host, () => socket.close(() => resolveFree(true)));
  });
}

/** A port free on `host` for both TCP and UDP, as named needs both. */
async function freeDnsPort(host: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    if (await udpPortFree(port, host)) return port;
  }
  throw new HarnessError('start named', `found no port free for both TCP and UDP on ${host}`);
}

/** The scheduler state of each thread of a process (R, S, T for stopped, ...), from /proc. */
function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  });
}

export class BindServer {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly zone: string;
  readonly key: BindKey;
  readonly dir: string;
  readonly logPath: string;
  private process?: ManagedProcess;
  private policy: BindUpdatePolicy;
  private frozen = false;
  private readonly ownsDir: boolean;
  private readonly readyTimeoutMs: number;

  private constructor(opts: {
    name: string;
    host: string;
    port: number;
    zone: string;
    key: BindKey;
    dir: string;
    ownsDir: boolean;
    policy: BindUpdatePolicy;
    readyTimeoutMs: number;
  }) {
    this.name = opts.name;
    this.host = opts.host;
    this.port = opts.port;
    this.zone = opts.zone;
    this.key = opts.key;
    this.dir = opts.dir;
    this.ownsDir = opts.ownsDir;
    this.policy = opts.policy;
    this.readyTimeoutMs = opts.readyTimeoutMs;
    this.logPath = join(this.dir, 'named.log');
  }

  /** Writes the configuration and zone, starts named and resolves once it answers an SOA query. */
  static async start(opts: BindOptions = {}): Promise<BindServer> {
    if (!existsSync(NAMED)) {
      throw new HarnessError(
        'start named',
        `${NAMED} not found: install BIND 9 (Debian/Ubuntu: apt-get install bind9 bind9-utils bind9-dnsutils) or set FAILOVER_NAMED`,
      );
    }
    sweepStaleTempDirs(TEMP_PREFIX);
    const name = opts.name ?? 'dns';
    const zone = (opts.zone ?? 'failover.test').replace(/\.$/, '').toLowerCase();
    const ownsDir = opts.dir === undefined;
    const dir = resolve(
      opts.dir ?? join(tmpdir(), `${TEMP_PREFIX}${process.pid}-${name}-${randomBytes(3).toString('hex')}`),
    );
    mkdirSync(dir, { recursive: true });
    const host = opts.host ?? '127.0.0.1';
    const port = opts.port ?? (await freeDnsPort(host));
    const algorithm = opts.algorithm ?? 'hmac-sha256';
    // As tsig-keygen does: a random secret as long as the hash's output.
    const secretBytes = { 'hmac-sha256': 32, 'hmac-sha384': 48, 'hmac-sha512': 64 }[algorithm];
    const key: BindKey = {
      name: opts.keyName ?? 'failover-key',
      algorithm,
      secret: randomBytes(secretBytes).toString('base64'),
    };
    const server = new BindServer({
      name,
      host,
      port,
      zone,
      key,
      dir,
      ownsDir,
      policy: opts.updates ?? 'allow',
      readyTimeoutMs: opts.readyTimeoutMs ?? 60_000,
    });
    try {
      server.writeZone(opts.records ?? []);
      server.writeConfig();
      await server.startNamed();
      return server;
    } catch (err) {
      // Keep the log the error points at while this process lives (a later start sweeps it).
      const logWritten = existsSync(server.logPath);
      await server.stop({ keepDir: logWritten });
      if (ownsDir && logWritten && !process.env.FAILOVER_KEEP_DIRS) {
        process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      }
      throw err;
    }
  }

  /** "127.0.0.1:port", as the RFC 2136 provider's `server` setting takes it. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** A FailoverPolicy's `dns.provider` for this server, the TSIG secret read from Secret `secretName`. */
  rfc2136Provider(secretName = 'dns-tsig') {
    return {
      type: 'RFC2136' as const,
      rfc2136: {
        server: this.address,
        tsig: {
          keyName: this.key.name,
          algorithm: this.key.algorithm,
          secretRef: { name: secretName, key: 'secret' },
        },
      },
    };
  }

  /** The Secret rfc2136Provider reads the TSIG secret from. */
  tsigSecret(name = 'dns-tsig') {
    return { metadata: { name }, stringData: { secret: this.key.secret } };
  }

  get updatePolicy(): BindUpdatePolicy {
    return this.policy;
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  private get zonePath(): string {
    return join(this.dir, `${this.zone}.zone`);
  }

  private writeZone(records: string[]): void {
    const lines = [
      '$TTL 60',
      `@ IN SOA ns1.${this.zone}. hostmaster.${this.zone}. 1 3600 600 86400 60`,
      `@ IN NS ns1.${this.zone}.`,
      `ns1 IN A ${this.host}`,
      ...records,
      '',
    ];
    writeFileSync(this.zonePath, lines.join('\n'));
  }

  private writeConfig(): void {
    const d = this.dir;
    const grant = this.policy === 'allow' ? 'grant' : 'deny';
    const conf = `
options {
  directory "${d}";
  pid-file "${join(d, 'named.pid')}";
  session-keyfile "${join(d, 'session.key')}";
  managed-keys-directory "${d}";
  listen-on port ${this.port} { ${this.host}; };
  listen-on-v6 { none; };
  recursion no;
  allow-query { any; };
  dnssec-validation no;
  notify no;
};
// No rndc control channel: it would listen on 127.0.0.1:953, shared by every named here.
controls { };
key "${this.key.name}" {
  algorithm ${this.key.algorithm};
  secret "${this.key.secret}";
};
zone "${this.zone}" {
  type primary;
  file "${this.zonePath}";
  journal "${this.zonePath}.jnl";
  update-policy { ${grant} ${this.key.name} zonesub ANY; };
};
`;
    writeFileSync(join(d, 'named.conf'), conf, { mode: 0o600 });
  }

  private async startNamed(): Promise<void> {
    const step = `start named (${this.name})`;
    await assertPortFree(this.port, step);
    // -g: foreground, log to stderr (the process log); -4: IPv4 only; -n 1: one worker thread,
    // enough for tests on two shared cores. Running as root is fine: named keeps its identity
    // unless told otherwise with -u.
    this.process = ManagedProcess.start({
      name: `named (${this.name})`,
      command: NAMED,
      args: ['-g', '-4', '-n', '1', '-c', join(this.dir, 'named.conf')],
      logPath: this.logPath,
      cwd: this.dir,
    });
    const proc = this.process;
    try {
      await waitFor(
        async () => {
          if (!proc.running) {
            throw new HarnessError(
              step,
              `exited early with ${proc.exitCode}:\n${logTail(this.logPath)}`,
              this.logPath,
            );
          }
          return (await this.soaSerial(1_000)) !== undefined;
        },
        {
          description: `${proc.name} to answer an SOA query for ${this.zone}`,
          timeoutMs: this.readyTimeoutMs,
        },
      );
    } catch (err) {
      await proc.stop();
      if (err instanceof HarnessError) throw err;
      throw new HarnessError(
        step,
        `never became ready: ${(err as Error).message}\n${logTail(this.logPath)}`,
        this.logPath,
      );
    }
  }

  /**
   * The zone's SOA serial as named answers it over UDP, or undefined when it does not answer
   * within `timeoutMs`. Every accepted update increments it, so an unchanged serial proves that
   * nothing was written.
   */
  soaSerial(timeoutMs = 2_000): Promise<number | undefined> {
    return new Promise((resolveSerial) => {
      const socket = createSocket('udp4');
      const id = randomInt(0, 0x10000);
      const done = (serial: number | undefined) => {
        clearTimeout(timer);
        socket.close();
        resolveSerial(serial);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      socket.on('error', () => done(undefined));
      socket.on('message', (msg) => {
        try {
          const reply = dnsPacket.decode(msg);
          if (reply.id !== id) return;
          const soa = reply.answers?.find((a) => a.type === 'SOA');
          done(soa && soa.type === 'SOA' ? soa.data.serial : undefined);
        } catch {
          // not a DNS answer; keep waiting
        }
      });
      const query = dnsPacket.encode({
        type: 'query',
        id,
        questions: [{ type: 'SOA', name: this.zone, class: 'IN' }],
      });
      socket.send(query, this.port, this.host);
    });
  }

  /**
   * Stops named answering (SIGSTOP) and resolves once every thread of it is stopped: the kernel
   * still accepts connections and queues datagrams, but nothing replies. Until then a query sent
   * right after the signal could still be answered.
   */
  async freeze(): Promise<void> {
    const pid = this.process?.pid;
    if (!pid || !this.running)
      throw new HarnessError(`freeze named (${this.name})`, 'named is not running', this.logPath);
    this.process?.signal('SIGSTOP');
    this.frozen = true;
    await waitFor(() => threadStates(pid).every((state) => state === 'T' || state === 't'), {
      description: `named (${this.name}) to stop`,
      timeoutMs: 10_000,
      intervalMs: 10,
    });
  }

  /** Lets a frozen named go on (SIGCONT). */
  thaw(): void {
    this.process?.signal('SIGCONT');
    this.frozen = false;
  }

  /** Stops named gracefully and, unless `keepDir`, removes the temp directory it created. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    // A stopped process would not act on SIGTERM until the grace period ends in SIGKILL.
    if (this.frozen) this.thaw();
    await this.process?.stop();
    if (this.ownsDir && !opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Kills named without a graceful shutdown, as a crash would; `restart` brings it back. */
  async kill(): Promise<void> {
    await this.process?.kill();
    this.frozen = false;
  }

  /**
   * Stops named if it runs and starts it again on the same port with the same key and data,
   * optionally with another update policy (e.g. `{ updates: 'refuse' }`).
   */
  async restart(opts: { updates?: BindUpdatePolicy } = {}): Promise<void> {
    if (this.frozen) this.thaw();
    await this.process?.stop();
    if (opts.updates) this.policy = opts.updates;
    this.writeConfig();
    await this.startNamed();
  }

  /**
   * Runs BIND's own `nsupdate` against this server, signed with the zone's key: for changing
   * the zone behind the back of the code under test. `commands` are nsupdate lines without
   * `server` and `send`, e.g. ['update delete db.failover.test A', 'update add ...'].
   */
  async nsupdate(commands: string[]): Promise<void> {
    const script = [`server ${this.host} ${this.port}`, `zone ${this.zone}`, ...commands, 'send', ''].join(
      '\n',
    );
    const keyFile = join(this.dir, 'nsupdate.key');
    writeFileSync(
      keyFile,
      `key "${this.key.name}" { algorithm ${this.key.algorithm}; secret "${this.key.secret}"; };\n`,
      { mode: 0o600 },
    );
    await new Promise<void>((resolveRun, reject) => {
      const child = execFile(
        'nsupdate',
        ['-v', '-k', keyFile],
        { timeout: 30_000 },
        (err, _stdout, stderr) => {
          if (err) {
            reject(
              new HarnessError(
                'nsupdate',
                `${stderr.trim() || err.message}\nscript:\n${script}`,
                this.logPath,
              ),
            );
          } else resolveRun();
        },
      );
      child.stdin?.end(script);
    });
  }

  /** The answer values `dig +short +norecurse` prints for a name and type (TXT strings quoted). */
  async dig(name: string, type: string): Promise<string[]> {
    const { stdout } = await run(
      'dig',
      [`@${this.host}`, '-p', String(this.port), '+short', '+norecurse', '+time=5', '+tries=1', name, type],
      { timeout: 30_000 },
    );
    return stdout
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith(';'));
  }
}

/** Starts a BIND server; see BindServer.start. */
export function startBind(opts: BindOptions = {}): Promise<BindServer> {
  return BindServer.start(opts);
}
