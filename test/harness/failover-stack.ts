/**
 * The whole local two-region setup on one machine, for failover tests and `make demo`:
 *
 * - a Kubernetes control plane holding the policy (shared or its own);
 * - "region A" and "region B": a PostgreSQL primary on 127.0.0.11 and a streaming standby on
 *   127.0.0.12, same port, so an A record moving between the two addresses moves clients; with
 *   `primaryNetwork: 'netns'` region A is a network namespace instead (its own address, same
 *   port), whose network a test can make drop everything silently;
 * - a BIND server with a TSIG key holding the zone `failover.test`;
 * - observers as real processes (`--mode=observer`), each reaching the databases through its own
 *   TCP proxy, i.e. its own network path, which a test can cut;
 * - the operator as a real process.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pg from 'pg';
import type {
  AgentReport,
  FailoverPolicyStatus,
  FailoverReportSpec,
  ReplicaClusterStatus,
} from '../../operator/src/api/v1alpha1/index.ts';
import {
  failoverPolicyType,
  failoverReportType,
  replicaClusterType,
} from '../../operator/src/controllers/resources.ts';
import { DirectDnsVerifier, queryServer } from '../../operator/src/providers/dns/verifier.ts';
import { eventType } from '../../operator/src/runtime/events.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { type BindServer, startBind } from './bind.ts';
import { installCrds } from './crds.ts';
import { NetnsRegion } from './netns.ts';
import { OperatorProcess } from './operator-process.ts';
import { freePort } from './ports.ts';
import { type PostgresNodeName, type PostgresPair, postgresBinDir, startPostgresPair } from './postgres.ts';
import { TcpProxy } from './tcp-proxy.ts';
import { waitFor } from './wait.ts';
import { DnsWriteLoad } from './writers.ts';

const repo = resolve(import.meta.dirname, '..', '..');

// Where it lived first; tests and the demo import it from here.
export { DnsWriteLoad };

export const PRIMARY_ADDRESS = '127.0.0.11';
export const STANDBY_ADDRESS = '127.0.0.12';
export const ZONE = 'failover.test';
export const RECORD = `db.${ZONE}`;

export interface FailoverStackOptions {
  name: string;
  /** Where the policy lives, with the kubeconfig path operator and observers use. */
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
  namespace: string;
  observers?: string[];
  probeIntervalSeconds?: number;
  failureThreshold?: number;
  quorum?: number;
  maxLagSeconds?: number;
  maxLagBytes?: number;
  cooldownSeconds?: number;
  mode?: 'Automatic' | 'Manual';
  fencing?: 'ReadOnly' | 'Shutdown' | 'EpochOnly';
  ttlSeconds?: number;
  /** Extra flags for the operator process. */
  operatorArgs?: string[];
  /** Start the operator now (default true); tests that stage faults may start it later. */
  startOperator?: boolean;
  /**
   * Where region A's primary runs: on a loopback address (default), or inside a network
   * namespace of its own, so `isolatePrimary` can make it silent (packets dropped, not refused).
   */
  primaryNetwork?: 'loopback' | 'netns';
  /** Extra postgresql.conf settings for both servers (wal_log_hints for a rewind). */
  pgSettings?: Record<string, string | number>;
  /** spec.reprotect of the policy. */
  reprotect?: { mode?: 'Automatic' | 'RequireRequest' | 'Manual'; allowReclone?: boolean };
  /** spec.primaryLease of the policy. */
  primaryLease?: Record<string, number | boolean>;
  /**
   * With `primaryNetwork: 'netns'`: region A's agent runs inside region A's namespace, beside its
   * server, and region B's database is reachable from there (it also listens on the host's end of
   * the link, which region-b's ReplicaCluster names), so a rejoin of region A can run there.
   */
  agentsInRegion?: boolean;
  /** The main module of the operator, observers and agents: the sources, or compiled JavaScript. */
  entry?: string;
  /**
   * Where the servers listen, for an operator that runs elsewhere (pods of a local cluster):
   * each database's address, BIND's, and the networks PostgreSQL lets in. Default: loopback.
   */
  network?: { primary: string; standby: string; dns: string; clients: string[] };
  /** Apply the CRDs first (default); false where a Helm release installed them. */
  installCrds?: boolean;
}

