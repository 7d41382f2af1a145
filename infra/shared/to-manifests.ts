/**
 * Turns a stack's outputs into the ReplicaCluster and FailoverPolicy manifests to `kubectl apply`.
 *
 *   pulumi stack output --json | node infra/shared/to-manifests.ts > failover.yaml
 *   node infra/shared/to-manifests.ts outputs.json > failover.yaml
 *
 * Every spec is checked with the operator's own schemas first, so a file this writes is one the
 * API server accepts. Secrets are never written: the manifests only name the Secrets to create.
 */
import { readFileSync } from 'node:fs';
import { dump } from 'js-yaml';
import { API_VERSION } from '../../operator/src/api/v1alpha1/index.ts';
import { formatPath } from '../../operator/src/api/validate.ts';
import { failoverStackOutputs } from './outputs.ts';

/** A Kubernetes object as it is written to the YAML. */
export interface Manifest {
  apiVersion: string;
  kind: 'ReplicaCluster' | 'FailoverPolicy';
  metadata: { name: string; namespace: string };
  spec: unknown;
}

/** The outputs are not what a failover stack exports, or a spec would be refused. */
export class StackOutputsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackOutputsError';
  }
}

/**
 * The manifests for a stack's outputs (as printed by `pulumi stack output --json`): the
 * ReplicaClusters first, as the policy refers to them. Specs are written as the stack built them;
 * the API server fills in the defaults.
 */
export function manifestsFromStackOutputs(outputs: unknown): Manifest[] {
  const hidden = findSecretPlaceholder(outputs);
  if (hidden) {
    throw new StackOutputsError(
      `${hidden} is "[secret]": the stack marked it secret, so its value was hidden. The failover specs hold no secrets; check that the stack exports them unchanged, or run pulumi stack output --json --show-secrets`,
    );
  }
  const parsed = failoverStackOutputs.safeParse(outputs);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const path = formatPath(issue.path);
      return `  - ${path || '(the outputs)'}: ${issue.message}`;
    });
    throw new StackOutputsError(
      [
        'The stack outputs are not a failover stack the operator accepts (is this the output of an infra/aws or infra/digitalocean stack?):',
        ...problems,
      ].join('\n'),
    );
  }
  // Emit the specs as exported, not as parsed: parsing fills in defaults the API server applies.
  const raw = outputs as {
    replicaClusters: { name: string; spec: unknown }[];
    failoverPolicy: { name: string; spec: unknown };
  };
  const { namespace } = parsed.data;
  return [
    ...raw.replicaClusters.map(
      (cluster): Manifest => ({
        apiVersion: API_VERSION,
        kind: 'ReplicaCluster',
        metadata: { name: cluster.name, namespace },
        spec: cluster.spec,
      }),
    ),
    {
      apiVersion: API_VERSION,
      kind: 'FailoverPolicy',
      metadata: { name: raw.failoverPolicy.name, namespace },
      spec: raw.failoverPolicy.spec,
    },
  ];
}

/** Multi-document YAML, one object per document. */
export function renderManifests(manifests: Manifest[]): string {
  return manifests.map((m) => `---\n${dump(m, { lineWidth: 120, noRefs: true })}`).join('');
}

function findSecretPlaceholder(value: unknown, path: PropertyKey[] = []): string | undefined {
  if (value === '[secret]') return formatPath(path) || '(the outputs)';
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findSecretPlaceholder(item, [...path, index]);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      // Only the keys this command reads; other outputs may well be secret.
      if (path.length === 0 && !['namespace', 'replicaClusters', 'failoverPolicy'].includes(key)) continue;
      const found = findSecretPlaceholder(item, [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}

const USAGE = `Usage: pulumi stack output --json | node infra/shared/to-manifests.ts [outputs.json | -] > failover.yaml

Writes the ReplicaCluster and FailoverPolicy manifests for a stack of infra/aws or infra/digitalocean.
Reads the JSON of "pulumi stack output --json" from the file given, or from standard input.`;

/** The command: returns the exit code. */
export async function main(
  args: string[],
  io: {
    stdin: NodeJS.ReadableStream;
    stdout: NodeJS.WritableStream;
    stderr: NodeJS.WritableStream;
  } = process,
): Promise<number> {
  if (args.includes('-h') || args.includes('--help')) {
    io.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.length > 1) {
    io.stderr.write(`to-manifests: expected at most one file, got ${args.length}\n${USAGE}\n`);
    return 2;
  }
  const source = args[0] ?? '-';
  let text: string;
  try {
    text = source === '-' ? await readAll(io.stdin) : readFileSync(source, 'utf8');
  } catch (error) {
    io.stderr.write(`to-manifests: cannot read ${source}: ${(error as Error).message}\n`);
    return 1;
  }
  let outputs: unknown;
  try {
    outputs = JSON.parse(text);
  } catch (error) {
    const from = source === '-' ? 'standard input' : source;
    io.stderr.write(
      `to-manifests: ${from} is not JSON (${(error as Error).message}); pipe in "pulumi stack output --json"\n`,
    );
    return 1;
  }
  try {
    io.stdout.write(renderManifests(manifestsFromStackOutputs(outputs)));
    return 0;
  } catch (error) {
    if (!(error instanceof StackOutputsError)) throw error;
    io.stderr.write(`to-manifests: ${error.message}\n`);
    return 1;
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
