/**
 * A local stand-in for the parts of DigitalOcean's public API v2 the operator uses: managed
 * databases (clusters, read-only replicas: creation and promotion) and domain records. Nothing of
 * DigitalOcean runs offline, so this is the one accepted stand-in (see the design brief,
 * "Testing with real parts"); it follows the published paths, payloads, status codes and
 * headers (https://docs.digitalocean.com/reference/api/api-reference/, the OpenAPI source in
 * github.com/digitalocean/openapi, specification/resources/{databases,domains}) and nothing more.
 *
 * Its state is plain data on the instance (`domains`, `clusters`), so tests can seed it, change it
 * behind the operator's back, and inspect it. Faults are explicit: fail the next N requests with
 * a 5xx or 429, delay every response, drop connections, or run a hook after a matching request.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';

/** A domain record as the API returns it (Domain Records: `domain_record` model). */
export interface DomainRecordJson {
  id: number;
  type: string;
  /** Relative to the domain; `@` is the apex. */
  name: string;
  /** CNAME targets are stored and returned without the trailing dot the API requires on input. */
  data: string;
  priority: number | null;
  port: number | null;
  ttl: number;
  weight: number | null;
  flags: number | null;
  tag: string | null;
}

/** One domain and its records. */
export interface DomainState {
  name: string;
  ttl: number;
  records: DomainRecordJson[];
}

/** The `connection` object of clusters and replicas (Databases: `database_connection` model). */
export interface DatabaseConnectionJson {
  uri: string;
  database: string;
  host: string;
  port: number;
  user: string;
  password: string;
  ssl: boolean;
}

/** A read-only replica (Databases: `database_replica` model). */
export interface ReplicaState {
  id: string;
  name: string;
  region: string;
  size: string;
  status: string;
  created_at: string;
  tags: string[];
  connection: DatabaseConnectionJson;
  private_connection: DatabaseConnectionJson;
  /** Stand-in only: while a created replica forks, when it reports `active` (ms since epoch). */
  activeAt?: number;
}

/** A database cluster (Databases: `database_cluster` model), with its replicas beside it. */
export interface ClusterState {
  id: string;
  name: string;
  engine: string;
  version: string;
  num_nodes: number;
  size: string;
  region: string;
  status: string;
  created_at: string;
  tags: string[] | null;
  db_names: string[] | null;
  connection: DatabaseConnectionJson;
  private_connection: DatabaseConnectionJson;
  replicas: ReplicaState[];
  /** Stand-in only: while a promotion runs, when the cluster reports `online` (ms since epoch). */
  onlineAt?: number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
}

export interface RequestMatch {
  method?: string;
  path?: RegExp;
}

export interface FaultOptions extends RequestMatch {
  /** 500, 502, 503 or 429. Default 500. */
  status?: number;
  /** Seconds for the Retry-After header of a 429. Default 7. */
  retryAfterSeconds?: number;
}

export interface PromotionEvent {
  clusterId: string;
  replicaName: string;
  /** The id of the standalone cluster the replica became. */
  newClusterId: string;
}

export interface DigitalOceanApiOptions {
  /** The bearer token the stand-in accepts. Default: a random one. */
  token?: string;
  /** Fixed port; a free one is chosen when omitted. */
  port?: number;
  /** How long a promoted replica reports `creating` before `online`. Default 0. */
  promotionDurationMs?: number;
  /** How long a replica created through the API reports `forking` before `active`. Default 0. */
  replicaCreationDurationMs?: number;
}

/** The documented rate limit: 5000 requests an hour (shared/headers.yml). */
const RATE_LIMIT = 5000;
const DEFAULT_PER_PAGE = 20;
const MAX_PER_PAGE = 200;
/** DigitalOcean's lowest accepted TTL for domain records. */
export const MIN_RECORD_TTL = 30;
const MAX_LOGGED_REQUESTS = 10_000;
const RECORD_TYPES = ['A', 'AAAA', 'CAA', 'CNAME', 'MX', 'NS', 'SOA', 'SRV', 'TXT'];

