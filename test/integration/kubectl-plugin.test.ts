/**
 * `kubectl failover`, the real executable (bin/kubectl-failover, and through kubectl's own plugin
 * discovery), against the real API server. No operator runs: the test writes the statuses an
 * operator would have written, so what the plugin prints and decides is known exactly. It
 * records requests that the API server's CEL rules check, explains with the operator's own
 * decide() what the operator would do, and never changes anything on --dry-run.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { load as loadYaml } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  failoverObservationType,
  failoverPolicyType,
  replicaClusterType,
} from '../../operator/src/controllers/resources.ts';
import { KubeClient, type KubeObject } from '../../operator/src/runtime/kube-client.ts';
import { leaseType, WATCH_NAMESPACE_LABEL } from '../../operator/src/runtime/leader-election.ts';
import { microTime } from '../../operator/src/runtime/time.ts';
import { repoRoot } from '../harness/chart-tools.ts';
import { mintServiceAccountToken } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import { freePort } from '../harness/ports.ts';
import { waitFor } from '../harness/wait.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const ns = `plugin-${process.pid}`;
/** The operator's leader Lease as the plugin finds it (by label): this test's own, held. */
const leaseLabel = `plugin-test-${process.pid}`;
const operatorLeases = (which: string) => `regionfailover.io/leader-election=${which}`;
/**
 * The plugin reads shard Leases in every namespace, and the sharding tests run their replicas on
 * the same control plane at the same time: a shard layout held there hid this file's warnings.
 */
const noShardLeases = operatorLeases(`no-shards-${process.pid}`);
const plugin = join(repoRoot, 'bin', 'kubectl-failover');
let dir: string;
let adminKubeconfig: string;
let client: KubeClient;

