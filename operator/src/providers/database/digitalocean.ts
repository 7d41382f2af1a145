/**
 * DigitalOcean managed PostgreSQL: the control plane of one cluster or read-only node. The API
 * knows what the database *is* (a standalone cluster or the read-only node `replicaName` of
 * cluster `databaseId`) and is the only way to promote a read-only node, since managed PostgreSQL
 * does not let its users call pg_promote(). ManagedDatabase (managed.ts) composes it with the SQL
 * side, which sees role, WAL positions, heartbeat and lag.
 *
 * Promotion turns the read-only node into an independent cluster with the same name (clusters are
 * named uniquely per account), so after a promotion the node is found by listing clusters by name.
 *
 * Fencing is the SQL side's: the API has no way to make a cluster read-only or stop it (the
 * nearest tools, trusted-source firewall rules and deleting the cluster, would also lock out the
 * operator or destroy data), so a Shutdown fence is applied as ReadOnly. What the API adds is
 * evidence: a read-only node accepts no writes, so fencing it succeeds even when SQL cannot
 * reach it.
 *
 * Reprotection adds a read-only node of the active primary in the former primary's region
 * (POST /v2/databases/{uuid}/replicas), which the ReplicaCluster names in its place once the API
 * reports it ready. The former primary is left as it is, for a person to delete.
 */
import { z } from 'zod';
import { allInOrder } from '../../runtime/promises.ts';
import { DigitalOceanApi, type DigitalOceanApiOptions } from '../dns/digitalocean.ts';
import { ProviderError } from '../errors.ts';
import type { ControlPlane, ControlPlanePromotion, ControlPlaneView } from './managed.ts';
import type { ProviderSpec, ReprotectOutcome, ReprotectRequest } from './port.ts';
import { replacementName } from './replacement-names.ts';

// ---- Response schemas, written from the published API (specification/resources/databases) ----

/** models/database_connection.yml */
export const databaseConnectionSchema = z.object({
  uri: z.string().optional(),
  database: z.string().optional(),
  host: z.string(),
  port: z.number().int(),
  user: z.string().optional(),
  password: z.string().optional(),
  ssl: z.boolean().optional(),
});

/**
 * models/database_cluster.yml. `status` is documented as creating, online, resizing, migrating or
 * forking, but the published examples also show other words, so any string is accepted.
 */
export const databaseClusterSchema = z.object({
  id: z.string(),
  name: z.string(),
  engine: z.string(),
  version: z.string().optional(),
  num_nodes: z.number().int(),
  size: z.string(),
  region: z.string(),
  status: z.string(),
  created_at: z.string().optional(),
  tags: z.array(z.string()).nullish(),
  db_names: z.array(z.string()).nullish(),
  connection: databaseConnectionSchema.optional(),
  private_connection: databaseConnectionSchema.optional(),
});
export type DatabaseCluster = z.infer<typeof databaseClusterSchema>;

/** models/database_replica.yml: only `name` is required. */
export const databaseReplicaSchema = z.object({
  id: z.string().optional(),
  name: z.string(),
  region: z.string().optional(),
  size: z.string().optional(),
  status: z.string().optional(),
  created_at: z.string().optional(),
  tags: z.array(z.string()).nullish(),
  connection: databaseConnectionSchema.optional(),
  private_connection: databaseConnectionSchema.optional(),
});
export type DatabaseReplica = z.infer<typeof databaseReplicaSchema>;

/** GET /v2/databases/{uuid} (responses/database_cluster.yml) */
export const databaseClusterResponseSchema = z.object({ database: databaseClusterSchema });
/** GET /v2/databases (responses/database_clusters.yml); an account without clusters may get null. */
export const databaseClustersResponseSchema = z.object({
  databases: z.array(databaseClusterSchema).nullable(),
});
/** GET /v2/databases/{uuid}/replicas/{name} (responses/database_replica.yml) */
export const databaseReplicaResponseSchema = z.object({ replica: databaseReplicaSchema });
/** GET /v2/databases/{uuid}/replicas (responses/database_replicas.yml) */
export const databaseReplicasResponseSchema = z.object({
  replicas: z.array(databaseReplicaSchema).nullish(),
});

