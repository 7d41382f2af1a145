/**
 * End to end in a real cluster (kind): the image built from the Dockerfile, the chart installed
 * with helm exactly as the chart README says (operator in region-c, one observer per region),
 * real PostgreSQL streaming replication and a real BIND. Then region-a goes dark (its node is
 * paused) and the suite waits for the standby to be promoted and DNS to follow, and checks that
 * the old primary, back again, is fenced: one primary, always.
 *
 * Needs Docker and kind; run it with `make e2e` (test/e2e/run.sh checks both first).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus, ReplicaClusterStatus } from '../../operator/src/api/v1alpha1/index.ts';
import { waitFor } from '../harness/wait.ts';
import { IMAGE, KindCluster, repoRoot } from './kind-cluster.ts';

const NS = 'failover-e2e';
const SYSTEM = 'failover-system';
const PRIMARY = '10.96.200.11';
const STANDBY = '10.96.200.12';
const DNS = '10.96.200.53';
const RECORD = 'db.failover.test';
let cluster: KindCluster;
const log = (line: string) => process.stderr.write(`[e2e] ${line}\n`);
const [repository, tag] = IMAGE.split(':') as [string, string];

const policy = async () =>
  (await cluster.getJson<{ status?: FailoverPolicyStatus }>(['failoverpolicy', 'orders', '-n', NS]))
    ?.status ?? {};
const clusterStatus = async (name: string) =>
  (await cluster.getJson<{ status?: ReplicaClusterStatus }>(['replicacluster', name, '-n', NS]))?.status ??
  {};

async function installObserver(region: string): Promise<void> {
  await cluster.helm([
    'upgrade',
    '--install',
    `observer-${region}`,
    join(repoRoot, 'charts', 'failover-operator'),
    '--namespace',
    SYSTEM,
    '--skip-crds',
    '--wait',
    '--set',
    `image.repository=${repository},image.tag=${tag},image.pullPolicy=Never`,
    '--set',
    'operator.enabled=false,rbac.aggregateToDefaultRoles=false',
    '--set',
    `observer.enabled=true,observer.name=${region},observer.region=${region}`,
    '--set',
    `observer.nodeSelector.topology\\.kubernetes\\.io/region=${region}`,
  ]);
}

beforeAll(async () => {
  cluster = new KindCluster();
  await cluster.create(log);
  await cluster.loadImage(log);
  log('PostgreSQL primary (region-a), standby (region-b), BIND (region-c)');
  await cluster.kubectl(['apply', '-f', join(repoRoot, 'test', 'e2e', 'manifests', 'databases.yaml')]);
  for (const d of ['pg-region-a', 'pg-region-b', 'bind']) {
    await cluster.kubectl(['rollout', 'status', `deployment/${d}`, '-n', NS, '--timeout=300s']);
  }
  log('helm install: the operator in region-c, an observer in each region');
  await cluster.helm([
    'upgrade',
    '--install',
    'failover',
    join(repoRoot, 'charts', 'failover-operator'),
    '--namespace',
    SYSTEM,
    '--create-namespace',
    '--wait',
    '--set',
    `image.repository=${repository},image.tag=${tag},image.pullPolicy=Never`,
    '--set',
    'operator.nodeSelector.topology\\.kubernetes\\.io/region=region-c',
  ]);
  await installObserver('region-a');
  await installObserver('region-b');
  await cluster.kubectl(['apply', '-f', join(repoRoot, 'test', 'e2e', 'manifests', 'policy.yaml')]);
}, 30 * 60_000);

afterAll(async () => {
  if (!cluster) return;
  await cluster.unpauseRegion('region-a');
  await cluster.delete();
}, 5 * 60_000);

describe('installed with the chart', () => {
  it('runs two operator replicas, exactly one leading, ready, and not as root', async () => {
    const pods = await cluster.getJson<{
      items: { metadata: { name: string }; status: { conditions?: { type: string; status: string }[] } }[];
    }>(['pods', '-n', SYSTEM, '-l', 'app.kubernetes.io/component=operator']);
    expect(pods?.items).toHaveLength(2);
    for (const p of pods?.items ?? []) {
      expect(p.status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    }
    const lease = await cluster.getJson<{ spec: { holderIdentity?: string } }>([
      'lease',
      'failover-failover-operator-leader',
      '-n',
      SYSTEM,
    ]);
    expect(pods?.items.map((p) => p.metadata.name)).toContain(lease?.spec.holderIdentity);
    const uid = await cluster.kubectl([
      'exec',
      '-n',
      SYSTEM,
      `pod/${lease?.spec.holderIdentity}`,
      '--',
      'id',
      '-u',
    ]);
    expect(uid.stdout.trim()).toBe('1000');
  });

  it('publishes an observation from each region', async () => {
    await waitFor(
      async () => {
        const list = await cluster.getJson<{ items: { spec: { observer: string } }[] }>([
          'failoverobservations',
          '-n',
          NS,
        ]);
        const observers = new Set(list?.items.map((o) => o.spec.observer));
        return observers.has('region-a') && observers.has('region-b');
      },
      { description: 'observations from region-a and region-b', timeoutMs: 180_000 },
    );
  });

  it('brings the policy to Healthy with the record on the primary', async () => {
    await waitFor(
      async () => {
        const s = await policy();
        return (
          s.phase === 'Healthy' && s.conditions?.some((c) => c.type === 'DnsReady' && c.status === 'True')
        );
      },
      { description: 'a Healthy policy with DNS in place', timeoutMs: 300_000, intervalMs: 2000 },
    );
    expect(await cluster.dnsAnswer(RECORD, DNS)).toEqual([PRIMARY]);
    expect(await clusterStatus('region-b')).toMatchObject({ role: 'Standby' });
  });

  it('shows it through kubectl failover', async () => {
    const { stdout } = await promisify(execFile)(
      join(repoRoot, 'bin', 'kubectl-failover'),
      ['status', '-n', NS],
      {
        env: { ...process.env, KUBECONFIG: cluster.kubeconfig },
      },
    );
    expect(stdout).toMatch(/^orders\s+region-a\s+region-b\s+\S+\s+Healthy\s+0\s/m);
  });
});

describe('a regional outage', () => {
  it('promotes the standby and moves DNS when region-a goes dark', async () => {
    const started = Date.now();
    log('pausing the region-a node: its database and its observer go silent');
    await cluster.pauseRegion('region-a');
    const report = await waitFor(async () => (await policy()).history?.[0], {
      description: 'a finished failover in status.history',
      timeoutMs: 600_000,
      intervalMs: 2000,
    });
    log(`failover finished ${Math.round((Date.now() - started) / 1000)} s after the outage began`);
    expect(report).toMatchObject({
      kind: 'Failover',
      trigger: 'Automatic',
      from: 'region-a',
      to: 'region-b',
      epoch: 1,
      result: 'Succeeded',
    });
    expect(await policy()).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
    await waitFor(async () => (await cluster.dnsAnswer(RECORD, DNS)).join() === STANDBY, {
      description: `${RECORD} to answer ${STANDBY}`,
      timeoutMs: 120_000,
    });
  });

  it('fences the old primary when region-a comes back: never two primaries', async () => {
    await cluster.unpauseRegion('region-a');
    await waitFor(async () => (await clusterStatus('region-a')).role === 'Fenced', {
      description: 'region-a, back again, to be fenced',
      timeoutMs: 300_000,
      intervalMs: 2000,
    });
    const roles = await Promise.all(['region-a', 'region-b'].map(async (n) => (await clusterStatus(n)).role));
    expect(roles.filter((r) => r === 'Primary')).toEqual(['Primary']);
    expect(await policy()).toMatchObject({ activePrimary: 'region-b', epoch: 1 });
  });
});
