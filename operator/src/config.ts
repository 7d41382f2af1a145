/**
 * Process configuration from flags (`--name=value`) and environment (`FAILOVER_NAME`), validated
 * by zod. A bad value stops the process at start with a message naming the flag.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { DEFAULT_DNS_READ_RATES, DNS_READ_RATES_PATTERN } from './providers/dns/read-budget.ts';

const seconds = (def: number, max: number) => z.coerce.number().int().min(1).max(max).default(def);
const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

export const configSchema = z
  .object({
    mode: z
      .enum(['operator', 'observer', 'agent'])
      .default('operator')
      .describe(
        'operator: reconcile; observer: probe and publish observations; agent: carry out local steps beside one self-managed PostgreSQL',
      ),
    kubeconfig: z.string().optional().describe('kubeconfig file; in-cluster or $KUBECONFIG when omitted'),
    namespace: z.string().default('').describe('watch only this namespace; all when empty'),
    leaderElect: bool(true).describe('elect one active replica through a Lease'),
    leaderElectionNamespace: z
      .string()
      .min(1)
      .default(process.env.POD_NAMESPACE ?? 'default')
      .describe('where the leader Lease lives (default: $POD_NAMESPACE)'),
    leaderElectionId: z.string().min(1).default('failover-operator-leader').describe('the leader Lease name'),
    leaderElectionOwner: z
      .string()
      .default('')
      .describe(
        'the Deployment, in the Lease namespace, the leader Lease belongs to: deleting it deletes the Lease (empty: none)',
      ),
    identity: z
      .string()
      .min(1)
      .default(process.env.POD_NAME ?? `${hostname()}-${process.pid}`)
      .describe('this replica in the Lease, Events and reports (default: $POD_NAME, else host-pid)'),
    shards: z.coerce
      .number()
      .int()
      .min(1)
      .max(256)
      .default(1)
      .describe(
        'spread policies over this many shards, each with its own Lease, reconciled by whichever replicas hold them (1: one leader reconciles all)',
      ),
    leaseDurationSeconds: seconds(15, 600).describe('how long a leader Lease holds without renewal'),
    renewDeadlineSeconds: seconds(10, 600).describe('a leader that has not renewed in this long steps down'),
    retryPeriodSeconds: seconds(2, 600).describe('how often leader election tries'),
    httpAddress: z
      .string()
      .regex(/^[^:]*:\d+$/, 'must be host:port, e.g. 0.0.0.0:8080')
      .default('0.0.0.0:8080')
      .describe('serves /metrics, /healthz and /readyz'),
    statusPageAddress: z
      .string()
      .regex(/^[^:]*:\d+$/, 'must be host:port, e.g. 0.0.0.0:8081')
      .optional()
      .describe('operator mode: serve the read-only status page (HTML and JSON) here; off when not given'),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])
      .default('info')
      .describe('fatal, error, warn, info, debug or trace (pino JSON on stdout)'),
    maxConcurrentReconciles: z.coerce
      .number()
      .int()
      .min(1)
      .max(64)
      .default(4)
      .describe('policies reconciled at once'),
    dnsReadsPerSecond: z
      .string()
      .regex(DNS_READ_RATES_PATTERN, 'must be Provider=reads a second[,...], e.g. Route53=2,DigitalOcean=0.5')
      .default(DEFAULT_DNS_READ_RATES)
      .describe(
        "operator mode: reads of policies' DNS records a second, per credentials or RFC 2136 server, divided by --shards; every use spends from it, routine checks and discovery's re-reads wait while it is spent (each provider not named keeps its default; 0: no budget)",
      ),
    watchSecrets: bool(false).describe(
      'operator and observer modes: watch the metadata of Secrets where they are read (needs list and watch on Secrets there), and read a Secret again only when it changed, instead of every 5 minutes',
    ),
    resyncSeconds: seconds(600, 86400).describe('every object is reconciled again at least this often'),
    shutdownGraceSeconds: seconds(20, 600).describe(
      'on SIGTERM, how long the current step may take to finish',
    ),
    observerName: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a lowercase name such as region-b')
      .max(63)
      .optional()
      .describe('observer mode: this observer name, unique among observers (e.g. its region)'),
    observerRegion: z.string().max(63).optional().describe('observer mode: the region it runs in'),
    endpointOverrides: z
      .string()
      .regex(
        /^([a-z0-9.-]+\/[a-z0-9.-]+=[^,=]+:\d+)(,[a-z0-9.-]+\/[a-z0-9.-]+=[^,=]+:\d+)*$/,
        'must be namespace/cluster=host:port[,...]',
      )
      .optional()
      .describe('observer mode: reach some clusters through another address from this region'),
    cluster: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a ReplicaCluster name')
      .max(253)
      .optional()
      .describe('agent mode: the ReplicaCluster this agent sits beside (in --namespace)'),
    dataDir: z.string().optional().describe('agent mode: the PostgreSQL data directory'),
    pgBin: z
      .string()
      .optional()
      .describe('agent mode: directory with pg_ctl, pg_controldata, pg_rewind, pg_basebackup, pg_waldump'),
    pgSocketDir: z
      .string()
      .default('/var/run/postgresql')
      .describe('agent mode: the server Unix socket directory'),
    pgPort: z.coerce.number().int().min(1).max(65535).default(5432).describe('agent mode: the server port'),
    pgUser: z
      .string()
      .default('postgres')
      .describe('agent mode: the role the agent logs in as over the socket'),
    pgLogFile: z
      .string()
      .optional()
      .describe(
        'agent mode: log file for a server the agent starts (default: <data-dir>/../postgresql-agent.log)',
      ),
    replicationUser: z.string().default('replicator').describe('agent mode: the role standbys stream as'),
    replicationPasswordFile: z
      .string()
      .optional()
      .describe('agent mode: file holding that role password (or FAILOVER_REPLICATION_PASSWORD)'),
    replicationPassword: z
      .string()
      .optional()
      .describe('agent mode: that role password, from the environment only (never a flag)'),
    peerListen: z
      .string()
      .regex(/^[^:]*:\d+$/, 'must be host:port (host may be empty: every address)')
      .optional()
      .describe(
        'agent mode: where to answer the other agents of the policy (split-brain failsafe), e.g. :7433; off when unset',
      ),
    peerAddress: z
      .string()
      .regex(/^[^:]+:\d+$/, 'must be host:port')
      .optional()
      .describe('agent mode: host:port the other agents reach --peer-listen at (published in status)'),
    peerTokenFile: z
      .string()
      .optional()
      .describe(
        'agent mode: file with a token every agent of the policy shares; peers without it are refused',
      ),
  })
  .refine((c) => !c.peerListen === !c.peerAddress, {
    message:
      '--peer-listen and --peer-address go together: one says where to listen, the other how peers reach it',
    path: ['peerAddress'],
  })
  .refine((c) => c.mode !== 'agent' || (c.cluster && c.dataDir && c.namespace), {
    message: 'agent mode needs --cluster, --data-dir and --namespace (the ReplicaCluster it sits beside)',
    path: ['cluster'],
  })
  .refine((c) => c.leaseDurationSeconds > c.renewDeadlineSeconds, {
    message: 'lease-duration-seconds must be greater than renew-deadline-seconds',
    path: ['leaseDurationSeconds'],
  })
  .refine((c) => c.shards === 1 || (c.leaderElect && c.mode === 'operator'), {
    message: '--shards above 1 needs leader election (each shard is a Lease) and operator mode',
    path: ['shards'],
  })
  .refine((c) => c.mode !== 'observer' || c.observerName !== undefined, {
    message: 'observer mode needs --observer-name (unique among observers, e.g. the region it runs in)',
    path: ['observerName'],
  })
  .refine((c) => c.renewDeadlineSeconds > c.retryPeriodSeconds, {
    message: 'renew-deadline-seconds must be greater than retry-period-seconds',
    path: ['renewDeadlineSeconds'],
  });

export type Config = z.infer<typeof configSchema>;

/** `--help`: every flag with its environment variable, default and meaning, from the schema. */
export function helpText(): string {
  const lines = [
    'failover-operator: the regional database failover operator, an observer, or a database agent.',
    '',
    'Usage: failover-operator [--flag=value | --flag value]...',
    '',
    'Every flag can be set as an environment variable instead (shown beside it); a flag wins.',
    '',
  ];
  for (const [key, schema] of Object.entries(configSchema.shape)) {
    const flag = kebab(key);
    const parsed = schema.safeParse(undefined);
    const fallback =
      parsed.success && parsed.data !== undefined && parsed.data !== '' ? parsed.data : undefined;
    const name = ENV_ONLY.has(flag) ? `(env only) ${envName(key)}` : `--${flag}  ${envName(key)}`;
    lines.push(`  ${name}${fallback !== undefined ? `  (default: ${String(fallback)})` : ''}`);
    if (schema.description) lines.push(`      ${schema.description}`);
  }
  lines.push(
    '',
    'Also: -h, --help  this text;  --version  the version.',
    'Exit codes: 0 stopped on a signal; 1 a setup problem found at start (no CRDs, refused credentials) or a lost leader Lease; 2 a bad flag or kubeconfig.',
    '',
  );
  return lines.join('\n');
}

