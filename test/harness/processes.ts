/**
 * Child processes the harness starts: each logs to a file, dies with its parent (even on SIGKILL,
 * through the kernel's parent-death signal) and is stopped by `stopAll` on exit or Ctrl-C.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** A harness failure that says which step failed and where that step's log is. */
export class HarnessError extends Error {
  readonly step: string;
  readonly logPath: string | undefined;

  constructor(step: string, message: string, logPath?: string) {
    super(`${step}: ${message}${logPath ? ` (log: ${logPath})` : ''}`);
    this.name = 'HarnessError';
    this.step = step;
    this.logPath = logPath;
  }
}

export interface StartOptions {
  /** A short name used in messages, such as "etcd (region-a)". */
  name: string;
  command: string;
  args: string[];
  logPath: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Run as this system user (and its group), e.g. "postgres": initdb and postgres refuse root. */
  runAs?: string;
}

const live = new Set<ManagedProcess>();

export class ManagedProcess {
  readonly name: string;
  readonly logPath: string;
  private readonly child: ChildProcess;
  private readonly log: WriteStream;
  private readonly exited: Promise<number | string>;
  private exitStatus: number | string | undefined;

  private constructor(opts: StartOptions) {
    this.name = opts.name;
    this.logPath = opts.logPath;
    this.log = createWriteStream(opts.logPath, { flags: 'a' });
    // setpriv asks the kernel to SIGKILL the child if this process dies without cleaning up,
    // so a crashed or killed test run never leaves an apiserver or etcd behind.
    const identity = opts.runAs ? [`--reuid=${opts.runAs}`, `--regid=${opts.runAs}`, '--init-groups'] : [];
    this.child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', ...identity, '--', opts.command, ...opts.args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.pipe(this.log, { end: false });
    this.child.stderr?.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitStatus = code ?? signal ?? 'unknown';
        live.delete(this);
        resolve(this.exitStatus);
      });
      this.child.on('error', (err) => {
        this.log.write(`\n[harness] could not start ${opts.command}: ${err.message}\n`);
        this.exitStatus = `spawn error: ${err.message}`;
        live.delete(this);
        resolve(this.exitStatus);
      });
    });
    live.add(this);
  }

  static start(opts: StartOptions): ManagedProcess {
    return new ManagedProcess(opts);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The exit code or signal, or undefined while the process runs. */
  get exitCode(): number | string | undefined {
    return this.exitStatus;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  waitForExit(): Promise<number | string> {
    return this.exited;
  }

  /** Sends `signal` and waits; escalates to SIGKILL after `graceMs`. Safe to call twice. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    if (!this.log.closed) {
      this.log.end();
      await once(this.log, 'close').catch(() => undefined);
    }
  }

  /** Sends a signal without waiting, e.g. SIGSTOP to freeze a server so clients time out. */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Stops the process at once, as a crash or an OOM kill would. */
  kill(): Promise<void> {
    return this.stop('SIGKILL', 0);
  }
}

/**
 * Runs one of the harness's build scripts (build-control-plane.sh, make-pause.sh, ...), which
 * print their result (a directory, an image) on the last line of stdout and their progress on
 * stderr. A failure is a HarnessError naming `step`, with the end of the script's stderr.
 */
export async function runScript(path: string, step: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('bash', [path], { maxBuffer: 16 << 20 });
    return stdout.trim().split('\n').at(-1) ?? '';
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new HarnessError(step, `${path} failed\n${(e.stderr || e.message).slice(-3000)}`);
  }
}

/** Whether a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops every process the harness started in this Node process. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

/** Synchronous last resort for the 'exit' event, where no promise can be awaited. */
function killAllNow(): void {
  for (const p of live) {
    if (p.pid) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

let handlersInstalled = false;
/**
 * Installs SIGINT/SIGTERM handlers that stop every started process and run `extraCleanup`
 * before exiting, plus an 'exit' hook that kills whatever is still alive.
 */
export function installSignalCleanup(extraCleanup: () => Promise<void> = async () => {}): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const onSignal = (signal: NodeJS.Signals) => {
    void (async () => {
      try {
        await extraCleanup();
        await stopAll();
      } finally {
        process.exit(signal === 'SIGINT' ? 130 : 143);
      }
    })();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', killAllNow);
}

/** The last lines of a log, for error messages; a placeholder when there is none. */
export function logTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log written)';
  }
}

/**
 * Removes temp directories named `<prefix><pid>-…` whose owning process is gone: what a harness
 * killed without a chance to clean up left behind.
 */
export function sweepStaleTempDirs(prefix: string): void {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || isAlive(pid)) continue;
    rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
}
