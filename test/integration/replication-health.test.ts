/**
 * The ReplicaCluster controller against a real PostgreSQL primary and standby, with the operator
 * running as a process: roles, real lag under paused replay, an idle pair at zero lag, a killed
 * primary, and credential and network failures named in conditions — with no secret leaking.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, EventsV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ReplicaClusterStatus } from '../../operator/src/api/v1alpha1/index.ts';
import { lagStepBytes, lagStepSeconds } from '../../operator/src/controllers/replica-cluster/lag.ts';
import { failoverPolicyType, replicaClusterType } from '../../operator/src/controllers/resources.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { installCrds } from '../harness/crds.ts';
import { OperatorProcess } from '../harness/operator-process.ts';
import { freePort } from '../harness/ports.ts';
import { type PostgresPair, startPostgresPair } from '../harness/postgres.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const ns = `health-${process.pid}`;
const INTERVAL = 1;
const MAX_LAG_BYTES = 1048576;
let dir: string;
let pair: PostgresPair;
let client: KubeClient;
let op: OperatorProcess;

const cluster = (name: string, port: number, secret = 'pg', host = '127.0.0.1'): KubeObject => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'ReplicaCluster',
  metadata: { name, namespace: ns },
  spec: {
    region: name,
    provider: { type: 'SelfManaged' },
    connection: { host, port, database: 'app', sslMode: 'disable', credentialsSecretRef: { name: secret } },
    dnsTarget: '127.0.0.1',
  },
});

async function status(name: string): Promise<ReplicaClusterStatus> {
  return ((await client.get(replicaClusterType, ns, name)).status ?? {}) as ReplicaClusterStatus;
}

const condition = (s: ReplicaClusterStatus, type: string) => s.conditions?.find((c) => c.type === type);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'failover-health-'));
  const kc = sharedKubeConfig();
  await installCrds(kc);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: ns } } });
  pair = await startPostgresPair({ name: 'health' });
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'pg' }, stringData: { username: pair.user, password: pair.password } },
  });
  await core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: { name: 'pg-wrong' },
      stringData: { username: pair.user, password: 'not-the-password' },
    },
  });
  client = new KubeClient(kc);
  await client.create(replicaClusterType, ns, cluster('primary', pair.primary.port));
  await client.create(replicaClusterType, ns, cluster('standby', pair.standby.port));
  await client.create(failoverPolicyType, ns, {
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'FailoverPolicy',
    metadata: { name: 'app', namespace: ns },
    spec: {
      primary: 'primary',
      standbys: ['standby'],
      dns: {
        provider: { type: 'Route53', route53: { hostedZoneId: 'ZTEST' } },
        zone: 'example.com',
        name: 'db.example.com',
      },
      detection: { probeIntervalSeconds: INTERVAL },
      promotion: { mode: 'Manual', rpo: { maxLagSeconds: 5, maxLagBytes: MAX_LAG_BYTES } },
    },
  });
  op = await OperatorProcess.start({
    name: 'op-health',
    kubeconfig: inject('controlPlane').kubeconfigPath,
    dir,
    args: ['--leader-elect=false', `--namespace=${ns}`],
  });
});

afterAll(async () => {
  await op?.stop();
  await pair?.stop();
  if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

describe('a healthy pair', () => {
  it('shows roles and, idle, a lag near zero', async () => {
    const primary = await waitFor(
      async () => {
        const s = await status('primary');
        return s.role === 'Primary' && condition(s, 'Replicating')?.status === 'True' ? s : undefined;
      },
      { description: 'the primary to be seen streaming' },
    );
    expect(condition(primary, 'Reachable')).toMatchObject({ status: 'True', reason: 'Connected' });
    const standby = await waitFor(
      async () => {
        const s = await status('standby');
        // Near zero as status keeps it: a move within the heartbeats' resolution (or lagStepBytes)
        // is not written, so the first figure written under load may stay as long as it holds.
        return s.role === 'Standby' &&
          s.replicationLagBytes !== undefined &&
          s.replicationLagBytes < lagStepBytes(MAX_LAG_BYTES) &&
          s.replicationLagSeconds !== undefined &&
          s.replicationLagSeconds < lagStepSeconds(INTERVAL) &&
          s.epoch !== undefined
          ? s
          : undefined;
      },
      { description: 'the idle standby at a lag near zero' },
    );
    expect(standby.health).toBe('Healthy');
    expect(condition(standby, 'LagWithinBudget')).toMatchObject({ status: 'True' });
    // The operator's heartbeat reached the standby through replication.
    expect(standby.epoch).toBe(0);
  });
});

describe('paused replay under write load', () => {
  it('shows real lag within two probe intervals, in status and metrics, and clears after resume', async () => {
    const load = pair.startWriteLoad({ ratePerSecond: 200, rowBytes: 2000 });
    try {
      await pair.pauseReplay();
      // Measure the real lag directly, as the databases report it, and note when it first exceeds
      // the budget; then time how long status takes to say so.
      const realLagBytes = async () => {
        const [p] = await pair.primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
        const [q] = await pair.standby.query<{ n: string }>(
          `SELECT pg_wal_lsn_diff('${p?.lsn}', pg_last_wal_replay_lsn())::text AS n`,
        );
        return Number(q?.n ?? 0);
      };
      await waitFor(async () => (await realLagBytes()) > 2 * 1048576, {
        description: 'real lag above the budget',
        timeoutMs: 60_000,
        intervalMs: 100,
      });
      const behindSince = Date.now();
      const lagging = await waitFor(
        async () => {
          const s = await status('standby');
          return (s.replicationLagBytes ?? 0) > 1048576 ? s : undefined;
        },
        { description: 'lag above the budget in status', timeoutMs: 60_000, intervalMs: 100 },
      );
      const tookMs = Date.now() - behindSince;
      process.stdout.write(
        `[replication-health] lag reached status ${tookMs} ms after it was real (probe interval ${INTERVAL} s)\n`,
      );
      expect(condition(lagging, 'LagWithinBudget')).toMatchObject({ status: 'False', reason: 'AboveBudget' });
      expect(condition(lagging, 'Replicating')).toMatchObject({ status: 'False', reason: 'ReplayPaused' });
      expect(lagging.health).toBe('Degraded');
      expect(await op.metric('failover_replication_lag_bytes', { cluster: 'standby' })).toBeGreaterThan(
        1048576,
      );
      // Two probe intervals, plus generous room for a busy machine (the status write, the watch).
      expect(tookMs).toBeLessThan(2 * INTERVAL * 1000 + 5_000);
    } finally {
      await load.stop();
      await pair.resumeReplay();
    }
    await waitFor(
      async () => {
        const s = await status('standby');
        // Cleared as status keeps it: the last figure written on the way down may sit within
        // lagStepBytes (and the heartbeats' resolution) of zero.
        return s.replicationLagBytes !== undefined &&
          s.replicationLagBytes < lagStepBytes(MAX_LAG_BYTES) &&
          s.replicationLagSeconds !== undefined &&
          s.replicationLagSeconds < lagStepSeconds(INTERVAL) &&
          condition(s, 'LagWithinBudget')?.status === 'True'
          ? s
          : undefined;
      },
      { description: 'the lag to clear after resume', timeoutMs: 60_000 },
    );
  });
});

describe('failures', () => {
  it('a wrong password, a missing Secret and a closed port each name their reason', async () => {
    const closed = await freePort();
    await client.create(replicaClusterType, ns, cluster('wrong-password', pair.primary.port, 'pg-wrong'));
    await client.create(replicaClusterType, ns, cluster('no-secret', pair.primary.port, 'does-not-exist'));
    await client.create(replicaClusterType, ns, cluster('closed-port', closed));
    const reasonOf = async (name: string) => condition(await status(name), 'Reachable');
    await waitFor(async () => (await reasonOf('wrong-password'))?.reason === 'AuthenticationFailed', {
      description: 'AuthenticationFailed',
    });
    await waitFor(async () => (await reasonOf('no-secret'))?.reason === 'CredentialsMissing', {
      description: 'CredentialsMissing',
    });
    await waitFor(async () => (await reasonOf('closed-port'))?.reason === 'Unreachable', {
      description: 'Unreachable',
    });
    expect((await reasonOf('no-secret'))?.message).toContain(`Secret ${ns}/does-not-exist does not exist`);
    expect((await status('closed-port')).health).toBe('Unreachable');
    // A new cluster's first findings are one Event, naming each condition that is not good.
    const about = (
      await sharedKubeConfig().makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns })
    ).items.filter((e) => e.regarding?.name === 'closed-port');
    expect(about.map((e) => [e.type, e.reason])).toEqual([['Warning', 'ReachableLost']]);
    expect(about[0]?.note).toMatch(/^ReachableLost Unreachable: .*; Replicating/);
  });

  it('a killed primary turns unreachable without crashing anything', async () => {
    await pair.killPrimary();
    const s = await waitFor(
      async () => {
        const st = await status('primary');
        return condition(st, 'Reachable')?.status === 'False' ? st : undefined;
      },
      { description: 'the primary to be reported unreachable' },
    );
    expect(s.health).toBe('Unreachable');
    expect(s.consecutiveProbeFailures).toBeGreaterThanOrEqual(1);
    expect(op.running).toBe(true);
    expect(await op.ready()).toBe(true);
    await pair.startPrimary();
    await waitFor(async () => (await status('primary')).health !== 'Unreachable', {
      description: 'the primary to be back',
    });
  });

  it('never writes a password into logs, events or status', async () => {
    const events = await sharedKubeConfig().makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns });
    const everything =
      JSON.stringify(events.items) + op.logs() + JSON.stringify(await client.list(replicaClusterType, ns));
    expect(events.items.length).toBeGreaterThan(0);
    expect(everything).not.toContain(pair.password);
    expect(everything).not.toContain('not-the-password');
  });

  it('silent databases, more than there are workers, hold up no other cluster’s probe', {
    timeout: 120_000,
  }, async () => {
    // Accepts connections and never answers: a hung server, whose probes run to their deadline.
    const held: Socket[] = [];
    const silent = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    // More than the operator's 16 cluster workers, each silent for the 5 s default interval.
    const names = Array.from({ length: 40 }, (_, i) => `silent-${i}`);
    try {
      // At once: the first silent probe gives up 3 s on (the connect timeout); all are queued before.
      await Promise.all(names.map((name) => client.create(replicaClusterType, ns, cluster(name, port))));
      // Queued behind all of them.
      await client.create(replicaClusterType, ns, cluster('refused-last', await freePort()));
      const silentWritten = async () => {
        const all = (await client.list<KubeObject>(replicaClusterType, ns)).items;
        return all.filter((o) => names.includes(o.metadata.name) && o.status !== undefined).length;
      };
      const refused = await waitFor(
        async () => {
          const st = await status('refused-last');
          return condition(st, 'Reachable')?.status === 'False' ? st : undefined;
        },
        { description: 'the refused cluster judged', intervalMs: 50 },
      );
      // Judged before the silent clusters: they hold no worker up to their deadline. Waited for,
      // the first 16 held every worker 3 s, and were written before it (32 were, in that test).
      expect(await silentWritten(), `refused at ${refused.lastObservedTime}`).toBeLessThan(16);
      // Positive control: the silent ones were silent, and each is judged when its probe gives up.
      expect(held.length).toBeGreaterThan(0);
      await waitFor(async () => (await silentWritten()) === names.length, {
        description: 'every silent cluster judged unreachable',
        timeoutMs: 60_000,
      });
      for (const name of names)
        expect(condition(await status(name), 'Reachable')?.status, name).toBe('False');
    } finally {
      for (const name of [...names, 'refused-last'])
        await client.delete(replicaClusterType, ns, name).catch(() => undefined);
      for (const socket of held) socket.destroy();
      silent.close();
    }
  });

  it('an application endpoint that hangs to its timeout is still judged, and the database beside it', {
    timeout: 120_000,
  }, async () => {
    // Accepts connections and never answers. Its check takes most of the 5 s default interval,
    // so the reconcile stops waiting and the verdict, when it comes, is what the next one writes.
    const held: Socket[] = [];
    const hung = createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(hung.address() as AddressInfo).port}/healthz`;
    const name = 'hung-app';
    try {
      const object = cluster(name, pair.primary.port);
      await client.create(replicaClusterType, ns, {
        ...object,
        spec: { ...(object.spec as object), appEndpoints: [{ name: 'api', url }] },
      });
      const st = await waitFor(
        async () => {
          const s = await status(name);
          return s.appEndpoints?.[0]?.healthy === false ? s : undefined;
        },
        { description: 'the hung application judged unhealthy', timeoutMs: 60_000 },
      );
      expect(condition(st, 'Reachable')?.status).toBe('True');
      expect(condition(st, 'AppEndpointsHealthy')?.status).toBe('False');
      // Positive control: the check did reach the hung server.
      expect(held.length).toBeGreaterThan(0);
    } finally {
      await client.delete(replicaClusterType, ns, name).catch(() => undefined);
      for (const socket of held) socket.destroy();
      hung.close();
    }
  });
});

describe('credentials rotated (an operator that watches Secrets: --watch-secrets)', () => {
  it('a new password in the Secret is used from the next probes on, not once the cached copy expires', async () => {
    const role = 'rotating';
    // A namespace and an operator of their own: the one above reads Secrets the default way.
    const rotatingNs = `${ns}-rotating`;
    const sessions = (before: string) =>
      pair.sql<{ old: string; fresh: string }>(
        'primary',
        `SELECT count(*) FILTER (WHERE backend_start <= $2)::text AS old,
                count(*) FILTER (WHERE backend_start > $2)::text AS fresh
           FROM pg_stat_activity WHERE usename = $1`,
        [role, before],
        'postgres',
      );
    await pair.sql(
      'primary',
      `CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD 'first-password'`,
      [],
      'postgres',
    );
    const core = sharedKubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: rotatingNs } } });
    const secret = (password: string) => ({
      metadata: { name: 'pg-rotating' },
      stringData: { username: role, password },
    });
    await core.createNamespacedSecret({ namespace: rotatingNs, body: secret('first-password') });
    const object = cluster('rotating', pair.primary.port, 'pg-rotating');
    await client.create(replicaClusterType, rotatingNs, {
      ...object,
      metadata: { name: 'rotating', namespace: rotatingNs },
    });
    const watching = await OperatorProcess.start({
      name: 'op-health-rotating',
      kubeconfig: inject('controlPlane').kubeconfigPath,
      dir,
      args: ['--leader-elect=false', `--namespace=${rotatingNs}`, '--watch-secrets=true'],
    });
    const reachable = async () =>
      condition(
        ((await client.get(replicaClusterType, rotatingNs, 'rotating')).status ?? {}) as ReplicaClusterStatus,
        'Reachable',
      );
    try {
      await waitFor(async () => (await reachable())?.status === 'True', {
        description: 'the cluster reached with the first password',
      });
      const [{ now } = { now: '' }] = await pair.sql<{ now: string }>(
        'primary',
        'SELECT now()::text AS now',
        [],
        'postgres',
      );
      await pair.sql('primary', `ALTER ROLE ${role} PASSWORD 'second-password'`, [], 'postgres');
      await core.replaceNamespacedSecret({
        namespace: rotatingNs,
        name: 'pg-rotating',
        body: secret('second-password'),
      });
      // The old session still works (PostgreSQL keeps it): only a fresh read of the Secret, which
      // the watch makes at the next probe, opens one with the new password and closes the old.
      // Without the watch this waits for the 5-minute copy to expire.
      const seen = await waitFor(
        async () => {
          const [row] = await sessions(now);
          return row && Number(row.fresh) > 0 && Number(row.old) === 0 ? row : undefined;
        },
        { description: 'a session opened with the new password, and the old one closed', timeoutMs: 30_000 },
      );
      expect(Number(seen.fresh)).toBeGreaterThan(0);
      expect((await reachable())?.status).toBe('True');
    } finally {
      await watching.stop();
      await core.deleteNamespace({ name: rotatingNs }).catch(() => undefined);
    }
  });
});