/** Error bodies as the API sends them: `{ id, message }` (shared/models/error.yml). */
const errors = {
  unauthorized: { status: 401, id: 'Unauthorized', message: 'Unable to authenticate you' },
  notFound: { status: 404, id: 'not_found', message: 'The resource you were accessing could not be found.' },
  tooManyRequests: { status: 429, id: 'too_many_requests', message: 'API Rate limit exceeded.' },
  serverError: { status: 500, id: 'server_error', message: 'Unexpected server-side error' },
} as const;

class ApiError extends Error {
  readonly status: number;
  readonly id: string;
  constructor(status: number, id: string, message: string) {
    super(message);
    this.status = status;
    this.id = id;
  }
}

const unprocessable = (message: string) => new ApiError(422, 'unprocessable_entity', message);
const notFound = () => new ApiError(errors.notFound.status, errors.notFound.id, errors.notFound.message);

export class DigitalOceanApiServer {
  /** Base URL to give the adapters as `apiUrl`, without a trailing slash: http://127.0.0.1:PORT */
  readonly url: string;
  readonly token: string;
  readonly port: number;
  readonly domains = new Map<string, DomainState>();
  readonly clusters = new Map<string, ClusterState>();
  /** The last 10 000 requests answered (or dropped, with status 0), oldest first. */
  readonly requests: RequestLogEntry[] = [];
  promotionDurationMs: number;
  replicaCreationDurationMs: number;
  /** Delay before every response, to make clients time out. */
  latencyMs = 0;

  private readonly server: Server;
  private nextRecordId = 28448429;
  private remaining = RATE_LIMIT;
  private faults: (FaultOptions & { kind: 'fail' | 'drop' })[] = [];
  private hooks: (RequestMatch & { run: () => void | Promise<void> })[] = [];
  private promotionListeners: ((e: PromotionEvent) => void | Promise<void>)[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(server: Server, port: number, opts: DigitalOceanApiOptions) {
    this.server = server;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.token = opts.token ?? `dop_v1_${randomBytes(32).toString('hex')}`;
    this.promotionDurationMs = opts.promotionDurationMs ?? 0;
    this.replicaCreationDurationMs = opts.replicaCreationDurationMs ?? 0;
  }

  /** Starts the stand-in on 127.0.0.1 and resolves once it listens. */
  static async start(opts: DigitalOceanApiOptions = {}): Promise<DigitalOceanApiServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const api = new DigitalOceanApiServer(server, port, opts);
    server.on('request', (req, res) => void api.handle(req, res));
    return api;
  }

  /** Stops listening and cuts every open connection, including ones held by `latencyMs`. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  // ---- fault injection ----

  /** The next `count` requests (matching `method`/`path` when given) fail with `status`. */
  failNext(count: number, opts: FaultOptions = {}): void {
    for (let i = 0; i < count; i++) this.faults.push({ ...opts, kind: 'fail' });
  }

  /** The next `count` matching requests get no response: the connection is destroyed. */
  dropNext(count: number, match: RequestMatch = {}): void {
    for (let i = 0; i < count; i++) this.faults.push({ ...match, kind: 'drop' });
  }

  /** Runs `run` once, right after the next matching request was handled: a racing writer. */
  afterNext(match: RequestMatch, run: () => void | Promise<void>): void {
    this.hooks.push({ ...match, run });
  }

  /** Clears faults, hooks and latency. */
  clearFaults(): void {
    this.faults = [];
    this.hooks = [];
    this.latencyMs = 0;
  }

  /** Called after a replica was promoted, e.g. to promote a real PostgreSQL standby with it. */
  onPromotion(listener: (e: PromotionEvent) => void | Promise<void>): void {
    this.promotionListeners.push(listener);
  }

