/**
 * Amazon RDS for PostgreSQL: one instance, either a standalone (primary) instance or a
 * cross-region read replica. Like every provider here it is PostgreSQL reachable by SQL, so the
 * adapter composes two views: the SQL side (another DatabaseProvider, given to it) sees role, WAL
 * positions, heartbeat and lag; the RDS API knows what the instance *is* (read replica of whom,
 * its status) and is the only way to promote a replica: RDS does not let its users call
 * pg_promote().
 *
 * Fencing is the SQL side's. The RDS API has nothing that fences an old primary before the
 * promotion without destroying something: StopDBInstance is refused for an instance that has
 * read replicas (the old primary has one, the standby, until the standby is promoted), and RDS
 * starts a stopped instance again by itself after seven days; a read-only parameter group would
 * change every instance that shares the group. What the API adds is evidence: an instance RDS
 * lists as a read replica, or as stopped, accepts no writes, so fencing it succeeds even when
 * SQL cannot reach it.
 */
import {
  type DBInstance,
  DescribeDBInstancesCommand,
  PromoteReadReplicaCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import {
  type AwsClientOptions,
  type AwsPollOptions,
  awsClientConfig,
  awsErrorName,
  classifyAwsError,
} from '../aws.ts';
import { ProviderError, type ProviderErrorReason } from '../errors.ts';
import type {
  DatabaseObservation,
  DatabaseProvider,
  DatabaseRole,
  FenceRequest,
  PromoteRequest,
} from './port.ts';

/** What a provider API says one managed database is, in the terms observe and fence need. */
export interface ManagedDatabaseView {
  /** Primary (takes writes), Standby (a replica), Fenced (stopped), Unknown (the API cannot tell). */
  role: DatabaseRole;
  /** The API's status word, such as "available", "modifying", "stopped". */
  status: string;
  /** One line for messages: `RDS lists instance orders-west (eu-west-1) as "available", a read replica of …`. */
  summary: string;
  /** The spec field that names this database, for "check …" hints. */
  specField: string;
}

/** The options the AWS database adapters share. */
export interface ManagedAwsDatabaseOptions extends AwsClientOptions {
  /** The SQL side: observation, heartbeat and fencing over a PostgreSQL connection. */
  sql: DatabaseProvider;
  /** Time source for the heartbeat written after a promotion. */
  clock?: { now(): Date };
  /** How long promote() waits for the API to report the promotion done. Default 10 min. */
  promoteTimeoutMs?: number;
  /** How often promote() asks while it waits. Default 5 s. */
  pollIntervalMs?: number;
  sleep?: AwsPollOptions['sleep'];
  /** A client to use instead of making one (shared per region, tests); `close` leaves it open. */
  client?: RDSClient;
}

export interface AwsRdsDatabaseOptions extends ManagedAwsDatabaseOptions {
  /** spec.provider.awsRds.dbInstanceIdentifier. */
  dbInstanceIdentifier: string;
}

/** Errors worth asking again about while waiting for a promotion. */
const TRANSIENT = new Set<ProviderErrorReason>(['Throttled', 'Timeout', 'Unreachable', 'ProviderError']);

/** Instance statuses in which RDS keeps the database down: it accepts no connections at all. */
const STOPPED = new Set(['stopped', 'stopping']);

/** A DatabaseProvider for an RDS for PostgreSQL instance or cross-region read replica. */
export class AwsRdsDatabase implements DatabaseProvider {
  private readonly client: RDSClient;
  private readonly ownsClient: boolean;
  private readonly region: string;
  private readonly id: string;
  private readonly sql: DatabaseProvider;
  private readonly clock: { now(): Date };
  private readonly poll: AwsPollOptions;

  constructor(options: AwsRdsDatabaseOptions) {
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new RDSClient(awsClientConfig(options));
    this.region = options.region;
    this.id = options.dbInstanceIdentifier;
    this.sql = options.sql;
    this.clock = options.clock ?? { now: () => new Date() };
    this.poll = pollOptions(options);
  }

  /**
   * The SQL observation, checked against RDS. SQL is the evidence for role and health; RDS fills
   * in the role when SQL cannot reach the instance, and overrules SQL when the two contradict.
   * When the RDS API fails, the SQL observation stands: a throttled API must not make a healthy
   * database look down.
   */
  async observe(): Promise<DatabaseObservation> {
    return observeManaged(this.sql, () => this.view());
  }

  writeHeartbeat(epoch: number, at: Date): Promise<void> {
    return this.sql.writeHeartbeat(epoch, at);
  }

  /**
   * PromoteReadReplica when RDS lists the instance as a read replica, then waits (bounded) until
   * RDS reports it available with no source and SQL sees a primary, and writes the heartbeat
   * with the new epoch, which proves it takes writes. An instance with no source is already
   * primary: nothing is sent. Safe to call again at any point: a promotion RDS is still running
   * refuses a second request (InvalidDBInstanceState), which is waited for like the first.
   */
  async promote(request: PromoteRequest): Promise<{ alreadyPrimary: boolean }> {
    const instance = await this.describe();
    if (!instance.ReadReplicaSourceDBInstanceIdentifier) {
      if (STOPPED.has(instance.DBInstanceStatus ?? '')) {
        throw new ProviderError(
          'Rejected',
          `RDS instance ${this.id} (${this.region}) is ${instance.DBInstanceStatus} and no read replica: it is a stopped former primary, not a standby; promoting it would bring back stale data, so rebuild it as a read replica of the current primary`,
          { retryable: false },
        );
      }
      await settleAlreadyPrimary(
        this.sql,
        request.epoch,
        this.clock,
        `RDS instance ${this.id} (${this.region})`,
      );
      return { alreadyPrimary: true };
    }
    try {
      await this.client.send(new PromoteReadReplicaCommand({ DBInstanceIdentifier: this.id }));
    } catch (err) {
      // RDS refuses while the instance is busy, e.g. with the promotion an earlier call started.
      if (!/^InvalidDBInstanceState/.test(awsErrorName(err))) {
        throw classifyAwsError(err, `RDS PromoteReadReplica ${this.id} (${this.region})`);
      }
    }
    await waitUntilWritable(
      this.sql,
      `promotion of RDS instance ${this.id} (${this.region})`,
      this.poll,
      async () => {
        const view = await this.view();
        return view.role === 'Primary' && view.status === 'available' ? undefined : view.summary;
      },
    );
    await this.sql.writeHeartbeat(request.epoch, this.clock.now());
    return { alreadyPrimary: false };
  }

  /** The SQL side's fence; when SQL cannot do it, RDS's word that the instance takes no writes. */
  fence(request: FenceRequest): Promise<{ detail: string }> {
    return fenceManaged(this.sql, request, () => this.view());
  }

  /** Undoes the SQL side's ReadOnly fence (a rolled-back switchover); a no-op where none holds. */
  unfence(): Promise<{ detail: string }> {
    return this.sql.unfence ? this.sql.unfence() : Promise.resolve({ detail: 'nothing to undo' });
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
    await this.sql.close();
  }

  /** What RDS says this instance is. Throws ProviderError. */
  async view(): Promise<ManagedDatabaseView> {
    const instance = await this.describe();
    const status = instance.DBInstanceStatus ?? 'unknown';
    const source = instance.ReadReplicaSourceDBInstanceIdentifier;
    const role: DatabaseRole = source ? 'Standby' : STOPPED.has(status) ? 'Fenced' : 'Primary';
    const what = source ? `a read replica of ${source}` : 'a standalone instance (no replication source)';
    return {
      role,
      status,
      summary: `RDS lists instance ${this.id} (${this.region}) as "${status}", ${what}`,
      specField: 'spec.provider.awsRds.dbInstanceIdentifier',
    };
  }

  private async describe(): Promise<DBInstance> {
    const operation = `RDS DescribeDBInstances ${this.id} (${this.region})`;
    let instances: DBInstance[] | undefined;
    try {
      const out = await this.client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: this.id }));
      instances = out.DBInstances;
    } catch (err) {
      const classified = classifyAwsError(err, operation);
      if (classified.reason !== 'NotFound') throw classified;
      throw new ProviderError(
        'NotFound',
        `${operation}: no such DB instance; check spec.provider.awsRds.dbInstanceIdentifier and region`,
        { cause: err },
      );
    }
    const found = instances?.find((i) => i.DBInstanceIdentifier === this.id);
    if (!found) {
      throw new ProviderError(
        'NotFound',
        `${operation}: RDS returned no instance ${this.id}; check spec.provider.awsRds`,
      );
    }
    return found;
  }
}

