/**
 * DigitalOcean managed PostgreSQL. A managed cluster is still PostgreSQL reachable by SQL, so this
 * adapter composes two views: the SQL side (another DatabaseProvider, given to it) sees role, WAL
 * positions, heartbeat and lag; the DigitalOcean API knows what the cluster *is* (a standalone
 * cluster or the read-only node `replicaName` of cluster `databaseId`) and is the only way to
 * promote a read-only node, since managed PostgreSQL does not let its users call pg_promote().
 *
 * Promotion turns the read-only node into an independent cluster with the same name (clusters are
 * named uniquely per account), so after a promotion the node is found by listing clusters by name.
 *
 * Fencing is the SQL side's alone: the API has no way to make a cluster read-only or stop it (the
 * nearest tools, trusted-source firewall rules and deleting the cluster, would also lock out the
 * operator or destroy data).
 */
import { z } from 'zod';
import { DigitalOceanApi, type DigitalOceanApiOptions } from '../dns/digitalocean.ts';
import { ProviderError } from '../errors.ts';
import type { DatabaseObservation, DatabaseProvider, FenceRequest, PromoteRequest } from './port.ts';

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

export interface DigitalOceanDatabaseOptions {
  api: DigitalOceanApiOptions;
  /** spec.provider.digitalOcean.databaseId: the primary cluster (for a replica too). */
  databaseId: string;
  /** spec.provider.digitalOcean.replicaName: set when this ReplicaCluster is a read-only node. */
  replicaName?: string;
  /** The SQL side: observation, heartbeat and fencing over a PostgreSQL connection. */
  sql: DatabaseProvider;
  /** Time source for the heartbeat written after a promotion. */
  clock?: { now(): Date };
  /** How long promote() waits for the promoted cluster to serve writes. Default 10 min. */
  promoteTimeoutMs?: number;
  /** How often promote() asks while it waits. Default 5 s. */
  pollIntervalMs?: number;
}

/** A DatabaseProvider for a DigitalOcean managed PostgreSQL cluster or read-only node. */
export class DigitalOceanDatabaseProvider implements DatabaseProvider {
  private readonly api: DigitalOceanApi;
  private readonly databaseId: string;
  private readonly replicaName: string | undefined;
  private readonly sql: DatabaseProvider;
  private readonly clock: { now(): Date };
  private readonly promoteTimeoutMs: number;
  private readonly pollIntervalMs: number;

  constructor(opts: DigitalOceanDatabaseOptions) {
    this.api = new DigitalOceanApi(opts.api);
    this.databaseId = opts.databaseId;
    this.replicaName = opts.replicaName;
    this.sql = opts.sql;
    this.clock = opts.clock ?? { now: () => new Date() };
    this.promoteTimeoutMs = opts.promoteTimeoutMs ?? 600_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 5_000;
  }

  /**
   * The SQL observation, checked against the API. SQL is the evidence for role and health; the
   * API only overrules it when the two contradict (SQL says primary, the API still lists a
   * read-only node), which means the connection points at the wrong server. When the API itself
   * fails, the SQL observation stands: a throttled API must not make a healthy database look down.
   */
  async observe(): Promise<DatabaseObservation> {
    const started = performance.now();
    const [sqlObs, api] = await Promise.all([
      this.sql.observe(),
      this.view().then(
        (view) => ({ view }),
        (err: unknown) => ({ err }),
      ),
    ]);
    const durationMs = Math.round(performance.now() - started);
    if (!sqlObs.reachable || !('view' in api)) return { ...sqlObs, durationMs };
    if (api.view.kind === 'replica' && sqlObs.role === 'Primary') {
      return {
        ...sqlObs,
        role: 'Unknown',
        failure: {
          reason: 'ProviderError',
          message: `SQL reports a writable primary, but DigitalOcean lists ${this.replicaName} as a read-only node of cluster ${this.databaseId}: check that spec.connection points at that node`,
        },
        durationMs,
      };
    }
    return { ...sqlObs, durationMs };
  }

  writeHeartbeat(epoch: number, at: Date): Promise<void> {
    return this.sql.writeHeartbeat(epoch, at);
  }

