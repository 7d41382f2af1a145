/**
 * The operator process: configuration, logs, the Kubernetes client, leader election, the
 * controllers and the HTTP endpoint for metrics and probes. SIGTERM stops taking work, lets the
 * current step finish, releases the leader lease and exits.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatabaseAgent } from './agent/agent.ts';
import { LocalPostgres } from './agent/local-postgres.ts';
import { helpText, loadConfig, version } from './config.ts';
import { failoverObservationType, failoverPolicyType, replicaClusterType } from './controllers/resources.ts';
import { Manager } from './manager.ts';
import { Observer, parseEndpointOverrides } from './observer/observer.ts';
import { parseDnsReadRates } from './providers/dns/read-budget.ts';
import { systemClock } from './runtime/clock.ts';
import { startHttpServer } from './runtime/http-server.ts';
import { Informer } from './runtime/informer.ts';
import { type KubeAccess, loadKubeAccess } from './runtime/kube-access.ts';
import { KubeClient } from './runtime/kube-client.ts';
import { LeaderElector, type Lease, leaseType } from './runtime/leader-election.ts';
import { createLogger } from './runtime/logger.ts';
import { Metrics } from './runtime/metrics.ts';
import { preflight } from './runtime/preflight.ts';
import { ShardCoordinator } from './runtime/shards.ts';
import { StatusPage, startStatusPage } from './status-page/server.ts';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(helpText());
  process.exit(0);
}
if (argv.includes('--version')) {
  process.stdout.write(`failover-operator ${version()}\n`);
  process.exit(0);
}
let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig(argv, process.env);
} catch (err) {
  process.stderr.write(
    `failover-operator: invalid configuration: ${(err as Error).message}\nRun failover-operator --help for the flags.\n`,
  );
  process.exit(2);
}

const log = createLogger({ level: config.logLevel });
let kube: KubeAccess;
try {
  kube = await loadKubeAccess(config.kubeconfig);
} catch (err) {
  const source = config.kubeconfig ?? process.env.KUBECONFIG ?? 'in-cluster or ~/.kube/config';
  process.stderr.write(
    `failover-operator: cannot load the kubeconfig (${source}): ${(err as Error).message}\n`,
  );
  process.exit(2);
}

const metrics = new Metrics({ processMetrics: true });
const client = new KubeClient(kube, metrics, { userAgent: `failover-operator/${config.identity}` });
const observing = config.mode === 'observer';
const agentMode = config.mode === 'agent';
/** Agent mode: the PostgreSQL beside it, and the replication role it rejoins with. */
function agentFor(c: typeof config): DatabaseAgent {
  const dataDir = c.dataDir ?? '';
  const password = c.replicationPasswordFile
    ? readFileSync(c.replicationPasswordFile, 'utf8').trim()
    : (c.replicationPassword ?? '');
  return new DatabaseAgent({
    client,
    clock: systemClock,
    log,
    namespace: c.namespace,
    cluster: c.cluster ?? '',
    name: c.identity,
    replication: { user: c.replicationUser, password },
    // The split-brain guard's requests give up quickly: its deadline is seconds away.
    guardClient: new KubeClient(kube, metrics, {
      userAgent: `failover-agent-guard/${c.identity}`,
      requestTimeoutMs: 1_500,
    }),
    ...(c.peerListen && c.peerAddress ? { peer: peerOf(c.peerListen, c.peerAddress, c.peerTokenFile) } : {}),
    local: new LocalPostgres({
      dataDir,
      binDir: c.pgBin ?? '/usr/lib/postgresql/15/bin',
      socketDir: c.pgSocketDir,
      port: c.pgPort,
      user: c.pgUser,
      logFile: c.pgLogFile ?? join(dirname(dataDir), 'postgresql-agent.log'),
    }),
  });
}
function peerOf(listen: string, address: string, tokenFile: string | undefined) {
  const at = listen.lastIndexOf(':');
  return {
    host: listen.slice(0, at) || '0.0.0.0',
    port: Number(listen.slice(at + 1)),
    address,
    ...(tokenFile ? { token: readFileSync(tokenFile, 'utf8').trim() } : {}),
  };
}
const manager = agentMode
  ? agentFor(config)
  : observing
    ? new Observer({
        client,
        clock: systemClock,
        log,
        metrics,
        name: config.observerName ?? config.identity,
        region: config.observerRegion,
        namespace: config.namespace,
        endpointOverrides: parseEndpointOverrides(config.endpointOverrides),
        resyncMs: config.resyncSeconds * 1000,
        watchSecrets: config.watchSecrets,
      })
    : new Manager({
        client,
        clock: systemClock,
        log,
        metrics,
        identity: config.identity,
        namespace: config.namespace,
        concurrency: config.maxConcurrentReconciles,
        // Each sharded replica keeps its own budget for the same accounts: a share of it each.
        dnsReadRates: parseDnsReadRates(config.dnsReadsPerSecond, config.shards),
        resyncMs: config.resyncSeconds * 1000,
        watchSecrets: config.watchSecrets,
      });

