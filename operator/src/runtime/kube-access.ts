/**
 * How the operator reaches the API server: the server URL, one connection pool's TLS settings,
 * and the headers that authenticate a request.
 *
 * The operator's own loader reads what an operator meets: the pod's service account (in-cluster)
 * and kubeconfigs with a CA, a client certificate, a bearer token or token file, or basic auth.
 * Anything else (exec plugins, auth providers, proxy-url, impersonation, several KUBECONFIG files)
 * goes to @kubernetes/client-node, loaded only then: its generated API modules cost the process
 * about 50 MiB of memory and start-up time that a pod authenticating with its token never needs.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { load as parseYaml } from 'js-yaml';
import { Agent, type Dispatcher, ProxyAgent, Socks5ProxyAgent } from 'undici';
import { z } from 'zod';

export interface KubeAccess {
  readonly server: string;
  /** Which loader read it, and from where: for the start-up log. */
  readonly source: string;
  /**
   * A connection pool for this server (CA, client certificate, server name, proxy). HTTP/1.1,
   * with a connection per request in flight (as client-go without HTTP/2): over a cold pass at
   * 2,000 policies, HTTP/2 cost the operator 20.2 s of CPU against 16.5 s and the API server
   * 46.0 s against 38.8 s (undici writes HTTP/2 through node:http2; Go serves it with more work
   * per request), and the pass took 33.3 s against 27.0 s.
   */
  dispatcher(keepAliveTimeout: number): Promise<Dispatcher>;
  /** The headers that authenticate one request (a token file is read again as it rotates). */
  authenticate(url: string, method: string): Promise<Record<string, string>>;
}

/** Where a pod's service account is mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** How often a token file is read again: projected tokens rotate (client-go re-reads each minute). */
const TOKEN_REREAD_MS = 60_000;

const cluster = z
  .object({
    server: z.string().min(1),
    'certificate-authority': z.string().optional(),
    'certificate-authority-data': z.string().optional(),
    'insecure-skip-tls-verify': z.boolean().optional(),
    'tls-server-name': z.string().optional(),
  })
  .loose();
const user = z
  .object({
    'client-certificate': z.string().optional(),
    'client-certificate-data': z.string().optional(),
    'client-key': z.string().optional(),
    'client-key-data': z.string().optional(),
    token: z.string().optional(),
    tokenFile: z.string().optional(),
    username: z.string().optional(),
    password: z.string().optional(),
  })
  .loose();
/** The part of a kubeconfig (clientcmd v1 Config) this loader reads. */
const kubeconfigFile = z
  .object({
    clusters: z.array(z.object({ name: z.string(), cluster }).loose()).default([]),
    users: z.array(z.object({ name: z.string(), user: user.nullish() }).loose()).default([]),
    contexts: z
      .array(
        z
          .object({
            name: z.string(),
            context: z.object({ cluster: z.string(), user: z.string().optional() }).loose(),
          })
          .loose(),
      )
      .default([]),
    'current-context': z.string().optional(),
  })
  .loose();

const CLUSTER_KEYS = new Set([...Object.keys(cluster.shape), 'extensions']);
const USER_KEYS = new Set([...Object.keys(user.shape), 'extensions']);

/** Why this loader leaves a kubeconfig to client-node, if it does. */
class Unsupported extends Error {}

interface Settings {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
  serverName?: string;
  token?: string;
  tokenFile?: string;
  basic?: string;
}

/**
 * The access the operator runs with: `path` (its --kubeconfig), else KUBECONFIG, else
 * ~/.kube/config, else the pod's service account, the order kubectl and client-node follow.
 */
export async function loadKubeAccess(
  path?: string,
  env: NodeJS.ProcessEnv = process.env,
  serviceAccountDir = SERVICE_ACCOUNT_DIR,
): Promise<KubeAccess> {
  const files = path ? [path] : (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  const file = files.length ? files : existsSync(home) ? [home] : [];
  try {
    if (file.length > 1) throw new Unsupported('several KUBECONFIG files (merged)');
    if (file[0]) return leanAccess(fromKubeconfig(file[0]), file[0]);
    if (existsSync(join(serviceAccountDir, 'token')))
      return leanAccess(inCluster(env, serviceAccountDir), 'in-cluster service account');
    throw new Unsupported('no kubeconfig and no service account');
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    // The files chosen above, merged as client-node's loadFromDefault merges KUBECONFIG's.
    const [first, ...more] = file;
    if (first) {
      kc.loadFromFile(first);
      for (const next of more) {
        const other = new KubeConfig();
        other.loadFromFile(next);
        kc.mergeConfig(other);
      }
    } else kc.loadFromDefault();
    if (!kc.getCurrentCluster()) throw new Error('it names no cluster (no current-context?)');
    return accessFromKubeConfig(kc, `client-node (${err.message})`);
  }
}

function inCluster(env: NodeJS.ProcessEnv, dir: string): Settings {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new Error('a service account is mounted, but KUBERNETES_SERVICE_HOST/PORT are unset');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(dir, 'ca.crt')),
    tokenFile: join(dir, 'token'),
  };
}