function kubeconfig(
  name: string,
  token: string,
  cluster: { server?: string; proxyUrl?: string } = {},
): string {
  const cp = inject('controlPlane');
  const path = join(dir, `${name}.kubeconfig`);
  const proxy = cluster.proxyUrl ? `, proxy-url: "${cluster.proxyUrl}"` : '';
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: shared, cluster: {server: "${cluster.server ?? cp.server}", certificate-authority: "${cp.caPath}"${proxy}}}]`,
      `users: [{name: ${name}, user: {token: "${token}"}}]`,
      `contexts: [{name: shared, context: {cluster: shared, user: ${name}, namespace: ${ns}}}]`,
      'current-context: shared',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the plugin as a person would, with KUBECONFIG pointing at the shared control plane. */
function run(
  args: string[],
  opts: { kubeconfig?: string; viaKubectl?: boolean; env?: Record<string, string> } = {},
): Promise<Run> {
  const env = {
    ...process.env,
    FAILOVER_OPERATOR_LEASE_SELECTOR: operatorLeases(leaseLabel),
    FAILOVER_OPERATOR_SHARD_LEASE_SELECTOR: noShardLeases,
    KUBECONFIG: opts.kubeconfig ?? adminKubeconfig,
    PATH: `${join(repoRoot, 'bin')}:${process.env.PATH}`,
    ...opts.env,
  };
  const [command, argv] = opts.viaKubectl ? ['kubectl', ['failover', ...args]] : [plugin, args];
  return new Promise((resolve) => {
    execFile(command, argv as string[], { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const ago = (seconds: number) =>
  new Date(Date.now() - seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
const reachable = (ok: boolean) => [
  {
    type: 'Reachable',
    status: ok ? 'True' : 'False',
    reason: ok ? 'Connected' : 'ConnectionRefused',
    message: ok ? 'probe succeeded' : 'connection refused',
    lastTransitionTime: now(),
  },
];

async function cluster(
  name: string,
  region: string,
  status: Record<string, unknown>,
  provider: Record<string, unknown> = { type: 'SelfManaged' },
): Promise<void> {
  await client.create(replicaClusterType, ns, {
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'ReplicaCluster',
    metadata: { name, namespace: ns },
    spec: {
      region,
      provider,
      connection: { host: `${name}.db.internal`, credentialsSecretRef: { name: 'pg' } },
      dnsTarget: `${name}.db.internal`,
    },
  });
  await client.mergePatch(replicaClusterType, ns, name, { status }, 'status');
}

async function policy(
  name: string,
  spec: Record<string, unknown>,
  status: Record<string, unknown>,
  namespace = ns,
): Promise<void> {
  await client.create(failoverPolicyType, namespace, {
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'FailoverPolicy',
    metadata: { name, namespace },
    spec: {
      dns: {
        provider: {
          type: 'RFC2136',
          rfc2136: {
            server: 'ns1.example.com',
            tsig: { keyName: 'k', secretRef: { name: 'tsig', key: 'secret' } },
          },
        },
        zone: 'example.com',
        name: `${name}.example.com`,
      },
      // Observations written at the start of the file must still count when the last test runs.
      detection: { probeIntervalSeconds: 5, failureThreshold: 3, quorum: 2, observationMaxAgeSeconds: 3600 },
      promotion: { rpo: { maxLagSeconds: 30, maxLagBytes: 16777216 } },
      ...spec,
    },
  });
  await client.mergePatch(failoverPolicyType, namespace, name, { status }, 'status');
}

async function observation(
  name: string,
  policyName: string,
  observer: string,
  clusters: unknown[],
): Promise<void> {
  await client.create(failoverObservationType, ns, {
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'FailoverObservation',
    metadata: { name, namespace: ns },
    spec: { policy: policyName, observer, observedAt: now(), probeIntervalSeconds: 5, clusters },
  });
}

const report = (fields: Record<string, unknown>) => ({
  kind: 'Switchover',
  trigger: 'Drill',
  from: 'orders-a',
  to: 'orders-b',
  epoch: 3,
  result: 'Succeeded',
  startedAt: ago(2 * 86400 + 60),
  completedAt: ago(2 * 86400),
  ...fields,
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'failover-plugin-'));
  const admin = sharedKubeConfig();
  await installCrds(admin);
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  client = new KubeClient(admin);
  adminKubeconfig = kubeconfig('admin', inject('controlPlane').adminToken);
  // An operator holds its leader Lease: status warns of nothing.
  await client.create(leaseType, ns, {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: 'failover-operator-leader',
      namespace: ns,
      labels: { 'regionfailover.io/leader-election': leaseLabel },
    },
    spec: { holderIdentity: 'operator-0', leaseDurationSeconds: 3600, renewTime: microTime(new Date()) },
  });

  // orders: a healthy pair (a primary, b close behind, c far behind); epoch 3 after past promotions.
  await cluster('orders-a', 'region-a', {
    role: 'Primary',
    health: 'Healthy',
    lastObservedTime: now(),
    consecutiveProbeFailures: 0,
    conditions: reachable(true),
  });
  await cluster('orders-b', 'region-b', {
    role: 'Standby',
    health: 'Healthy',
    replicationLagSeconds: 0.4,
    replicationLagBytes: 1024,
    lagObservedTime: now(),
    lastObservedTime: now(),
    conditions: reachable(true),
  });
  await cluster('orders-c', 'region-c', {
    role: 'Standby',
    health: 'Degraded',
    replicationLagSeconds: 120,
    replicationLagBytes: 50_000_000,
    lagObservedTime: now(),
    lastObservedTime: now(),
    conditions: reachable(true),
  });
  await policy(
    'orders',
    {
      primary: 'orders-a',
      standbys: ['orders-b', 'orders-c'],
      drills: { schedule: '0 3 * * 1', timeZone: 'Europe/Amsterdam' },
    },
    {
      phase: 'Healthy',
      activePrimary: 'orders-a',
      epoch: 3,
      history: [
        report({
          id: 'switchover-e3',
          trigger: 'Manual',
          from: 'orders-b',
          to: 'orders-a',
          rtoSeconds: 14.2,
          rpoSeconds: 0,
          rpoBytes: 0,
          reason: 'failback after maintenance',
        }),
        report({
          id: 'failover-e2',
          kind: 'Failover',
          trigger: 'Automatic',
          epoch: 2,
          rtoSeconds: 41,
          rpoSeconds: 1.5,
          rpoBytes: 4096,
          reason: 'region-a lost by 2 of 2 observers',
        }),
      ],
      drills: [
        report({
          id: 'drill-e3',
          rtoSeconds: 12.3,
          rpoSeconds: 0,
          rpoBytes: 0,
          lostWrites: 0,
          dnsVerifySeconds: 4.1,
        }),
      ],
    },
  );
  await observation('orders-west', 'orders', 'west', [
    { name: 'orders-a', reachable: true, role: 'Primary', consecutiveFailures: 0 },
  ]);

  // payments: its primary is gone by quorum (the operator's probe and observer west agree).
  const down = {
    role: 'Unknown',
    health: 'Unreachable',
    lastObservedTime: now(),
    consecutiveProbeFailures: 6,
    conditions: reachable(false),
  };
  await cluster('payments-a', 'region-a', down);
  await cluster('payments-b', 'region-b', {
    role: 'Standby',
    health: 'Healthy',
    replicationLagSeconds: 95,
    replicationLagBytes: 80_000_000,
    lagObservedTime: ago(10),
    lastObservedTime: now(),
    conditions: reachable(true),
  });
  await policy(
    'payments',
    {
      primary: 'payments-a',
      standbys: ['payments-b'],
      promotion: { mode: 'Manual', rpo: { maxLagSeconds: 30, maxLagBytes: 16777216 } },
    },
    { phase: 'Blocked', activePrimary: 'payments-a', epoch: 0 },
  );
  await observation('payments-west', 'payments', 'west', [
    { name: 'payments-a', reachable: false, role: 'Unknown', consecutiveFailures: 6 },
  ]);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const spec = async (name: string) =>
  (await client.get<KubeObject>(failoverPolicyType, ns, name)).spec as {
    promotionRequest?: Record<string, unknown>;
    drillRequest?: { id: string; action: string; reason?: string; requestedBy?: string; mode?: string };
  };

describe('status', () => {
  it('prints a table of policies: primary, standbys, lag, phase, epoch, last drill (through kubectl)', async () => {
    const res = await run(['status'], { viaKubectl: true });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const [header, ...rows] = res.stdout.trim().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual([
      'POLICY',
      'PRIMARY',
      'STANDBYS',
      'LAG',
      'PHASE',
      'EPOCH',
      'PROTECTION',
      'OPERATION',
      'LAST DRILL',
    ]);
    expect(rows[0]?.split(/\s{2,}/)).toEqual([
      'orders',
      'orders-a',
      'orders-b,orders-c',
      '0.4s',
      'Healthy',
      '3',
      '-',
      '-',
      'Succeeded 2d ago, RTO 12.3s',
    ]);
    expect(rows[1]?.split(/\s{2,}/)).toEqual([
      'payments',
      'payments-a',
      'payments-b',
      '1m35s',
      'Blocked',
      '0',
      '-',
      '-',
      'not scheduled',
    ]);
  });

  it('lists every namespace with -A, and speaks JSON with -o json', async () => {
    const all = await run(['status', '-A']);
    expect(all.stdout).toMatch(/^NAMESPACE\s+POLICY/);
    expect(all.stdout).toMatch(new RegExp(`^${ns}\\s+orders\\s+orders-a`, 'm'));
    const json = JSON.parse((await run(['status', 'orders', '-o', 'json'])).stdout) as Record<
      string,
      unknown
    >[];
    expect(json[0]).toMatchObject({
      name: 'orders',
      primary: 'orders-a',
      lagSeconds: 0.4,
      phase: 'Healthy',
      epoch: 3,
      standbys: [
        { name: 'orders-b', role: 'Standby', lagSeconds: 0.4, lagBytes: 1024 },
        { name: 'orders-c', role: 'Standby', lagSeconds: 120 },
      ],
      lastDrill: { result: 'Succeeded', rtoSeconds: 12.3 },
    });
  });

  it('names what is missing: a policy that does not exist, a wrong flag', async () => {
    const missing = await run(['status', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`FailoverPolicy nope not found in namespace ${ns}`);
    const usage = await run(['status', '--colour']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('unknown flag --colour');
  });
});

describe('the plugin as one file (make plugin)', () => {
  it('runs from anywhere with only Node.js: the same table, no repository, no node_modules', {
    timeout: 120_000,
  }, async () => {
    const out = join(dir, 'bundle');
    await new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        [join(repoRoot, 'hack', 'bundle-plugin.ts')],
        { env: { ...process.env, PLUGIN_OUT_DIR: out } },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    // Alone in a directory of its own, found by kubectl on PATH like any installed plugin.
    const alone = join(dir, 'installed');
    mkdirSync(alone);
    copyFileSync(join(out, 'kubectl-failover'), join(alone, 'kubectl-failover'));
    chmodSync(join(alone, 'kubectl-failover'), 0o755);
    const env = {
      KUBECONFIG: adminKubeconfig,
      FAILOVER_OPERATOR_LEASE_SELECTOR: operatorLeases(leaseLabel),
      FAILOVER_OPERATOR_SHARD_LEASE_SELECTOR: noShardLeases,
      HOME: dir,
      // node first (the one running this test), then the plugin, then the machine's (kubectl).
      PATH: `${dirname(process.execPath)}:${alone}:${(process.env.PATH ?? '')
        .split(':')
        .filter((p) => !p.includes('node_modules'))
        .join(':')}`,
    };
    const [bundled, shim] = await Promise.all([
      new Promise<Run>((resolve) =>
        execFile(
          'kubectl',
          ['failover', 'status'],
          { env, cwd: dir, timeout: 60_000 },
          (err, stdout, stderr) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
        ),
      ),
      run(['status']),
    ]);
    expect(bundled.stderr).toBe('');
    expect(bundled.code).toBe(0);
    // The same table: header and every row's policy, primary and standbys (ages may tick between).
    const cells = (out: string) =>
      out
        .trim()
        .split('\n')
        .map((l) =>
          l
            .split(/\s{2,}/)
            .slice(0, 3)
            .join(' '),
        );
    expect(cells(bundled.stdout)).toEqual(cells(shim.stdout));
    // The krew manifest names the archive it was built with.
    const manifest = readFileSync(join(out, 'krew', 'failover.yaml'), 'utf8');
    const sha = createHash('sha256')
      .update(readFileSync(join(out, 'kubectl-failover.tar.gz')))
      .digest('hex');
    expect(manifest).toContain(`sha256: ${sha}`);
    expect(manifest).toMatch(/kind: Plugin\n/);
  });
});

describe("kubectl's habits", () => {
  it('-o yaml, -o wide and -o name; version; completion of commands and policy names', async () => {
    const yaml = await run(['status', '-o', 'yaml']);
    expect(yaml.code, yaml.stderr).toBe(0);
    const rows = loadYaml(yaml.stdout) as { name: string; phase: string }[];
    expect(rows.map((r) => r.name)).toEqual(['orders', 'payments']);
    const wide = await run(['status', '-o', 'wide']);
    expect(
      wide.stdout
        .split('\n')[0]
        ?.split(/\s{2,}/)
        .slice(-2),
    ).toEqual(['REDUNDANT', 'LAST REQUEST']);
    const history = await run(['history', 'orders', '-o', 'yaml']);
    expect(history.code, history.stderr).toBe(0);
    expect(loadYaml(history.stdout)).toHaveProperty('history');
    expect((await run(['status', '-o', 'xml'])).code).toBe(2);
    // -o name as kubectl prints it: resource/name lines, nothing else on stdout.
    const names = await run(['status', '-o', 'name']);
    expect(names.code, names.stderr).toBe(0);
    expect(names.stdout).toBe(
      'failoverpolicy.regionfailover.io/orders\nfailoverpolicy.regionfailover.io/payments\n',
    );
    const everywhere = await run(['status', '-A', '-o', 'name']);
    expect(everywhere.stdout.split('\n')).toEqual(
      expect.arrayContaining([
        'failoverpolicy.regionfailover.io/orders',
        'failoverpolicy.regionfailover.io/payments',
      ]),
    );
    expect((await run(['status', '-n', `${ns}-none`, '-o', 'name'])).stderr).toMatch(/^No FailoverPolicies/);
    expect((await run(['history', 'orders', '-o', 'name'])).code).toBe(2);

    const version = await run(['version']);
    expect(version.stdout).toMatch(/^Plugin version: \d+\.\d+\.\d+\nServer version: v1\.33\./);

    const commands = await run(['__complete', '']);
    expect(commands.stdout.split('\n')).toEqual(
      expect.arrayContaining(['status', 'switchover', 'pause', ':4']),
    );
    const policies = await run(['__complete', 'history', 'o']);
    expect(policies.stdout).toBe('orders\n:4\n');
    expect((await run(['completion', 'bash'])).stdout).toMatch(
      /complete -F _kubectl_failover kubectl-failover/,
    );
  });

  it('status -w -o name prints a policy that comes and one that goes, once each, as kubectl get -w does', async () => {
    const watched = `${ns}-watch`;
    await sharedKubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: watched } } });
    const spec = { primary: 'w-a', standbys: ['w-b'] };
    await policy('first', spec, {}, watched);
    const watch = (args: string[]) => {
      const child = spawn(plugin, ['status', ...args, '-n', watched, '-w', '-o', 'name'], {
        env: {
          ...process.env,
          KUBECONFIG: adminKubeconfig,
          FAILOVER_OPERATOR_SHARD_LEASE_SELECTOR: noShardLeases,
        },
      });
      const out = { stdout: '', stderr: '', child };
      child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
      return out;
    };
    const all = watch([]);
    const one = watch(['first']);
    try {
      const lines = (o: { stdout: string }) => o.stdout.split('\n').filter(Boolean);
      const name = (n: string) => `failoverpolicy.regionfailover.io/${n}`;
      await waitFor(() => lines(all).length === 1 && lines(one).length === 1, {
        description: () => `both watches print the policy there: ${all.stdout}|${one.stdout}|${one.stderr}`,
      });
      await policy('second', spec, {}, watched);
      await waitFor(() => lines(all).length === 2, {
        description: () => `a new policy printed: ${all.stdout}`,
      });
      await client.delete(failoverPolicyType, watched, 'first');
      // Positive control for "once": the namespace watch sees the deletion, then a later change.
      await waitFor(() => lines(all).length === 3, {
        description: () => `a deletion printed: ${all.stdout}`,
      });
      await client.mergePatch(
        failoverPolicyType,
        watched,
        'second',
        { status: { phase: 'Degraded' } },
        'status',
      );
      await waitFor(() => lines(all).length === 4 && lines(one).length === 2, {
        description: () =>
          `the change and the watched deletion printed: ${all.stdout}|${one.stdout}|${one.stderr}`,
      });
      // Once more, so both watches have read again since (they poll together): nothing new of first.
      await client.mergePatch(
        failoverPolicyType,
        watched,
        'second',
        { status: { phase: 'Healthy' } },
        'status',
      );
      await waitFor(() => lines(all).length === 5, {
        description: () => `the second change printed: ${all.stdout}`,
      });
      expect(lines(all)).toEqual([
        name('first'),
        name('second'),
        name('first'),
        name('second'),
        name('second'),
      ]);
      // The one policy gone: its name once more, as a deletion, and no error while it stays gone.
      expect(lines(one)).toEqual([name('first'), name('first')]);
      expect(one.stderr).not.toMatch(/not found/);
    } finally {
      all.child.kill();
      one.child.kill();
      await sharedKubeConfig().makeApiClient(CoreV1Api).deleteNamespace({ name: watched });
    }
  });

  it("takes kubectl's connection flags: --server, --token, --as, --request-timeout", async () => {
    const cp = inject('controlPlane');
    // A kubeconfig that points nowhere, with a token that is no good: the flags override both.
    const nowhere = kubeconfig('nowhere', 'not-a-token', { server: 'https://127.0.0.1:1' });
    const refused = await run(['status'], { kubeconfig: nowhere });
    expect(refused.code).toBe(1);
    const flags = await run(['status', '--server', cp.server, '--token', cp.adminToken], {
      kubeconfig: nowhere,
    });
    expect(flags.code, flags.stderr).toBe(0);
    expect(flags.stdout).toMatch(/^orders\s/m);
    // Impersonating someone with no rights: the API server answers as to them.
    const as = await run(['status', '--as', 'nobody@example.com', '--as-group', 'nobodies']);
    expect(as.code).toBe(1);
    expect(as.stderr).toMatch(/nobody@example\.com/);
    expect((await run(['status', '--request-timeout', 'soon'])).code).toBe(2);
    expect((await run(['status', '--request-timeout', '10s'])).code).toBe(0);
  });

  it('warns on stderr when no operator holds its leader Lease, or it went stale; silent where it cannot tell', async () => {
    // No Lease with the label (leader election off, or an operator that never ran): no guess.
    const missing = await run(['status'], {
      env: { FAILOVER_OPERATOR_LEASE_SELECTOR: operatorLeases(`absent-${process.pid}`) },
    });
    expect(missing.code).toBe(0);
    expect(missing.stderr).toBe('');
    const stale = `stale-${process.pid}`;
    await client.create(leaseType, ns, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: stale, namespace: ns, labels: { 'regionfailover.io/leader-election': stale } },
      spec: {
        holderIdentity: 'operator-0',
        leaseDurationSeconds: 15,
        renewTime: microTime(new Date(Date.now() - 600_000)),
      },
    });
    const old = await run(['status', '-o', 'json'], {
      env: { FAILOVER_OPERATOR_LEASE_SELECTOR: operatorLeases(stale) },
    });
    expect(old.stderr).toMatch(
      new RegExp(
        `^Warning: no operator holds its leader Lease: ${ns}/${stale} \\(holder operator-0, renewed \\d+ s ago\\)`,
      ),
    );
    // JSON on stdout stays parseable.
    expect(JSON.parse(old.stdout)).toHaveLength(2);
    // The test's own Lease, held: no warning.
    expect((await run(['status'])).stderr).toBe('');

    // Two operators in one cluster: the stopped one watches this namespace; three sharded
    // replicas of another, all renewing, watch another. Theirs say nothing about these policies.
    const elsewhere = `elsewhere-${process.pid}`;
    const shardRole = `shards-${process.pid}`;
    await client.mergePatch(leaseType, ns, stale, { metadata: { labels: { [WATCH_NAMESPACE_LABEL]: ns } } });
    for (const i of [0, 1, 2])
      await client.create(leaseType, ns, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name: `${shardRole}-${i}`,
          namespace: ns,
          labels: {
            'regionfailover.io/leader-election': shardRole,
            [WATCH_NAMESPACE_LABEL]: elsewhere,
            'regionfailover.io/shard': String(i),
            'regionfailover.io/shards': '3',
          },
        },
        spec: { holderIdentity: `other-${i}`, leaseDurationSeconds: 3600, renewTime: microTime(new Date()) },
      });
    const scoped = {
      FAILOVER_OPERATOR_LEASE_SELECTOR: operatorLeases(stale),
      FAILOVER_OPERATOR_SHARD_LEASE_SELECTOR: operatorLeases(shardRole),
    };
    // Positive control: the plugin reads the other operator's Leases. Every namespace shown,
    // every operator counts, and its held layout answers (the limit of a mixed view).
    const everyone = await run(['status', '-A', '-o', 'json'], { env: scoped });
    expect(everyone.code, everyone.stderr).toBe(0);
    expect(everyone.stderr).toBe('');
    expect(JSON.parse(everyone.stdout).some((r: { shard?: unknown }) => r.shard)).toBe(true);
    const ours = await run(['status', '-o', 'json'], { env: scoped });
    expect(ours.stderr).toMatch(/^Warning: no operator holds its leader Lease: /);
  });
});

describe('history', () => {
  it('prints past failovers and switchovers, and drills with RTO, RPO and lost writes', async () => {
    const res = await run(['history', 'orders']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`FailoverPolicy ${ns}/orders: primary orders-a, epoch 3, phase Healthy`);
    expect(res.stdout).toMatch(
      /Switchover\s+Manual\s+orders-b\s+orders-a\s+3\s+Succeeded\s+14.2s\s+0s\/0B\s+failback after maintenance/,
    );
    expect(res.stdout).toMatch(
      /Failover\s+Automatic\s+orders-a\s+orders-b\s+2\s+Succeeded\s+41s\s+1.5s\/4KiB/,
    );
    // The drills table is `drill history`'s.
    expect(res.stdout).toMatch(
      /Drills, newest first:\nID\s+MODE\s+RESULT\s+FROM→TO\s+STARTED\s+DURATION\s+RTO OUT\s+RTO BACK\s+RPO\s+DNS\s+REASON\n/,
    );
    expect(res.stdout).toMatch(
      /drill-e3\s+RoundTrip\s+Succeeded\s+orders-a→orders-b\s+\S+ \S+Z\s+1m0s\s+12.3s\s+-\s+0\s+4.1s\n/,
    );
    const none = await run(['history', 'payments']);
    expect(none.stdout).toContain('none: the policy schedules no drills');
  });
});

describe('promote --dry-run', () => {
  it('explains a switchover the operator would start, and changes nothing', async () => {
    const before = await client.get<KubeObject>(failoverPolicyType, ns, 'orders');
    const res = await run(['promote', 'orders', '--to', 'orders-b', '--dry-run']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('API server:  accepts the request');
    expect(res.stdout).toContain('would start a Switchover from orders-a to orders-b, epoch 3 → 4');
    expect(res.stdout).toContain('orders-b: Standby, lag 0.4s / 1KiB');
    expect(res.stdout).toMatch(/verdict: primary not down: 2 of 2 fresh observers reach orders-a/);
    const after = await client.get<KubeObject>(failoverPolicyType, ns, 'orders');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  it('says why the operator would refuse a failover while the primary is up', async () => {
    const res = await run(['promote', 'orders', '--to', 'orders-b', '--failover', '--dry-run']);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain(
      'would refuse it (PrimaryAvailable): the primary orders-a is reachable and accepts writes; use kind: Switchover',
    );
  });

  it('refuses a failover beyond the RPO budget, and accepts it when data loss is allowed', async () => {
    const refused = await run(['promote', 'payments', '--to', 'payments-b', '--failover', '--dry-run']);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('would refuse it (LagAboveBudget): payments-b lags 95.0 s');
    expect(refused.stdout).toMatch(/verdict: primary down: 2 of 2 observers have not reached payments-a/);
    const allowed = await run([
      'promote',
      'payments',
      '--to',
      'payments-b',
      '--failover',
      '--allow-data-loss',
      '--dry-run',
    ]);
    expect(allowed.code, allowed.stdout).toBe(0);
    expect(allowed.stdout).toContain('would start a Failover from payments-a to payments-b, epoch 0 → 1');
  });

  it('prints the API server refusal of a request its rules reject', async () => {
    const res = await run(['promote', 'orders', '--to', 'orders-b', '--max-lag-seconds', '5', '--dry-run']);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('API server:  would refuse it:');
    expect(res.stdout).toContain('maxLagSeconds applies to kind: Failover only');
  });
});

describe('switchover and failover', () => {
  it('switchover is a planned promotion: explained on --dry-run (through kubectl), no loss flags', async () => {
    const before = await client.get<KubeObject>(failoverPolicyType, ns, 'orders');
    const res = await run(['switchover', 'orders', '--to', 'orders-b', '--dry-run'], { viaKubectl: true });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`Dry run: Switchover of ${ns}/orders to orders-b. Nothing is changed.`);
    expect(res.stdout).toContain('would start a Switchover from orders-a to orders-b, epoch 3 → 4');
    const after = await client.get<KubeObject>(failoverPolicyType, ns, 'orders');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    const lossy = await run(['switchover', 'orders', '--to', 'orders-b', '--allow-data-loss']);
    expect(lossy.code).toBe(2);
    expect(lossy.stderr).toContain('unknown flag --allow-data-loss');
  });

  it('says a switchover demotes an old primary with an agent beside it (no rewind)', async () => {
    const agent = {
      name: 'orders-a-agent',
      reportedAt: now(),
      dataDirectory: '/var/lib/postgresql/15/main',
      server: 'Primary',
      timeline: 3,
      walEnd: '0/5000060',
    };
    await client.mergePatch(replicaClusterType, ns, 'orders-a', { status: { agent } }, 'status');
    try {
      const res = await run(['switchover', 'orders', '--to', 'orders-b', '--dry-run']);
      expect(res.code, res.stdout).toBe(0);
      expect(res.stdout).toContain(
        'then the agent beside orders-a stops it cleanly; it promotes orders-b once that last WAL is replayed',
      );
      expect(res.stdout).toMatch(/agent orders-a-agent: reported \d+s ago, server Primary; no comparison/);
    } finally {
      await client.mergePatch(replicaClusterType, ns, 'orders-a', { status: { agent: null } }, 'status');
    }
  });

  it('failover is promote --failover: refused while the primary is up', async () => {
    const res = await run(['failover', 'orders', '--to', 'orders-b', '--dry-run']);
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('Dry run: Failover of');
    expect(res.stdout).toContain('would refuse it (PrimaryAvailable)');
  });

  it('the usage presents switchover (planned), promote --failover (unplanned) and reprotect', async () => {
    const res = await run(['--help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('kubectl failover switchover POLICY --to CLUSTER [--dry-run]');
    expect(res.stdout).toContain('kubectl failover promote POLICY --to CLUSTER --failover');
    expect(res.stdout).toContain('kubectl failover reprotect POLICY CLUSTER [--allow-data-loss]');
  });
});

describe('promote', () => {
  const refusals: [string[], string][] = [
    [['--to', 'orders-z'], 'promotionRequest.target must be the primary or one of the standbys'],
    [
      ['--to', 'orders-b', '--allow-data-loss'],
      'a Switchover never loses data: remove allowDataLoss, or use kind: Failover',
    ],
    [
      ['--to', 'orders-b', '--failover', '--max-lag-seconds', '100'],
      'promotionRequest.maxLagSeconds exceeds the RPO budget (promotion.rpo.maxLagSeconds): set allowDataLoss: true',
    ],
  ];
  for (const [flags, message] of refusals) {
    it(`prints the API server's own message: ${message.slice(0, 60)}…`, async () => {
      const res = await run(['promote', 'orders', ...flags]);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('error: the API server refused the request:');
      expect(res.stderr).toContain(message);
      expect((await spec('orders')).promotionRequest).toBeUndefined();
    });
  }

  it('records a switchover request with a fresh id and who asked; the operator does the rest', async () => {
    const res = await run(
      ['promote', 'orders', '--to', 'orders-b', '--reason', 'kernel upgrade in region-a'],
      {
        viaKubectl: true,
      },
    );
    expect(res.code, res.stderr).toBe(0);
    const request = (await spec('orders')).promotionRequest;
    expect(request).toMatchObject({
      target: 'orders-b',
      kind: 'Switchover',
      allowDataLoss: false,
      reason: 'kernel upgrade in region-a',
      requestedBy: 'admin',
    });
    expect(request?.id).toMatch(/^switchover-\d{8}-\d{6}-[0-9a-f]{4}$/);
    expect(res.stdout).toContain(
      `Requested: Switchover of ${ns}/orders to orders-b (request ${request?.id})`,
    );
    expect((await run(['status', 'orders'])).stdout).toMatch(
      /Healthy\s+3\s+-\s+requested: Switchover to orders-b\s/,
    );
  });

  it('does not overwrite a request the operator has not handled, unless told to replace it', async () => {
    const first = (await spec('orders')).promotionRequest?.id;
    const again = await run(['promote', 'orders', '--to', 'orders-c']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`already has a request the operator has not handled: ${first}`);
    const replaced = await run(['promote', 'orders', '--to', 'orders-c', '--replace']);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect((await spec('orders')).promotionRequest).toMatchObject({ target: 'orders-c' });
    // As the operator would: mark it handled, after which a new request needs no --replace.
    const handled = (await spec('orders')).promotionRequest?.id;
    await client.mergePatch(
      failoverPolicyType,
      ns,
      'orders',
      { status: { lastHandledRequestId: handled } },
      'status',
    );
    const next = await run(['promote', 'orders', '--to', 'orders-b', '--id', 'drill-by-hand']);
    expect(next.code, next.stderr).toBe(0);
    expect((await spec('orders')).promotionRequest).toMatchObject({
      id: 'drill-by-hand',
      target: 'orders-b',
    });
  });

  it('records a failover that allows data loss', async () => {
    const res = await run(['promote', 'payments', '--to', 'payments-b', '--failover', '--allow-data-loss']);
    expect(res.code, res.stderr).toBe(0);
    expect((await spec('payments')).promotionRequest).toMatchObject({
      kind: 'Failover',
      allowDataLoss: true,
      target: 'payments-b',
    });
  });

  it('tells someone who may only read that a promotion needs the edit role', async () => {
    const admin = sharedKubeConfig();
    await admin.makeApiClient(RbacAuthorizationV1Api).createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'failover-viewer' },
        rules: [
          {
            apiGroups: ['regionfailover.io'],
            resources: ['failoverpolicies', 'replicaclusters', 'failoverobservations'],
            verbs: ['get', 'list', 'watch'],
          },
        ],
      },
    });
    await admin.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'failover-viewer' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'failover-viewer' },
        subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }],
      },
    });
    const viewer = kubeconfig('viewer', await mintServiceAccountToken(admin, ns, 'viewer'));
    const status = await run(['status'], { kubeconfig: viewer });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('orders');
    const promote = await run(['promote', 'payments', '--to', 'payments-b', '--failover', '--replace'], {
      kubeconfig: viewer,
    });
    expect(promote.code).toBe(1);
    expect(promote.stderr).toContain(`you may not change FailoverPolicies in namespace ${ns}`);
    expect(promote.stderr).toContain('ask for the edit role');
    const dryRun = await run(['promote', 'orders', '--to', 'orders-b', '--dry-run'], { kubeconfig: viewer });
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stdout).toContain('API server:  not asked: you may not patch FailoverPolicies');
    expect(dryRun.stdout).toContain('would start a Switchover from orders-a to orders-b');
  });
});