/** Which server of the pair each ReplicaCluster is. */
const NODE_OF = { 'region-a': 'primary', 'region-b': 'standby' } as const;
export type StackCluster = keyof typeof NODE_OF;

/** An agent's report once it has compared its database with the primary's. */
export type AgentAssessment = AgentReport & { divergence: NonNullable<AgentReport['divergence']> };

/** Options without a default: absent unless given. */
type UndefaultedOption =
  | 'operatorArgs'
  | 'pgSettings'
  | 'reprotect'
  | 'primaryLease'
  | 'agentsInRegion'
  | 'entry'
  | 'network'
  | 'installCrds';

export class FailoverStack {
  readonly options: Required<Omit<FailoverStackOptions, UndefaultedOption | 'startOperator'>> &
    Pick<FailoverStackOptions, UndefaultedOption>;
  /** Database agents (`--mode=agent`) beside each server, once started. */
  readonly agents = new Map<StackCluster, OperatorProcess>();
  /** Each agent's own path to the API server, with `startAgent(…, { apiProxy: true })`. */
  readonly apiPaths = new Map<StackCluster, TcpProxy>();
  /** The path to each agent's peer port (what the other agent dials), with `peer: true`. */
  readonly peerPaths = new Map<StackCluster, TcpProxy>();
  private readonly peerPorts = new Map<StackCluster, number>();
  private agentRuns = 0;
  readonly client: KubeClient;
  readonly dir: string;
  readonly pair: PostgresPair;
  readonly bind: BindServer;
  /** Region A's network namespace, with `primaryNetwork: 'netns'`. */
  readonly region: NetnsRegion | undefined;
  readonly proxies = new Map<string, { primary: TcpProxy; standby: TcpProxy }>();
  readonly observers = new Map<string, OperatorProcess>();
  operator: OperatorProcess | undefined;
  private operatorRuns = 0;

  private constructor(
    options: FailoverStack['options'],
    client: KubeClient,
    dir: string,
    pair: PostgresPair,
    bind: BindServer,
    region: NetnsRegion | undefined,
  ) {
    this.options = options;
    this.client = client;
    this.dir = dir;
    this.pair = pair;
    this.bind = bind;
    this.region = region;
  }

  static async start(opts: FailoverStackOptions): Promise<FailoverStack> {
    const options = {
      observers: ['region-b', 'region-c'],
      probeIntervalSeconds: 1,
      failureThreshold: 3,
      quorum: 2,
      maxLagSeconds: 10,
      maxLagBytes: 16 * 1024 * 1024,
      cooldownSeconds: 3600,
      mode: 'Automatic' as const,
      fencing: 'ReadOnly' as const,
      ttlSeconds: 5,
      primaryNetwork: 'loopback' as const,
      ...opts,
    };
    const region = options.primaryNetwork === 'netns' ? NetnsRegion.create() : undefined;
    const dir = mkdtempSync(join(tmpdir(), `failover-stack-${process.pid}-`));
    const port = await freePort();
    const started = await Promise.allSettled([
      startPostgresPair({
        name: opts.name,
        hosts: {
          primary: region?.address ?? opts.network?.primary ?? PRIMARY_ADDRESS,
          standby: opts.network?.standby ?? STANDBY_ADDRESS,
        },
        ...(opts.network ? { clientNetworks: opts.network.clients } : {}),
        ports: { primary: port, standby: port },
        ...(opts.pgSettings ? { settings: opts.pgSettings } : {}),
        ...(region ? { namespaces: { primary: { name: region.name, clientNetwork: region.network } } } : {}),
        ...(region && opts.agentsInRegion ? { alsoListen: { standby: region.hostAddress } } : {}),
      }),
      startBind({ name: opts.name, zone: ZONE, ...(opts.network ? { host: opts.network.dns } : {}) }),
    ]);
    const [pair, bind] = started.map((s) => (s.status === 'fulfilled' ? s.value : undefined)) as [
      PostgresPair | undefined,
      BindServer | undefined,
    ];
    if (!pair || !bind) {
      await Promise.all([pair?.stop(), bind?.stop()]);
      region?.stop();
      rmSync(dir, { recursive: true, force: true });
      throw started.find((s) => s.status === 'rejected')?.reason;
    }
    const stack = new FailoverStack(options, new KubeClient(opts.kubeConfig), dir, pair, bind, region);
    try {
      await stack.applyResources();
      await Promise.all(options.observers.map((o) => stack.startObserver(o)));
      if (opts.startOperator !== false) await stack.startOperator();
    } catch (err) {
      await stack.stop();
      throw err;
    }
    return stack;
  }

