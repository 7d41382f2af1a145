/**
 * The Helm chart, rendered by the real helm: its generated files match their sources, its RBAC is
 * exactly operator/src/rbac.ts, every value set lints and renders into manifests kubeconform
 * accepts against schemas of the real API server, the workloads are hardened and wired to flags
 * the operator knows, bad values are refused with a message naming the value, and the alerts
 * watch metrics the operator exports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chartDir, generatedChartFiles, staleChartCrds } from '../../charts/generate.ts';
import { configSchema } from '../../operator/src/config.ts';
import { observerRules, operatorRules, type PolicyRule } from '../../operator/src/rbac.ts';
import { Metrics } from '../../operator/src/runtime/metrics.ts';
import {
  chartScenarios,
  kubeconform,
  lintChart,
  type Manifest,
  parseManifests,
  renderChart,
  renderChartRaw,
  repoRoot,
} from '../harness/chart-tools.ts';

const NS = 'failover-system';

const find = (manifests: Manifest[], kind: string, nameSuffix: string) =>
  manifests.find((m) => m.kind === kind && m.metadata.name.endsWith(nameSuffix));

/** `group|resource|verb` for every permission a list of rules grants. */
function grants(rules: PolicyRule[]): Set<string> {
  const out = new Set<string>();
  for (const r of rules)
    for (const g of r.apiGroups)
      for (const res of r.resources) for (const v of r.verbs) out.add(`${g}|${res}|${v}`);
  return out;
}

const rulesOf = (m: Manifest | undefined) => (m?.rules as PolicyRule[] | undefined) ?? [];
/** The rules granted with the chart's defaults: the opt-in ones (`when`) left out. */
const byDefault = (rules: PolicyRule[]) => rules.filter((r) => !r.when);

interface Container {
  name: string;
  args: string[];
  ports: { name: string; containerPort: number }[];
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown> & { capabilities?: { drop?: string[] } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  serviceAccountName: string;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string } }[];
}
function podSpec(d: Manifest | undefined): { spec: PodSpec; metadata: { labels: Record<string, string> } } {
  if (!d) throw new Error('the chart rendered no such Deployment');
  return (d.spec as { template: { spec: PodSpec; metadata: { labels: Record<string, string> } } }).template;
}

describe('generated chart files', () => {
  it('match their sources: run `make generate` after changing crds/, rbac.ts or values-schema.ts', () => {
    for (const [path, content] of generatedChartFiles()) {
      expect(readFileSync(join(chartDir, path), 'utf8'), `charts/failover-operator/${path}`).toBe(content);
    }
    expect(staleChartCrds(), 'CRDs in the chart whose source in crds/ is gone').toEqual([]);
  });

  it('give the chart the operator version as appVersion', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const chart = readFileSync(join(chartDir, 'Chart.yaml'), 'utf8');
    expect(chart).toMatch(new RegExp(`^appVersion: "${pkg.version}"$`, 'm'));
  });
});