describe('reprotect', () => {
  // warehouse: failed over from a to b (epoch 2). a came back fenced (self-managed, an agent may
  // run beside it); c, an RDS instance, came back too and its provider rebuilds it as a replica.
  const agentReport = (divergence: Record<string, unknown>) => ({
    name: 'warehouse-a-agent',
    reportedAt: now(),
    dataDirectory: '/var/lib/postgresql/15/main',
    server: 'Primary',
    timeline: 1,
    walEnd: '0/3001F58',
    rewindable: true,
    divergence: { primary: 'warehouse-b', assessedAt: now(), ...divergence },
  });
  const diverged = {
    relation: 'Diverged',
    forkLsn: '0/3000148',
    localTimeline: 1,
    localEndLsn: '0/3001F58',
    divergedBytes: 7696,
    divergedTransactions: 3,
    message: 'wrote 7696 bytes past the fork at 0/3000148',
  };
  /** The agent's report, written as the agent writes it: the status subresource, fresh now. */
  const agentReports = (report: Record<string, unknown> | null) =>
    client.mergePatch(replicaClusterType, ns, 'warehouse-a', { status: { agent: report } }, 'status');
  const fenced = {
    role: 'Fenced',
    health: 'Healthy',
    epoch: 1,
    fencedEpoch: 2,
    lastObservedTime: now(),
    consecutiveProbeFailures: 0,
    conditions: reachable(true),
  };

  beforeAll(async () => {
    await cluster('warehouse-a', 'region-a', fenced);
    await cluster('warehouse-b', 'region-b', {
      role: 'Primary',
      health: 'Healthy',
      epoch: 2,
      lastObservedTime: now(),
      consecutiveProbeFailures: 0,
      conditions: reachable(true),
    });
    await cluster('warehouse-c', 'region-c', fenced, {
      type: 'AwsRds',
      awsRds: { region: 'eu-west-1', dbInstanceIdentifier: 'warehouse-c' },
    });
    await policy(
      'warehouse',
      { primary: 'warehouse-a', standbys: ['warehouse-b', 'warehouse-c'] },
      {
        phase: 'Degraded',
        activePrimary: 'warehouse-b',
        epoch: 2,
        history: [
          report({
            id: 'failover-e2',
            kind: 'Failover',
            trigger: 'Automatic',
            from: 'warehouse-a',
            to: 'warehouse-b',
            epoch: 2,
            rtoSeconds: 38,
            rpoSeconds: 0.2,
            rpoBytes: 512,
          }),
          report({
            id: 'reprotect-e1',
            kind: 'Reprotect',
            trigger: 'Manual',
            from: 'warehouse-b',
            to: 'warehouse-a',
            epoch: 1,
            discardedBytes: 8192,
            discardedTransactions: 2,
            reason: 'rejoin after the region-b outage',
          }),
        ],
      },
    );
  });

  it('--dry-run refuses a former primary no agent reports for (NoAgent), and changes nothing', async () => {
    const before = await client.get<KubeObject>(failoverPolicyType, ns, 'warehouse');
    const res = await run(['reprotect', 'warehouse', 'warehouse-a', '--dry-run']);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toContain(
      `Dry run: Reprotect of ${ns}/warehouse: warehouse-a made a standby of warehouse-b again. Nothing is changed.`,
    );
    expect(res.stdout).toContain('API server:  accepts the request');
    expect(res.stdout).toContain(
      'Operator:    would refuse it (NoAgent): warehouse-a is not a replicating standby and no database agent reports for it',
    );
    expect(res.stdout).toContain('warehouse-a: Fenced');
    const after = await client.get<KubeObject>(failoverPolicyType, ns, 'warehouse');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  it("--dry-run refuses what would discard committed transactions (the agent's assessment), and accepts it with --allow-data-loss", async () => {
    await agentReports(agentReport(diverged));
    const refused = await run(['reprotect', 'warehouse', '--cluster', 'warehouse-a', '--dry-run']);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stdout).toContain(
      'would refuse it (WouldDiscard): warehouse-a: its WAL runs 7696 bytes past the fork at 0/3000148 (to 0/3001F58 on timeline 1): 3 committed transaction(s) there would be discarded; set allowDataLoss: true to discard it',
    );
    expect(refused.stdout).toMatch(
      /agent warehouse-a-agent: reported \d+s ago, server Primary; compared with warehouse-b \d+s ago: Diverged, fork 0\/3000148, WAL to 0\/3001F58 \(timeline 1\), 7696 bytes and 3 transaction\(s\) past the fork/,
    );
    await agentReports(agentReport(diverged));
    const allowed = await run(['reprotect', 'warehouse', 'warehouse-a', '--allow-data-loss', '--dry-run']);
    expect(allowed.code, allowed.stdout).toBe(0);
    expect(allowed.stdout).toContain(
      'would start a Reprotect of warehouse-a as a standby of warehouse-b, epoch 2 unchanged: the agent beside warehouse-a stops it, rewinds it with pg_rewind',
    );
    expect(allowed.stdout).toContain(
      'Discards:    7.5KiB (7696 bytes) of WAL after the fork at 0/3000148, up to 0/3001F58: 3 committed transaction(s)',
    );
  });

  it('--dry-run of a managed former primary: its provider makes the new replica', async () => {
    const res = await run(['reprotect', 'warehouse', 'warehouse-c', '--dry-run']);
    expect(res.code, res.stdout).toBe(0);
    expect(res.stdout).toContain(
      'would start a Reprotect of warehouse-c as a standby of warehouse-b, epoch 2 unchanged: its provider makes warehouse-c a replica of warehouse-b again',
    );
  });

  it('--dry-run refuses the active primary, and the command line needs a cluster', async () => {
    const primary = await run(['reprotect', 'warehouse', 'warehouse-b', '--dry-run']);
    expect(primary.code).toBe(1);
    expect(primary.stdout).toContain('would refuse it (AlreadyPrimary): warehouse-b is already the primary');
    const none = await run(['reprotect', 'warehouse']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('reprotect needs the former primary');
    const two = await run(['reprotect', 'warehouse', 'warehouse-a', '--cluster', 'warehouse-c']);
    expect(two.code).toBe(2);
  });

  it('records the request, and says what the operator will make of it', async () => {
    await agentReports(agentReport(diverged));
    const res = await run([
      'reprotect',
      'warehouse',
      'warehouse-a',
      '--allow-data-loss',
      '--reason',
      'rejoin after the region-a outage',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const request = (await spec('warehouse')).promotionRequest;
    expect(request).toEqual({
      id: expect.stringMatching(/^reprotect-\d{8}-\d{6}-[0-9a-f]{4}$/),
      target: 'warehouse-a',
      kind: 'Reprotect',
      allowDataLoss: true,
      reason: 'rejoin after the region-a outage',
      requestedBy: 'admin',
    });
    expect(res.stdout).toContain(
      `Requested: Reprotect of ${ns}/warehouse: warehouse-a made a standby of warehouse-b again, discarding what it wrote after the fork if need be (request ${request?.id}).`,
    );
    expect(res.stdout).toContain(
      'From status now, the operator will start a Reprotect of warehouse-a as a standby of warehouse-b',
    );
    expect(res.stdout).toContain('Discards:    7.5KiB (7696 bytes)');
    expect((await run(['status', 'warehouse'])).stdout).toMatch(/requested: Reprotect of warehouse-a\s/);
  });

  it('a new request carries nothing over from the last (maxLagSeconds, reason)', async () => {
    const handled = async () => {
      const id = (await spec('warehouse')).promotionRequest?.id;
      await client.mergePatch(
        failoverPolicyType,
        ns,
        'warehouse',
        { status: { lastHandledRequestId: id } },
        'status',
      );
    };
    await handled();
    const failover = await run([
      'failover',
      'warehouse',
      '--to',
      'warehouse-c',
      '--max-lag-seconds',
      '10',
      '--reason',
      'region-b is burning',
    ]);
    expect(failover.code, failover.stderr).toBe(0);
    expect((await spec('warehouse')).promotionRequest).toMatchObject({
      kind: 'Failover',
      maxLagSeconds: 10,
      allowDataLoss: false,
    });
    await handled();
    // A merge patch keeps what it does not name: a leftover maxLagSeconds would make the API
    // server refuse this switchover, a leftover reason would misstate it.
    const switchover = await run(['switchover', 'warehouse', '--to', 'warehouse-c', '--id', 'planned-c']);
    expect(switchover.code, switchover.stderr).toBe(0);
    expect(switchover.stdout).toContain(
      `Requested: Switchover of ${ns}/warehouse to warehouse-c (request planned-c)`,
    );
    expect((await spec('warehouse')).promotionRequest).toEqual({
      id: 'planned-c',
      target: 'warehouse-c',
      kind: 'Switchover',
      allowDataLoss: false,
      requestedBy: 'admin',
    });
  });

  it('history lists reprotects with what they discarded; status -o json carries the request outcome', async () => {
    const res = await run(['history', 'warehouse']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('Failovers, switchovers and reprotects, newest first:');
    expect(res.stdout).toMatch(/RPO\s+DISCARDED\s+REASON/);
    expect(res.stdout).toMatch(
      /Reprotect\s+Manual\s+warehouse-b\s+warehouse-a\s+1\s+Succeeded\s+-\s+-\s+8KiB, 2 txs\s+rejoin after the region-b outage/,
    );
    expect(res.stdout).toMatch(
      /Failover\s+Automatic\s+warehouse-a\s+warehouse-b\s+2\s+Succeeded\s+38s\s+0.2s\/512B\s+-/,
    );
    await client.mergePatch(
      failoverPolicyType,
      ns,
      'warehouse',
      {
        status: {
          lastRequest: {
            id: 'planned-c',
            outcome: 'Rejected',
            reason: 'TargetNotStandby',
            message: 'warehouse-c is in role Fenced, not a replicating standby',
            time: now(),
          },
          topology: [
            { cluster: 'warehouse-b', role: 'Primary', ready: true },
            {
              cluster: 'warehouse-a',
              role: 'FormerPrimary',
              ready: false,
              agent: true,
              message: 'in role Fenced, not a standby of warehouse-b',
            },
            {
              cluster: 'warehouse-c',
              role: 'FormerPrimary',
              ready: false,
              message: 'in role Fenced, not a standby of warehouse-b',
            },
          ],
        },
      },
      'status',
    );
    const table = await run(['status', 'warehouse']);
    expect(table.stdout).toMatch(
      /warehouse-b\s+warehouse-a \(FormerPrimary\),warehouse-c \(FormerPrimary\)\s+-\s+Degraded\s+2\s/,
    );
    const json = JSON.parse((await run(['status', 'warehouse', '-o', 'json'])).stdout) as Record<
      string,
      unknown
    >[];
    expect(json[0]).toMatchObject({
      primary: 'warehouse-b',
      standbys: [
        { name: 'warehouse-a', formerPrimary: true, agent: true },
        { name: 'warehouse-c', formerPrimary: true },
      ],
      lastRequest: { id: 'planned-c', outcome: 'Rejected', reason: 'TargetNotStandby' },
      topology: [{ cluster: 'warehouse-b', role: 'Primary' }, {}, {}],
    });
  });
});

describe('drill', () => {
  // ledger: a primary and a standby, each with a database agent beside it, so a drill can come
  // back; drills only on request (suspend). The test answers requests as the operator would.
  const agentOf = (name: string, server: string) => ({
    name: `${name}-agent`,
    reportedAt: now(),
    dataDirectory: '/var/lib/postgresql/15/main',
    server,
  });
  /** The agents report, fresh now: a drill needs both alive to come back. */
  const agentsReport = async () => {
    await client.mergePatch(
      replicaClusterType,
      ns,
      'ledger-a',
      { status: { agent: agentOf('ledger-a', 'Primary'), lastObservedTime: now() } },
      'status',
    );
    await client.mergePatch(
      replicaClusterType,
      ns,
      'ledger-b',
      { status: { agent: agentOf('ledger-b', 'Standby'), lastObservedTime: now() } },
      'status',
    );
  };
  const ledgerStatus = (status: Record<string, unknown>) =>
    client.mergePatch(failoverPolicyType, ns, 'ledger', { status }, 'status');
  /** A drill request in spec that status does not say was handled. */
  const pendingDrillRequest = async () => {
    const p = await client.get<KubeObject>(failoverPolicyType, ns, 'ledger');
    const request = (p.spec as Awaited<ReturnType<typeof spec>>).drillRequest;
    const handled = (p.status as { lastHandledDrillRequestId?: string } | undefined)
      ?.lastHandledDrillRequestId;
    return request && request.id !== handled ? request : undefined;
  };
  /** As the operator: waits for the plugin's request, then records the answer (and more) in status. */
  const operatorAnswers = async (
    outcome: 'Accepted' | 'Rejected',
    message: string,
    more: (id: string) => Record<string, unknown> = () => ({}),
  ) => {
    const request = await waitFor(pendingDrillRequest, { description: 'the drill request in spec' });
    await ledgerStatus({
      lastHandledDrillRequestId: request.id,
      lastDrillRequest: { id: request.id, action: request.action, outcome, message, time: now() },
      ...more(request.id),
    });
    return request;
  };
  const starting = (requestId: string) => ({
    id: 'drill-20261121030405',
    from: 'ledger-a',
    to: 'ledger-b',
    startedAt: now(),
    leg: 'Starting',
    requestId,
  });

  beforeAll(async () => {
    await cluster('ledger-a', 'region-a', {
      role: 'Primary',
      health: 'Healthy',
      lastObservedTime: now(),
      consecutiveProbeFailures: 0,
      conditions: reachable(true),
    });
    await cluster('ledger-b', 'region-b', {
      role: 'Standby',
      health: 'Healthy',
      replicationLagSeconds: 0.4,
      replicationLagBytes: 1024,
      lagObservedTime: now(),
      lastObservedTime: now(),
      conditions: reachable(true),
    });
    await policy(
      'ledger',
      {
        primary: 'ledger-a',
        standbys: ['ledger-b'],
        drills: { suspend: true, holdSeconds: 120, maxDurationSeconds: 900 },
      },
      { phase: 'Healthy', activePrimary: 'ledger-a', epoch: 3 },
    );
  });

  it('run --dry-run: the drill the operator would start, and what it decides from; changes nothing', async () => {
    await agentsReport();
    const before = await client.get<KubeObject>(failoverPolicyType, ns, 'ledger');
    const res = await run(['drill', 'run', 'ledger', '--dry-run'], { viaKubectl: true });
    expect(res.code, res.stderr + res.stdout).toBe(0);
    expect(res.stdout).toMatch(
      new RegExp(
        `^Dry run: run a drill of ${ns}/ledger now \\(request drill-run-\\d{8}-\\d{6}-[0-9a-f]{4}\\)\\. Nothing is changed\\.`,
      ),
    );
    expect(res.stdout).toContain('API server:  accepts the request (checked with dryRun=All)');
    expect(res.stdout).toContain(
      'Operator:    would start a drill from ledger-a out to ledger-b: the canary writes through the DNS name, it switches over to ledger-b, holds there 120 s and switches back (at most 900 s in all)',
    );
    expect(res.stdout).toMatch(
      /ledger-a \(active primary\): Primary; agent ledger-a-agent reported \d+s ago \(it brings it back as a standby\)/,
    );
    expect(res.stdout).toMatch(
      /ledger-b: Standby, lag 0.4s \(a drill needs 5s at most\); agent ledger-b-agent reported/,
    );
    const after = await client.get<KubeObject>(failoverPolicyType, ns, 'ledger');
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
  });

  it('run --dry-run refuses what could not come back (no agent), waits for a promotion requested first; a policy needs spec.drills', async () => {
    await agentsReport();
    await client.mergePatch(replicaClusterType, ns, 'ledger-a', { status: { agent: null } }, 'status');
    const noAgent = await run(['drill', 'run', 'ledger', '--dry-run']);
    expect(noAgent.code).toBe(1);
    expect(noAgent.stdout).toContain(
      'Operator:    would refuse it: no database agent reports for ledger-a and its provider does not make a former primary a standby again after a switchover, so the drill could not come back (run the agent beside it: docs/agent.md)',
    );
    expect(noAgent.stdout).toContain(
      'ledger-a (active primary): Primary; no database agent reports for it: a drill could not come back through it (docs/agent.md)',
    );
    await agentsReport();
    // A person's switchover request, not handled yet: the operator acts on it first.
    const switchover = { id: 'move-first', kind: 'Switchover', target: 'ledger-b', allowDataLoss: false };
    await client.mergePatch(failoverPolicyType, ns, 'ledger', { spec: { promotionRequest: switchover } });
    const waits = await run(['drill', 'run', 'ledger', '--dry-run']);
    expect(waits.code).toBe(1);
    expect(waits.stdout).toContain(
      'Operator:    would first start a Switchover ledger-a → ledger-b (requested by a person); the request is considered after it',
    );
    await ledgerStatus({ lastHandledRequestId: 'move-first' });
    const payments = await run(['drill', 'run', 'payments']);
    expect(payments.code).toBe(1);
    expect(payments.stderr).toContain(
      `error: FailoverPolicy ${ns}/payments has no spec.drills, which a drill needs (hold, maximum duration, lag limit): add spec.drills (suspend: true runs drills only on request)`,
    );
    expect((await spec('payments')).drillRequest).toBeUndefined();
  });

  it('run records the request, waits for the answer and names the drill and its standby', async () => {
    // Fresh agents: the plugin judges a run with the operator's rules before writing it.
    await agentsReport();
    const res = run(['drill', 'run', 'ledger', '--reason', 'quarterly proof', '--timeout', '60s']);
    const request = await operatorAnswers(
      'Accepted',
      'drill drill-20261121030405: out to ledger-b and back',
      (id) => ({
        drill: starting(id),
      }),
    );
    expect(request).toEqual({
      id: expect.stringMatching(/^drill-run-\d{8}-\d{6}-[0-9a-f]{4}$/),
      action: 'Run',
      reason: 'quarterly proof',
      requestedBy: 'admin',
    });
    const done = await res;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain(`Requested: run a drill of ${ns}/ledger now (request ${request.id}).`);
    expect(done.stdout).toContain(
      'Accepted: drill drill-20261121030405 started: from ledger-a out to ledger-b and back (leg Starting).',
    );
    expect(done.stdout).toContain(`kubectl failover drill cancel ledger -n ${ns}`);
  });

  it('does not queue a second drill behind the one in progress; history shows it in progress', async () => {
    const again = await run(['drill', 'run', 'ledger']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(
      `error: drill drill-20261121030405 is in progress (leg Starting, ledger-a→ledger-b): wait for it`,
    );
    const history = await run(['drill', 'history', 'ledger']);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toMatch(
      /In progress: drill drill-20261121030405 ledger-a→ledger-b, leg Starting for \d+s \(started \d+s ago, on request drill-run-/,
    );
    expect(history.stdout).toContain('none yet (schedule "0 3 * * 1" in UTC, suspended)');
  });

  it('cancel stops the drill in progress and says what stopping does', async () => {
    const res = run(['drill', 'cancel', 'ledger', '--reason', 'payroll run', '--timeout', '60s']);
    const request = await operatorAnswers(
      'Accepted',
      'drill drill-20261121030405 stops and comes back',
      () => ({}),
    );
    expect(request).toMatchObject({ action: 'Cancel', reason: 'payroll run', requestedBy: 'admin' });
    expect(request.id).toMatch(/^drill-cancel-\d{8}-\d{6}-[0-9a-f]{4}$/);
    const done = await res;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain(
      'Accepted: drill drill-20261121030405 stops and comes back: nothing has moved yet.',
    );
  });

  it('history: each drill with RTO out and back and who measured them, RPO in canary rows, DNS; -o json the array', async () => {
    const report = {
      kind: 'Switchover',
      trigger: 'Drill',
      from: 'ledger-a',
      to: 'ledger-b',
      epoch: 5,
    };
    await ledgerStatus({
      drill: null,
      epoch: 5,
      drills: [
        {
          ...report,
          id: 'drill-20261121030405',
          result: 'Cancelled',
          startedAt: ago(200),
          completedAt: ago(170),
          requestId: 'drill-run-x',
          reason: 'cancelled by request drill-cancel-x of admin (payroll run); nothing moved',
        },
        {
          ...report,
          id: 'drill-20261114030000',
          result: 'Succeeded',
          startedAt: ago(7 * 86400 + 342),
          completedAt: ago(7 * 86400),
          rtoSeconds: 1.4,
          lostWrites: 0,
          dnsVerifySeconds: 0.2,
          out: {
            operationId: 'o1',
            measuredBy: 'Canary',
            rtoSeconds: 1.4,
            rpoTransactions: 0,
            acknowledged: 212,
          },
          back: {
            operationId: 'o2',
            measuredBy: 'Operator',
            rtoSeconds: 9.8,
            message: 'no canary writer ran',
          },
          reason: 'out to ledger-b: RTO 1.4 s, RPO 0 of 212 canary rows; back: RTO 9.8 s (operator-measured)',
        },
      ],
    });
    const res = await run(['drill', 'history', 'ledger']);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines[0]).toBe(`FailoverPolicy ${ns}/ledger: primary ledger-a; drills, newest first:`);
    expect(lines[1]?.split(/\s{2,}/)).toEqual([
      'ID',
      'MODE',
      'RESULT',
      'FROM→TO',
      'STARTED',
      'DURATION',
      'RTO OUT',
      'RTO BACK',
      'RPO',
      'DNS',
      'REASON',
    ]);
    expect(lines[2]).toMatch(
      /^drill-20261121030405\s+RoundTrip\s+Cancelled\s+ledger-a→ledger-b\s+\S+ \S+Z\s+30s\s+-\s+-\s+-\s+-\s+cancelled by request drill-cancel-x of admin \(payroll run\);…$/,
    );
    expect(lines[3]).toMatch(
      /^drill-20261114030000\s+RoundTrip\s+Succeeded\s+ledger-a→ledger-b\s+\S+ \S+Z\s+5m42s\s+1.4s \(canary\)\s+9.8s \(operator\)\s+0 of 212\s+0.2s\s+out to ledger-b/,
    );
    const json = JSON.parse((await run(['drill', 'history', 'ledger', '-o', 'json'])).stdout) as unknown[];
    expect(json).toHaveLength(2);
    expect(json[1]).toMatchObject({
      id: 'drill-20261114030000',
      out: { measuredBy: 'Canary', acknowledged: 212 },
    });
  });

  it('cancel with no drill in progress: the refusal, exit 1', async () => {
    const res = run(['drill', 'cancel', 'ledger', '--timeout', '60s']);
    await operatorAnswers('Rejected', 'no drill is in progress');
    const done = await res;
    expect(done.code).toBe(1);
    expect(done.stdout).toContain('Rejected: no drill is in progress');
  });

  it('an unanswered run says why from status, and stays pending; a new run needs --replace, a cancel withdraws it', async () => {
    await agentsReport();
    const res = await run(['drill', 'run', 'ledger', '--timeout', '1s']);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stdout).toContain(
      'The operator has not answered within 1 s; the request stays recorded and is acted on once.',
    );
    expect(res.stdout).toContain(
      'From status now, the operator would start a drill from ledger-a out to ledger-b',
    );
    const first = await pendingDrillRequest();
    expect(first?.action).toBe('Run');

    const again = await run(['drill', 'run', 'ledger']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(
      `already has a drill request the operator has not handled: ${first?.id} (Run, by admin)`,
    );
    const replaced = await run(['drill', 'run', 'ledger', '--replace', '--id', 'by-hand', '--timeout', '0']);
    expect(replaced.code, replaced.stderr).toBe(0);
    expect(replaced.stdout).toContain(
      `It replaces request ${first?.id} (Run), which the operator had not handled`,
    );
    expect((await spec('ledger')).drillRequest).toEqual({
      id: 'by-hand',
      action: 'Run',
      requestedBy: 'admin',
    });

    const cancel = run(['drill', 'cancel', 'ledger', '--timeout', '60s']);
    await waitFor(async () => (await pendingDrillRequest())?.action === 'Cancel', {
      description: 'the cancel request in spec',
    });
    await operatorAnswers('Rejected', 'no drill is in progress');
    const withdrawn = await cancel;
    expect(withdrawn.code, withdrawn.stdout).toBe(0);
    expect(withdrawn.stdout).toContain('It replaces request by-hand (Run)');
    expect(withdrawn.stdout).toContain(
      'No drill runs: the run request by-hand was withdrawn before the operator acted on it (the operator: no drill is in progress).',
    );
  });

  it("prints the API server's refusal of a request changed under the same id", async () => {
    await agentsReport();
    const first = await run(['drill', 'run', 'ledger', '--id', 'by-hand-2', '--timeout', '0']);
    expect(first.code, first.stderr).toBe(0);
    const changed = await run(['drill', 'cancel', 'ledger', '--id', 'by-hand-2', '--timeout', '0']);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toContain('error: the API server refused the request:');
    expect(changed.stderr).toContain(
      'a drill request cannot be changed once made: give the new request a new id',
    );
    const dry = await run(['drill', 'cancel', 'ledger', '--id', 'by-hand-2', '--dry-run']);
    expect(dry.code).toBe(1);
    expect(dry.stdout).toContain('API server:  would refuse it:');
  });

  it('the command line: a subcommand, one POLICY, a readable --timeout', async () => {
    expect((await run(['drill'])).stderr).toContain(
      'drill needs a command: kubectl failover drill run|cancel|history POLICY',
    );
    const unknown = await run(['drill', 'start', 'ledger']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown drill command start; drill commands are: run, cancel, history');
    const timeout = await run(['drill', 'run', 'ledger', '--timeout', 'soon']);
    expect(timeout.code).toBe(2);
    expect(timeout.stderr).toContain('--timeout must be a duration such as 30s or 2m, got soon');
    const flag = await run(['drill', 'history', 'ledger', '--dry-run']);
    expect(flag.code).toBe(2);
    const help = await run(['drill', '--help']);
    expect(help.stdout).toContain(
      'kubectl failover drill run POLICY [--mode RoundTrip|Isolated] [--reason TEXT] [--id ID]',
    );
  });

  describe('isolated', () => {
    // An isolated drill copies ledger-b beside itself: nothing in production moves, so only the
    // agent beside the standby matters (and ledger-b's dnsTarget, for the drill record).
    const isolatedDrill = (requestId: string) => ({
      id: 'drill-20261121040000',
      from: 'ledger-a',
      to: 'ledger-b',
      startedAt: now(),
      mode: 'Isolated',
      leg: 'Copying',
      requestId,
      isolated: { recordName: 'drill.ledger.example.com', port: 5433, value: 'ledger-b.db.internal' },
    });

    beforeAll(async () => {
      // The run left pending by the test before is settled, as the operator would.
      await ledgerStatus({ lastHandledDrillRequestId: (await spec('ledger')).drillRequest?.id });
    });

    it('run --mode Isolated without an agent beside the standby: refused before anything is written; --mode takes RoundTrip or Isolated exactly', async () => {
      await agentsReport();
      await client.mergePatch(replicaClusterType, ns, 'ledger-b', { status: { agent: null } }, 'status');
      const before = await client.get<KubeObject>(failoverPolicyType, ns, 'ledger');
      const refused = await run(['drill', 'run', 'ledger', '--mode', 'Isolated']);
      expect(refused.code, refused.stdout).toBe(1);
      expect(refused.stderr).toContain(
        'error: the operator would refuse this isolated drill: no standby to copy: no database agent reports for ledger-b',
      );
      expect(refused.stderr).toContain(
        `Nothing was recorded; kubectl failover drill run ledger -n ${ns} --mode Isolated --dry-run shows what it decides from.`,
      );
      const after = await client.get<KubeObject>(failoverPolicyType, ns, 'ledger');
      expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);

      for (const mode of [['--mode', 'Bogus'], ['--mode=isolated']]) {
        const bad = await run(['drill', 'run', 'ledger', ...mode]);
        expect(bad.code).toBe(2);
        expect(bad.stderr).toMatch(
          /^error: --mode must be one of RoundTrip, Isolated, got (Bogus|isolated)\n/,
        );
      }
      const onCancel = await run(['drill', 'cancel', 'ledger', '--mode', 'Isolated']);
      expect(onCancel.code).toBe(2);
      expect(onCancel.stderr).toContain('unknown flag --mode');
    });

    it('run --mode=Isolated --dry-run: the copy, who makes it, and that the primary is left alone', async () => {
      await agentsReport();
      const res = await run(['drill', 'run', 'ledger', '--mode=Isolated', '--dry-run']);
      expect(res.code, res.stderr + res.stdout).toBe(0);
      expect(res.stdout).toMatch(new RegExp(`^Dry run: run an isolated drill of ${ns}/ledger now`));
      expect(res.stdout).toContain(
        'Operator:    would start an isolated drill of ledger-b: the agent beside ledger-b copies it and promotes the copy on port 5433, the canary writes 20 rows to it through drill.ledger.example.com, then the record and the copy are removed; nothing in production moves (at most 900 s)',
      );
      expect(res.stdout).toContain(
        'ledger-a (active primary): Primary; left alone (nothing in production moves)',
      );
      expect(res.stdout).toMatch(
        /ledger-b: Standby, lag 0.4s \(a drill needs 5s at most\); agent ledger-b-agent reported \d+s ago \(it makes the copy on port 5433\)/,
      );
    });

    it('run --mode=Isolated records the mode; the answer, history, status and cancel speak of the copy and the drill record', async () => {
      await agentsReport();
      const res = run(['drill', 'run', 'ledger', '--mode=Isolated', '--timeout', '60s']);
      const request = await operatorAnswers(
        'Accepted',
        'drill drill-20261121040000: isolated: a copy of ledger-b promoted on port 5433, written to through drill.ledger.example.com; nothing in production moves',
        (id) => ({ phase: 'Drilling', drill: isolatedDrill(id) }),
      );
      expect(request).toEqual({
        id: expect.stringMatching(/^drill-run-/),
        action: 'Run',
        mode: 'Isolated',
        requestedBy: 'admin',
      });
      const done = await res;
      expect(done.code, done.stderr).toBe(0);
      expect(done.stdout).toContain(
        `Requested: run an isolated drill of ${ns}/ledger now (request ${request.id}).`,
      );
      expect(done.stdout).toContain(
        'Accepted: isolated drill drill-20261121040000 started: a copy of ledger-b on port 5433, written to through drill.ledger.example.com; nothing in production moves (leg Copying).',
      );

      // As the operator: the copy serves, the record answers, the canary has written 12 rows.
      await ledgerStatus({
        drill: {
          leg: 'Writing',
          isolated: {
            copyReadyAt: ago(5),
            pointedAt: ago(4),
            verifiedAt: ago(3),
            writingSince: ago(3),
            canaryWrites: 12,
          },
        },
      });
      const history = await run(['drill', 'history', 'ledger']);
      expect(history.code, history.stderr).toBe(0);
      expect(history.stdout).toMatch(
        /In progress: isolated drill drill-20261121040000, a copy of ledger-b on port 5433 through drill\.ledger\.example\.com, leg Writing for \d+s, 12 of 20 canary rows \(started \d+s ago, on request drill-run-/,
      );
      const status = await run(['status', 'ledger']);
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/Drilling\s+5\s+-\s+Isolated drill of ledger-b \(Writing\)/);

      const cancel = run(['drill', 'cancel', 'ledger', '--timeout', '60s']);
      await operatorAnswers(
        'Accepted',
        'drill drill-20261121040000 stops: the record and the copy are removed',
      );
      const stopped = await cancel;
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.stdout).toContain(
        'Accepted: drill drill-20261121040000 stops: the record and the copy are removed: nothing in production moved; the canary stops, drill.ledger.example.com is deleted, then the copy of ledger-b.',
      );
    });

    it('history: MODE, and for an isolated drill the promotion, data age, DNS and COPY; -o json has report.isolated', async () => {
      const base = { kind: 'Switchover', trigger: 'Drill', from: 'ledger-a', to: 'ledger-b', epoch: 5 };
      await ledgerStatus({
        phase: 'Healthy',
        drill: null,
        drills: [
          {
            ...base,
            id: 'drill-20261121040000',
            result: 'Succeeded',
            mode: 'Isolated',
            startedAt: ago(72),
            completedAt: ago(0),
            requestId: 'drill-run-iso',
            isolated: {
              cluster: 'ledger-b',
              recordName: 'drill.ledger.example.com',
              durationSeconds: 72,
              cleanedUp: true,
              copySeconds: 41.2,
              copyBytes: 52428800,
              promotionSeconds: 0.84,
              freshnessSeconds: 0.31,
              dnsVerifySeconds: 0.2,
              canaryWrites: 20,
            },
            reason:
              'a copy of ledger-b became a primary and took 20 canary rows through drill.ledger.example.com',
          },
          {
            ...base,
            id: 'drill-20261114030000',
            result: 'Succeeded',
            startedAt: ago(7 * 86400 + 342),
            completedAt: ago(7 * 86400),
            rtoSeconds: 1.4,
            lostWrites: 0,
            dnsVerifySeconds: 0.2,
            reason: 'out to ledger-b and back',
          },
        ],
      });
      const res = await run(['drill', 'history', 'ledger']);
      expect(res.code, res.stderr).toBe(0);
      const lines = res.stdout.split('\n');
      expect(lines[1]?.split(/\s{2,}/)).toEqual([
        'ID',
        'MODE',
        'RESULT',
        'FROM→TO',
        'STARTED',
        'DURATION',
        'RTO OUT',
        'RTO BACK',
        'RPO',
        'DNS',
        'COPY',
        'REASON',
      ]);
      expect(lines[2]).toMatch(
        /^drill-20261121040000\s+Isolated\s+Succeeded\s+copy of ledger-b\s+\S+ \S+Z\s+1m12s\s+0.8s \(promotion\)\s+-\s+0.3s old\s+0.2s\s+20 rows, cleaned up\s+a copy of ledger-b became/,
      );
      expect(lines[3]).toMatch(
        /^drill-20261114030000\s+RoundTrip\s+Succeeded\s+ledger-a→ledger-b\s+.*\s+-\s+out to ledger-b and back$/,
      );
      const status = await run(['status', 'ledger']);
      expect(status.stdout).toMatch(/Succeeded \(isolated\) \d+s ago\n$/);
      const json = JSON.parse((await run(['drill', 'history', 'ledger', '-o', 'json'])).stdout) as unknown[];
      expect(json[0]).toMatchObject({ mode: 'Isolated', isolated: { cleanedUp: true, canaryWrites: 20 } });
    });
  });
});

describe('the connection', () => {
  it("goes through the kubeconfig's proxy-url, as kubectl's does", async () => {
    // A real HTTP CONNECT proxy on loopback that remembers where it was asked to tunnel.
    const tunnels: string[] = [];
    const proxy = createServer();
    proxy.on('connect', (req, socket, head) => {
      tunnels.push(req.url ?? '');
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      const address = proxy.address() as { port: number };
      const viaProxy = kubeconfig('proxied', inject('controlPlane').adminToken, {
        proxyUrl: `http://127.0.0.1:${address.port}`,
      });
      const res = await run(['status', 'orders'], { kubeconfig: viaProxy });
      expect(res.stderr).toBe('');
      expect(res.stdout).toMatch(/^orders\s+orders-a/m);
      expect(tunnels).toContain(new URL(inject('controlPlane').server).host);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('names the API server it cannot reach', async () => {
    const server = `https://127.0.0.1:${await freePort()}`;
    const res = await run(['status'], { kubeconfig: kubeconfig('nowhere', 'x', { server }) });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(
      new RegExp(`^error: cannot reach the API server at ${server}: .*ECONNREFUSED`),
    );
  });
});

describe('export', () => {
  // vault: failed over from a to b (epoch 1); the reprotect of a, an RDS instance, made a new
  // read replica vault-a-e1 that ReplicaCluster vault-a does not name yet (RepointNeeded).
  const rds = (region: string, id: string) => ({
    type: 'AwsRds',
    awsRds: { region, dbInstanceIdentifier: id, credentialsSecretRef: { name: 'aws', key: 'credentials' } },
  });
  beforeAll(async () => {
    await cluster('vault-a', 'region-a', { role: 'Primary', health: 'Healthy' }, rds('us-east-1', 'vault-a'));
    await cluster('vault-b', 'region-b', { role: 'Primary', health: 'Healthy' }, rds('us-west-2', 'vault-b'));
    await policy(
      'vault',
      {
        primary: 'vault-a',
        standbys: ['vault-b'],
        promotionRequest: { id: 'failover-1', kind: 'Failover', target: 'vault-b' },
      },
      {
        phase: 'Degraded',
        activePrimary: 'vault-b',
        epoch: 1,
        topology: [
          { cluster: 'vault-b', role: 'Primary', ready: true },
          { cluster: 'vault-a', role: 'FormerPrimary', ready: false },
        ],
        history: [
          report({
            id: 'reprotect-e1-vault-a',
            kind: 'Reprotect',
            trigger: 'Automatic',
            from: 'vault-a',
            to: 'vault-b',
            epoch: 1,
            result: 'Aborted',
            reason: 'RepointNeeded',
            replacement: {
              cluster: 'vault-a',
              provider: {
                type: 'AwsRds',
                awsRds: { region: 'us-east-1', dbInstanceIdentifier: 'vault-a-e1' },
              },
              host: 'vault-a-e1.abc.us-east-1.rds.amazonaws.com',
              port: 5432,
              superseded: 'vault-a',
            },
          }),
        ],
      },
    );
  });

  it('writes the policy for Git with the replacement re-pointed; applied, a second export and kubectl diff find nothing to change', async () => {
    const first = await run(['export', 'vault'], { viaKubectl: true });
    expect(first.code, first.stderr).toBe(0);
    const docs = first.stdout
      .split('\n---\n')
      .map((d) => loadYaml(d) as KubeObject & { spec: Record<string, unknown> });
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'ReplicaCluster/vault-a',
      'ReplicaCluster/vault-b',
      'FailoverPolicy/vault',
    ]);
    expect(docs[0]?.spec).toMatchObject({
      provider: { awsRds: { dbInstanceIdentifier: 'vault-a-e1', credentialsSecretRef: { name: 'aws' } } },
      connection: { host: 'vault-a-e1.abc.us-east-1.rds.amazonaws.com', port: 5432 },
      dnsTarget: 'vault-a-e1.abc.us-east-1.rds.amazonaws.com',
    });
    expect(docs[2]?.spec).not.toHaveProperty('promotionRequest');
    for (const d of docs) expect(d.metadata).not.toHaveProperty('resourceVersion');

    // What Git holds is what a person applies: the API server takes it as it is.
    const file = join(dir, 'vault.yaml');
    writeFileSync(file, first.stdout);
    const kubectl = (args: string[]) =>
      new Promise<Run>((resolve) =>
        execFile(
          'kubectl',
          args,
          { env: { ...process.env, KUBECONFIG: adminKubeconfig } },
          (err, stdout, stderr) =>
            resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
        ),
      );
    const applied = await kubectl(['apply', '-f', file]);
    expect(applied.code, applied.stderr).toBe(0);
    const second = await run(['export', 'vault']);
    expect(second.stdout).toBe(first.stdout);
    const diff = await kubectl(['diff', '-f', file]);
    expect(diff.code, `${diff.stdout}${diff.stderr}`).toBe(0);
  });

  it('--pulumi prints the live topology, and a reader (no edit rights) may export', async () => {
    const admin = sharedKubeConfig();
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'failover-exporter' },
        rules: [
          {
            apiGroups: ['regionfailover.io'],
            resources: ['failoverpolicies', 'replicaclusters'],
            verbs: ['get', 'list'],
          },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'failover-exporter' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'failover-exporter' },
        subjects: [{ kind: 'ServiceAccount', name: 'exporter', namespace: ns }],
      },
    });
    const reader = kubeconfig('exporter', await mintServiceAccountToken(admin, ns, 'exporter'));
    const res = await run(['export', 'vault', '--pulumi'], { kubeconfig: reader });
    expect(res.code, res.stderr).toBe(0);
    const { publishedTopology } = await import('../../operator/src/api/v1alpha1/index.ts');
    const topology = publishedTopology.parse(JSON.parse(res.stdout));
    expect(topology).toMatchObject({
      policy: 'vault',
      namespace: ns,
      epoch: 1,
      activePrimary: 'vault-b',
      members: [
        { cluster: 'vault-b', region: 'region-b', role: 'Primary', database: { name: 'vault-b' } },
        {
          cluster: 'vault-a',
          role: 'FormerPrimary',
          database: { name: 'vault-a-e1' },
          replaces: 'vault-a',
        },
      ],
    });
    const bad = await run(['export', 'vault', '-o', 'table']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('export -o must be yaml or json');
  });
});