  /** Requests matching `match`, from the log. */
  requestsMatching(match: RequestMatch): RequestLogEntry[] {
    return this.requests.filter((r) => matches(match, r.method, r.path));
  }

  // ---- seeding and direct state changes ("behind the operator's back") ----

  /** Adds a domain with the NS records DigitalOcean creates for a new domain. */
  addDomain(name: string, opts: { ttl?: number } = {}): DomainState {
    const domain: DomainState = { name: name.toLowerCase(), ttl: opts.ttl ?? 1800, records: [] };
    this.domains.set(domain.name, domain);
    // Stand-in name servers: .invalid, so nothing here names a real host.
    for (const ns of ['ns1', 'ns2', 'ns3']) {
      this.insertRecord(domain, { type: 'NS', name: '@', data: `${ns}.nameservers.invalid`, ttl: 1800 });
    }
    return domain;
  }

  /** Adds a record as the API would store it; `name` is relative (`@` for the apex). */
  addRecord(
    domain: string,
    record: { type: string; name: string; data: string; ttl?: number },
  ): DomainRecordJson {
    return this.insertRecord(this.domainOrThrow(domain), record);
  }

  /** Changes a record's data in place, as another client would. */
  setRecordData(domain: string, id: number, data: string): void {
    const record = this.domainOrThrow(domain).records.find((r) => r.id === id);
    if (!record) throw new Error(`stand-in: no record ${id} in ${domain}`);
    record.data = data;
  }

  removeRecord(domain: string, id: number): void {
    const d = this.domainOrThrow(domain);
    d.records = d.records.filter((r) => r.id !== id);
  }

  /** Records of a domain whose fully qualified name and type match. */
  recordsAt(domain: string, fqdn: string, type?: string): DomainRecordJson[] {
    const d = this.domainOrThrow(domain);
    return d.records.filter(
      (r) => recordFqdn(r.name, d.name) === fqdn.toLowerCase() && (type === undefined || r.type === type),
    );
  }

  /** Adds a PostgreSQL cluster, online unless told otherwise. */
  addCluster(opts: {
    name: string;
    region?: string;
    id?: string;
    status?: string;
    numNodes?: number;
    host?: string;
    port?: number;
  }): ClusterState {
    const id = opts.id ?? randomUUID();
    const cluster: ClusterState = {
      id,
      name: opts.name,
      engine: 'pg',
      version: '16',
      num_nodes: opts.numNodes ?? 1,
      size: 'db-s-2vcpu-4gb',
      region: opts.region ?? 'ams3',
      status: opts.status ?? 'online',
      created_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      tags: null,
      db_names: ['defaultdb'],
      ...connections(opts.host ?? `${opts.name}.db.example.com`, opts.port ?? 25060),
      replicas: [],
    };
    this.clusters.set(id, cluster);
    return cluster;
  }

  /** Adds a read-only replica (a "read-only node") to a cluster. */
  addReplica(
    clusterId: string,
    opts: { name: string; region?: string; id?: string; status?: string; host?: string; port?: number },
  ): ReplicaState {
    const cluster = this.clusters.get(clusterId);
    if (!cluster) throw new Error(`stand-in: no cluster ${clusterId}`);
    const replica: ReplicaState = {
      id: opts.id ?? randomUUID(),
      name: opts.name,
      region: opts.region ?? cluster.region,
      size: cluster.size,
      status: opts.status ?? 'online',
      created_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      tags: [],
      ...connections(opts.host ?? `replica-${opts.name}.db.example.com`, opts.port ?? 25060),
    };
    cluster.replicas.push(replica);
    return replica;
  }