describe('RBAC', () => {
  it('grants the operator exactly operatorRules: its Lease in its namespace, the rest where it watches', async () => {
    const manifests = parseManifests(await renderChart({ namespace: NS }));
    const clusterRole = find(manifests, 'ClusterRole', '-operator');
    const leaseRole = find(manifests, 'Role', '-leader-election');
    expect(leaseRole?.metadata.namespace).toBe(NS);
    expect(rulesOf(leaseRole).flatMap((r) => r.resources)).toEqual(['leases', 'deployments']);
    // Where policies live it only reads the policies' primary Leases, which their agents keep.
    expect(
      rulesOf(clusterRole)
        .filter((r) => r.resources.includes('leases'))
        .flatMap((r) => r.verbs),
    ).toEqual(['get']);
    const granted = grants([...rulesOf(clusterRole), ...rulesOf(leaseRole)]);
    expect([...granted].sort()).toEqual([...grants(byDefault(operatorRules))].sort());
    const binding = find(manifests, 'ClusterRoleBinding', '-operator') as unknown as {
      subjects: { name: string; namespace: string }[];
    };
    const deployment = find(manifests, 'Deployment', '-operator');
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: podSpec(deployment).spec.serviceAccountName, namespace: NS },
    ]);
  });

  it('grants the observer exactly observerRules', async () => {
    const manifests = parseManifests(
      await renderChart({ namespace: NS, values: { observer: { enabled: true, name: 'a', region: 'a' } } }),
    );
    const role = find(manifests, 'ClusterRole', '-observer');
    expect([...grants(rulesOf(role))].sort()).toEqual([...grants(byDefault(observerRules))].sort());
  });

  it('lets the operator and the observer list and watch Secrets only with rbac.watchSecrets, and tells them to', async () => {
    const observer = { enabled: true, name: 'a', region: 'a' };
    const off = parseManifests(await renderChart({ namespace: NS, values: { observer } }));
    for (const component of ['operator', 'observer']) {
      const verbs = rulesOf(find(off, 'ClusterRole', `-${component}`))
        .filter((r) => r.resources.includes('secrets'))
        .flatMap((r) => r.verbs);
      expect(verbs, component).toEqual(['get']);
      expect(podSpec(find(off, 'Deployment', `-${component}`)).spec.containers[0]?.args).not.toContain(
        '--watch-secrets=true',
      );
    }
    for (const scoped of [false, true]) {
      const values = {
        observer,
        rbac: { watchSecrets: true, ...(scoped ? { secretNamespaces: ['apps'] } : {}) },
      };
      const on = parseManifests(await renderChart({ namespace: NS, values }));
      for (const component of ['operator', 'observer']) {
        const rules = component === 'operator' ? operatorRules : observerRules;
        const granted = grants(
          on
            .filter((m) => m.kind === 'Role' || m.kind === 'ClusterRole')
            .filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === component)
            .flatMap(rulesOf),
        );
        expect([...granted].sort(), `${component}, scoped: ${scoped}`).toEqual([...grants(rules)].sort());
        const secretRole = find(
          on,
          scoped ? 'Role' : 'ClusterRole',
          scoped ? `-${component}-secrets` : `-${component}`,
        );
        expect(
          rulesOf(secretRole)
            .filter((r) => r.resources.includes('secrets'))
            .flatMap((r) => r.verbs)
            .sort(),
        ).toEqual(['get', 'list', 'watch']);
        expect(podSpec(find(on, 'Deployment', `-${component}`)).spec.containers[0]?.args).toContain(
          '--watch-secrets=true',
        );
      }
      const lint = await lintChart(values);
      expect(lint.code, `${lint.stdout}${lint.stderr}`).toBe(0);
    }
  });

  it('never lets the operator change a spec: only status, Events, the Lease and its incident records are written', () => {
    const writes = [...grants(operatorRules)].filter((g) => !/\|(get|list|watch)$/.test(g));
    expect(writes.sort()).toEqual([
      'coordination.k8s.io|leases|create',
      // Sharding: the member Leases of replicas gone for ten lease periods.
      'coordination.k8s.io|leases|delete',
      'coordination.k8s.io|leases|update',
      'events.k8s.io|events|create',
      'events.k8s.io|events|patch',
      'regionfailover.io|failoverpolicies/status|patch',
      // Incident records: made once, never updated; retention deletes the oldest.
      'regionfailover.io|failoverreports|create',
      'regionfailover.io|failoverreports|delete',
      'regionfailover.io|replicaclusters/status|patch',
    ]);
  });

  it('reads Secrets only in rbac.secretNamespaces when given: a Role in each, none cluster-wide', async () => {
    const values = {
      observer: { enabled: true, name: 'a', region: 'a' },
      rbac: { secretNamespaces: ['apps', 'billing'] },
    };
    const manifests = parseManifests(await renderChart({ namespace: NS, values }));
    for (const component of ['operator', 'observer']) {
      const clusterRole = find(manifests, 'ClusterRole', `-${component}`);
      expect(rulesOf(clusterRole).flatMap((r) => r.resources)).not.toContain('secrets');
      const secretRoles = manifests.filter(
        (m) => m.kind === 'Role' && m.metadata.name.endsWith(`-${component}-secrets`),
      );
      expect(secretRoles.map((r) => r.metadata.namespace).sort()).toEqual(['apps', 'billing']);
      for (const role of secretRoles) {
        expect(rulesOf(role)).toEqual([{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }]);
        const binding = manifests.find(
          (m) =>
            m.kind === 'RoleBinding' &&
            m.metadata.name === role.metadata.name &&
            m.metadata.namespace === role.metadata.namespace,
        ) as unknown as { roleRef: { kind: string; name: string }; subjects: { name: string }[] };
        expect(binding.roleRef).toMatchObject({ kind: 'Role', name: role.metadata.name });
        expect(binding.subjects[0]?.name).toBe(
          podSpec(find(manifests, 'Deployment', `-${component}`)).spec.serviceAccountName,
        );
      }
      const rules = byDefault(component === 'operator' ? operatorRules : observerRules);
      const granted = grants(
        manifests
          .filter((m) => m.kind === 'Role' || m.kind === 'ClusterRole')
          .filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === component)
          .flatMap(rulesOf),
      );
      expect([...granted].sort(), component).toEqual([...grants(rules)].sort());
    }
    const lint = await lintChart(values);
    expect(lint.code, `${lint.stdout}${lint.stderr}`).toBe(0);
    const result = await kubeconform([
      { name: 'secrets scoped', content: await renderChart({ namespace: NS, values }) },
    ]);
    expect(result.resources.filter((r) => r.status !== 'statusValid')).toEqual([]);
  });

  it('becomes Roles in watchNamespace, and no ClusterRole of the operator remains', async () => {
    const manifests = parseManifests(
      await renderChart({ namespace: NS, values: { watchNamespace: 'apps' } }),
    );
    expect(find(manifests, 'ClusterRole', '-operator')).toBeUndefined();
    expect(find(manifests, 'ClusterRoleBinding', '-operator')).toBeUndefined();
    expect(find(manifests, 'Role', '-operator')?.metadata.namespace).toBe('apps');
    expect(find(manifests, 'RoleBinding', '-operator')?.metadata.namespace).toBe('apps');
    expect(find(manifests, 'Role', '-observer')?.metadata.namespace).toBe('apps');
    expect(podSpec(find(manifests, 'Deployment', '-operator')).spec.containers[0]?.args).toContain(
      '--namespace=apps',
    );
  });
});