// ---- Shared by the AWS database adapters (RDS here, Aurora global in aurora-global.ts) ----

/** Poll settings from the adapter options. */
export function pollOptions(options: ManagedAwsDatabaseOptions): AwsPollOptions {
  return {
    timeoutMs: options.promoteTimeoutMs ?? 600_000,
    intervalMs: options.pollIntervalMs ?? 5_000,
    ...(options.sleep ? { sleep: options.sleep } : {}),
  };
}

/** Observes through SQL and the provider API at once and merges the two (see AwsRdsDatabase.observe). */
export async function observeManaged(
  sql: DatabaseProvider,
  view: () => Promise<ManagedDatabaseView>,
): Promise<DatabaseObservation> {
  const started = performance.now();
  const [observed, api] = await Promise.all([
    sql.observe(),
    view().then(
      (v) => v,
      (err: unknown) => classifyAwsError(err, 'provider API'),
    ),
  ]);
  const durationMs = Math.round(performance.now() - started);
  if (api instanceof ProviderError) return { ...observed, durationMs };
  if (!observed.reachable) {
    // SQL cannot tell; the API still knows the topology (and that a stopped instance is fenced).
    const message = observed.failure ? `${observed.failure.message}; ${api.summary}` : api.summary;
    return {
      ...observed,
      role: api.role,
      failure: { reason: observed.failure?.reason ?? 'Unreachable', message },
      durationMs,
    };
  }
  const contradicts =
    (api.role === 'Standby' && observed.role === 'Primary') ||
    (api.role === 'Primary' && observed.role === 'Standby');
  if (contradicts) {
    return {
      ...observed,
      role: 'Unknown',
      failure: {
        reason: 'ProviderError',
        message: `SQL sees a ${observed.role.toLowerCase()}, but ${api.summary}: either a promotion is under way, or spec.connection does not point at the database ${api.specField} names`,
      },
      durationMs,
    };
  }
  return { ...observed, durationMs };
}