  /** A primary cluster in one region with a read-only replica in another, as `infra/` provisions. */
  seedClusterWithReplica(
    opts: {
      cluster?: { name?: string; region?: string; id?: string };
      replica?: { name?: string; region?: string };
    } = {},
  ): { cluster: ClusterState; replica: ReplicaState } {
    const cluster = this.addCluster({
      name: opts.cluster?.name ?? 'shop-ams3',
      region: opts.cluster?.region ?? 'ams3',
      ...(opts.cluster?.id ? { id: opts.cluster.id } : {}),
    });
    const replica = this.addReplica(cluster.id, {
      name: opts.replica?.name ?? 'shop-nyc3',
      region: opts.replica?.region ?? 'nyc3',
    });
    return { cluster, replica };
  }

  /** The standalone cluster with this name, if any (cluster names are unique per account). */
  clusterNamed(name: string): ClusterState | undefined {
    this.settlePromotions();
    return [...this.clusters.values()].find((c) => c.name === name);
  }

  // ---- request handling ----

  private log(entry: RequestLogEntry): void {
    this.requests.push(entry);
    // Bounded, so a long-running local environment does not grow it forever.
    if (this.requests.length > MAX_LOGGED_REQUESTS)
      this.requests.splice(0, this.requests.length - MAX_LOGGED_REQUESTS);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const query = Object.fromEntries(url.searchParams);
    const body = await readBody(req);

    const faultIndex = this.faults.findIndex((f) => matches(f, method, path));
    const fault = faultIndex >= 0 ? this.faults.splice(faultIndex, 1)[0] : undefined;
    if (fault?.kind === 'drop') {
      this.log({ method, path, query, status: 0 });
      req.socket.destroy();
      return;
    }

    let status: number;
    let payload: unknown;
    let extraHeaders: Record<string, string> = {};
    if (fault) {
      status = fault.status ?? 500;
      if (status === 429) {
        this.remaining = 0;
        extraHeaders = { 'retry-after': String(fault.retryAfterSeconds ?? 7) };
        payload = { id: errors.tooManyRequests.id, message: errors.tooManyRequests.message };
      } else {
        payload = { id: errors.serverError.id, message: errors.serverError.message };
      }
    } else if (req.headers.authorization !== `Bearer ${this.token}`) {
      // The API answers a missing or wrong token with 401 and this body (shared/responses/unauthorized.yml).
      status = errors.unauthorized.status;
      payload = { id: errors.unauthorized.id, message: errors.unauthorized.message };
    } else {
      try {
        this.settlePromotions();
        [status, payload] = await this.route(method, path, url.searchParams, body);
      } catch (err) {
        const e =
          err instanceof ApiError
            ? err
            : new ApiError(errors.serverError.status, errors.serverError.id, errors.serverError.message);
        status = e.status;
        payload = { id: e.id, message: e.message };
      }
    }
    this.remaining = Math.max(0, this.remaining - 1);
    this.log({ method, path, query, status });

    const hookIndex = this.hooks.findIndex((h) => matches(h, method, path));
    if (hookIndex >= 0) {
      const [hook] = this.hooks.splice(hookIndex, 1);
      await hook?.run();
    }

    const send = () => {
      if (res.destroyed) return;
      // Every response carries the rate-limit headers (shared/headers.yml).
      res.setHeader('ratelimit-limit', String(RATE_LIMIT));
      res.setHeader('ratelimit-remaining', String(this.remaining));
      res.setHeader('ratelimit-reset', String(Math.floor(Date.now() / 1000) + 60));
      res.setHeader('x-request-id', randomUUID());
      for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
      if (status === 204 || payload === undefined) {
        res.writeHead(status).end();
      } else {
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.writeHead(status).end(JSON.stringify(payload));
      }
    };
    if (this.latencyMs > 0) {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        send();
      }, this.latencyMs);
      this.timers.add(timer);
    } else {
      send();
    }
  }

  private async route(
    method: string,
    path: string,
    params: URLSearchParams,
    body: string,
  ): Promise<[number, unknown]> {
    const seg = path.split('/').slice(1).map(decodeURIComponent);
    if (seg[0] !== 'v2') throw notFound();

    // ---- Databases (specification/resources/databases) ----
    if (seg[1] === 'databases') {
      if (seg.length === 2 && method === 'GET') {
        // databases_list_clusters: optional tag_name filter; no pagination documented.
        const tag = params.get('tag_name');
        const list = [...this.clusters.values()].filter((c) => !tag || (c.tags ?? []).includes(tag));
        return [200, { databases: list.map(clusterJson) }];
      }
      const cluster = seg[2] ? this.clusters.get(seg[2]) : undefined;
      if (!cluster) throw notFound();
      if (seg.length === 3 && method === 'GET') return [200, { database: clusterJson(cluster) }];
      if (seg[3] === 'replicas') {
        if (seg.length === 4 && method === 'GET')
          return [200, { replicas: cluster.replicas.map(replicaJson) }];
        if (seg.length === 4 && method === 'POST') {
          return [201, { replica: replicaJson(this.createReplica(cluster, parseJson(body))) }];
        }
        const replica = cluster.replicas.find((r) => r.name === seg[4]);
        if (!replica) throw notFound();
        if (seg.length === 5 && method === 'GET') return [200, { replica: replicaJson(replica) }];
        if (seg.length === 6 && seg[5] === 'promote' && method === 'PUT') {
          await this.promote(cluster, replica);
          return [204, undefined]; // databases_promote_replica: 204, no body
        }
      }
      throw notFound();
    }

    // ---- Domains and Domain Records (specification/resources/domains) ----
    if (seg[1] === 'domains' && seg[2]) {
      const domain = this.domains.get(seg[2].toLowerCase());
      if (!domain) throw notFound();
      if (seg.length === 3 && method === 'GET') {
        return [200, { domain: { name: domain.name, ttl: domain.ttl, zone_file: '' } }];
      }
      if (seg[3] !== 'records') throw notFound();
      if (seg.length === 4 && method === 'GET') return [200, this.listRecords(domain, params)];
      if (seg.length === 4 && method === 'POST') {
        const record = this.insertRecord(domain, validateRecordInput(parseJson(body), domain, undefined));
        return [201, { domain_record: record }];
      }
      const id = Number(seg[4]);
      const record = domain.records.find((r) => r.id === id);
      if (seg.length !== 5 || !record) throw notFound();
      if (method === 'GET') return [200, { domain_record: record }];
      if (method === 'PUT' || method === 'PATCH') {
        // domainRecords_update: any attribute valid for the type may be set; the rest stays.
        const input = validateRecordInput(parseJson(body), domain, record);
        this.assertCnameRules(domain, input, record.id);
        Object.assign(record, {
          type: input.type,
          name: input.name,
          data: input.data,
          ttl: input.ttl ?? record.ttl,
        });
        return [200, { domain_record: record }];
      }
      if (method === 'DELETE') {
        domain.records = domain.records.filter((r) => r.id !== id);
        return [204, undefined];
      }
    }
    throw notFound();
  }

  /**
   * domainRecords_list: `name` is a fully qualified name, `type` a record type; `page` and
   * `per_page` (default 20, at most 200) paginate, with `links.pages` and `meta.total`.
   */
  private listRecords(domain: DomainState, params: URLSearchParams): unknown {
    const name = params.get('name')?.toLowerCase();
    const type = params.get('type')?.toUpperCase();
    const all = domain.records.filter(
      (r) => (!name || recordFqdn(r.name, domain.name) === name) && (!type || r.type === type),
    );
    const perPage = Math.min(MAX_PER_PAGE, Math.max(1, Number(params.get('per_page')) || DEFAULT_PER_PAGE));
    const page = Math.max(1, Number(params.get('page')) || 1);
    const last = Math.max(1, Math.ceil(all.length / perPage));
    const link = (p: number) => {
      const q = new URLSearchParams(params);
      q.set('page', String(p));
      return `${this.url}/v2/domains/${domain.name}/records?${q}`;
    };
    const pages: Record<string, string> = {};
    if (page > 1) Object.assign(pages, { first: link(1), prev: link(page - 1) });
    if (page < last) Object.assign(pages, { last: link(last), next: link(page + 1) });
    return {
      domain_records: all.slice((page - 1) * perPage, page * perPage),
      links: Object.keys(pages).length > 0 ? { pages } : {},
      meta: { total: all.length },
    };
  }

  private insertRecord(
    domain: DomainState,
    input: { type: string; name: string; data: string; ttl?: number | undefined },
  ): DomainRecordJson {
    this.assertCnameRules(domain, input, undefined);
    const record: DomainRecordJson = {
      id: this.nextRecordId++,
      type: input.type,
      name: input.name,
      data: input.data,
      priority: null,
      port: null,
      ttl: input.ttl ?? 1800,
      weight: null,
      flags: null,
      tag: null,
    };
    domain.records.push(record);
    return record;
  }

  /** A CNAME may not share its name with any other record (RFC 1034 3.6.2); the API refuses it. */
  private assertCnameRules(
    domain: DomainState,
    input: { type: string; name: string },
    selfId?: number,
  ): void {
    const others = domain.records.filter((r) => r.name === input.name && r.id !== selfId);
    if (input.type === 'CNAME' ? others.length > 0 : others.some((r) => r.type === 'CNAME')) {
      throw unprocessable('CNAME records cannot share a name with other records.');
    }
  }

  private async promote(cluster: ClusterState, replica: ReplicaState): Promise<void> {
    // The replica leaves its cluster and becomes an independent cluster of the same name
    // (doctl databases replica promote: "its own independent primary cluster").
    cluster.replicas = cluster.replicas.filter((r) => r !== replica);
    const promoted: ClusterState = {
      id: replica.id,
      name: replica.name,
      engine: cluster.engine,
      version: cluster.version,
      num_nodes: 1,
      size: replica.size,
      region: replica.region,
      status: this.promotionDurationMs > 0 ? 'creating' : 'online',
      created_at: replica.created_at,
      tags: replica.tags,
      db_names: cluster.db_names,
      connection: replica.connection,
      private_connection: replica.private_connection,
      replicas: [],
      ...(this.promotionDurationMs > 0 ? { onlineAt: Date.now() + this.promotionDurationMs } : {}),
    };
    this.clusters.set(promoted.id, promoted);
    const event = { clusterId: cluster.id, replicaName: replica.name, newClusterId: promoted.id };
    for (const listener of this.promotionListeners) await listener(event);
  }

  /**
   * databases_create_replica: `name` and `size` required, `region` defaulting to the cluster's,
   * `tags` optional; 201 with the replica, whose status starts as `forking` and becomes `active`
   * when it is ready (the operation's description). A name in use is refused with 422: the
   * published API does not say how, and names of clusters and nodes are unique per account.
   */
  private createReplica(cluster: ClusterState, body: Record<string, unknown>): ReplicaState {
    const { name, size, region, tags } = body;
    if (typeof name !== 'string' || name === '') throw unprocessable('Name cannot be blank.');
    if (typeof size !== 'string' || size === '') throw unprocessable('Size cannot be blank.');
    const taken = [...this.clusters.values()].some(
      (c) => c.name === name || c.replicas.some((r) => r.name === name),
    );
    if (taken) throw unprocessable(`The name ${name} is already in use.`);
    const replica = this.addReplica(cluster.id, {
      name,
      ...(typeof region === 'string' ? { region } : {}),
      status: 'forking',
    });
    replica.size = size;
    if (Array.isArray(tags)) replica.tags = tags.filter((t): t is string => typeof t === 'string');
    replica.activeAt = Date.now() + this.replicaCreationDurationMs;
    return replica;
  }

  private settlePromotions(): void {
    for (const c of this.clusters.values()) {
      if (c.onlineAt !== undefined && Date.now() >= c.onlineAt) {
        c.status = 'online';
        delete c.onlineAt;
      }
      for (const r of c.replicas) {
        if (r.activeAt !== undefined && Date.now() >= r.activeAt) {
          r.status = 'active';
          delete r.activeAt;
        }
      }
    }
  }

  private domainOrThrow(name: string): DomainState {
    const d = this.domains.get(name.toLowerCase());
    if (!d) throw new Error(`stand-in: no domain ${name}`);
    return d;
  }
}