function fromKubeconfig(file: string): Settings {
  const parsed = kubeconfigFile.safeParse(parseYaml(readFileSync(file, 'utf8')) ?? {});
  if (!parsed.success) throw new Error(`${file}: ${z.prettifyError(parsed.error)}`);
  const config = parsed.data;
  const contextName = config['current-context'];
  if (!contextName) throw new Error('it names no cluster (no current-context?)');
  const context = config.contexts.find((c) => c.name === contextName)?.context;
  if (!context) throw new Error(`current-context ${contextName} is not among its contexts`);
  const c = config.clusters.find((x) => x.name === context.cluster)?.cluster;
  if (!c)
    throw new Error(`context ${contextName} names cluster ${context.cluster}, which it does not define`);
  const u: z.infer<typeof user> =
    (context.user ? config.users.find((x) => x.name === context.user)?.user : undefined) ?? {};
  const extra = [
    ...Object.keys(c).filter((k) => !CLUSTER_KEYS.has(k)),
    ...Object.keys(u).filter((k) => !USER_KEYS.has(k)),
    ...Object.keys(context).filter((k) => k === 'as' || k === 'as-groups'),
  ];
  if (extra.length) throw new Unsupported(extra.join(', '));
  // Paths in a kubeconfig are relative to the file that names them; an empty field is no field.
  const read = (p: string | undefined, data: string | undefined) =>
    data
      ? Buffer.from(data, 'base64')
      : p
        ? readFileSync(isAbsolute(p) ? p : join(dirname(file), p))
        : undefined;
  if (c['insecure-skip-tls-verify'] && (c['certificate-authority'] || c['certificate-authority-data']))
    throw new Error(
      'specifying a root certificates file with the insecure flag is not allowed (as kubectl says)',
    );
  const optional = <K extends string, V>(k: K, v: V | undefined) => (v === undefined ? {} : { [k]: v });
  return {
    server: c.server,
    ...optional('ca', read(c['certificate-authority'], c['certificate-authority-data'])),
    ...optional('cert', read(u['client-certificate'], u['client-certificate-data'])),
    ...optional('key', read(u['client-key'], u['client-key-data'])),
    ...optional('insecure', c['insecure-skip-tls-verify']),
    ...optional('serverName', c['tls-server-name']),
    ...optional('token', u.token || undefined),
    ...optional(
      'tokenFile',
      u.tokenFile ? (isAbsolute(u.tokenFile) ? u.tokenFile : join(dirname(file), u.tokenFile)) : undefined,
    ),
    ...optional(
      'basic',
      u.username ? Buffer.from(`${u.username}:${u.password ?? ''}`).toString('base64') : undefined,
    ),
  };
}

function leanAccess(s: Settings, source: string): KubeAccess {
  let token = s.token;
  let readAt = 0;
  let mtime = 0;
  // A token file is read again once a minute, or when it changed; one that cannot be read keeps
  // the last token it gave (or the kubeconfig's token), as client-go does, until it can.
  const currentToken = () => {
    if (!s.tokenFile) return token;
    const now = Date.now();
    try {
      const changed = statSync(s.tokenFile).mtimeMs;
      if (readAt === 0 || now - readAt > TOKEN_REREAD_MS || changed !== mtime) {
        token = readFileSync(s.tokenFile, 'utf8').trim() || token;
        readAt = now;
        mtime = changed;
      }
    } catch (err) {
      if (token === undefined) throw err;
    }
    return token;
  };
  return {
    server: s.server.replace(/\/+$/, ''),
    source,
    async dispatcher(keepAliveTimeout) {
      return new Agent({
        keepAliveTimeout,
        allowH2: false,
        connect: {
          ...(s.ca ? { ca: s.ca } : {}),
          ...(s.cert ? { cert: s.cert } : {}),
          ...(s.key ? { key: s.key } : {}),
          ...(s.serverName ? { servername: s.serverName } : {}),
          rejectUnauthorized: !s.insecure,
        },
      });
    },
    async authenticate(): Promise<Record<string, string>> {
      const bearer = currentToken();
      if (bearer) return { authorization: `Bearer ${bearer}` };
      return s.basic ? { authorization: `Basic ${s.basic}` } : {};
    },
  };
}

/**
 * Access through a client-node KubeConfig: the CLI and the tests hold one anyway, and it covers
 * every authentication kubectl knows. Only types are imported above; the module is loaded here.
 */
export function accessFromKubeConfig(kc: KubeConfig, source = 'client-node'): KubeAccess {
  const cluster = kc.getCurrentCluster();
  const clientNode = import('@kubernetes/client-node');
  return {
    server: cluster?.server.replace(/\/+$/, '') ?? '',
    source,
    // client-node maps the kubeconfig to connection options (CA, client certificate,
    // insecure-skip-tls-verify, tls-server-name, proxy-url); the pool itself is ours, one per client.
    async dispatcher(keepAliveTimeout) {
      const tls = {};
      await kc.applyToHTTPSOptions(tls);
      const options = kc.createDispatcherOptions(cluster, tls);
      switch (options.type) {
        case 'proxy':
          return new ProxyAgent({ uri: options.uri, requestTls: options.requestTls, keepAliveTimeout });
        case 'socks':
          if (!/^socks5h?:/.test(options.uri)) {
            throw new Error(
              `proxy-url ${options.uri}: only SOCKS5 (socks5:// or socks5h://) and HTTP proxies are supported`,
            );
          }
          return new Socks5ProxyAgent(options.uri, { requestTls: options.requestTls, keepAliveTimeout });
        case 'agent':
          return new Agent({ keepAliveTimeout, allowH2: false, connect: options.connect });
        case 'none':
          return new Agent({ keepAliveTimeout, allowH2: false });
      }
    },
    async authenticate(url, method) {
      const { RequestContext } = await clientNode;
      const ctx = new RequestContext(url, method as ConstructorParameters<typeof RequestContext>[1]);
      await kc.applySecurityAuthentication(ctx);
      return ctx.getHeaders() as Record<string, string>;
    },
  };
}
