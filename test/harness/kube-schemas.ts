/**
 * JSON schemas for kubeconform, made offline. kubeconform normally downloads them; here they come
 * from what is on this machine:
 *
 * - built-in kinds: the OpenAPI v2 document of the real test kube-apiserver, converted once per
 *   API server version and cached under ~/.cache/failover-operator/kube-schemas/<key>/;
 * - our kinds: the openAPIV3Schema of each CRD in crds/;
 * - ServiceMonitor and PrometheusRule: hand-written in test/harness/schemas/ from the fields of the
 *   published Prometheus Operator CRDs that the chart uses (not the whole upstream schema).
 *
 * Every object schema is strict (additionalProperties: false), so a misspelt field fails.
 * Files are named as kubeconform's default template expects: <kind><-group-prefix>-<version>.json.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load } from 'js-yaml';
import { ControlPlane, controlPlaneBinaries } from './control-plane.ts';
import { HarnessError } from './processes.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
/** Bump when the conversion below changes, so cached schemas are made again. */
const CONVERSION_REVISION = 1;

export const monitoringSchemaDir = join(here, 'schemas');

type Schema = Record<string, unknown> & {
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
};

export const cacheRoot = () =>
  process.env.FAILOVER_CACHE_DIR ??
  join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/tmp', '.cache'), 'failover-operator');

/** kubeconform's name for a kind's schema file: deployment-apps-v1.json, service-v1.json. */
export function schemaFileName(kind: string, group: string, version: string): string {
  const prefix = group === '' ? '' : `-${group.split('.')[0]}`;
  return `${kind.toLowerCase()}${prefix}-${version}.json`.toLowerCase();
}

const intOrString = () => ({ oneOf: [{ type: 'string' }, { type: 'integer' }] });

/** Makes one OpenAPI v2 schema strict and JSON-Schema-correct, recursively. */
function convertOpenApi(schema: Schema): Schema {
  if (schema.format === 'int-or-string') return { description: schema.description, ...intOrString() };
  const out: Schema = { ...schema };
  if (schema.properties) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([k, v]) => [k, convertOpenApi(v)]),
    );
    if (schema.additionalProperties === undefined) out.additionalProperties = false;
  }
  if (schema.items) out.items = convertOpenApi(schema.items);
  if (typeof schema.additionalProperties === 'object') {
    out.additionalProperties = convertOpenApi(schema.additionalProperties);
  }
  if (Array.isArray(schema.allOf)) out.allOf = (schema.allOf as Schema[]).map(convertOpenApi);
  return out;
}

/** Definitions whose OpenAPI form does not say what the API server really accepts. */
const specialDefinitions: Record<string, Schema> = {
  'io.k8s.apimachinery.pkg.util.intstr.IntOrString': intOrString(),
  // "100m", "1Gi" or a plain number.
  'io.k8s.apimachinery.pkg.api.resource.Quantity': { oneOf: [{ type: 'string' }, { type: 'number' }] },
};

function refsIn(value: unknown, found: Set<string>): void {
  if (Array.isArray(value)) for (const v of value) refsIn(v, found);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') found.add(v.replace('#/definitions/', ''));
      else refsIn(v, found);
    }
  }
}

/** Writes one standalone schema file per group/version/kind of an OpenAPI v2 document. */
export function writeOpenApiSchemas(openapi: { definitions: Record<string, Schema> }, dir: string): number {
  const defs: Record<string, Schema> = {};
  for (const [name, def] of Object.entries(openapi.definitions)) {
    defs[name] = specialDefinitions[name] ?? convertOpenApi(def);
  }
  let written = 0;
  for (const [name, def] of Object.entries(openapi.definitions)) {
    // Built-in kinds only: a CRD's published OpenAPI is looser than the strict schemas made
    // from crds/, and would shadow them.
    if (!name.startsWith('io.k8s.')) continue;
    const gvks = def['x-kubernetes-group-version-kind'] as
      | { group: string; version: string; kind: string }[]
      | undefined;
    if (!gvks) continue;
    // Only the definitions this kind reaches, so each file stands alone.
    const reachable = new Set<string>();
    const queue = [name];
    while (queue.length) {
      const next = queue.pop() as string;
      if (reachable.has(next)) continue;
      reachable.add(next);
      const found = new Set<string>();
      refsIn(defs[next], found);
      queue.push(...found);
    }
    for (const gvk of gvks) {
      const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
      const root = defs[name] as Schema;
      const schema: Schema = {
        $schema: 'http://json-schema.org/draft-07/schema#',
        ...root,
        properties: {
          ...root.properties,
          apiVersion: { type: 'string', enum: [apiVersion] },
          kind: { type: 'string', enum: [gvk.kind] },
        },
        definitions: Object.fromEntries([...reachable].sort().map((n) => [n, defs[n]])),
      };
      writeFileSync(join(dir, schemaFileName(gvk.kind, gvk.group, gvk.version)), JSON.stringify(schema));
      written++;
    }
  }
  return written;
}

