/**
 * The database provider port: what the operator asks of a database, whoever runs it. One adapter
 * per provider (self-managed PostgreSQL, AWS RDS, Aurora global, DigitalOcean). The controller never
 * imports a cloud SDK or a database driver; it holds one of these.
 *
 * Every method is idempotent: calling it again after it took effect changes nothing and succeeds,
 * so a step interrupted half-way (operator killed, API server down) can simply be run again.
 * Failures are thrown as ProviderError with a reason from the closed list in ../errors.ts.
 */
import type { ProviderErrorReason } from '../errors.ts';

export type DatabaseRole = 'Primary' | 'Standby' | 'Fenced' | 'Unknown';
export type FencingMode = 'ReadOnly' | 'Shutdown' | 'EpochOnly';

/** Connection details with credentials already read from their Secret. Never logged. */
export interface DatabaseConnection {
  host: string;
  port: number;
  database: string;
  sslMode: 'disable' | 'require' | 'verify-ca' | 'verify-full';
  user: string;
  password: string;
}

export interface ReplicaState {
  /** Empty in the rare probe that could not name a sender (see providers/database/wal-senders.ts). */
  applicationName: string;
  clientAddr?: string;
  /** pg_stat_replication.state: streaming, catchup, ... */
  state: string;
  sentLsn?: string;
  replayLsn?: string;
  replayLagSeconds?: number;
  /** pg_stat_replication.sync_state: async, potential, sync, quorum. */
  syncState?: string;
}

/** What one probe of one database saw. A probe that fails returns `reachable: false`, never throws. */
export interface DatabaseObservation {
  reachable: boolean;
  role: DatabaseRole;
  /** Why the probe failed, when it did. */
  failure?: { reason: ProviderErrorReason; message: string };
  /** Primary: pg_current_wal_lsn(). Standby: pg_last_wal_replay_lsn(). */
  lsn?: string;
  /** Standby: pg_last_wal_receive_lsn(). */
  receiveLsn?: string;
  timeline?: number;
  /** Standby: WAL replay is paused (pg_get_wal_replay_pause_state() <> 'not paused'). */
  replayPaused?: boolean;
  /**
   * The operator's heartbeat row as this database holds it (on a standby: as replayed so far):
   * `epoch`, the epoch it was primary at (a standby: its primary's), and `fencedEpoch`, the epoch
   * of the operation that fenced or marked it, while it is fenced. A fenced database's `epoch`
   * stays what it was: a fence says an operation began, not that anything was promoted.
   */
  heartbeat?: { epoch: number; writtenAt: Date; fencedEpoch?: number };
  /** Primary: its connected standbys, as pg_stat_replication shows them (see providers/database/wal-senders.ts). */
  replicas?: ReplicaState[];
  /**
   * Primary: its `synchronous_standby_names`, when it names synchronous standbys and fewer are
   * connected as such than it asks for: every commit of a client with synchronous_commit on,
   * remote_write or remote_apply (by default, as the operator's role and database start) hangs
   * until enough are. Undefined otherwise, or where SQL cannot tell (without pg_monitor,
   * sync_state reads NULL).
   */
  commitsWaitFor?: string;
  /**
   * Standby: its WAL receiver (pg_stat_wal_receiver). `streaming` is false when no receiver runs
   * or it is not in state streaming; `lastMessageAgeSeconds` is how long ago the server last
   * heard from the primary, measured by the server's own clock. Undefined where SQL cannot tell.
   */
  walReceiver?: { streaming: boolean; lastMessageAgeSeconds?: number };
  /**
   * Lag where the adapter can tell it alone (a managed provider's own metric). Otherwise the
   * controller computes lag from the primary's and the standby's observations together.
   */
  lagBytes?: number;
  lagSeconds?: number;
  /** The provider API's own id of the database as it is now (see ControlPlaneView.databaseId). */
  databaseId?: string;
  /**
   * Which running server answered, where SQL can tell (its postmaster's start time, to the
   * microsecond): two clusters answering with the same one are one server under two names, which
   * no primary and standby can be (failover-policy/one-server.ts).
   */
  server?: string;
  /** How long the probe took, for the probe-duration metric. */
  durationMs: number;
}

export interface PromoteRequest {
  /** The operation this promotion belongs to; adapters may use it as an idempotency key. */
  operationId: string;
  /** The epoch the promotion establishes; written into the heartbeat row once writable. */
  epoch: number;
  /**
   * Switchover (planned: the old primary was fenced and the target caught up) or Failover (the
   * old primary is gone). Providers with distinct calls for the two (Aurora global) use it.
   */
  kind?: 'Switchover' | 'Failover';
}

/**
 * What a promotion call found. `Promoted`: the database takes writes now. `Pending`: the promotion
 * was started (or is still under way) and is not finished; call again later to check, never wait
 * for it inside the call: the operator re-checks on a later reconcile.
 */