function matches(m: RequestMatch, method: string, path: string): boolean {
  return (m.method === undefined || m.method === method) && (m.path === undefined || m.path.test(path));
}

function recordFqdn(name: string, domain: string): string {
  return name === '@' ? domain : `${name}.${domain}`;
}

function connections(host: string, port: number): Pick<ClusterState, 'connection' | 'private_connection'> {
  const password = randomBytes(8).toString('hex');
  const make = (h: string): DatabaseConnectionJson => ({
    uri: `postgres://doadmin:${password}@${h}:${port}/defaultdb?sslmode=require`,
    database: 'defaultdb',
    host: h,
    port,
    user: 'doadmin',
    password,
    ssl: true,
  });
  return { connection: make(host), private_connection: make(`private-${host}`) };
}

function clusterJson(c: ClusterState): unknown {
  const { replicas: _replicas, onlineAt: _onlineAt, ...json } = c;
  return json;
}

function replicaJson(r: ReplicaState): unknown {
  const { activeAt: _activeAt, ...json } = r;
  return json;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
  });
}

function parseJson(body: string): Record<string, unknown> {
  try {
    const v = JSON.parse(body) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new ApiError(400, 'bad_request', 'The request body must be a JSON object.');
}

/**
 * Checks a POST or PUT body the way the API does for the types the operator writes: name and data
 * required, A/AAAA data must be an address, CNAME data must end with a dot (or be `@`), and the
 * TTL at least 30 seconds. `existing` supplies the attributes a PUT leaves out.
 */
function validateRecordInput(
  body: Record<string, unknown>,
  domain: DomainState,
  existing: DomainRecordJson | undefined,
): { type: string; name: string; data: string; ttl?: number | undefined } {
  const type = typeof body.type === 'string' ? body.type.toUpperCase() : existing?.type;
  const name = typeof body.name === 'string' ? body.name.toLowerCase() : existing?.name;
  let data = typeof body.data === 'string' ? body.data : existing?.data;
  const ttl = body.ttl === undefined || body.ttl === null ? undefined : body.ttl;
  if (!type || !RECORD_TYPES.includes(type)) throw unprocessable(`Type is not a valid record type: ${type}`);
  if (!name) throw unprocessable('Name cannot be blank.');
  if (name.endsWith('.') || name.endsWith(`.${domain.name}`) || name === domain.name) {
    // Names are relative to the domain; the apex is "@".
    throw unprocessable(`Name must be relative to ${domain.name} (use "@" for the apex).`);
  }
  if (data === undefined || data === '') throw unprocessable('Data cannot be blank.');
  if (type === 'A' && !isIPv4(data)) throw unprocessable('Data must be a valid IPv4 address.');
  if (type === 'AAAA' && !isIPv6(data)) throw unprocessable('Data must be a valid IPv6 address.');
  if (type === 'CNAME' && typeof body.data === 'string') {
    if (data !== '@' && !data.endsWith('.')) throw unprocessable('Data needs to end with a dot (.)');
    // Stored and returned without the trailing dot.
    data = data === '@' ? '@' : data.slice(0, -1).toLowerCase();
  }
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < MIN_RECORD_TTL)) {
    throw unprocessable(`TTL must be an integer of at least ${MIN_RECORD_TTL} seconds.`);
  }
  return { type, name, data, ttl: ttl as number | undefined };
}