  /**
   * Promotes the read-only node through the API (PUT .../replicas/{name}/promote), waits (bounded)
   * until DigitalOcean reports the new standalone cluster online and SQL sees a primary, then writes
   * the heartbeat with the new epoch, which proves it accepts writes. Safe to call again at any
   * point: an earlier promotion still running is waited for, never requested twice.
   */
  async promote(request: PromoteRequest): Promise<{ alreadyPrimary: boolean }> {
    const view = await this.view();
    if (view.kind === 'cluster' && SERVING.has(view.status)) {
      // Already a standalone cluster. A promotion interrupted before its heartbeat still owes it.
      await this.catchUpHeartbeat(request.epoch);
      return { alreadyPrimary: true };
    }
    if (view.kind === 'replica') {
      const name = this.replicaName ?? '';
      await this.api.request(
        'PUT',
        `/v2/databases/${encodeURIComponent(this.databaseId)}/replicas/${encodeURIComponent(name)}/promote`,
        { what: `promote read-only node ${name} of cluster ${this.databaseId}` },
      );
    }
    await this.waitUntilWritable();
    await this.sql.writeHeartbeat(request.epoch, this.clock.now());
    return { alreadyPrimary: false };
  }

  /**
   * The SQL side's fence. Shutdown is not possible on a managed cluster (the API cannot stop one
   * and SQL users cannot stop the server), so it becomes ReadOnly, and the detail says so.
   */
  async fence(request: FenceRequest): Promise<{ detail: string }> {
    if (request.mode === 'Shutdown') {
      const { detail } = await this.sql.fence({ ...request, mode: 'ReadOnly' });
      return {
        detail: `${detail} (ReadOnly instead of Shutdown: DigitalOcean cannot stop a managed cluster)`,
      };
    }
    return this.sql.fence(request);
  }

  /** Undoes the SQL side's ReadOnly fence (a rolled-back switchover); a no-op where none holds. */
  unfence(): Promise<{ detail: string }> {
    return this.sql.unfence ? this.sql.unfence() : Promise.resolve({ detail: 'nothing to undo' });
  }

  close(): Promise<void> {
    return this.sql.close();
  }

  /**
   * What the API says this is. With a replicaName: the read-only node while it exists, else the
   * standalone cluster it was promoted into. Without: the cluster `databaseId` itself.
   */
  async view(): Promise<DigitalOceanView> {
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

  /** Polls until the API reports the cluster serving and SQL sees a writable primary. */
  private async waitUntilWritable(): Promise<void> {
    const deadline = performance.now() + this.promoteTimeoutMs;
    let last = 'no answer yet';
    for (;;) {
      try {
        const view = await this.view();
        if (view.kind === 'replica') {
          last = `DigitalOcean still lists ${this.replicaName} as a read-only node`;
        } else if (!SERVING.has(view.status)) {
          last = `DigitalOcean reports cluster ${view.id} "${view.status}"`;
        } else {
          const obs = await this.sql.observe();
          if (obs.reachable && obs.role === 'Primary') return;
          last = `DigitalOcean reports it online; SQL sees ${obs.reachable ? obs.role : `it unreachable (${obs.failure?.message ?? 'no reason'})`}`;
        }
      } catch (err) {
        // Transient API trouble while waiting is not a failed promotion; keep asking.
        if (!(err instanceof ProviderError) || !err.retryable) throw err;
        last = err.message;
      }
      if (performance.now() + this.pollIntervalMs > deadline) {
        throw new ProviderError(
          'Timeout',
          `promotion of ${this.replicaName ?? this.databaseId} was requested but it is not writable after ${Math.round(this.promoteTimeoutMs / 1000)} s (${last}); promoting again keeps waiting without a second request`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, this.pollIntervalMs));
    }
  }

  /** Writes the heartbeat when SQL shows an older epoch than the promotion established. */
  private async catchUpHeartbeat(epoch: number): Promise<void> {
    const obs = await this.sql.observe();
    if (obs.reachable && obs.role === 'Primary' && (obs.heartbeat?.epoch ?? -1) < epoch) {
      await this.sql.writeHeartbeat(epoch, this.clock.now());
    }
  }
}