/**
 * Polls until `apiPending` returns undefined (the API reports the promotion done) and SQL sees a
 * writable primary. `apiPending` returns what is still pending, for the timeout message.
 */
export async function waitUntilWritable(
  sql: DatabaseProvider,
  what: string,
  poll: AwsPollOptions,
  apiPending: () => Promise<string | undefined>,
): Promise<void> {
  const sleep = poll.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = performance.now();
  let slept = 0;
  let last = 'no answer yet';
  for (;;) {
    try {
      const pending = await apiPending();
      if (pending !== undefined) {
        last = pending;
      } else {
        const observed = await sql.observe();
        if (observed.reachable && observed.role === 'Primary') return;
        last = `the API reports it done; SQL sees ${observed.reachable ? observed.role : `it unreachable (${observed.failure?.message ?? 'no reason given'})`}`;
      }
    } catch (err) {
      // Transient API trouble while waiting is not a failed promotion; keep asking. Anything
      // else (a refusal, an operation going elsewhere) ends the wait.
      const classified = classifyAwsError(err, what);
      if (!TRANSIENT.has(classified.reason)) throw classified;
      last = classified.message;
    }
    const elapsed = Math.max(performance.now() - started, slept);
    if (elapsed + poll.intervalMs > poll.timeoutMs) {
      throw new ProviderError(
        'Timeout',
        `${what} was requested but is not done after ${Math.round(poll.timeoutMs / 1000)} s (${last}); promoting again keeps waiting for it`,
      );
    }
    await sleep(poll.intervalMs);
    slept += poll.intervalMs;
  }
}

/**
 * For a database the API already lists as the primary. A promotion interrupted before its
 * heartbeat still owes it, so it is written when SQL shows an older epoch. A primary the
 * operator fenced is refused, as the self-managed adapter refuses it: calling it promoted would
 * bring a stale copy back as the writer.
 */
export async function settleAlreadyPrimary(
  sql: DatabaseProvider,
  epoch: number,
  clock: { now(): Date },
  what: string,
): Promise<void> {
  const observed = await sql.observe();
  if (observed.reachable && observed.role === 'Fenced') {
    throw new ProviderError(
      'Rejected',
      `${what} is a fenced former primary (read-only), not a standby: it cannot be promoted; rebuild it as a replica of the current primary`,
      { retryable: false },
    );
  }
  if (observed.reachable && observed.role === 'Primary' && (observed.heartbeat?.epoch ?? -1) < epoch) {
    await sql.writeHeartbeat(epoch, clock.now());
  }
}

/**
 * The SQL side's fence. When that fails, the API may still vouch that the database takes no
 * writes (a replica, a stopped instance), which is what fencing is for; otherwise the SQL error
 * stands.
 */
export async function fenceManaged(
  sql: DatabaseProvider,
  request: FenceRequest,
  view: () => Promise<ManagedDatabaseView>,
): Promise<{ detail: string }> {
  try {
    return await sql.fence(request);
  } catch (err) {
    const api = await view().catch(() => undefined);
    if (api && (api.role === 'Standby' || api.role === 'Fenced')) {
      const why = err instanceof Error ? err.message : String(err);
      return { detail: `${api.summary}, so it accepts no writes; the SQL fence was not applied (${why})` };
    }
    throw err;
  }
}