// A setup mistake stops the process with one line that names the fix (no CRDs, refused
// credentials), or is logged as one while it waits for the fix (RBAC, an API server away).
const watched = agentMode
  ? [failoverPolicyType, failoverObservationType]
  : observing
    ? [failoverPolicyType, replicaClusterType]
    : [failoverPolicyType, replicaClusterType, failoverObservationType];
const problem = await preflight(client, watched, config.namespace);
// An agent never stops for it: its split-brain guard must run whatever the control plane says.
if (problem?.fatal && !agentMode) {
  process.stderr.write(`failover-operator: ${problem.message}\n`);
  process.exit(1);
}
if (problem) log.error(problem.message);

let shuttingDown = false;
const { server, port } = await startHttpServer(config.httpAddress, metrics, {
  healthy: () => !shuttingDown,
  ready: () => manager.readiness(),
});
// The status page: every replica serves it from its own cache (it needs no leadership).
const statusPage =
  config.statusPageAddress && manager instanceof Manager
    ? await startStatusPage(config.statusPageAddress, new StatusPage(manager.statusSource(), systemClock))
    : undefined;
log.info(
  {
    mode: config.mode,
    identity: config.identity,
    server: client.server,
    kubeconfig: kube.source,
    httpPort: port,
    ...(statusPage ? { statusPagePort: statusPage.port } : {}),
  },
  'starting',
);

// Observers act on nothing, so any number may run; only the operator elects a leader, or with
// --shards, holds shards.
const leaseOptions = {
  client,
  namespace: config.leaderElectionNamespace,
  identity: config.identity,
  ...(config.leaderElectionOwner ? { ownerDeployment: config.leaderElectionOwner } : {}),
  log,
  metrics,
  leaseDurationMs: config.leaseDurationSeconds * 1000,
  renewDeadlineMs: config.renewDeadlineSeconds * 1000,
  retryPeriodMs: config.retryPeriodSeconds * 1000,
  watchNamespace: config.namespace,
};
const electing = config.leaderElect && !observing && !agentMode;
const sharded = electing && config.shards > 1 && manager instanceof Manager ? manager : undefined;
const shards = sharded
  ? new ShardCoordinator({
      ...leaseOptions,
      election: config.leaderElectionId,
      shards: config.shards,
      onTaken: (shard) => sharded.enqueueShard(shard),
      onGivingBack: (shard) => sharded.drainShard(shard),
    })
  : undefined;
const elector =
  electing && !shards
    ? // While sharded replicas hold this Lease as `sharded/N`, the leader cannot take it.
      new LeaderElector({ ...leaseOptions, name: config.leaderElectionId })
    : undefined;
metrics.shards.set(config.shards);
// A standby learns of the leader's renewals from a watch of the Lease, not a read every retry
// period; it reads the Lease itself once the watch has brought nothing for two retry periods
// (the leader gone, or the watch down, or not allowed by an older Role: then it reads every
// retry period, as before), to take it over.
const leaderLeaseWatch = elector
  ? new Informer<Lease>({
      client,
      type: leaseType,
      namespace: config.leaderElectionNamespace,
      fieldSelector: `metadata.name=${config.leaderElectionId}`,
      log,
    })
  : undefined;
leaderLeaseWatch?.on((event) => {
  // A resync replays the cache, which is no read (and a dead watch's cache is old).
  if (event.type !== 'resync')
    elector?.observe(event.type === 'deleted' ? undefined : event.object, performance.now());
});

async function shutdown(signal: string, code = 0): Promise<never> {
  if (shuttingDown) process.exit(code);
  shuttingDown = true;
  log.info({ signal }, 'shutting down: finishing the current step, then releasing the lease');
  shards?.quiesce();
  const deadline = Date.now() + config.shutdownGraceSeconds * 1000;
  await manager.stop(config.shutdownGraceSeconds * 1000);
  await elector?.stop();
  await leaderLeaseWatch?.stop();
  await shards?.stop();
  // Then the Events still queued, within what is left of the grace and 5 s at most: the Leases
  // went first, so a successor never waits on them.
  if (manager instanceof Manager)
    await manager.flushEvents(Math.max(0, Math.min(5_000, deadline - Date.now())));
  server.close();
  statusPage?.server.close();
  log.info('stopped');
  process.exit(code);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));

if (manager instanceof Observer || manager instanceof DatabaseAgent) {
  manager.start();
} else {
  manager.startInformers();
  if (shards && sharded) {
    sharded.shardBy({ shards: config.shards, owns: (shard) => shards.owns(shard) });
    void sharded.startControllers();
    void shards.run().then((outcome) => {
      if (outcome === 'lost') void shutdown('shard-lease-lost', 1);
    });
  } else if (elector) {
    leaderLeaseWatch?.start();
    void elector
      .run(() => {
        // The leader renews from its own writes; the watch was the standby's.
        void leaderLeaseWatch?.stop();
        void manager.startControllers();
      })
      .then((outcome) => {
        // A replica that lost its lease must not keep acting on stale leadership.
        if (outcome === 'lost') void shutdown('leader-election-lost', 1);
      });
  } else {
    void manager.startControllers();
  }
}
