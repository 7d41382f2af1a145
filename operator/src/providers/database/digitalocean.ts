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
 */
import { z } from 'zod';
import { DigitalOceanApi, type DigitalOceanApiOptions } from '../dns/digitalocean.ts';
import { ProviderError } from '../errors.ts';
import type { ControlPlane, ControlPlanePromotion, ControlPlaneView } from './managed.ts';

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

/** Statuses in which a cluster serves traffic ("active" appears in the published replica examples). */
const SERVING = new Set(['online', 'active']);

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
}

/** The DigitalOcean API for a managed PostgreSQL cluster or read-only node. */
export class DigitalOceanControlPlane implements ControlPlane {
  readonly name: string;
  readonly shutdownUnavailable = 'DigitalOcean cannot stop a managed cluster';
  private readonly api: DigitalOceanApi;
  private readonly databaseId: string;
  private readonly replicaName: string | undefined;

  constructor(opts: DigitalOceanControlPlaneOptions) {
    this.api = new DigitalOceanApi(opts.api);
    this.databaseId = opts.databaseId;
    this.replicaName = opts.replicaName;
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

  /** Nothing to release: requests go through the process's shared fetch connection pool. */
  async close(): Promise<void> {}

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
    if (this.replicaName === undefined) {
      const { database } = await this.api.get(`/v2/databases/${encodeURIComponent(this.databaseId)}`, {
        schema: databaseClusterResponseSchema,
        what: `read cluster ${this.databaseId}`,
      });
      return { kind: 'cluster', id: database.id, status: database.status };
    }
    const name = this.replicaName;
    try {
      const { replica } = await this.api.get(
        `/v2/databases/${encodeURIComponent(this.databaseId)}/replicas/${encodeURIComponent(name)}`,
        {
          schema: databaseReplicaResponseSchema,
          what: `read read-only node ${name} of cluster ${this.databaseId}`,
        },
      );
      return { kind: 'replica', status: replica.status };
    } catch (err) {
      if (!(err instanceof ProviderError) || err.reason !== 'NotFound') throw err;
    }
    // Not a read-only node (any more): look for the cluster it was promoted into.
    const { databases } = await this.api.get('/v2/databases', {
      schema: databaseClustersResponseSchema,
      what: 'list database clusters',
    });
    const promoted = (databases ?? []).find((c) => c.name === name);
    if (promoted) return { kind: 'cluster', id: promoted.id, status: promoted.status };
    throw new ProviderError(
      'NotFound',
      `DigitalOcean has no read-only node ${name} in cluster ${this.databaseId} and no cluster named ${name}: check spec.provider.digitalOcean.databaseId and replicaName`,
    );
  }
}
