/**
 * The real helm and kubeconform (built from the Go module proxy by build-chart-tools.sh and
 * cached), and the value sets the chart is checked with. Used by `make chart-check` and by the
 * chart's integration tests.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadAll } from 'js-yaml';
import { kubernetesSchemaDir, monitoringSchemaDir, writeCrdSchemas } from './kube-schemas.ts';
import { runScript } from './processes.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');
export const chartPath = join(repoRoot, 'charts', 'failover-operator');
const run = promisify(execFile);

let binDir: Promise<string> | undefined;

/** Builds (or finds in the cache) helm, kubeconform and promtool, and returns their directory. */
export function chartToolsBin(): Promise<string> {
  const fromEnv = process.env.FAILOVER_CHART_TOOLS_BIN;
  if (fromEnv) return Promise.resolve(fromEnv);
  binDir ??= runScript(join(here, 'build-chart-tools.sh'), 'build chart tools');
  return binDir;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function tool(
  name: 'helm' | 'kubeconform' | 'promtool',
  args: string[],
  input?: string,
): Promise<ToolResult> {
  const bin = join(await chartToolsBin(), name);
  // Helm keeps config and caches under $HOME by default; a temp home keeps runs independent.
  const helmHome = name === 'helm' ? mkdtempSync(join(tmpdir(), 'failover-helm-')) : undefined;
  const env = helmHome
    ? {
        ...process.env,
        HELM_CACHE_HOME: join(helmHome, 'cache'),
        HELM_CONFIG_HOME: join(helmHome, 'config'),
        HELM_DATA_HOME: join(helmHome, 'data'),
      }
    : process.env;
  try {
    const child = run(bin, args, { maxBuffer: 64 << 20, env });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  } finally {
    if (helmHome) rmSync(helmHome, { recursive: true, force: true });
  }
}

export const helm = (args: string[]) => tool('helm', args);

/** Prometheus's own rule checker and rule unit tests (`promtool check rules`, `promtool test rules`). */
export const promtool = (args: string[]) => tool('promtool', args);

/** A named set of values the chart must render, lint and validate with. */
export interface ChartScenario {
  name: string;
  values: Record<string, unknown>;
}

/** The shapes the chart is installed in: its defaults, and each documented topology. */
export const chartScenarios: ChartScenario[] = [
  { name: 'defaults', values: {} },
  {
    name: 'everything on',
    values: {
      observer: { enabled: true, name: 'eu-west', region: 'eu-west' },
      metrics: { serviceMonitor: { enabled: true, labels: { release: 'prometheus' } } },
      prometheusRule: { enabled: true },
      grafanaDashboard: { enabled: true, annotations: { grafana_folder: 'Databases' } },
      statusPage: { enabled: true },
      networkPolicy: {
        enabled: true,
        metricsFrom: [
          { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
        ],
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8' } }] }],
      },
      serviceAccount: {
        operator: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/x' } },
      },
      operator: { podAnnotations: { a: 'b' }, extraArgs: ['--resync-seconds=300'] },
      imagePullSecrets: [{ name: 'registry' }],
      image: { digest: `sha256:${'a'.repeat(64)}` },
    },
  },
  { name: 'one namespace', values: { watchNamespace: 'apps' } },
  {
    name: 'sharded (three active replicas)',
    values: { operator: { replicas: 3, shards: 3 }, prometheusRule: { enabled: true } },
  },
  { name: 'Secrets in listed namespaces', values: { rbac: { secretNamespaces: ['apps', 'billing'] } } },
  {
    name: 'Secrets watched in listed namespaces',
    values: { rbac: { secretNamespaces: ['apps'], watchSecrets: true } },
  },
  {
    name: 'observer only (a region)',
    values: {
      operator: { enabled: false },
      observer: {
        enabled: true,
        name: 'us-east-1',
        region: 'us-east-1',
        kubeconfigSecret: { name: 'policy-cluster' },
      },
    },
  },
  { name: 'single replica', values: { operator: { replicas: 1, leaderElection: { enabled: false } } } },
];

function valuesFile(values: Record<string, unknown>): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'failover-values-'));
  const path = join(dir, 'values.json');
  // YAML is a superset of JSON: helm reads a JSON values file as it is.
  writeFileSync(path, JSON.stringify(values));
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `helm template`; throws with helm's message when rendering fails. */
export async function renderChart(opts: {
  release?: string;
  namespace?: string;
  values?: Record<string, unknown>;
  includeCrds?: boolean;
}): Promise<string> {
  const res = await renderChartRaw(opts);
  if (res.code !== 0) throw new Error(`helm template failed: ${res.stderr.trim()}`);
  return res.stdout;
}

