/**
 * A real Kubernetes control plane for tests and the local environment: one etcd and one
 * kube-apiserver on free loopback ports, the same arrangement as controller-runtime's envtest.
 * Several can run at once; each is fully independent (its own etcd), so two of them are two
 * "regions".
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { assertPortFree, freePort } from './ports.ts';
import { HarnessError, logTail, ManagedProcess, runScript, sweepStaleTempDirs } from './processes.ts';
import { waitFor } from './wait.ts';

const here = dirname(fileURLToPath(import.meta.url));
const TEMP_PREFIX = 'failover-cp-';

export interface ControlPlaneOptions {
  /** A name for messages and the kubeconfig context, such as "region-a". */
  name?: string;
  /** Where to keep data, certificates and logs. Default: a fresh temp directory, removed on stop. */
  dir?: string;
  /** Fixed ports; free ones are chosen when omitted. */
  ports?: { etcd?: number; etcdPeer?: number; apiserver?: number };
  /** How long to wait for /readyz. Two cores may need most of a minute. */
  readyTimeoutMs?: number;
  /**
   * Serve a cluster that runs pods (local-cluster.ts): listen on `address`, where pods reach it
   * through the `kubernetes` Service, with the ServiceAccount admission and the Node authorizer
   * on, as a real cluster has them.
   */
  pods?: { address: string; serviceCidr: string; kubeletClient: { cert: string; key: string } };
}

/** Builds (or finds in the cache) kube-apiserver and etcd, and returns their directory. */
export async function controlPlaneBinaries(): Promise<string> {
  const fromEnv = process.env.FAILOVER_CONTROL_PLANE_BIN;
  if (fromEnv) return fromEnv;
  const dir = await runScript(join(here, 'build-control-plane.sh'), 'build control plane');
  if (!existsSync(join(dir, 'kube-apiserver')))
    throw new HarnessError('build control plane', `no kube-apiserver in ${dir}`);
  return dir;
}

export class ControlPlane {
  readonly name: string;
  readonly dir: string;
  readonly server: string;
  readonly caPath: string;
  readonly adminToken: string;
  readonly kubeconfigPath: string;
  readonly ports: { etcd: number; etcdPeer: number; apiserver: number };
  private etcd?: ManagedProcess;
  private apiserver?: ManagedProcess;
  private readonly extraApiServers: ManagedProcess[] = [];
  private readonly ownsDir: boolean;
  private readonly bin: string;
  private readonly readyTimeoutMs: number;
  private readonly pods: ControlPlaneOptions['pods'];
  /** Where kube-apiserver listens: loopback, or the address pods reach. */
  readonly address: string;

  private constructor(
    bin: string,
    opts: Required<Pick<ControlPlaneOptions, 'name' | 'readyTimeoutMs'>> &
      Pick<ControlPlaneOptions, 'pods'> & { dir: string; ownsDir: boolean },
    ports: { etcd: number; etcdPeer: number; apiserver: number },
  ) {
    this.bin = bin;
    this.name = opts.name;
    this.dir = opts.dir;
    this.ownsDir = opts.ownsDir;
    this.readyTimeoutMs = opts.readyTimeoutMs;
    this.ports = ports;
    this.pods = opts.pods;
    this.address = opts.pods?.address ?? '127.0.0.1';
    this.server = `https://${this.address}:${ports.apiserver}`;
    this.caPath = join(this.dir, 'certs', 'apiserver.crt');
    this.kubeconfigPath = join(this.dir, 'kubeconfig');
    this.adminToken = randomBytes(24).toString('hex');
  }