export type PromoteOutcome =
  | { state: 'Promoted'; alreadyPrimary: boolean }
  | { state: 'Pending'; detail: string };

export interface FenceRequest {
  operationId: string;
  epoch: number;
  mode: FencingMode;
}

/** The provider block of a ReplicaCluster (spec.provider), as the adapters read it. */
export type ProviderSpec = { type: string } & Record<string, unknown>;

/**
 * Bring this database, a former primary, back as a replica of the active primary. For managed
 * services that means a new replica in this database's region (RDS, DigitalOcean) or waiting for
 * the service to rejoin it (Aurora global after a failover); self-managed PostgreSQL is rejoined by
 * its agent instead (operator/src/agent).
 */
export interface ReprotectRequest {
  operationId: string;
  /** The epoch of the active primary; new resources are named and tagged with it. */
  epoch: number;
  /** The policy, for names and tags: `<policy>-…`. */
  policy: string;
  /** The active primary's ReplicaCluster name and provider block. */
  primary: { cluster: string; provider: ProviderSpec };
}

/**
 * Where reprotection stands after one call. `Protected`: a replica of the primary exists in this
 * region and replicates. When that replica is not the database this ReplicaCluster names (a new
 * RDS instance or DigitalOcean node), `replacement` says what the ReplicaCluster must name now:
 * the changed provider block and connection host, and what was superseded (left for a person).
 * `Pending`: requested by this call or an earlier one, not finished; call again later.
 */
export type ReprotectOutcome =
  | {
      state: 'Protected';
      detail: string;
      replacement?: {
        provider: ProviderSpec;
        host: string;
        port?: number;
        /** The database it replaces, tagged for a person to delete. */
        superseded: string;
      };
    }
  | { state: 'Pending'; detail: string };

/** Where an isolated drill's throwaway copy of a standby stands after one DatabaseProvider.drillCopy call. */
export interface DrillCopyState {
  /** Copying: being created or promoted. Serving: a promoted copy accepts connections. Removed: gone. Failed: see message. */
  phase: 'Copying' | 'Serving' | 'Removed' | 'Failed';
  /** Where the copy answers once Serving: the drill record points at host. */
  endpoint?: { host: string; port: number };
  /** When the copy was asked for (creation), and when it was seen promoted. */
  createdAt?: string;
  promotedAt?: string;
  message?: string;
}

export interface DatabaseProvider {
  /** Probes role, health, WAL positions and heartbeat. Never throws: failures are in the result. */
  observe(): Promise<DatabaseObservation>;
  /** Writes the heartbeat row (epoch, time) on a primary; creates the table if it is missing. */
  writeHeartbeat(epoch: number, at: Date): Promise<void>;
  /**
   * Optional: observe, then the heartbeat when the observation is a writable primary (`Primary`),
   * as the active primary's probe asks them, in one round trip where the adapter can. Never
   * throws; a heartbeat that failed is `heartbeatError`. Without it, the caller makes the two calls.
   */
  observeWithHeartbeat?(
    epoch: number,
    at: Date,
  ): Promise<{ observation: DatabaseObservation; heartbeatError?: Error }>;
  /**
   * Starts making this database the primary, or checks on a promotion already started, and
   * returns within a few seconds: `Promoted` once it accepts writes (already primary:
   * `alreadyPrimary: true`, nothing done), `Pending` while the provider is still at it. Never
   * sleeps or polls for minutes: the caller asks again on a later reconcile.
   */
  promote(request: PromoteRequest): Promise<PromoteOutcome>;
  /**
   * Stops this database accepting writes (ReadOnly, Shutdown) or only records the new epoch
   * (EpochOnly). Already fenced: succeeds without doing anything. `detail` says what was done.
   */
  fence(request: FenceRequest): Promise<{ detail: string }>;
  /**
   * Undoes a ReadOnly fence, for a switchover rolled back before any promotion. Adapters that
   * cannot (a managed service whose fence is an API state) leave it out; the operator then
   * reports that the old primary needs a person.
   */
  unfence?(): Promise<{ detail: string }>;
  /**
   * Starts bringing this former primary back as a replica of the active primary, or checks on it;
   * returns within a few seconds (never waits for the provider). Idempotent by operationId.
   * Adapters without a way to do it leave it out (self-managed PostgreSQL: its agent rejoins it).
   */
  reprotect?(request: ReprotectRequest): Promise<ReprotectOutcome>;
  /**
   * Isolated drills: one idempotent step toward a throwaway promoted copy of this standby
   * (want 'Serving') or its removal (want 'Removed'), derived from the world on each call (the
   * operator calls it again on later reconciles; nothing waits inside). Absent: the provider
   * cannot make one.
   */
  drillCopy?(drillId: string, want: 'Serving' | 'Removed'): Promise<DrillCopyState>;
  /** Releases pooled connections and clients. */
  close(): Promise<void>;
}