/** `helm template` as it ran: exit code, manifests, errors. */
export async function renderChartRaw(opts: {
  release?: string;
  namespace?: string;
  values?: Record<string, unknown>;
  includeCrds?: boolean;
}): Promise<ToolResult> {
  const file = valuesFile(opts.values ?? {});
  try {
    return await helm([
      'template',
      opts.release ?? 'failover',
      chartPath,
      '--namespace',
      opts.namespace ?? 'failover-system',
      '--values',
      file.path,
      ...(opts.includeCrds ? ['--include-crds'] : []),
    ]);
  } finally {
    file.cleanup();
  }
}

export async function lintChart(values: Record<string, unknown> = {}): Promise<ToolResult> {
  const file = valuesFile(values);
  try {
    return await helm(['lint', '--strict', chartPath, '--values', file.path]);
  } finally {
    file.cleanup();
  }
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export function parseManifests(yaml: string): Manifest[] {
  return loadAll(yaml).filter((d): d is Manifest => d !== null && typeof d === 'object');
}

export interface KubeconformResult {
  ok: boolean;
  /** Per resource: kind/name, and status valid | invalid | error | skipped. */
  resources: { filename: string; kind: string; name: string; status: string; msg: string }[];
  summary: { valid: number; invalid: number; errors: number; skipped: number };
  raw: string;
}

/**
 * Validates manifests against the offline schemas (built-in kinds, our CRDs, the monitoring
 * kinds). Missing schemas are errors, not skips: a kind nobody can check is reported.
 */
export async function kubeconform(
  files: { name: string; content: string }[],
  log?: (line: string) => void,
): Promise<KubeconformResult> {
  const kubeDir = await kubernetesSchemaDir(log);
  const work = mkdtempSync(join(tmpdir(), 'failover-kubeconform-'));
  try {
    const crdSchemas = join(work, 'schemas');
    mkdirSync(crdSchemas);
    writeCrdSchemas(crdSchemas);
    const paths = files.map((f, i) => {
      const p = join(work, `${String(i).padStart(2, '0')}-${f.name.replace(/[^a-z0-9.-]+/gi, '-')}.yaml`);
      writeFileSync(p, f.content);
      return p;
    });
    const template = '{{ .ResourceKind }}{{ .KindSuffix }}.json';
    const res = await tool('kubeconform', [
      '-strict',
      '-output',
      'json',
      '-verbose',
      '-summary',
      '-schema-location',
      join(kubeDir, template),
      '-schema-location',
      join(crdSchemas, template),
      '-schema-location',
      join(monitoringSchemaDir, template),
      ...paths,
    ]);
    const parsed = JSON.parse(res.stdout || '{}') as {
      resources?: KubeconformResult['resources'];
      summary?: KubeconformResult['summary'];
    };
    const resources = (parsed.resources ?? [])
      // Empty documents (a CRD file's leading `---` after helm's own) are not resources.
      .filter((r) => r.status !== '' || r.kind !== '')
      .map((r) => ({
        ...r,
        filename: files[paths.indexOf(r.filename)]?.name ?? r.filename,
      }));
    const summary = parsed.summary ?? { valid: 0, invalid: 0, errors: 1, skipped: 0 };
    return {
      ok: res.code === 0 && summary.invalid === 0 && summary.errors === 0,
      resources,
      summary,
      raw: res.stdout + res.stderr,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