/**
 * Statuses in which a cluster or node serves traffic: "online" is the documented enum's, "active"
 * what a created read-only node turns to when ready (databases_create_replica) and what the
 * published replica example shows.
 */
const SERVING = new Set(['online', 'active']);
/** DigitalOcean's longest database name (the CRD's replicaName allows no more). */
const MAX_NAME = 63;

/** A database as the API has it: a cluster, or a read-only node of cluster `of`. */
type Located =
  | { kind: 'cluster'; cluster: DatabaseCluster }
  | { kind: 'replica'; of: string; replica: DatabaseReplica };

/** What the API says this ReplicaCluster is right now. */
export type DigitalOceanView =
  | { kind: 'replica'; status: string | undefined }
  | { kind: 'cluster'; id: string; status: string };

export interface DigitalOceanControlPlaneOptions {
  api: DigitalOceanApiOptions;
  /** spec.provider.digitalOcean.databaseId: the primary cluster (for a replica too). */
  databaseId: string;
  /** spec.provider.digitalOcean.replicaName: set when this ReplicaCluster is a read-only node. */
  replicaName?: string;
  /**
   * This ReplicaCluster's spec.provider as written, which a reprotection's replacement copies
   * with the new node (keeping tokenSecretRef and apiUrl). Without it the block is rebuilt from
   * these options, and has no tokenSecretRef.
   */
  provider?: ProviderSpec;
}

/** The DigitalOcean API for a managed PostgreSQL cluster or read-only node. */
export class DigitalOceanControlPlane implements ControlPlane {
  readonly name: string;
  readonly shutdownUnavailable = 'DigitalOcean cannot stop a managed cluster';
  private readonly api: DigitalOceanApi;
  private readonly databaseId: string;
  private readonly replicaName: string | undefined;
  private readonly options: DigitalOceanControlPlaneOptions;

  constructor(opts: DigitalOceanControlPlaneOptions) {
    this.api = new DigitalOceanApi(opts.api);
    this.databaseId = opts.databaseId;
    this.replicaName = opts.replicaName;
    this.options = opts;
    this.name =
      opts.replicaName === undefined
        ? `DigitalOcean cluster ${opts.databaseId}`
        : `DigitalOcean read-only node ${opts.replicaName} of cluster ${opts.databaseId}`;
  }

  /** What the API says, in the terms observe and fence need. Throws ProviderError. */
  async view(): Promise<ControlPlaneView> {
    return this.describe(await this.read());
  }

  /**
   * A read-only node is promoted (PUT .../replicas/{name}/promote); the standalone cluster it
   * becomes is the primary once the API reports it online. Until then, it is under way and
   * nothing more is sent.
   */
  async promote(): Promise<ControlPlanePromotion> {
    const found = await this.read();
    const view = this.describe(found);
    if (found.kind === 'cluster') {
      return SERVING.has(found.status)
        ? { state: 'Primary', summary: view.summary }
        : { state: 'Pending', detail: `${view.summary}: the promotion is under way` };
    }
    const name = this.replicaName ?? '';
    await this.api.request(
      'PUT',
      `/v2/databases/${encodeURIComponent(this.databaseId)}/replicas/${encodeURIComponent(name)}/promote`,
      { what: `promote read-only node ${name} of cluster ${this.databaseId}` },
    );
    return { state: 'Pending', detail: `promotion requested; ${view.summary}` };
  }