describe('helm lint, helm template and kubeconform', () => {
  it('every value set lints (--strict) and every manifest, CRDs included, is valid', async () => {
    const files: { name: string; content: string }[] = [];
    for (const scenario of chartScenarios) {
      const lint = await lintChart(scenario.values);
      expect(lint.code, `helm lint (${scenario.name}): ${lint.stdout}${lint.stderr}`).toBe(0);
      files.push({
        name: scenario.name,
        content: await renderChart({ namespace: NS, values: scenario.values, includeCrds: true }),
      });
    }
    const result = await kubeconform(files);
    const problems = result.resources.filter((r) => r.status !== 'statusValid');
    expect(problems, JSON.stringify(problems, null, 2)).toEqual([]);
    expect(result.summary.valid).toBeGreaterThan(chartScenarios.length * 8);
    expect(result.ok).toBe(true);
    // Each monitoring kind was checked against its schema, not skipped.
    const kinds = new Set(result.resources.map((r) => r.kind));
    for (const kind of [
      'ServiceMonitor',
      'PrometheusRule',
      'CustomResourceDefinition',
      'PodDisruptionBudget',
    ])
      expect(kinds).toContain(kind);
  });

  it('kubeconform rejects what the API server would: a misspelt field, a wrong type, an unknown kind', async () => {
    const result = await kubeconform([
      {
        name: 'bad',
        content: [
          'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replica: 2, selector: {}, template: {}}',
          'apiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {ports: [{port: "80"}]}',
          'apiVersion: regionfailover.io/v1alpha1\nkind: ReplicaCluster\nmetadata: {name: c}\nspec: {regoin: x}',
          'apiVersion: example.com/v1\nkind: Unknown\nmetadata: {name: d}',
        ].join('\n---\n'),
      },
    ]);
    const verdicts = Object.fromEntries(result.resources.map((r) => [r.kind, r.status]));
    expect(verdicts).toEqual({
      Deployment: 'statusInvalid',
      Service: 'statusInvalid',
      ReplicaCluster: 'statusInvalid',
      Unknown: 'statusError',
    });
    expect(result.ok).toBe(false);
  });
});

