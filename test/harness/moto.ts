/**
 * A real `moto_server` (the AWS API emulator, installed on PATH) on a free loopback port, for
 * testing the AWS adapters with the real AWS SDK. One per test file: its state is global to the
 * server, so files sharing one would see each other's zones and instances.
 *
 * Every request it receives is recorded to a file (moto's own recorder), so a test can check
 * what an adapter actually sent — "nothing" included — without wrapping the SDK client.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { assertPortFree, freePort } from './ports.ts';
import { HarnessError, logTail, ManagedProcess, sweepStaleTempDirs } from './processes.ts';
import { waitFor } from './wait.ts';

const TEMP_PREFIX = 'failover-moto-';

export interface MotoOptions {
  /** A name for messages, such as "route53". */
  name?: string;
  /** A fixed port; a free one is chosen when omitted. */
  port?: number;
  /** How long to wait for the server to answer. Python's imports take a few seconds on 2 cores. */
  readyTimeoutMs?: number;
}

/** One request as moto received it. */
export interface RecordedAwsRequest {
  method: string;
  /** URL path without the query, such as /2013-04-01/hostedzone/Z1/rrset/ */
  path: string;
  /** The Query-protocol action (RDS: "PromoteReadReplica"); undefined for REST APIs (Route 53). */
  action?: string;
  /** The region the request was signed for (the SDK client's region). */
  region?: string;
  /** The request body as text. */
  body: string;
}

/** Credentials moto accepts while authentication is off (the default); any non-empty pair works. */
const motoCredentials = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;

export class MotoServer {
  readonly name: string;
  readonly port: number;
  /** Base URL for SDK clients' `endpoint`. */
  readonly endpoint: string;
  readonly dir: string;
  readonly logPath: string;
  private readonly recordingPath: string;
  private readonly readyTimeoutMs: number;
  private process?: ManagedProcess;

  private constructor(name: string, port: number, dir: string, readyTimeoutMs: number) {
    this.name = name;
    this.port = port;
    this.dir = dir;
    this.readyTimeoutMs = readyTimeoutMs;
    this.endpoint = `http://127.0.0.1:${port}`;
    this.logPath = join(dir, 'moto.log');
    this.recordingPath = join(dir, 'requests.jsonl');
  }

  /** Starts moto_server and resolves once it answers. */
  static async start(opts: MotoOptions = {}): Promise<MotoServer> {
    sweepStaleTempDirs(TEMP_PREFIX);
    const name = opts.name ?? 'moto';
    const dir = resolve(join(tmpdir(), `${TEMP_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`));
    mkdirSync(dir, { recursive: true });
    const port = opts.port ?? (await freePort());
    const moto = new MotoServer(name, port, dir, opts.readyTimeoutMs ?? 60_000);
    try {
      await moto.startProcess();
      return moto;
    } catch (err) {
      // Keep the log the error points at while this process lives.
      await moto.stop({ keepDir: true });
      process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      throw err;
    }
  }

  private async startProcess(): Promise<void> {
    const step = `start moto_server (${this.name})`;
    await assertPortFree(this.port, step);
    writeFileSync(this.recordingPath, '');
    this.process = ManagedProcess.start({
      name: `moto_server (${this.name})`,
      command: 'moto_server',
      args: ['-H', '127.0.0.1', '-p', String(this.port)],
      logPath: this.logPath,
      env: {
        ...process.env,
        MOTO_ENABLE_RECORDING: 'true',
        MOTO_RECORDER_FILEPATH: this.recordingPath,
        // Keep stray AWS settings of the machine out of the emulator.
        AWS_ACCESS_KEY_ID: motoCredentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: motoCredentials.secretAccessKey,
      },
    });
    const proc = this.process;
    let answered = false;
    // waitFor retries a probe that throws, so an early exit is raced against it instead.
    const exitedEarly = proc.waitForExit().then((code) => {
      if (answered) return;
      throw new HarnessError(
        step,
        `exited with ${code} before answering (is moto_server on PATH? it comes with pip install 'moto[server]'):\n${logTail(this.logPath)}`,
        this.logPath,
      );
    });
    try {
      await Promise.race([
        waitFor(async () => (await fetch(`${this.endpoint}/moto-api/config`)).ok, {
          description: `${proc.name} to answer on ${this.endpoint}`,
          timeoutMs: this.readyTimeoutMs,
          intervalMs: 200,
        }),
        exitedEarly,
      ]);
      answered = true;
    } catch (err) {
      if (err instanceof HarnessError) throw err;
      throw new HarnessError(step, `${(err as Error).message}\n${logTail(this.logPath)}`, this.logPath);
    } finally {
      exitedEarly.catch(() => undefined);
    }
  }