  /**
   * One step of bringing this former primary's region back under protection. This database,
   * when the API lists it as a read-only node of the primary cluster already, is the replica (no
   * replacement). Else the read-only node `<policy>-<this name>-e<epoch>` of the primary is asked
   * for in this database's region, with the primary's size (a node may not be smaller), once the
   * primary is a standalone online cluster, and found by name on later calls: Pending while it
   * forks, then Protected with it as the replacement.
   */
  async reprotect(request: ReprotectRequest): Promise<ReprotectOutcome> {
    const target = digitalOceanBlockOf(request.primary);
    const primaryHint = `check spec.provider.digitalOcean of the primary ReplicaCluster ${request.primary.cluster}`;
    const [primaryFound, old] = await allInOrder([
      this.locate(target.databaseId, target.replicaName, primaryHint),
      this.locate(
        this.databaseId,
        this.replicaName,
        'check spec.provider.digitalOcean.databaseId and replicaName',
      ),
    ]);
    if (primaryFound.kind === 'replica') {
      return {
        state: 'Pending',
        detail: `the primary ${primaryFound.replica.name} is still a read-only node of cluster ${primaryFound.of}: its promotion has not finished`,
      };
    }
    const primary = primaryFound.cluster;
    const primaryName = `cluster ${primary.name} (${primary.id})`;
    if (old.kind === 'replica' && old.of === primary.id) {
      const status = old.replica.status ?? 'unknown';
      const said = `DigitalOcean lists ${old.replica.name} as a read-only node ("${status}") of the primary ${primaryName}`;
      return SERVING.has(status)
        ? { state: 'Protected', detail: said }
        : { state: 'Pending', detail: `${said}; waiting for it to be ready` };
    }
    if (!SERVING.has(primary.status)) {
      return {
        state: 'Pending',
        detail: `the primary ${primaryName} is "${primary.status}"; a read-only node of it is asked for once it is online`,
      };
    }
    const oldName = old.kind === 'cluster' ? old.cluster.name : old.replica.name;
    const region = old.kind === 'cluster' ? old.cluster.region : old.replica.region;
    if (!region) {
      throw new ProviderError('ProviderError', `DigitalOcean did not say which region ${oldName} is in`);
    }
    const name = replacementName({
      replaces: oldName,
      prefix: request.policy,
      epoch: request.epoch,
      maxLength: MAX_NAME,
    });
    const node = await this.findReplica(primary.id, name);
    if (!node) return this.createReplica(primary, name, region);
    if (node.region !== undefined && node.region !== region) {
      throw new ProviderError(
        'PreconditionFailed',
        `read-only node ${name} of ${primaryName} is in ${node.region}, not in ${region} where ${oldName} is: delete or rename it, the operator names the node it creates there ${name}`,
        { retryable: false },
      );
    }
    const status = node.status ?? 'unknown';
    const said = `DigitalOcean lists ${name} (${region}) as a read-only node ("${status}") of the primary ${primaryName}`;
    if (!SERVING.has(status) || !node.connection) {
      return { state: 'Pending', detail: `${said}; waiting for it to be ready` };
    }
    return {
      state: 'Protected',
      detail: `${said}; ${oldName} is left for a person to delete`,
      replacement: {
        provider: this.providerWith(primary.id, name),
        host: node.connection.host,
        port: node.connection.port,
        superseded: oldName,
      },
    };
  }

  /** Nothing to release: requests go through the process's shared fetch connection pool. */
  async close(): Promise<void> {}

  /** POST .../replicas: the node starts "forking"; the next call finds it by name. */
  private async createReplica(
    primary: DatabaseCluster,
    name: string,
    region: string,
  ): Promise<ReprotectOutcome> {
    const what = `create read-only node ${name} (${region}) of cluster ${primary.name} (${primary.id})`;
    try {
      await this.api.request('POST', `/v2/databases/${encodeURIComponent(primary.id)}/replicas`, {
        body: { name, region, size: primary.size },
        schema: databaseReplicaResponseSchema,
        what,
      });
    } catch (err) {
      // Refused because the name is in use: by the node a racing call created (found next
      // time), or by another database, which the operator leaves alone.
      if (!(err instanceof ProviderError) || err.reason !== 'Rejected') throw err;
      if (!(await this.findReplica(primary.id, name))) throw err;
      return { state: 'Pending', detail: `${what}: it exists already` };
    }
    return { state: 'Pending', detail: `${what}: requested; DigitalOcean takes minutes to fork it` };
  }

  /** The read-only node `name` of cluster `clusterId`, or undefined when there is none. */
  private async findReplica(clusterId: string, name: string): Promise<DatabaseReplica | undefined> {
    try {
      const { replica } = await this.api.get(
        `/v2/databases/${encodeURIComponent(clusterId)}/replicas/${encodeURIComponent(name)}`,
        {
          schema: databaseReplicaResponseSchema,
          what: `read read-only node ${name} of cluster ${clusterId}`,
        },
      );
      return replica;
    } catch (err) {
      if (err instanceof ProviderError && err.reason === 'NotFound') return undefined;
      throw err;
    }
  }

