/**
 * A single-node Kubernetes cluster on this machine that runs the chart's pods for real: the test
 * control plane (etcd, kube-apiserver) plus kube-controller-manager, kube-scheduler, kube-proxy
 * and a kubelet, all built from Go modules (build-node.sh), with Debian's containerd and runc
 * and a CNI bridge. No registry is needed: images are imported into containerd from the local
 * image store (podman/buildah), the pod sandbox image included (hack/image/make-pause.sh).
 *
 * Network: a bridge `fo-br0` on 10.244.0.1/24. Pods get addresses from .100 up and reach the API
 * server through the `kubernetes` Service (kube-proxy, iptables) at 10.96.0.1; the API server
 * listens on the bridge address. `hostAddress(n)` adds 10.244.0.n to the bridge for servers on
 * the host that pods must reach (PostgreSQL, BIND): the "other regions" of a test.
 *
 * One at a time per machine (the bridge and subnet are fixed); `stop` removes everything it made,
 * and a start first sweeps what a killed run left behind.
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { ControlPlane } from './control-plane.ts';
import { freePort } from './ports.ts';
import { HarnessError, isAlive, logTail, ManagedProcess, runScript } from './processes.ts';
import { waitFor } from './wait.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..', '..');
const run = promisify(execFile);

const BRIDGE = 'fo-br0';
export const NODE_ADDRESS = '10.244.0.1';
const POD_SUBNET = '10.244.0.0/24';
const SERVICE_CIDR = '10.96.0.0/24';
const NODE_NAME = 'local-node';
const TEMP_PREFIX = 'failover-cluster-';
/**
 * Root's own record of a running cluster: `owner` names its directory (so a later run can sweep
 * what a killed one left), `sysctls.json` the kernel settings from before it started.
 */
const STATE_DIR = '/run/failover-local-cluster';
const OWNER_FILE = join(STATE_DIR, 'owner');
const SYSCTLS_FILE = join(STATE_DIR, 'sysctls.json');
/**
 * What the kubelet (kernel panics, overcommit), kube-proxy and the CNI bridge (forwarding,
 * bridged traffic through iptables) change machine-wide; put back when the cluster goes.
 */
const SYSCTLS = [
  'vm/overcommit_memory',
  'kernel/panic',
  'kernel/panic_on_oops',
  'net/ipv4/ip_forward',
  'net/ipv4/conf/all/route_localnet',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
];

export interface LocalClusterOptions {
  /** Progress lines ("building kubelet", "node Ready"); default: none. */
  log?: (line: string) => void;
}

/** What a pod-running cluster needs from the machine, checked before anything starts. */
export function missingClusterPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (containerd, the kubelet and the CNI bridge need it)');
  for (const [bin, pkg] of [
    ['containerd', 'containerd'],
    ['ctr', 'containerd'],
    ['runc', 'runc'],
    ['buildah', 'buildah'],
    ['iptables', 'iptables'],
    ['gcc', 'gcc'],
  ] as const) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      missing.push(`${bin} (apt-get install ${pkg})`);
    }
  }
  for (const plugin of ['bridge', 'host-local', 'loopback', 'portmap'])
    if (!existsSync(join('/usr/lib/cni', plugin)))
      missing.push(`/usr/lib/cni/${plugin} (apt-get install containernetworking-plugins)`);
  return missing;
}

/**
 * A CA the kubelet trusts for client certificates, and the API server's certificate from it
 * (system:masters), for logs and exec through the kubelet.
 */
function kubeletClientCertificate(dir: string): { cert: string; key: string } {
  const pki = join(dir, 'pki');
  mkdirSync(pki, { recursive: true });
  const f = (name: string) => join(pki, name);
  const openssl = (...args: string[]) => sh('openssl', args);
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=kubelet-client-ca',
    '-keyout',
    f('client-ca.key'),
    '-out',
    f('client-ca.crt'),
  );
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/O=system:masters/CN=kube-apiserver-kubelet-client',
    '-keyout',
    f('apiserver-kubelet-client.key'),
    '-out',
    f('apiserver-kubelet-client.csr'),
  );
  openssl(
    'x509',
    '-req',
    '-days',
    '2',
    '-in',
    f('apiserver-kubelet-client.csr'),
    '-CA',
    f('client-ca.crt'),
    '-CAkey',
    f('client-ca.key'),
    '-CAcreateserial',
    '-out',
    f('apiserver-kubelet-client.crt'),
  );
  return { cert: f('apiserver-kubelet-client.crt'), key: f('apiserver-kubelet-client.key') };
}