describe('workloads', () => {
  const everything = chartScenarios.find((s) => s.name === 'everything on')?.values ?? {};

  it('the operator: two replicas electing a leader in the release namespace, a PDB that keeps one', async () => {
    const manifests = parseManifests(await renderChart({ namespace: NS }));
    const deployment = find(manifests, 'Deployment', '-operator');
    const spec = deployment?.spec as { replicas: number; selector: { matchLabels: Record<string, string> } };
    expect(spec.replicas).toBe(2);
    const args = podSpec(deployment).spec.containers[0]?.args ?? [];
    expect(args).toContain('--leader-elect=true');
    expect(args).toContain('--leader-election-namespace=$(POD_NAMESPACE)');
    const pdb = find(manifests, 'PodDisruptionBudget', '-operator')?.spec as {
      maxUnavailable: number;
      selector: { matchLabels: Record<string, string> };
    };
    expect(pdb.maxUnavailable).toBe(1);
    expect(pdb.selector.matchLabels).toEqual(spec.selector.matchLabels);
    expect(podSpec(deployment).metadata.labels).toMatchObject(spec.selector.matchLabels);
  });

  it('every container: non-root, read-only root, no privilege escalation, no capabilities, requests, probes', async () => {
    const manifests = parseManifests(await renderChart({ namespace: NS, values: everything }));
    const deployments = manifests.filter((m) => m.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata.name.split('-').at(-1)).sort()).toEqual([
      'observer',
      'operator',
    ]);
    for (const d of deployments) {
      const pod = podSpec(d).spec;
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
      });
      for (const c of pod.containers) {
        const where = `${d.metadata.name}/${c.name}`;
        expect(c.securityContext, where).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          privileged: false,
        });
        expect(c.securityContext.capabilities?.drop, where).toEqual(['ALL']);
        expect(Object.keys(c.resources.requests ?? {}).sort(), where).toEqual(['cpu', 'memory']);
        expect(c.resources.limits?.memory, where).toBeDefined();
        expect(c.livenessProbe?.httpGet.path, where).toBe('/healthz');
        expect(c.readinessProbe?.httpGet.path, where).toBe('/readyz');
        const port = c.ports.find((p) => p.name === c.livenessProbe?.httpGet.port);
        expect(c.args, where).toContain(`--http-address=0.0.0.0:${port?.containerPort}`);
        expect(
          c.volumeMounts?.map((m) => m.mountPath),
          where,
        ).toContain('/tmp');
      }
    }
  });

  it('passes only flags the operator knows (operator/src/config.ts)', async () => {
    const known = new Set(
      Object.keys(configSchema.shape).map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`),
    );
    for (const scenario of chartScenarios) {
      const manifests = parseManifests(await renderChart({ namespace: NS, values: scenario.values }));
      for (const d of manifests.filter((m) => m.kind === 'Deployment')) {
        for (const arg of podSpec(d).spec.containers.flatMap((c) => c.args)) {
          expect(known, `${scenario.name}: ${d.metadata.name} passes ${arg}`).toContain(arg.split('=')[0]);
        }
      }
    }
  });

  it('an observer in a region publishes through the kubeconfig in its Secret', async () => {
    const values = chartScenarios.find((s) => s.name.startsWith('observer only'))?.values ?? {};
    const manifests = parseManifests(await renderChart({ namespace: NS, values }));
    expect(find(manifests, 'Deployment', '-operator')).toBeUndefined();
    const pod = podSpec(find(manifests, 'Deployment', '-observer')).spec;
    expect(pod.containers[0]?.args).toEqual(
      expect.arrayContaining([
        '--mode=observer',
        '--observer-name=us-east-1',
        '--observer-region=us-east-1',
        '--leader-elect=false',
        '--kubeconfig=/etc/failover-operator/kubeconfig/kubeconfig',
      ]),
    );
    expect(pod.volumes?.find((v) => v.name === 'kubeconfig')?.secret?.secretName).toBe('policy-cluster');
  });

  it('the metrics Services select their pods and reach the named port', async () => {
    const manifests = parseManifests(await renderChart({ namespace: NS, values: everything }));
    for (const component of ['operator', 'observer']) {
      const service = find(manifests, 'Service', `-${component}-metrics`)?.spec as {
        selector: Record<string, string>;
        ports: { name: string; targetPort: string }[];
      };
      const pod = podSpec(find(manifests, 'Deployment', `-${component}`));
      expect(pod.metadata.labels).toMatchObject(service.selector);
      expect(pod.spec.containers[0]?.ports.map((p) => p.name)).toContain(service.ports[0]?.targetPort);
    }
    const monitor = find(manifests, 'ServiceMonitor', '')?.spec as { endpoints: { port: string }[] };
    expect(monitor.endpoints[0]?.port).toBe('metrics');
  });
});

describe('values', () => {
  const refusals: [string, Record<string, unknown>, RegExp][] = [
    ['a misspelt key', { operator: { replica: 3 } }, /additional properties 'replica' not allowed/],
    ['a wrong type', { operator: { replicas: 'two' } }, /operator\/replicas.*got string, want integer/s],
    [
      'two replicas without leader election',
      { operator: { replicas: 2, leaderElection: { enabled: false } } },
      /operator.replicas > 1 needs operator.leaderElection.enabled=true/,
    ],
    [
      'shards without leader election',
      { operator: { replicas: 1, shards: 3, leaderElection: { enabled: false } } },
      /operator.shards > 1 needs operator.leaderElection.enabled=true/,
    ],
    ['an observer without a name', { observer: { enabled: true, region: 'a' } }, /observer.*name/s],
    ['a bad image digest', { image: { digest: 'latest' } }, /image\/digest/],
    [
      'a lease shorter than its renew deadline',
      { operator: { leaderElection: { leaseDurationSeconds: 5, renewDeadlineSeconds: 10 } } },
      /leaseDurationSeconds must be greater than renewDeadlineSeconds/,
    ],
    ['a log level the operator lacks', { logLevel: 'verbose' }, /logLevel/],
    [
      'Secret namespaces beside one watched namespace',
      { watchNamespace: 'apps', rbac: { secretNamespaces: ['billing'] } },
      /rbac.secretNamespaces is for an operator that watches every namespace/,
    ],
  ];
  for (const [what, values, message] of refusals) {
    it(`refuses ${what}, naming it`, async () => {
      const res = await renderChartRaw({ namespace: NS, values });
      expect(res.code).not.toBe(0);
      expect(res.stderr).toMatch(message);
    });
  }
});

describe('alerts', () => {
  const alertNames = [
    'FailoverClusterDown',
    'FailoverNoPromotableStandby',
    'FailoverHappened',
    'FailoverObserversBelowQuorum',
    'FailoverDnsCheckFailing',
    'FailoverPolicyNotReady',
    'FailoverStepFailing',
    'FailoverReplicationLagOverBudget',
    'FailoverOperationStuck',
    'FailoverDrillFailed',
    'FailoverDrillOverdue',
    'FailoverOperatorLeaderMissing',
    'FailoverOperatorSeveralLeaders',
    'FailoverSplitBrainProtectionLost',
    'FailoverPolicyPausedTooLong',
    'FailoverAvailabilityBudgetBurn',
    'FailoverAvailabilityBudgetSlowBurn',
  ];
  type Alert = {
    alert: string;
    expr: string;
    labels: { severity: string };
    annotations: Record<string, string>;
  };
  const renderAlerts = async (values: Record<string, unknown> = {}) => {
    const manifests = parseManifests(
      await renderChart({ namespace: NS, values: { prometheusRule: { enabled: true, ...values } } }),
    );
    const rule = find(manifests, 'PrometheusRule', '')?.spec as { groups: { rules: Alert[] }[] };
    return rule.groups.flatMap((g) => g.rules).filter((r) => r.alert);
  };
  const renderRecords = async () => {
    const manifests = parseManifests(
      await renderChart({ namespace: NS, values: { prometheusRule: { enabled: true } } }),
    );
    const rule = find(manifests, 'PrometheusRule', '')?.spec as {
      groups: { rules: { record?: string; expr: string }[] }[];
    };
    return rule.groups.flatMap((g) => g.rules).filter((r) => r.record);
  };

  it('watch only metrics the operator exports, and series the rules record', async () => {
    const alerts = await renderAlerts();
    expect(alerts.map((a) => a.alert).sort()).toEqual([...alertNames].sort());
    const exported = new Set(new Metrics().registry.getMetricsAsArray().map((m) => m.name));
    const records = await renderRecords();
    const recorded = new Set(records.map((r) => r.record));
    for (const r of records)
      for (const metric of r.expr.match(/\b(failover|leader_election)_[a-z_]+\b/g) ?? [])
        expect(exported.has(metric), `${r.record}: ${metric} is not exported`).toBe(true);
    for (const a of alerts) {
      const own = a.expr.match(/\b[a-z_]+:[a-z_]+:[a-z0-9_]+\b/g) ?? [];
      for (const series of own)
        expect(recorded.has(series), `${a.alert}: ${series} is not recorded`).toBe(true);
      const used =
        a.expr
          .replace(/\b[a-z_]+:[a-z_]+:[a-z0-9_]+\b/g, '')
          .match(/\b(failover|leader_election)_[a-z_]+\b/g) ?? [];
      expect(used.length + own.length, `${a.alert} reads no exported series`).toBeGreaterThan(0);
      for (const metric of used)
        expect(exported.has(metric), `${a.alert}: ${metric} is not exported`).toBe(true);
    }
    // The operation gauge is 0 while none runs: the stuck alert must not read that as 1970.
    const stuck = alerts.find((a) => a.alert === 'FailoverOperationStuck');
    expect(stuck?.expr).toMatch(/failover_operation_start_timestamp_seconds > 0\)/);
  });

  it('each link a runbook in docs/runbooks that says what it means, how to confirm, what to do, when to escalate', async () => {
    const alerts = await renderAlerts({
      runbookBaseUrl: 'https://git.example.com/ops/failover/-/blob/main/docs/runbooks/',
    });
    for (const a of alerts) {
      expect(a.annotations.runbook_url).toBe(
        `https://git.example.com/ops/failover/-/blob/main/docs/runbooks/${a.alert}.md`,
      );
      expect(a.annotations.summary, a.alert).toBeTruthy();
      expect(['critical', 'warning']).toContain(a.labels.severity);
      const runbook = readFileSync(join(repoRoot, 'docs', 'runbooks', `${a.alert}.md`), 'utf8');
      expect(runbook.split('\n')[0]).toBe(`# ${a.alert}`);
      expect(runbook, a.alert).toContain(`**Severity** ${a.labels.severity}`);
      for (const section of ['## What it means', '## Confirm', '## Act', '## Escalate'])
        expect(runbook, `${a.alert} runbook lacks ${section}`).toContain(section);
    }
    const index = readFileSync(join(repoRoot, 'docs', 'runbooks', 'README.md'), 'utf8');
    for (const name of alertNames) expect(index).toContain(`[${name}](${name}.md)`);
    const [first] = await renderAlerts();
    expect(first?.annotations.runbook_url).toBe(`docs/runbooks/${first?.alert}.md`);
  });

  it('take their thresholds from values', async () => {
    const alerts = await renderAlerts({
      noPromotableStandbyFor: '20m',
      failoverHappenedWindow: '6h',
      stepFailuresWindow: '30m',
      stepFailuresThreshold: 5,
    });
    const byName = new Map(alerts.map((a) => [a.alert, a as Alert & { for?: string }]));
    expect(byName.get('FailoverNoPromotableStandby')?.for).toBe('20m');
    expect(byName.get('FailoverHappened')?.expr).toContain('[6h]');
    expect(byName.get('FailoverHappened')?.expr).toContain('offset 6h');
    expect(byName.get('FailoverStepFailing')?.expr).toMatch(/\[30m\]\)\) >= 5$/);
  });

  it('watch the lease the operator campaigns for', async () => {
    const manifests = parseManifests(
      await renderChart({ namespace: NS, values: { prometheusRule: { enabled: true } } }),
    );
    const args = podSpec(find(manifests, 'Deployment', '-operator')).spec.containers[0]?.args ?? [];
    const lease = args.find((a) => a.startsWith('--leader-election-id='))?.split('=')[1];
    const rule = JSON.stringify(find(manifests, 'PrometheusRule', ''));
    expect(rule).toContain(`leader_election_master_status{name=\\"${lease}\\", namespace=\\"${NS}\\"}`);
  });
});