  private async applyResources(): Promise<void> {
    const { namespace, kubeConfig } = this.options;
    if (this.options.installCrds !== false) await installCrds(kubeConfig);
    const core = kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace } } }).catch((e: { code?: number }) => {
      if (e.code !== 409) throw e;
    });
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'db-credentials' },
        stringData: { username: this.pair.user, password: this.pair.password },
      },
    });
    await core.createNamespacedSecret({
      namespace,
      body: this.bind.tsigSecret(),
    });
    for (const [name, region, node] of [
      ['region-a', 'region-a', 'primary'],
      ['region-b', 'region-b', 'standby'],
    ] as const) {
      const c = this.pair.connection(node);
      // Reached where region A's agent (inside its namespace) can reach it too.
      const host =
        node === 'standby' && this.region && this.options.agentsInRegion ? this.region.hostAddress : c.host;
      await this.client.create(replicaClusterType, namespace, {
        apiVersion: 'regionfailover.io/v1alpha1',
        kind: 'ReplicaCluster',
        metadata: { name, namespace },
        spec: {
          region,
          provider: { type: 'SelfManaged' },
          connection: {
            host,
            port: c.port,
            database: c.database,
            sslMode: 'disable',
            credentialsSecretRef: { name: 'db-credentials' },
          },
          dnsTarget: c.host,
        },
      });
    }
    const o = this.options;
    await this.client.create(failoverPolicyType, namespace, {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name: 'orders', namespace },
      spec: {
        primary: 'region-a',
        standbys: ['region-b'],
        dns: {
          provider: this.bind.rfc2136Provider(),
          zone: ZONE,
          name: RECORD,
          type: 'A',
          ttlSeconds: o.ttlSeconds,
        },
        detection: {
          probeIntervalSeconds: o.probeIntervalSeconds,
          failureThreshold: o.failureThreshold,
          quorum: o.quorum,
        },
        promotion: {
          mode: o.mode,
          rpo: { maxLagSeconds: o.maxLagSeconds, maxLagBytes: o.maxLagBytes },
          cooldownSeconds: o.cooldownSeconds,
          fencing: o.fencing,
        },
        ...(o.reprotect ? { reprotect: o.reprotect } : {}),
        ...(o.primaryLease ? { primaryLease: o.primaryLease } : {}),
      },
    });
  }

  /**
   * The database agent beside `cluster`'s server, as it runs in production: as the database's
   * user, with the data directory, the server programs and the replication role's password, and
   * a kubeconfig of its own (the test's files are not that user's to read).
   */
  async startAgent(
    cluster: StackCluster,
    opts: {
      dataDir?: string;
      /**
       * Answer the other agent (split-brain failsafe) behind a proxy of its own, so a test can
       * cut the path to it (`peerPaths`).
       */
      peer?: boolean;
      /** Reach the API server through a proxy of its own, so a test can cut that path (`apiPaths`). */
      apiProxy?: boolean;
      /**
       * Arm it to SIGKILL itself at these crash points (FAILOVER_FAILPOINTS); it may die there
       * before it serves /healthz.
       */
      failpoints?: string;
    } = {},
  ): Promise<OperatorProcess> {
    const server = this.pair.server(NODE_OF[cluster]);
    const dir = this.pair.dir;
    const owner = statSync(dir);
    const own = (path: string) => chownSync(path, owner.uid, owner.gid);
    // Region A's agent inside region A's namespace reaches the host at the host's end of the link.
    const inRegion =
      cluster === 'region-a' && this.region && this.options.agentsInRegion ? this.region : undefined;
    const hostSide = this.region && this.options.agentsInRegion ? this.region.hostAddress : undefined;
    const kubeconfig = join(dir, opts.apiProxy ? `agent-${cluster}.kubeconfig` : 'agent.kubeconfig');
    if (!existsSync(kubeconfig)) {
      // The CA inline: the control plane's files are not the agent user's to read.
      let text = readFileSync(this.options.kubeconfigPath, 'utf8').replace(
        /certificate-authority: (.*)/,
        (_m, path: string) => `certificate-authority-data: ${readFileSync(path.trim()).toString('base64')}`,
      );
      if (opts.apiProxy) {
        const url = new URL(/server: (\S+)/.exec(text)?.[1] ?? '');
        const listen = inRegion ? inRegion.hostAddress : url.hostname;
        const proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port) }, listen);
        this.apiPaths.set(cluster, proxy);
        // The certificate names the API server's own address: the name checked stays that.
        text = text.replace(
          /( *)server: (\S+)/,
          (_m, indent: string) =>
            `${indent}server: https://${listen}:${proxy.port}${inRegion ? `\n${indent}tls-server-name: ${url.hostname}` : ''}`,
        );
      }
      writeFileSync(kubeconfig, text, { mode: 0o600 });
      own(kubeconfig);
    }
    const peerArgs: string[] = [];
    if (opts.peer && inRegion) {
      // Inside the namespace: the other agent reaches it at the region's address, which a cut-off
      // region loses with everything else.
      const listen = this.peerPorts.get(cluster) ?? (await freePort());
      this.peerPorts.set(cluster, listen);
      peerArgs.push(`--peer-listen=0.0.0.0:${listen}`, `--peer-address=${inRegion.address}:${listen}`);
    } else if (opts.peer) {
      let proxy = this.peerPaths.get(cluster);
      let listen = this.peerPorts.get(cluster);
      if (!proxy || listen === undefined) {
        listen = await freePort();
        // Where region A's agent can dial it from inside its namespace, when it runs there.
        proxy = await TcpProxy.start({ host: '127.0.0.1', port: listen }, hostSide ?? '127.0.0.1');
        this.peerPaths.set(cluster, proxy);
        this.peerPorts.set(cluster, listen);
      }
      peerArgs.push(
        `--peer-listen=127.0.0.1:${listen}`,
        `--peer-address=${hostSide ?? '127.0.0.1'}:${proxy.port}`,
      );
    }
    const passwordFile = join(dir, 'replication.password');
    writeFileSync(passwordFile, this.pair.replication.password, { mode: 0o600 });
    own(passwordFile);
    this.agentRuns++;
    const agent = await OperatorProcess.start({
      name: `agent-${cluster}-${this.options.name}-${this.agentRuns}`,
      kubeconfig,
      dir: this.dir,
      ...(this.options.entry ? { entry: this.options.entry } : {}),
      runAs: owner.uid === process.getuid?.() ? undefined : 'postgres',
      ...(inRegion ? { netns: { name: inRegion.name, address: inRegion.address } } : {}),
      ...(opts.failpoints ? { env: { FAILOVER_FAILPOINTS: opts.failpoints }, mayExit: true } : {}),
      args: [
        '--mode=agent',
        `--namespace=${this.options.namespace}`,
        `--cluster=${cluster}`,
        `--data-dir=${opts.dataDir ?? server.dataDir}`,
        `--pg-bin=${postgresBinDir()}`,
        `--pg-socket-dir=${server.socketDir}`,
        `--pg-port=${server.port}`,
        `--pg-log-file=${join(dir, `${cluster}-agent-started.log`)}`,
        `--replication-user=${this.pair.replication.user}`,
        `--replication-password-file=${passwordFile}`,
        ...peerArgs,
      ],
    });
    this.agents.set(cluster, agent);
    return agent;
  }

  /**
   * Writes numbered rows through the DNS name at `ratePerSecond`, the way an application would:
   * resolve the record, keep one session, and on any error drop it and resolve again. Every
   * insert the server acknowledged is remembered, so a test can check none went missing.
   */
  async startDnsWriteLoad(ratePerSecond: number): Promise<DnsWriteLoad> {
    const [address] = await this.dnsAnswer();
    if (!address) throw new Error(`${RECORD} has no address`);
    const admin = await this.pair.connect(address === this.pair.primary.host ? 'primary' : 'standby');
    await admin.query(
      'CREATE TABLE IF NOT EXISTS dns_load (seq bigint PRIMARY KEY, at timestamptz DEFAULT now())',
    );
    await admin.end();
    return new DnsWriteLoad(this, ratePerSecond);
  }

  /** Waits until the agent beside each region has written its first report. */
  async waitForAgentReports(): Promise<void> {
    for (const cluster of ['region-a', 'region-b'] as const)
      await waitFor(async () => (await this.agentReport(cluster))?.reportedAt || undefined, {
        description: `the agent beside ${cluster} to report`,
      });
  }

  /**
   * The agent's task once it has ended (Succeeded or Failed). A switchover ends when the target
   * serves; the old primary's restart as a standby may still be under way then, so a test that
   * checks the demotion waits for the agent to say how it ended.
   */
  async endedAgentTask(
    cluster: StackCluster,
    operationIds?: (status: FailoverPolicyStatus) => string[],
  ): Promise<NonNullable<NonNullable<ReplicaClusterStatus['agent']>['task']>> {
    let last: unknown;
    return waitFor(
      async () => {
        const task = (await this.agentReport(cluster))?.task;
        last = task;
        if (!task || task.phase === 'Running') return undefined;
        if (!operationIds) return task;
        const { status } = await this.policy();
        return operationIds(status ?? {}).includes(task.operationId) ? task : undefined;
      },
      {
        description: () => `the agent beside ${cluster} to end its task (last seen: ${JSON.stringify(last)})`,
        timeoutMs: 120_000,
      },
    );
  }

  /** What the agent beside `cluster` last reported. */
  async agentReport(cluster: StackCluster): Promise<ReplicaClusterStatus['agent']> {
    return (await this.clusterStatus(cluster)).agent;
  }

  /** An observer process whose path to each database goes through its own proxy. */
  async startObserver(name: string): Promise<OperatorProcess> {
    let paths = this.proxies.get(name);
    if (!paths) {
      paths = {
        primary: await TcpProxy.start({ host: this.pair.primary.host, port: this.pair.primary.port }),
        standby: await TcpProxy.start({ host: this.pair.standby.host, port: this.pair.standby.port }),
      };
      this.proxies.set(name, paths);
    }
    const ns = this.options.namespace;
    const observer = await OperatorProcess.start({
      name: `observer-${name}-${this.options.name}`,
      kubeconfig: this.options.kubeconfigPath,
      dir: this.dir,
      ...(this.options.entry ? { entry: this.options.entry } : {}),
      args: [
        '--mode=observer',
        `--observer-name=${name}`,
        `--observer-region=${name}`,
        `--namespace=${ns}`,
        `--endpoint-overrides=${ns}/region-a=127.0.0.1:${paths.primary.port},${ns}/region-b=127.0.0.1:${paths.standby.port}`,
      ],
    });
    this.observers.set(name, observer);
    return observer;
  }

  async startOperator(): Promise<OperatorProcess> {
    this.operatorRuns++;
    this.operator = await OperatorProcess.start({
      name: `operator-${this.options.name}-${this.operatorRuns}`,
      kubeconfig: this.options.kubeconfigPath,
      dir: this.dir,
      ...(this.options.entry ? { entry: this.options.entry } : {}),
      args: [
        `--namespace=${this.options.namespace}`,
        `--leader-election-namespace=${this.options.namespace}`,
        ...(this.options.operatorArgs ?? []),
      ],
    });
    return this.operator;
  }

  /** Region A's address: the primary's, and the record's value while it is active. */
  get primaryAddress(): string {
    return this.pair.primary.host;
  }

  /**
   * Makes region A's network drop everything, silently: the primary neither answers nor refuses,
   * from anywhere (the operator, the observers' paths, the standby). Needs `primaryNetwork: 'netns'`.
   */
  isolatePrimary(): void {
    this.netnsRegion('isolatePrimary').blackhole();
  }

  /** Undoes `isolatePrimary`. */
  reconnectPrimary(): void {
    this.netnsRegion('reconnectPrimary').restore();
  }

  /** Thaws the operator and observers a test froze (a control plane lost to everyone). */
  thawAll(): void {
    this.operator?.thaw();
    for (const o of this.observers.values()) o.thaw();
  }

  private netnsRegion(step: string): NetnsRegion {
    if (!this.region) throw new Error(`${step} needs a stack started with primaryNetwork: 'netns'`);
    return this.region;
  }

  async policy(name = 'orders'): Promise<{ object: KubeObject; status: FailoverPolicyStatus }> {
    const object = await this.client.get(failoverPolicyType, this.options.namespace, name);
    return { object, status: (object.status ?? {}) as FailoverPolicyStatus };
  }

  async clusterStatus(name: StackCluster): Promise<ReplicaClusterStatus> {
    return ((await this.client.get(replicaClusterType, this.options.namespace, name)).status ??
      {}) as ReplicaClusterStatus;
  }

  /** Waits until the operator sees a healthy pair and has put the DNS record in place. */
  async waitUntilHealthy(): Promise<void> {
    await this.waitForPolicy(
      (st) =>
        st.phase === 'Healthy' && st.conditions?.some((c) => c.type === 'DnsReady' && c.status === 'True'),
      'a healthy policy with DNS in place',
    );
  }

  /**
   * Waits until a failover could promote a standby now (FailoverReady): its lag is measured in
   * seconds too, which needs a heartbeat replayed. A test that cuts the primary before then
   * tests a standby whose lag nobody knows, which the RPO budget rightly refuses to promote.
   */
  async waitUntilFailoverReady(): Promise<void> {
    await this.waitForPolicy(
      (st) => st.conditions?.some((c) => c.type === 'FailoverReady' && c.status === 'True'),
      'a standby ready to be promoted (FailoverReady)',
    );
  }

  /** Waits for a condition on the policy status. */
  waitForPolicy<T>(
    check: (s: FailoverPolicyStatus) => T | undefined | false,
    description: string,
    timeoutMs = 120_000,
  ): Promise<T> {
    let last: FailoverPolicyStatus | undefined;
    return waitFor(
      async () => {
        last = (await this.policy()).status;
        return check(last);
      },
      { description, timeoutMs, intervalMs: 100 },
    ).catch((err: Error) => {
      // A timeout alone says nothing about why: carry what the status and the operator last said.
      const logTail = this.operator?.logs().split('\n').slice(-25).join('\n') ?? '(no operator)';
      throw new Error(`${err.message}\nlast status: ${JSON.stringify(last)}\noperator log tail:\n${logTail}`);
    });
  }

  /** What BIND answers for the record, asked directly. */
  async dnsAnswer(type: 'A' | 'TXT' = 'A', name = RECORD): Promise<string[]> {
    const verifier = new DirectDnsVerifier({ timeoutMs: 2000 });
    const [answer] = await verifier.query({ zone: ZONE, name, type: type as 'A' }, [
      { host: this.bind.host, port: this.bind.port },
    ]);
    if (answer?.error) throw new Error(answer.error);
    return answer?.values ?? [];
  }

  /**
   * Writes one row through the DNS name, the way an application would: resolve the record at
   * the authoritative server, connect to that address, insert. Resolves to the address on success.
   */
  async writeThroughDns(table = 'canary', value = 0): Promise<string> {
    const [address] = await this.dnsAnswer();
    if (!address) throw new Error(`${RECORD} has no address`);
    const client = new pg.Client({
      host: address,
      port: this.pair.primary.port,
      user: this.pair.user,
      password: this.pair.password,
      database: this.pair.database,
      connectionTimeoutMillis: 2000,
      statement_timeout: 2000,
    });
    await client.connect();
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${table} (seq bigint primary key, at timestamptz default now())`,
      );
      await client.query(`INSERT INTO ${table} (seq) VALUES ($1) ON CONFLICT DO NOTHING`, [value]);
    } finally {
      await client.end().catch(() => undefined);
    }
    return address;
  }

  /**
   * Waits, from a fault at `since` (performance.now()), until the standby takes writes and until
   * BIND answers its address, and returns both times in ms. Polled every 50 ms, never stalled by
   * a silent primary: only the standby and BIND are asked.
   */
  async timeStandbyTakeover(
    since: number,
    timeoutMs = 120_000,
  ): Promise<{ writableMs: number; dnsMs: number }> {
    let writableMs: number | undefined;
    let dnsMs: number | undefined;
    while (writableMs === undefined || dnsMs === undefined) {
      if (writableMs === undefined && (await this.acceptsWrites('standby', 'socket', 2000)) === 'writable')
        writableMs = performance.now() - since;
      if (dnsMs === undefined && (await this.dnsAnswer().catch(() => []))[0] === this.pair.standby.host)
        dnsMs = performance.now() - since;
      if (performance.now() - since > timeoutMs) {
        const { status } = await this.policy();
        throw new Error(
          `the standby did not take over within ${timeoutMs / 1000} s of the fault ` +
            `(writable: ${writableMs !== undefined}, DNS: ${dnsMs !== undefined}); last status: ${JSON.stringify(status)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return { writableMs, dnsMs };
  }

  /** Events about the policy (another of the namespace's, when named), as `reason: note`. */
  async events(policy = 'orders'): Promise<{ reason: string; type: string; note: string }[]> {
    const list = await this.client.list<KubeObject>(eventType, this.options.namespace);
    return list.items
      .filter((e) => (e.regarding as { name?: string } | undefined)?.name === policy)
      .map((e) => ({ reason: String(e.reason), type: String(e.type), note: String(e.note) }));
  }

  /**
   * Events about the policy once every one of `reasons` is among them: the operator writes its
   * Events after the status that records what happened (a queue of their own), so a test that
   * saw the status may be a moment ahead of them.
   */
  async eventsWith(reasons: string[]): Promise<{ reason: string; type: string; note: string }[]> {
    return waitFor(
      async () => {
        const list = await this.events();
        return reasons.every((r) => list.some((e) => e.reason === r)) ? list : undefined;
      },
      { description: `the policy's Events ${reasons.join(', ')}`, timeoutMs: 30_000 },
    );
  }

  /** The policy's incident records (FailoverReport objects). */
  async reports(): Promise<{ metadata: { name: string }; spec: FailoverReportSpec }[]> {
    const list = await this.client.list<KubeObject>(failoverReportType, this.options.namespace);
    return list.items as unknown as { metadata: { name: string }; spec: FailoverReportSpec }[];
  }

  /** Runs `kubectl failover ARGS` (the plugin from bin/) against this stack; its stdout, or it throws. */
  plugin(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        join(repo, 'bin', 'kubectl-failover'),
        [...args, '-n', this.options.namespace],
        { env: { ...process.env, KUBECONFIG: this.options.kubeconfigPath }, timeout: 60_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)),
      );
    });
  }

  /** Sets a promotion request on the policy, as `kubectl failover promote` does. */
  async requestPromotion(request: Record<string, unknown>, policy = 'orders'): Promise<void> {
    await this.client.mergePatch(failoverPolicyType, this.options.namespace, policy, {
      spec: { promotionRequest: request },
    });
  }

  /** The TTL BIND serves the record with, as a resolver would cache it. */
  async dnsTtl(): Promise<number | undefined> {
    const reply = await queryServer({ host: this.bind.host, port: this.bind.port }, RECORD, 'A', {
      timeoutMs: 2000,
    });
    const answer = (reply.answers ?? []).find((a) => a.type === 'A');
    return answer && 'ttl' in answer ? answer.ttl : undefined;
  }

  /** Sets a drill request on the policy, as `kubectl failover drill run|cancel` does. */
  async requestDrill(request: {
    id: string;
    action: 'Run' | 'Cancel';
    reason?: string;
    mode?: 'RoundTrip' | 'Isolated';
  }): Promise<void> {
    await this.client.mergePatch(failoverPolicyType, this.options.namespace, 'orders', {
      spec: { drillRequest: request },
    });
  }

  /** Cuts region B off region A's WAL (an address that refuses), as a broken link would. */
  async cutReplication(): Promise<void> {
    await this.pair.sql(
      'standby',
      "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'",
      [],
      'postgres',
    );
    await this.pair.sql('standby', 'SELECT pg_reload_conf()', [], 'postgres');
    await waitFor(
      async () =>
        (
          await this.pair.sql<{ n: string }>(
            'primary',
            'SELECT count(*)::text AS n FROM pg_stat_replication',
            [],
            'postgres',
          )
        )[0]?.n === '0' || undefined,
      { description: 'region B to stop streaming from region A' },
    );
  }

  /**
   * Stages a failover that loses data: region A commits `lostRows` transactions (rows of
   * write_load with payload 'lost') region B never receives, then dies, and a person fails over
   * to region B. Resolves once the failover is done; a rejoin of region A must discard them.
   */
  async failOverLosingWrites(lostRows: number): Promise<void> {
    await this.cutReplication();
    // One transaction each: the agent counts discarded transactions, not rows.
    for (let i = 0; i < lostRows; i++)
      await this.pair.sql('primary', "INSERT INTO write_load (payload) VALUES ('lost')");
    await this.killPrimaryAndFailOver();
  }

  /**
   * SIGKILLs region A's server and, once the operator has found it down, asks for a failover to
   * region B that accepts data loss, as a person would (the stack must run in Manual mode, or
   * the operator would not wait for the request). Resolves once region B is the primary.
   */
  async killPrimaryAndFailOver(): Promise<void> {
    if (this.options.mode !== 'Manual')
      throw new Error(
        `killPrimaryAndFailOver needs a stack started with mode: 'Manual', not ${this.options.mode}`,
      );
    await this.pair.killPrimary();
    await this.waitForPolicy(
      (st) => st.conditions?.find((c) => c.type === 'FailoverBlocked' && c.reason === 'ManualMode'),
      'region-a found down',
    );
    await this.requestPromotion({ id: 'fail-a', target: 'region-b', kind: 'Failover', allowDataLoss: true });
    await this.waitForPolicy(
      (st) => (st.activePrimary === 'region-b' && !st.currentOperation ? st : undefined),
      'the failover to region-b',
    );
  }

  /** Waits until the agent beside region A has compared its database with region B's. */
  async waitForAssessment(timeoutMs = 60_000): Promise<AgentAssessment> {
    return waitFor(
      async () => {
        const report = await this.agentReport('region-a');
        return report?.divergence?.primary === 'region-b'
          ? { ...report, divergence: report.divergence }
          : undefined;
      },
      { description: 'the agent beside region-a to compare it with region-b', timeoutMs },
    );
  }

  /**
   * Which of the two databases accept writes right now, each asked directly: over its Unix
   * socket (default: what it would do for anyone who reaches it), or over the network from this
   * host (what clients can write to now). One that refuses, or answers with an error, is not a
   * writer. One that stays silent past `timeoutMs` is asked again until `settleMs` has passed
   * (2 busy cores can hold a healthy server's answer for seconds), then not counted (frozen, or
   * cut off); the writer sampler passes 0 so a frozen server cannot stall its sampling.
   */
  async writablePrimaries(
    opts: { via?: 'socket' | 'network'; timeoutMs?: number; settleMs?: number } = {},
  ): Promise<string[]> {
    const { via = 'socket', timeoutMs = 3000, settleMs = 12_000 } = opts;
    const out: string[] = [];
    for (const node of ['primary', 'standby'] as const) {
      const deadline = performance.now() + settleMs;
      for (;;) {
        if (!this.pair.server(node).running) break;
        const answer = await this.acceptsWrites(node, via, timeoutMs);
        if (answer === 'writable') out.push(node);
        if (answer !== 'silent' || performance.now() >= deadline) break;
      }
    }
    return out;
  }

  private async acceptsWrites(
    node: PostgresNodeName,
    via: 'socket' | 'network',
    timeoutMs: number,
  ): Promise<'writable' | 'not writable' | 'silent'> {
    const server = this.pair.server(node);
    const c = this.pair.connection(node);
    const client = new pg.Client({
      ...(via === 'socket'
        ? { host: server.socketDir, port: server.port, user: 'postgres', database: 'postgres' }
        : { host: c.host, port: c.port, user: c.user, password: c.password, database: c.database }),
      connectionTimeoutMillis: timeoutMs,
      query_timeout: timeoutMs,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ w: boolean }>(
        "SELECT NOT pg_is_in_recovery() AND current_setting('default_transaction_read_only') = 'off' AS w",
      );
      return rows[0]?.w === true ? 'writable' : 'not writable';
    } catch (err) {
      // Refused, no socket, or an error from the server (shutting down, starting up): an answer.
      // pg's own timeouts carry no code: the server said nothing in time.
      return typeof (err as { code?: unknown }).code === 'string' ? 'not writable' : 'silent';
    } finally {
      // Not awaited: a frozen server would keep the goodbye waiting until it thaws.
      void client.end().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    // Reconnected first: a primary shutting down waits on its walsender, which needs the network.
    this.region?.restore();
    await Promise.all([...this.observers.values()].map((o) => o.stop()));
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
    await this.operator?.stop();
    await Promise.all([...this.proxies.values()].flatMap((p) => [p.primary.stop(), p.standby.stop()]));
    await Promise.all([...this.apiPaths.values(), ...this.peerPaths.values()].map((p) => p.stop()));
    await Promise.all([this.pair?.stop({ keepDir: !!process.env.FAILOVER_KEEP_DIRS }), this.bind?.stop()]);
    this.region?.stop();
    if (!process.env.FAILOVER_KEEP_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}