function readSysctls(): Record<string, string> {
  const values: Record<string, string> = {};
  for (const key of SYSCTLS) {
    const path = join('/proc/sys', key);
    if (existsSync(path)) values[key] = readFileSync(path, 'utf8').trim();
  }
  return values;
}

function restoreSysctls(values: Record<string, string>): void {
  for (const [key, value] of Object.entries(values)) {
    try {
      if (readFileSync(join('/proc/sys', key), 'utf8').trim() !== value)
        writeFileSync(join('/proc/sys', key), value);
    } catch {
      // gone with its module (br_netfilter), or not ours to write
    }
  }
}

function sh(command: string, args: string[]): void {
  execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function quietly(command: string, args: string[]): void {
  try {
    sh(command, args);
  } catch {
    // already gone
  }
}

export class LocalCluster {
  readonly controlPlane: ControlPlane;
  readonly dir: string;
  private readonly sock: string;
  private readonly processes: ManagedProcess[] = [];
  private readonly nodeBin: string;
  private readonly log: (line: string) => void;
  private readonly addresses = new Set<string>();

  private constructor(cp: ControlPlane, dir: string, nodeBin: string, log: (line: string) => void) {
    this.controlPlane = cp;
    this.dir = dir;
    this.sock = join(dir, 'containerd.sock');
    this.nodeBin = nodeBin;
    this.log = log;
  }

  get kubeconfigPath(): string {
    return this.controlPlane.kubeconfigPath;
  }

  /** Builds what is missing (cached), starts every part, and waits for the node to be Ready. */
  static async start(opts: LocalClusterOptions = {}): Promise<LocalCluster> {
    const log = opts.log ?? (() => {});
    const missing = missingClusterPrerequisites();
    if (missing.length > 0)
      throw new HarnessError('local cluster prerequisites', `missing: ${missing.join('; ')}`);
    LocalCluster.sweep();
    log('node binaries: kube-scheduler, kube-controller-manager, kubelet, kube-proxy (cached builds)');
    const nodeBin = await runScript(join(here, 'build-node.sh'), 'build node binaries');
    const pause = await runScript(join(repo, 'hack', 'image', 'make-pause.sh'), 'make the pause image');

    const dir = join(tmpdir(), `${TEMP_PREFIX}${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
    writeFileSync(OWNER_FILE, dir);
    writeFileSync(SYSCTLS_FILE, JSON.stringify(readSysctls()));
    // The bridge before the control plane: the API server listens on its address.
    sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    sh('ip', ['addr', 'add', `${NODE_ADDRESS}/24`, 'dev', BRIDGE]);
    sh('ip', ['link', 'set', BRIDGE, 'up']);
    let cp: ControlPlane | undefined;
    let cluster: LocalCluster | undefined;
    try {
      log('control plane: etcd and kube-apiserver on the bridge address');
      cp = await ControlPlane.start({
        name: 'local-cluster',
        dir: join(dir, 'control-plane'),
        pods: {
          address: NODE_ADDRESS,
          serviceCidr: SERVICE_CIDR,
          kubeletClient: kubeletClientCertificate(dir),
        },
      });
      cluster = new LocalCluster(cp, dir, nodeBin, log);
      await cluster.startNode(pause);
      return cluster;
    } catch (err) {
      // stop() ends with the sweep; without a cluster yet, only the control plane and the sweep.
      if (cluster) await cluster.stop();
      else {
        await cp?.stop({ keepDir: true });
        LocalCluster.sweep();
      }
      throw err;
    }
  }

  private spawn(name: string, command: string, args: string[]): ManagedProcess {
    const proc = ManagedProcess.start({ name, command, args, logPath: join(this.dir, `${name}.log`) });
    this.processes.push(proc);
    return proc;
  }

  private async waitUp(proc: ManagedProcess, what: string, ready: () => Promise<unknown>): Promise<void> {
    await waitFor(
      async () => {
        if (!proc.running)
          throw new HarnessError(
            `start ${proc.name}`,
            `exited with ${proc.exitCode}:\n${logTail(proc.logPath)}`,
            proc.logPath,
          );
        return ready().catch(() => false);
      },
      { description: what, timeoutMs: 180_000, intervalMs: 500 },
    );
  }

  private async startNode(pauseImage: string): Promise<void> {
    const d = this.dir;
    const kubeconfig = this.kubeconfigPath;
    mkdirSync(join(d, 'cni'), { recursive: true });
    writeFileSync(
      join(d, 'cni', '10-failover.conflist'),
      JSON.stringify({
        cniVersion: '0.4.0',
        name: 'failover-local',
        plugins: [
          {
            type: 'bridge',
            bridge: BRIDGE,
            isGateway: true,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              // .2-.99 are the host's: addresses for servers pods reach (hostAddress).
              ranges: [[{ subnet: POD_SUBNET, rangeStart: '10.244.0.100', gateway: NODE_ADDRESS }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: join(d, 'cni-ipam'),
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    writeFileSync(
      join(d, 'containerd.toml'),
      [
        'version = 2',
        `root = "${d}/containerd/root"`,
        `state = "${d}/containerd/state"`,
        '[grpc]',
        `  address = "${this.sock}"`,
        '[plugins."io.containerd.grpc.v1.cri"]',
        `  sandbox_image = "${pauseImage}"`,
        // Without CAP_SYS_RESOURCE (a sandbox, a container) runc cannot lower oom_score_adj.
        '  restrict_oom_score_adj = true',
        '  [plugins."io.containerd.grpc.v1.cri".containerd]',
        '    snapshotter = "overlayfs"',
        '    default_runtime_name = "runc"',
        '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '      runtime_type = "io.containerd.runc.v2"',
        '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
        '        SystemdCgroup = false',
        // runc's state under the cluster's directory: a sweep finds exactly its containers.
        `        Root = "${d}/runc"`,
        '  [plugins."io.containerd.grpc.v1.cri".cni]',
        '    bin_dir = "/usr/lib/cni"',
        `    conf_dir = "${d}/cni"`,
        '',
      ].join('\n'),
    );
    this.log('containerd');
    const containerd = this.spawn('containerd', 'containerd', ['--config', join(d, 'containerd.toml')]);
    await this.waitUp(containerd, 'containerd to answer', () => this.ctr(['version']));
    await this.importImage(pauseImage);

    const [kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics, schedulerPort, kcmPort] =
      await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    const cpDir = this.controlPlane.dir;
    this.log('kube-controller-manager, kube-scheduler');
    const kcm = this.spawn('kube-controller-manager', join(this.nodeBin, 'kube-controller-manager'), [
      `--kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      // The token controller signs with the key the API server verifies with.
      `--service-account-private-key-file=${join(cpDir, 'sa.key')}`,
      `--root-ca-file=${this.controlPlane.caPath}`,
      '--use-service-account-credentials=true',
      '--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller',
    ]);
    const scheduler = this.spawn('kube-scheduler', join(this.nodeBin, 'kube-scheduler'), [
      `--kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${schedulerPort}`,
    ]);
    writeFileSync(
      join(d, 'kube-proxy.yaml'),
      [
        'apiVersion: kubeproxy.config.k8s.io/v1alpha1',
        'kind: KubeProxyConfiguration',
        `clientConnection: {kubeconfig: "${kubeconfig}"}`,
        'mode: iptables',
        `clusterCIDR: ${POD_SUBNET}`,
        `hostnameOverride: ${NODE_NAME}`,
        `healthzBindAddress: 127.0.0.1:${proxyHealthz}`,
        `metricsBindAddress: 127.0.0.1:${proxyMetrics}`,
        // Leave the machine's conntrack settings alone, and loopback unreachable from the bridge
        // (localhost NodePorts would set route_localnet: 127.0.0.1 open to pods).
        'conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}',
        'iptables: {localhostNodePorts: false}',
        '',
      ].join('\n'),
    );
    this.log('kube-proxy');
    const proxy = this.spawn('kube-proxy', join(this.nodeBin, 'kube-proxy'), [
      `--config=${join(d, 'kube-proxy.yaml')}`,
    ]);
    writeFileSync(
      join(d, 'kubelet.yaml'),
      [
        'apiVersion: kubelet.config.k8s.io/v1beta1',
        'kind: KubeletConfiguration',
        `address: ${NODE_ADDRESS}`,
        `port: ${kubeletPort}`,
        'readOnlyPort: 0',
        'healthzBindAddress: 127.0.0.1',
        `healthzPort: ${kubeletHealthz}`,
        `authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: "${d}/pki/client-ca.crt"}}`,
        'authorization: {mode: Webhook}',
        'cgroupDriver: cgroupfs',
        // No QoS or node-allocatable cgroups: the machine's cgroups are not this test's to shape.
        'cgroupsPerQOS: false',
        'enforceNodeAllocatable: []',
        'failSwapOn: false',
        `containerRuntimeEndpoint: unix://${this.sock}`,
        `podLogsDir: ${d}/pod-logs`,
        // The machine's disk is shared: no eviction or image GC because another test filled it.
        'evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}',
        'imageGCHighThresholdPercent: 100',
        'imageGCLowThresholdPercent: 99',
        'localStorageCapacityIsolation: false',
        'serializeImagePulls: false',
        'maxPods: 40',
        '',
      ].join('\n'),
    );
    this.log('kubelet');
    const kubelet = this.spawn('kubelet', join(this.nodeBin, 'kubelet'), [
      `--config=${join(d, 'kubelet.yaml')}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${d}/kubelet`,
      `--cert-dir=${d}/kubelet-pki`,
      `--hostname-override=${NODE_NAME}`,
      `--node-ip=${NODE_ADDRESS}`,
    ]);
    const core = this.controlPlane.kubeConfig().makeApiClient(CoreV1Api);
    await this.waitUp(kubelet, `node ${NODE_NAME} to be Ready`, async () => {
      for (const p of [kcm, scheduler, proxy])
        if (!p.running) throw new HarnessError(`start ${p.name}`, logTail(p.logPath), p.logPath);
      const node = await core.readNode({ name: NODE_NAME });
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    });
    // Pods get a token only once the default ServiceAccount and the root CA ConfigMap exist.
    await this.waitUp(kcm, 'the default ServiceAccount and kube-root-ca.crt', async () => {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
      await core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: 'default' });
      return true;
    });
    this.log(`node ${NODE_NAME} Ready`);
  }

  private async ctr(args: string[]): Promise<string> {
    const { stdout } = await run('ctr', ['--address', this.sock, '--namespace', 'k8s.io', ...args], {
      maxBuffer: 16 << 20,
    });
    return stdout;
  }

  /**
   * The engine to build images for this cluster with (ENGINE of hack/image/build.sh): podman or
   * buildah, whose store `importImage` reads, even where a Docker engine runs too.
   */
  static readonly imageEngine = (() => {
    try {
      execFileSync('sh', ['-c', 'command -v podman'], { stdio: 'ignore' });
      return 'podman';
    } catch {
      return 'buildah';
    }
  })();

  /** Copies an image from the local image store (podman/buildah) into the node's containerd. */
  async importImage(image: string): Promise<void> {
    const archive = join(this.dir, 'image.tar');
    rmSync(archive, { force: true });
    await run('buildah', ['push', '--quiet', image, `docker-archive:${archive}:${image}`], {
      maxBuffer: 16 << 20,
    });
    await this.ctr(['images', 'import', archive]);
    rmSync(archive, { force: true });
  }

  /**
   * An address on the host that pods reach (10.244.0.n, n < 100): servers of the test's "other
   * regions" listen there.
   */
  hostAddress(n: number): string {
    if (!Number.isInteger(n) || n < 2 || n > 99) throw new Error(`host address index ${n} is not in 2..99`);
    const address = `10.244.0.${n}`;
    if (!this.addresses.has(address)) {
      sh('ip', ['addr', 'add', `${address}/32`, 'dev', BRIDGE]);
      this.addresses.add(address);
    }
    return address;
  }

  /** The node's containers, by the kubelet's log directory names: for messages. */
  podLogs(namespace: string, podPrefix: string): string {
    const root = join(this.dir, 'pod-logs');
    if (!existsSync(root)) return '';
    return readdirSync(root)
      .filter((p) => p.startsWith(`${namespace}_${podPrefix}`))
      .flatMap((p) =>
        readdirSync(join(root, p)).map((c) => `--- ${p}/${c}\n${logTail(join(root, p, c, '0.log'), 20)}`),
      )
      .join('\n');
  }

  /**
   * Stops everything: the controllers, then every pod through the API (the kubelet tears their
   * sandboxes and networks down), then the other processes, then what a forced stop leaves:
   * containers, mounts, iptables rules, the bridge.
   */
  async stop(): Promise<void> {
    // The controllers first, or ReplicaSets would replace the pods deleted below.
    for (const name of ['kube-controller-manager', 'kube-scheduler'])
      await this.processes.find((p) => p.name === name)?.stop();
    const kubelet = this.processes.find((p) => p.name === 'kubelet');
    if (kubelet?.running && this.controlPlane.apiServerRunning) {
      const core = this.controlPlane.kubeConfig().makeApiClient(CoreV1Api);
      try {
        const pods = await core.listPodForAllNamespaces();
        await Promise.all(
          pods.items.map((p) =>
            core
              .deleteNamespacedPod({
                name: p.metadata?.name ?? '',
                namespace: p.metadata?.namespace ?? '',
                gracePeriodSeconds: 0,
              })
              .catch(() => undefined),
          ),
        );
        // Stopped tasks stay listed until the kubelet removes their containers a minute later.
        await waitFor(async () => !/\bRUNNING\b/.test(await this.ctr(['tasks', 'ls'])), {
          description: 'the kubelet to stop every container',
          timeoutMs: 60_000,
          intervalMs: 500,
        });
      } catch (err) {
        this.log(`pods did not all stop through the kubelet (${(err as Error).message}); forcing`);
      }
    }
    for (const name of ['kubelet', 'kube-proxy']) await this.processes.find((p) => p.name === name)?.stop();
    await this.removeContainers();
    await this.processes.find((p) => p.name === 'containerd')?.stop();
    await this.controlPlane.stop({ keepDir: true });
    LocalCluster.sweep();
  }

  private async removeContainers(): Promise<void> {
    const containerd = this.processes.find((p) => p.name === 'containerd');
    if (!containerd?.running) return;
    try {
      for (const id of (await this.ctr(['tasks', 'ls', '-q'])).split('\n').filter(Boolean)) {
        await this.ctr(['tasks', 'kill', '--signal', 'SIGKILL', id]).catch(() => undefined);
        await this.ctr(['tasks', 'delete', '--force', id]).catch(() => undefined);
      }
      for (const id of (await this.ctr(['containers', 'ls', '-q'])).split('\n').filter(Boolean))
        await this.ctr(['containers', 'delete', id]).catch(() => undefined);
    } catch (err) {
      this.log(`could not list containers: ${(err as Error).message}`);
    }
  }

  /**
   * Removes what a cluster run left on the machine, whether it stopped cleanly or was killed: its
   * containers (by runc's state under its directory) and their shims, mounts under its directory,
   * the kubelet's log links, sandbox network namespaces, the bridge, kube-proxy's iptables rules,
   * the kernel settings from before it started, and the directory. Nothing when no cluster of
   * this harness ran (no owner record).
   */
  static sweep(): void {
    const recorded = existsSync(OWNER_FILE) ? readFileSync(OWNER_FILE, 'utf8').trim() : '';
    if (!recorded) return;
    // Only a directory this harness names: the record is root's, but check it all the same.
    const match = new RegExp(
      `^${tmpdir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${TEMP_PREFIX}(\\d+)$`,
    ).exec(recorded);
    const dir = match ? recorded : '';
    const owner = Number(match?.[1]);
    if (dir && owner !== process.pid && isAlive(owner))
      throw new HarnessError(
        'local cluster',
        `another run (pid ${owner}) has the local cluster; one at a time per machine`,
      );
    if (dir) {
      // The shim gives runc <Root>/<containerd namespace> as its state directory.
      const runcRoot = join(dir, 'runc');
      for (const ns of existsSync(runcRoot) ? readdirSync(runcRoot) : []) {
        const root = join(runcRoot, ns);
        let ids: string[] = [];
        try {
          ids = execFileSync('runc', ['--root', root, 'list', '-q'], { encoding: 'utf8' })
            .split('\n')
            .filter(Boolean);
        } catch {
          // no runc state
        }
        for (const id of ids) quietly('runc', ['--root', root, 'delete', '--force', id]);
      }
      // Their shims name the cluster's containerd socket.
      quietly('pkill', ['-KILL', '-f', `containerd-shim-runc-v2 .*-address ${dir}/`]);
      const mounts = readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[1] ?? '')
        .filter((m) => m.startsWith(`${dir}/`))
        .reverse();
      for (const m of mounts) quietly('umount', ['-l', m]);
      // The kubelet links every container's log from /var/log/containers.
      const links = '/var/log/containers';
      for (const link of existsSync(links) ? readdirSync(links) : []) {
        try {
          if (readlinkSync(join(links, link)).startsWith(`${dir}/`))
            rmSync(join(links, link), { force: true });
        } catch {
          // not a link
        }
      }
      LocalCluster.keepLogs(dir);
      rmSync(dir, { recursive: true, force: true });
      // Sandboxes' network namespaces the kubelet did not get to tear down.
      for (const ns of existsSync('/run/netns') ? readdirSync('/run/netns') : [])
        if (ns.startsWith('cni-')) {
          quietly('umount', [join('/run/netns', ns)]);
          rmSync(join('/run/netns', ns), { force: true });
        }
    }
    quietly('ip', ['link', 'delete', BRIDGE]);
    LocalCluster.flushKubeProxyRules();
    if (existsSync(SYSCTLS_FILE)) restoreSysctls(JSON.parse(readFileSync(SYSCTLS_FILE, 'utf8')));
    rmSync(STATE_DIR, { recursive: true, force: true });
  }

  /** The components' logs, kept in .local/cluster-logs/ after the directory goes: for a failed CI run. */
  private static keepLogs(dir: string): void {
    const keep = join(repo, '.local', 'cluster-logs');
    try {
      rmSync(keep, { recursive: true, force: true });
      mkdirSync(keep, { recursive: true });
      for (const f of readdirSync(dir).filter((f) => f.endsWith('.log')))
        copyFileSync(join(dir, f), join(keep, f));
      const cp = join(dir, 'control-plane');
      for (const f of existsSync(cp) ? readdirSync(cp).filter((f) => f.endsWith('.log')) : [])
        copyFileSync(join(cp, f), join(keep, f));
    } catch {
      // best effort
    }
  }

  /** kube-proxy's chains (KUBE-*), as `kube-proxy --cleanup` would remove them. */
  private static flushKubeProxyRules(): void {
    for (const iptables of ['iptables', 'ip6tables'])
      for (const table of ['nat', 'filter', 'mangle']) {
        let rules: string[];
        try {
          rules = execFileSync(`${iptables}-save`, ['-t', table], { encoding: 'utf8' }).split('\n');
        } catch {
          continue;
        }
        const chains = rules.flatMap((l) => /^:(KUBE-\S+)/.exec(l)?.[1] ?? []);
        // Jumps from the built-in chains first, then the chains themselves, emptied first.
        for (const line of rules) {
          const jump = /^-A (\S+) (.*-j KUBE-\S+.*)$/.exec(line);
          if (jump && !jump[1]?.startsWith('KUBE-'))
            quietly('sh', ['-c', `${iptables} -t ${table} -D ${jump[1]} ${jump[2]}`]);
        }
        for (const chain of chains) quietly(iptables, ['-t', table, '-F', chain]);
        for (const chain of chains) quietly(iptables, ['-t', table, '-X', chain]);
      }
  }
}