  /** This ReplicaCluster's provider block, naming the read-only node `replicaName` of `databaseId`. */
  private providerWith(databaseId: string, replicaName: string): ProviderSpec {
    const own = this.options.provider;
    const block =
      own && typeof own.digitalOcean === 'object' && own.digitalOcean !== null
        ? (own.digitalOcean as Record<string, unknown>)
        : this.options.api.apiUrl
          ? { apiUrl: this.options.api.apiUrl }
          : {};
    return { ...(own ?? {}), type: 'DigitalOcean', digitalOcean: { ...block, databaseId, replicaName } };
  }

  private describe(found: DigitalOceanView): ControlPlaneView {
    if (found.kind === 'replica') {
      return {
        role: 'Standby',
        status: found.status ?? 'unknown',
        summary: `DigitalOcean lists ${this.replicaName} as a read-only node ("${found.status ?? 'unknown'}") of cluster ${this.databaseId}`,
        specField: 'spec.provider.digitalOcean.replicaName',
      };
    }
    const named =
      this.replicaName === undefined ? '' : ` (${this.replicaName}, promoted from a read-only node)`;
    return {
      // A cluster that is still being created from a promoted node serves nothing yet.
      role: SERVING.has(found.status) ? 'Primary' : 'Unknown',
      status: found.status,
      summary: `DigitalOcean lists cluster ${found.id}${named} as "${found.status}"`,
      // The spec names a promoted node by its old parent and name: say which cluster it is now.
      ...(this.replicaName !== undefined ? { databaseId: found.id } : {}),
      specField:
        this.replicaName === undefined
          ? 'spec.provider.digitalOcean.databaseId'
          : 'spec.provider.digitalOcean.replicaName',
    };
  }

  /**
   * What the API says this is. With a replicaName: the read-only node while it exists, else the
   * standalone cluster it was promoted into. Without: the cluster `databaseId` itself.
   */
  async read(): Promise<DigitalOceanView> {
    const found = await this.locate(
      this.databaseId,
      this.replicaName,
      'check spec.provider.digitalOcean.databaseId and replicaName',
    );
    return found.kind === 'replica'
      ? { kind: 'replica', status: found.replica.status }
      : { kind: 'cluster', id: found.cluster.id, status: found.cluster.status };
  }

  /**
   * The database a provider block names: with `replicaName`, the read-only node of `databaseId`
   * while it exists, else the cluster it was promoted into (same name); without, the cluster.
   * `hint` says which settings to check when there is neither.
   */
  private async locate(databaseId: string, replicaName: string | undefined, hint: string): Promise<Located> {
    if (replicaName === undefined) {
      const { database } = await this.api.get(`/v2/databases/${encodeURIComponent(databaseId)}`, {
        schema: databaseClusterResponseSchema,
        what: `read cluster ${databaseId}`,
      });
      return { kind: 'cluster', cluster: database };
    }
    const replica = await this.findReplica(databaseId, replicaName);
    if (replica) return { kind: 'replica', of: databaseId, replica };
    // Not a read-only node (any more): look for the cluster it was promoted into.
    const { databases } = await this.api.get('/v2/databases', {
      schema: databaseClustersResponseSchema,
      what: 'list database clusters',
    });
    const promoted = (databases ?? []).find((c) => c.name === replicaName);
    if (promoted) return { kind: 'cluster', cluster: promoted };
    throw new ProviderError(
      'NotFound',
      `DigitalOcean has no read-only node ${replicaName} in cluster ${databaseId} and no cluster named ${replicaName}: ${hint}`,
    );
  }
}

/** The active primary's DigitalOcean block, from the ReprotectRequest. */
function digitalOceanBlockOf(primary: ReprotectRequest['primary']): {
  databaseId: string;
  replicaName?: string;
} {
  const block = primary.provider.digitalOcean as { databaseId?: unknown; replicaName?: unknown } | undefined;
  if (primary.provider.type !== 'DigitalOcean' || typeof block?.databaseId !== 'string') {
    throw new ProviderError(
      'Rejected',
      `the primary ${primary.cluster} is a ${primary.provider.type} database: a DigitalOcean database can only be rebuilt as a read-only node of a DigitalOcean primary`,
      { retryable: false },
    );
  }
  return {
    databaseId: block.databaseId,
    ...(typeof block.replicaName === 'string' ? { replicaName: block.replicaName } : {}),
  };
}
