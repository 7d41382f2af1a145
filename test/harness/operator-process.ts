/**
 * Runs the operator as a real process, the way it runs in a cluster: its own Node.js, its own
 * kubeconfig, flags, JSON logs to a file and /metrics on a free loopback port.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from './ports.ts';
import { ManagedProcess } from './processes.ts';
import { waitFor } from './wait.ts';

const repo = resolve(import.meta.dirname, '..', '..');

/** The Node.js flags of the image's ENTRYPOINT: the tests run the operator as the image does. */
export const IMAGE_NODE_FLAGS: string[] = (() => {
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(join(repo, 'Dockerfile'), 'utf8'))?.[1];
  const argv = entrypoint ? (JSON.parse(entrypoint) as string[]) : [];
  return argv.slice(1).filter((a) => a.startsWith('--'));
})();

/** The allocator settings of the image's ENV (`MALLOC_ARENA_MAX`): they change its memory as much as the flags. */
export const IMAGE_ALLOCATOR_ENV: Record<string, string> = Object.fromEntries(
  [...readFileSync(join(repo, 'Dockerfile'), 'utf8').matchAll(/^ENV\s+(MALLOC_[A-Z_]+)=(\S+)\s*$/gm)].map(
    (m) => [m[1] as string, m[2] as string],
  ),
);

type StartOptions = {
  name: string;
  kubeconfig: string;
  dir: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Run as this system user (a database agent runs as the database's). */
  runAs?: string;
  /**
   * Run inside this network namespace (a region's agent beside its database): entering it needs
   * root, so the user is taken on inside it, as postgres.ts does for servers.
   */
  netns?: { name: string; address: string };
  /** The main module: the sources by default, or the image's compiled JavaScript (`make build`). */
  entry?: string;
  /** Node.js flags after the image's (IMAGE_NODE_FLAGS), to profile it say (`--cpu-prof`). */
  nodeFlags?: string[];
  /**
   * It may exit before it serves /healthz (armed to kill itself at a failpoint it can reach at
   * once): the start then returns with it exited, for the test to look at.
   */
  mayExit?: boolean;
};

export class OperatorProcess {
  readonly name: string;
  readonly httpPort: number;
  private readonly proc: ManagedProcess;

  /** Where its HTTP server is reached from this host: loopback, or its namespace's address. */
  private readonly httpHost: string;

  private constructor(name: string, proc: ManagedProcess, httpPort: number, httpHost = '127.0.0.1') {
    this.name = name;
    this.proc = proc;
    this.httpPort = httpPort;
    this.httpHost = httpHost;
  }

  static async start(options: StartOptions): Promise<OperatorProcess> {
    for (let attempt = 1; ; attempt++) {
      const op = await OperatorProcess.startOnce(options);
      if (op !== 'port-taken') return op;
      if (attempt === 3) throw new Error(`${options.name}: its HTTP port was taken three times over`);
    }
  }

  private static async startOnce(options: StartOptions): Promise<OperatorProcess | 'port-taken'> {
    const httpPort = await freePort();
    const args = [
      ...IMAGE_NODE_FLAGS,
      ...(options.nodeFlags ?? []),
      options.entry ?? join(repo, 'operator', 'src', 'main.ts'),
      `--kubeconfig=${options.kubeconfig}`,
      `--http-address=${options.netns ? '0.0.0.0' : '127.0.0.1'}:${httpPort}`,
      `--identity=${options.name}`,
      ...(options.args ?? []),
    ];
    const identity = options.runAs
      ? [`--reuid=${options.runAs}`, `--regid=${options.runAs}`, '--init-groups']
      : [];
    const proc = ManagedProcess.start({
      name: options.name,
      ...(options.netns
        ? {
            command: 'ip',
            args: [
              'netns',
              'exec',
              options.netns.name,
              'setpriv',
              '--pdeathsig',
              'SIGKILL',
              ...identity,
              '--',
              process.execPath,
              ...args,
            ],
          }
        : { command: process.execPath, args, ...(options.runAs ? { runAs: options.runAs } : {}) }),
      logPath: join(options.dir, `${options.name}.log`),
      env: { ...process.env, ...IMAGE_ALLOCATOR_ENV, ...options.env },
    });
    const op = new OperatorProcess(options.name, proc, httpPort, options.netns?.address);
    const started = await waitFor(
      async () => {
        if (!proc.running) {
          // The free port was taken between choosing it and binding it (another test's server).
          if (/EADDRINUSE/.test(op.logs()) && op.logs().includes(`:${httpPort}`)) return 'port-taken';
          if (options.mayExit) return true;
          throw new Error(`${options.name} exited: ${op.logs().slice(-2000)}`);
        }
        return (await fetch(`http://${op.httpHost}:${httpPort}/healthz`)).ok;
      },
      { description: `${options.name} to serve /healthz`, timeoutMs: 60_000 },
    );
    return started === 'port-taken' ? 'port-taken' : op;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Its command line as the kernel has it (/proc/PID/cmdline), arguments joined by spaces. */
  commandLine(): string {
    return readFileSync(`/proc/${this.proc.pid}/cmdline`, 'utf8').split('\0').join(' ');
  }

  get running(): boolean {
    return this.proc.running;
  }

  logs(): string {
    try {
      return readFileSync(this.proc.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  /** Parsed JSON log lines. */
  logEntries(): Record<string, unknown>[] {
    return this.logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** The exposition, or only the named families (`?name[]=`), which at scale is far cheaper. */
  async metrics(families: string[] = []): Promise<string> {
    const query = families.map((f) => `name[]=${encodeURIComponent(f)}`).join('&');
    return (
      await fetch(`http://${this.httpHost}:${this.httpPort}/metrics${query ? `?${query}` : ''}`)
    ).text();
  }

  /** Sum of a metric's samples whose labels include all of `labels`. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    let sum = 0;
    // A histogram's or summary's samples are named after their family plus a suffix.
    const families = [...new Set([name, name.replace(/_(count|sum|bucket)$/, '')])];
    for (const line of (await this.metrics(families)).split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.eE+-]+|NaN)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const text = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => text.includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  }

  async ready(): Promise<boolean> {
    try {
      return (await fetch(`http://${this.httpHost}:${this.httpPort}/readyz`)).ok;
    } catch {
      return false;
    }
  }

  /** SIGSTOP: the process stays but does nothing, as a hung or partitioned one would. */
  async freeze(): Promise<void> {
    this.proc.signal('SIGSTOP');
  }

  thaw(): void {
    this.proc.signal('SIGCONT');
  }

  stop(): Promise<void> {
    this.proc.signal('SIGCONT');
    return this.proc.stop('SIGTERM', 30_000);
  }

  kill(): Promise<void> {
    return this.proc.kill();
  }

  waitForExit(): Promise<number | string> {
    return this.proc.waitForExit();
  }
}