/** The package version, from package.json beside operator/ (in the image too). */
export function version(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (s: string) => `FAILOVER_${kebab(s).replace(/-/g, '_').toUpperCase()}`;

/** Reads flags first, then FAILOVER_* variables, then defaults. Throws with every problem named. */
/** Settings taken from the environment only, never from a flag. */
const ENV_ONLY = new Set(['replication-password']);

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): Config {
  const keys = Object.keys(configSchema.shape ?? {}) as (keyof Config)[];
  const byFlag = new Map(keys.map((k) => [kebab(k), k]));
  const raw: Record<string, string> = {};
  for (const k of keys) {
    const value = env[envName(k)];
    if (value !== undefined) raw[k] = value;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const key = m ? byFlag.get(m[1] ?? '') : undefined;
    if (!m || !key)
      throw new Error(
        `unknown argument ${arg}; flags are: ${[...byFlag.keys()]
          .filter((f) => !ENV_ONLY.has(f))
          .map((f) => `--${f}`)
          .join(' ')}`,
      );
    // A password on the command line is readable by every local user in `ps`.
    if (ENV_ONLY.has(m[1] ?? ''))
      throw new Error(
        `--${m[1]} is not accepted as a flag (every local user can read it with ps): use ${envName(key)} or --${m[1]}-file`,
      );
    const value = m[2] ?? (argv[i + 1]?.startsWith('--') || argv[i + 1] === undefined ? 'true' : argv[++i]);
    raw[key] = value ?? 'true';
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new Error(
      parsed.error.issues
        .map((i) => `--${kebab(String(i.path[0] ?? ''))} (${envName(String(i.path[0] ?? ''))}): ${i.message}`)
        .join('; '),
    );
  }
  return parsed.data;
}