describe('the Grafana dashboard', () => {
  type DashboardPanel = { type: string; title: string; targets?: { expr: string }[] };

  it('is a ConfigMap for the sidecar, off by default, whose every query reads an exported series', async () => {
    const off = parseManifests(await renderChart({ namespace: NS }));
    expect(find(off, 'ConfigMap', '-dashboard')).toBeUndefined();
    const manifests = parseManifests(
      await renderChart({
        namespace: NS,
        values: { grafanaDashboard: { enabled: true, annotations: { grafana_folder: 'Databases' } } },
      }),
    );
    const map = find(manifests, 'ConfigMap', '-dashboard') as
      | (Manifest & { data: Record<string, string>; metadata: { labels: Record<string, string> } })
      | undefined;
    expect(map?.metadata.labels.grafana_dashboard).toBe('1');
    const json = JSON.parse(map?.data['failover-operator.json'] ?? '{}') as {
      uid: string;
      panels: DashboardPanel[];
      templating: { list: { name: string; query: unknown }[] };
    };
    expect(json.uid).toBe('failover-operator');
    expect(json.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace', 'policy']);
    const exported = new Set(
      new Metrics({ processMetrics: true }).registry.getMetricsAsArray().map((m) => m.name),
    );
    const panels = json.panels.filter((p) => p.type !== 'row');
    process.stdout.write(`dashboard panels: ${panels.map((p) => p.title).join('; ')}\n`);
    for (const p of panels) {
      expect(p.targets?.length, `${p.title} has no query`).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        const series =
          t.expr.match(/\b(failover|leader_election|controller_runtime|workqueue)_[a-z_]+\b/g) ?? [];
        expect(series.length, `${p.title}: ${t.expr} reads no series`).toBeGreaterThan(0);
        for (const s of series) expect(exported.has(s), `${p.title}: ${s} is not exported`).toBe(true);
      }
    }
    // What the issue asks of it: phase, primary and epoch, lag, votes, failovers and drills, availability.
    const titles = panels.map((p) => p.title).join('\n');
    for (const wanted of [
      /Phase/,
      /Active primary/,
      /Epoch/,
      /lag/i,
      /Observers/,
      /Operations/,
      /drill/i,
      /Availability/,
    ])
      expect(titles).toMatch(wanted);
  });
});