  /**
   * Dummy credentials for SDK clients; a fresh object each time, because the SDK writes
   * bookkeeping into the credentials object it is given.
   */
  get credentials(): { accessKeyId: string; secretAccessKey: string } {
    return { ...motoCredentials };
  }

  /** Whether the server process is running (false after `stop` or `kill`). */
  get running(): boolean {
    return this.process?.running ?? false;
  }

  /** Forgets every zone, instance and cluster, and the request recording. */
  async reset(): Promise<void> {
    await this.post('/moto-api/reset', '');
    writeFileSync(this.recordingPath, '');
  }

  /**
   * Turns moto's IAM authentication on or off. On, it refuses the dummy credentials the way AWS
   * refuses unknown keys (InvalidClientTokenId, HTTP 403). Off is moto's default.
   */
  async requireAuthentication(required: boolean): Promise<void> {
    // The value is how many requests moto lets through before it starts checking.
    await this.post('/moto-api/reset-auth', required ? '0' : 'inf');
  }

  /** Requests received since start or the last `reset`/`clearRecording`. */
  recordedRequests(): RecordedAwsRequest[] {
    if (!existsSync(this.recordingPath)) return [];
    return readFileSync(this.recordingPath, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const entry = JSON.parse(line) as {
          method: string;
          url: string;
          headers?: Record<string, string>;
          body?: string;
          body_encoded?: boolean;
        };
        const body = entry.body_encoded
          ? Buffer.from(entry.body ?? '', 'base64').toString('utf8')
          : (entry.body ?? '');
        const action = new URLSearchParams(body).get('Action') ?? undefined;
        // SigV4: "Credential=<key>/<date>/<region>/<service>/aws4_request".
        const authorization = entry.headers?.Authorization ?? entry.headers?.authorization ?? '';
        const region = /Credential=[^/]+\/\d+\/([^/]+)\//.exec(authorization)?.[1];
        return { method: entry.method, path: new URL(entry.url).pathname, action, region, body };
      });
  }

  /** The Query-protocol actions received so far, in order (RDS). */
  recordedActions(): string[] {
    return this.recordedRequests().flatMap((r) => (r.action ? [r.action] : []));
  }

  clearRecording(): void {
    writeFileSync(this.recordingPath, '');
  }

  /** Freezes the server (SIGSTOP): connections open but nothing answers, so clients time out. */
  freeze(): void {
    this.process?.signal('SIGSTOP');
  }

  /** Lets a frozen server run again. */
  thaw(): void {
    this.process?.signal('SIGCONT');
  }

  /** Kills the server as a crash would (an outage); `restart` brings it back. */
  async kill(): Promise<void> {
    this.thaw();
    await this.process?.kill();
  }

  /** Starts the server again on the same port after `kill`, with empty state. */
  async restart(): Promise<void> {
    if (this.running) return;
    await this.startProcess();
  }

  /** Stops the server and removes its directory. Safe to call twice. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    // A frozen process ignores SIGTERM until it runs again.
    this.thaw();
    await this.process?.stop('SIGTERM', 5_000);
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }

  private async post(path: string, body: string): Promise<void> {
    const res = await fetch(`${this.endpoint}${path}`, {
      method: 'POST',
      // moto parses a form content type itself and fails; it wants the raw value.
      headers: { 'content-type': 'text/plain' },
      body,
    });
    if (!res.ok) {
      throw new HarnessError(
        `moto ${path}`,
        `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`,
        this.logPath,
      );
    }
  }
}