  /** Starts etcd and kube-apiserver and resolves once /readyz answers ok. */
  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const bin = await controlPlaneBinaries();
    sweepStaleTempDirs(TEMP_PREFIX);
    const name = opts.name ?? 'local';
    const ownsDir = opts.dir === undefined;
    const dir = resolve(
      opts.dir ?? join(tmpdir(), `${TEMP_PREFIX}${process.pid}-${name}-${randomBytes(3).toString('hex')}`),
    );
    mkdirSync(dir, { recursive: true });
    const ports = {
      etcd: opts.ports?.etcd ?? (await freePort()),
      etcdPeer: opts.ports?.etcdPeer ?? (await freePort()),
      apiserver: opts.ports?.apiserver ?? (await freePort()),
    };
    const cp = new ControlPlane(
      bin,
      { name, dir, ownsDir, readyTimeoutMs: opts.readyTimeoutMs ?? 120_000, pods: opts.pods },
      ports,
    );
    try {
      cp.writeCredentials();
      await cp.startEtcd();
      await cp.startApiServer();
      cp.writeKubeconfig(cp.kubeconfigPath, 'admin', cp.adminToken);
      return cp;
    } catch (err) {
      // Keep the logs the error points at while this process lives; remove them when it exits.
      await cp.stop({ keepDir: true });
      if (ownsDir && !process.env.FAILOVER_KEEP_DIRS) {
        process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
      }
      throw err;
    }
  }

  private writeCredentials(): void {
    mkdirSync(join(this.dir, 'certs'), { recursive: true });
    // One RSA key signs and verifies service account tokens.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeFileSync(join(this.dir, 'sa.key'), privateKey.export({ type: 'pkcs1', format: 'pem' }), {
      mode: 0o600,
    });
    writeFileSync(join(this.dir, 'tokens.csv'), `${this.adminToken},admin,admin,system:masters\n`, {
      mode: 0o600,
    });
  }

  private async startEtcd(): Promise<void> {
    const step = `start etcd (${this.name})`;
    await assertPortFree(this.ports.etcd, step);
    await assertPortFree(this.ports.etcdPeer, step);
    const client = `http://127.0.0.1:${this.ports.etcd}`;
    const peer = `http://127.0.0.1:${this.ports.etcdPeer}`;
    this.etcd = ManagedProcess.start({
      name: `etcd (${this.name})`,
      command: join(this.bin, 'etcd'),
      logPath: join(this.dir, 'etcd.log'),
      args: [
        `--name=${this.name}`,
        `--data-dir=${join(this.dir, 'etcd')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        `--listen-peer-urls=${peer}`,
        `--initial-advertise-peer-urls=${peer}`,
        `--initial-cluster=${this.name}=${peer}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
    });
    await this.waitReady(this.etcd, step, async () => {
      const res = await fetch(`${client}/health`);
      return res.ok && ((await res.json()) as { health?: string }).health === 'true';
    });
  }

  /** The pids of etcd and the (first) kube-apiserver, for a benchmark's CPU figures. */
  pids(): { etcd?: number; apiserver?: number } {
    return { etcd: this.etcd?.pid, apiserver: this.apiserver?.pid };
  }

  /** Starts kube-apiserver against the running etcd; used again after `stopApiServer`. */
  async startApiServer(): Promise<void> {
    if (this.apiserver?.running) return;
    this.apiserver = await this.launchApiServer(this.ports.apiserver, 'kube-apiserver');
  }

  /**
   * Starts a second kube-apiserver on the same etcd, as in an HA control plane. Writes made
   * through it while the first is down are exactly what a client of the first one missed.
   */
  async addApiServer(): Promise<{ server: string; kubeConfig: () => KubeConfig; stop: () => Promise<void> }> {
    const port = await freePort();
    const proc = await this.launchApiServer(port, `kube-apiserver-${port}`);
    this.extraApiServers.push(proc);
    const server = `https://${this.address}:${port}`;
    return {
      server,
      kubeConfig: () => this.kubeConfig(this.adminToken, 'admin', server),
      stop: () => proc.stop(),
    };
  }

  private async launchApiServer(port: number, logName: string): Promise<ManagedProcess> {
    const step = `start kube-apiserver (${this.name})`;
    await assertPortFree(port, step, this.address);
    const apiserver = ManagedProcess.start({
      name: `kube-apiserver (${this.name})`,
      command: join(this.bin, 'kube-apiserver'),
      logPath: join(this.dir, `${logName}.log`),
      args: [
        `--etcd-servers=http://127.0.0.1:${this.ports.etcd}`,
        `--bind-address=${this.address}`,
        `--advertise-address=${this.address}`,
        `--secure-port=${port}`,
        `--cert-dir=${join(this.dir, 'certs')}`,
        `--service-cluster-ip-range=${this.pods?.serviceCidr ?? '10.0.0.0/24'}`,
        '--allow-privileged=true',
        '--service-account-issuer=https://kubernetes.default.svc',
        `--service-account-key-file=${join(this.dir, 'sa.key')}`,
        `--service-account-signing-key-file=${join(this.dir, 'sa.key')}`,
        `--token-auth-file=${join(this.dir, 'tokens.csv')}`,
        // FAILOVER_APISERVER_PROFILING=1: /debug/pprof on, for a benchmark's CPU profile of it.
        `--profiling=${process.env.FAILOVER_APISERVER_PROFILING === '1'}`,
        ...(this.pods
          ? [
              '--authorization-mode=Node,RBAC',
              '--kubelet-preferred-address-types=InternalIP',
              // Logs and exec go to the kubelet, which takes this certificate, not anonymous calls.
              `--kubelet-client-certificate=${this.pods.kubeletClient.cert}`,
              `--kubelet-client-key=${this.pods.kubeletClient.key}`,
            ]
          : [
              '--authorization-mode=RBAC',
              // No controller-manager runs, so nothing would create default service accounts,
              // and no Service routes to the endpoints the reconciler would publish.
              '--disable-admission-plugins=ServiceAccount',
              '--endpoint-reconciler-type=none',
            ]),
      ],
    });
    await this.waitReady(apiserver, step, async () => {
      if (!existsSync(this.caPath)) return false;
      return (await this.get('/readyz', this.adminToken, `https://${this.address}:${port}`)).status === 200;
    });
    return apiserver;
  }

  /** Stops kube-apiserver (etcd keeps the data), as an outage of the API server would. */
  async stopApiServer(): Promise<void> {
    await this.apiserver?.stop();
  }

  /** Kills kube-apiserver without a graceful shutdown. */
  async killApiServer(): Promise<void> {
    await this.apiserver?.kill();
  }

  get apiServerRunning(): boolean {
    return this.apiserver?.running ?? false;
  }

  private async waitReady(proc: ManagedProcess, step: string, ready: () => Promise<boolean>): Promise<void> {
    try {
      await waitFor(
        async () => {
          if (!proc.running) {
            throw new HarnessError(
              step,
              `exited early with ${proc.exitCode}:\n${logTail(proc.logPath)}`,
              proc.logPath,
            );
          }
          return ready();
        },
        { description: `${proc.name} to become ready`, timeoutMs: this.readyTimeoutMs, intervalMs: 250 },
      );
    } catch (err) {
      await proc.stop();
      if (err instanceof HarnessError) throw err;
      throw new HarnessError(
        step,
        `never became ready: ${(err as Error).message}\n${logTail(proc.logPath)}`,
        proc.logPath,
      );
    }
  }

  /** A GET against the API server with the admin token; for readiness checks and debugging. */
  get(
    path: string,
    token = this.adminToken,
    server = this.server,
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolveGet, reject) => {
      const req = httpsRequest(
        `${server}${path}`,
        { ca: readFileSync(this.caPath), headers: { authorization: `Bearer ${token}` }, timeout: 5_000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * A CPU profile of the API server over `seconds` (pprof format, for `go tool pprof`): needs
   * FAILOVER_APISERVER_PROFILING=1 when it started.
   */
  cpuProfile(seconds: number): Promise<Buffer> {
    return new Promise((resolveGet, reject) => {
      const req = httpsRequest(
        `${this.server}/debug/pprof/profile?seconds=${seconds}`,
        { ca: readFileSync(this.caPath), headers: { authorization: `Bearer ${this.adminToken}` } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            res.statusCode === 200
              ? resolveGet(Buffer.concat(chunks))
              : reject(
                  new Error(`pprof: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 200)}`),
                ),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  /** Writes a kubeconfig for `user` authenticating with `token`. */
  writeKubeconfig(path: string, user: string, token: string, namespace = 'default'): string {
    const yaml = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      `- name: ${this.name}`,
      '  cluster:',
      `    server: ${this.server}`,
      `    certificate-authority: ${this.caPath}`,
      'users:',
      `- name: ${user}`,
      '  user:',
      `    token: ${token}`,
      'contexts:',
      `- name: ${this.name}`,
      '  context:',
      `    cluster: ${this.name}`,
      `    user: ${user}`,
      `    namespace: ${namespace}`,
      `current-context: ${this.name}`,
      '',
    ].join('\n');
    writeFileSync(path, yaml, { mode: 0o600 });
    return path;
  }

  /** A client configuration; the admin's unless another token is given. */
  kubeConfig(token = this.adminToken, user = 'admin', server = this.server): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: this.name, server, caFile: this.caPath }],
      users: [{ name: user, token }],
      contexts: [{ name: this.name, cluster: this.name, user, namespace: 'default' }],
      currentContext: this.name,
    });
    return kc;
  }

  /** Mints a token for a ServiceAccount in this control plane; see `mintServiceAccountToken`. */
  mintServiceAccountToken(
    namespace: string,
    serviceAccount: string,
    expirationSeconds = 3600,
  ): Promise<string> {
    return mintServiceAccountToken(this.kubeConfig(), namespace, serviceAccount, expirationSeconds);
  }

  /** Stops kube-apiserver, then etcd, and removes the temp directory it created. */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    await Promise.all(this.extraApiServers.map((p) => p.stop()));
    await this.apiserver?.stop();
    await this.etcd?.stop();
    if (this.ownsDir && !opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Mints a token for a ServiceAccount (created if missing) through the TokenRequest API, the way
 * a pod's projected token is made. It carries only the permissions RBAC grants that account.
 */
export async function mintServiceAccountToken(
  admin: KubeConfig,
  namespace: string,
  serviceAccount: string,
  expirationSeconds = 3600,
): Promise<string> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(ignoreConflict);
  await core
    .createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } })
    .catch(ignoreConflict);
  const res = await core.createNamespacedServiceAccountToken({
    namespace,
    name: serviceAccount,
    body: { spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds } },
  });
  const token = res.status?.token;
  if (!token) throw new HarnessError('mint token', `no token returned for ${namespace}/${serviceAccount}`);
  return token;
}

function ignoreConflict(err: unknown): void {
  if ((err as { code?: number }).code !== 409) throw err;
}