/** Makes a CRD's structural schema strict, the way the API server prunes unknown fields. */
function convertStructural(schema: Schema): Schema {
  if (schema['x-kubernetes-int-or-string'] === true) {
    return { description: schema.description, ...intOrString() };
  }
  const out: Schema = { ...schema };
  if (schema.nullable === true && typeof schema.type === 'string') out.type = [schema.type, 'null'];
  if (schema.properties) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([k, v]) => [k, convertStructural(v)]),
    );
  }
  if (
    schema.type === 'object' &&
    schema.additionalProperties === undefined &&
    schema['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  if (schema.items) out.items = convertStructural(schema.items);
  if (typeof schema.additionalProperties === 'object') {
    out.additionalProperties = convertStructural(schema.additionalProperties);
  }
  return out;
}

interface Crd {
  spec: {
    group: string;
    names: { kind: string };
    versions: { name: string; schema?: { openAPIV3Schema?: Schema } }[];
  };
}

/** Writes a schema per served version of each CRD in `crdDir` (crds/ by default). */
export function writeCrdSchemas(dir: string, crdDir = join(repo, 'crds')): number {
  let written = 0;
  for (const file of readdirSync(crdDir).filter((f) => f.endsWith('.yaml'))) {
    const crd = load(readFileSync(join(crdDir, file), 'utf8')) as Crd;
    for (const version of crd.spec.versions) {
      const root = version.schema?.openAPIV3Schema;
      if (!root) continue;
      const converted = convertStructural(root);
      const schema: Schema = {
        $schema: 'http://json-schema.org/draft-07/schema#',
        ...converted,
        properties: {
          ...converted.properties,
          apiVersion: { type: 'string', enum: [`${crd.spec.group}/${version.name}`] },
          kind: { type: 'string', enum: [crd.spec.names.kind] },
          // The API server checks metadata itself (ObjectMeta); only its shape matters here.
          metadata: { type: 'object' },
        },
        required: [...new Set(['apiVersion', 'kind', ...(converted.required ?? [])])],
      };
      writeFileSync(
        join(dir, schemaFileName(crd.spec.names.kind, crd.spec.group, version.name)),
        JSON.stringify(schema),
      );
      written++;
    }
  }
  return written;
}

/**
 * The directory of built-in kinds' schemas for the test API server's version, made on first
 * use (by starting a control plane and reading /openapi/v2) and cached.
 */
export async function kubernetesSchemaDir(log: (line: string) => void = () => {}): Promise<string> {
  const bin = await controlPlaneBinaries();
  const key = `${basename(dirname(bin))}_r${CONVERSION_REVISION}`;
  const dir = join(cacheRoot(), 'kube-schemas', key);
  if (existsSync(join(dir, '.complete'))) return dir;
  log(`making Kubernetes JSON schemas from the test API server's OpenAPI (once, cached in ${dir})`);
  const cp = await ControlPlane.start({ name: 'schemas' });
  try {
    const res = await cp.get('/openapi/v2');
    if (res.status !== 200) throw new HarnessError('kube schemas', `GET /openapi/v2 answered ${res.status}`);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const count = writeOpenApiSchemas(JSON.parse(res.body), tmp);
    writeFileSync(join(tmp, '.complete'), `${count} schemas\n`);
    mkdirSync(dirname(dir), { recursive: true });
    if (!existsSync(join(dir, '.complete'))) rmSync(dir, { recursive: true, force: true });
    // A rename, so a concurrent reader never sees a half-written directory; if another process
    // finished first, its directory is as good as ours.
    try {
      renameSync(tmp, dir);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(join(dir, '.complete'))) throw err;
    }
    log(`wrote ${count} schemas`);
    return dir;
  } finally {
    await cp.stop();
  }
}
