/**
 * Reading and checking a stack's configuration before anything is planned. Every key a stack
 * understands is declared in one zod object; a bad value, a missing one, a key nobody reads (a
 * typo) or a secret stored in plain text stops the program with one message that names each key
 * and says how to fix it. Pulumi stores config values as strings (JSON for numbers, booleans,
 * lists and objects), so each field says how its string is read.
 */
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { formatPath } from '../../operator/src/api/validate.ts';

/** Where configuration comes from: the Pulumi runtime in a real run, a plain map in tests. */
export interface ConfigSource {
  /** Every key set for the stack, fully qualified, such as `failover-aws:primaryRegion`. */
  keys(): string[];
  get(key: string): string | undefined;
  /** Whether the value was set with `--secret` (stored encrypted in the stack file). */
  isSecret(key: string): boolean;
}

/** The configuration of the running Pulumi program (or of `pulumi.runtime.setAllConfig` in tests). */
export function pulumiConfigSource(): ConfigSource {
  // isConfigSecret is exported by the runtime but not in its type declarations.
  const runtime = pulumi.runtime as unknown as { isConfigSecret?: (key: string) => boolean };
  return {
    keys: () => Object.keys(pulumi.runtime.allConfig()),
    get: (key) => pulumi.runtime.allConfig()[key],
    // An SDK without the function cannot tell; then nothing is refused for being plain text.
    isSecret: (key) => runtime.isConfigSecret?.(key) ?? true,
  };
}

/** A plain map as a config source, for tests and tools. */
export function mapConfigSource(values: Record<string, string>, secretKeys: string[] = []): ConfigSource {
  return {
    keys: () => Object.keys(values),
    get: (key) => values[key],
    isSecret: (key) => secretKeys.includes(key),
  };
}

/** A config value used as the string Pulumi stores. */
export function configText<T extends z.ZodType>(schema: T): T {
  return schema;
}

/**
 * A config value Pulumi stores as JSON: a number or boolean (`pulumi config set ttlSeconds 30`), or
 * a list or object (`pulumi config set --path 'drills.timeZone' Europe/Berlin`).
 */
export function configJson<T extends z.ZodType>(schema: T) {
  return z.preprocess((raw, ctx) => {
    if (typeof raw !== 'string') return raw;
    try {
      return JSON.parse(raw);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: `must be a number, true/false, or JSON (set lists and objects with --path); got ${JSON.stringify(raw)}`,
      });
      return z.NEVER;
    }
  }, schema);
}

/** One thing wrong with the configuration, tied to the key a person has to change. */
export interface ConfigProblem {
  /** Fully qualified key, with a path inside structured values: `failover-aws:drills.schedule`. */
  key: string;
  message: string;
}

/**
 * The stack configuration is invalid. A RunError, so Pulumi prints the message alone, without a
 * stack trace: the fix is in the configuration, not in the program.
 */
export class StackConfigError extends pulumi.RunError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(
      [
        'Invalid stack configuration; nothing was planned or created. Fix these settings and run again:',
        ...problems.map((p) => `  - ${p.key}: ${p.message}`),
      ].join('\n'),
    );
    this.name = 'StackConfigError';
    this.problems = problems;
  }
}

export interface StackConfigSpec<S extends z.ZodObject> {
  /** The config namespace, which is the Pulumi project name: `failover-aws`. */
  namespace: string;
  /** One field per key, taking the stored string (see configText and configJson). */
  schema: S;
  /** Keys that must be set with `pulumi config set --secret`. */
  secretKeys?: readonly string[];
  /** An example value per key, used to say how to set a missing one. */
  examples?: Readonly<Record<string, string>>;
}

/**
 * Reads every key of the schema from the stack configuration and checks them all. Throws a
 * StackConfigError that lists every problem, each under the key to change.
 */
export function readStackConfig<S extends z.ZodObject>(
  spec: StackConfigSpec<S>,
  source: ConfigSource = pulumiConfigSource(),
): z.output<S> {
  const { namespace, schema } = spec;
  const known = Object.keys(schema.shape);
  const qualified = (key: string) => `${namespace}:${key}`;
  const problems: ConfigProblem[] = [];

  const raw: Record<string, string | undefined> = {};
  for (const key of known) raw[key] = source.get(qualified(key));

  for (const full of source.keys()) {
    if (!full.startsWith(`${namespace}:`)) continue;
    const key = full.slice(namespace.length + 1);
    if (known.includes(key)) continue;
    const near = closest(key, known);
    problems.push({
      key: full,
      message: `is not a setting of this stack${near ? `; did you mean ${qualified(near)}?` : ''} Remove it with: pulumi config rm ${full}`,
    });
  }

  for (const key of spec.secretKeys ?? []) {
    if (raw[key] !== undefined && !source.isSecret(qualified(key))) {
      problems.push({
        key: qualified(key),
        message: `is stored in plain text in the stack file; set it again with: pulumi config set --secret ${qualified(key)} <value>`,
      });
    }
  }

  const result = schema.safeParse(raw);
  if (result.success && problems.length === 0) return result.data;
  if (!result.success) {
    for (const issue of result.error.issues) {
      const [key, ...rest] = issue.path;
      const name = typeof key === 'string' ? key : '';
      const full = formatPath([qualified(name), ...rest]);
      // A key with no value that its field refuses is a required key left unset (a cross-key
      // rule, such as "required when ...", says so in its own words).
      if (rest.length === 0 && raw[name] === undefined && issue.code !== 'custom') {
        const secret = spec.secretKeys?.includes(name) ? '--secret ' : '';
        const example = spec.examples?.[name] ?? '<value>';
        problems.push({
          key: full,
          message: `is required. Set it with: pulumi config set ${secret}${qualified(name)} ${example}`,
        });
      } else {
        problems.push({ key: full, message: issue.message });
      }
    }
  }
  throw new StackConfigError(problems);
}

/** The known key nearest to a misspelt one (edit distance at most 3), for "did you mean". */
function closest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
