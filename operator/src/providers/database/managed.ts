/**
 * A managed PostgreSQL database (RDS, Aurora global, DigitalOcean): one SQL side plus the
 * provider's control plane. The SQL side (the same statements as for self-managed PostgreSQL)
 * sees role, WAL positions, heartbeat and lag, and fences; the control plane, a small port with
 * one adapter per provider, knows what the database *is* (a replica of whom, its status) and is
 * the only way to promote it: managed services do not let their users call pg_promote().
 *
 * Nothing here waits for the provider: a promotion is started by one call and checked by the
 * next, so a reconcile that promotes returns within a few requests' time whatever the provider
 * takes (minutes, for RDS and DigitalOcean).
 */
import { ProviderError } from '../errors.ts';
import type {
  DatabaseObservation,
  DatabaseProvider,
  DatabaseRole,
  DrillCopyState,
  FenceRequest,
  PromoteOutcome,
  PromoteRequest,
  ReprotectOutcome,
  ReprotectRequest,
} from './port.ts';
import { PromotionsUnderWay } from './promotions.ts';

/** The SQL side of a managed database: everything of the port but promotion. */
export type DatabaseSql = Pick<
  DatabaseProvider,
  'observe' | 'writeHeartbeat' | 'fence' | 'unfence' | 'close'
>;

/** What a provider's API says one managed database is, in the terms observe and fence need. */
export interface ControlPlaneView {
  /** Primary (takes writes), Standby (a replica), Fenced (stopped), Unknown (the API cannot tell). */
  role: DatabaseRole;
  /** The API's status word, such as "available", "modifying", "online". */
  status: string;
  /** One line for messages: `RDS lists instance orders-west (eu-west-1) as "available", a read replica of …`. */
  summary: string;
  /** The spec field that names this database, for "check …" hints. */
  specField: string;
  /**
   * The API's own id of the database where the spec does not say it: a DigitalOcean read-only
   * node promoted into a cluster (named by its old parent and node name), whose UUID
   * infrastructure code needs to adopt it. Unset for a database the spec names exactly.
   */
  databaseId?: string;
}

/**
 * Where a promotion stands, as the API reports it after one call. `Primary`: the API lists the
 * database as the primary with nothing under way (done, or it always was). `Pending`: the
 * promotion was requested by this call or an earlier one and is not finished; `detail` says
 * what the API reports.
 */
export type ControlPlanePromotion =
  | { state: 'Primary'; summary: string }
  | { state: 'Pending'; detail: string };

/** One provider's API for one database. */
export interface ControlPlane {
  /** The database in messages: `RDS instance orders-west (eu-west-1)`. */
  readonly name: string;
  /**
   * Set where the provider cannot stop a database and SQL cannot either: a Shutdown fence is
   * then applied as ReadOnly, and the detail gives this reason.
   */
  readonly shutdownUnavailable?: string;
  /** What the API says the database is now. Throws ProviderError. */
  view(): Promise<ControlPlaneView>;
  /**
   * Asks for the promotion when the API shows none under way, or reports the one that is; never
   * waits for it. Requests nothing while a promotion is under way. Throws ProviderError, with
   * `Rejected` (not retryable) for a database that must not be promoted.
   */
  promote(request: PromoteRequest): Promise<ControlPlanePromotion>;
  /**
   * Asks the provider for a replica of the active primary in this (former primary's) region, or
   * reports on the one asked for; never waits for it. Idempotent: what it creates is named after
   * the request, and found by that name on the next call. Throws ProviderError.
   */
  reprotect?(request: ReprotectRequest): Promise<ReprotectOutcome>;
  /** Isolated drills: see DatabaseProvider.drillCopy. */
  drillCopy?(drillId: string, want: 'Serving' | 'Removed'): Promise<DrillCopyState>;
  /** Releases the API client, when the control plane made it. */
  close(): Promise<void>;
}

export interface ManagedDatabaseOptions<C extends ControlPlane> {
  sql: DatabaseSql;
  controlPlane: C;
  /** Time source for the heartbeat written when a promotion completes. */
  clock?: { now(): Date };
}

/** A DatabaseProvider for a managed database: SQL is the evidence, the API promotes. */
export class ManagedDatabase<C extends ControlPlane = ControlPlane> implements DatabaseProvider {
  readonly controlPlane: C;
  private readonly sql: DatabaseSql;
  private readonly clock: { now(): Date };
  private readonly underWay = new PromotionsUnderWay();

  constructor(options: ManagedDatabaseOptions<C>) {
    this.sql = options.sql;
    this.controlPlane = options.controlPlane;
    this.clock = options.clock ?? { now: () => new Date() };
  }

  /**
   * The SQL observation, checked against the API. SQL is the evidence for role and health; the
   * API fills in the role when SQL cannot reach the database, and makes it Unknown, with the
   * explanation, when the two contradict. When the API fails, the SQL observation stands: a
   * throttled API must not make a healthy database look down.
   */
  async observe(): Promise<DatabaseObservation> {
    const started = performance.now();
    const [observed, api] = await Promise.all([
      this.sql.observe(),
      this.controlPlane.view().catch(() => undefined),
    ]);
    const durationMs = Math.round(performance.now() - started);
    if (!api) return { ...observed, durationMs };
    const id = api.databaseId ? { databaseId: api.databaseId } : {};
    if (!observed.reachable) {
      // SQL cannot tell; the API still knows the topology (and that a stopped instance is fenced).
      const message = observed.failure ? `${observed.failure.message}; ${api.summary}` : api.summary;
      return {
        ...observed,
        ...id,
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
        ...id,
        role: 'Unknown',
        failure: {
          reason: 'ProviderError',
          message: `SQL sees a ${observed.role.toLowerCase()}, but ${api.summary}: either a promotion is under way, or spec.connection does not point at the database ${api.specField} names`,
        },
        durationMs,
      };
    }
    return { ...observed, ...id, durationMs };
  }

  writeHeartbeat(epoch: number, at: Date): Promise<void> {
    return this.sql.writeHeartbeat(epoch, at);
  }

  /**
   * One step of the promotion: the control plane starts it or reports it under way (`Pending`),
   * or lists the database as the primary. Then SQL must see a writable primary, and the
   * heartbeat with the new epoch is written when it is not there yet, which proves it takes
   * writes: only then `Promoted`. A primary SQL sees fenced (read-only) is a stale former
   * primary and is refused, never called promoted.
   */
  async promote(request: PromoteRequest): Promise<PromoteOutcome> {
    const api = await this.controlPlane.promote(request);
    if (api.state === 'Pending') return this.pending(request, api.detail);
    const observed = await this.sql.observe();
    if (!observed.reachable) {
      return this.pending(
        request,
        `${api.summary}; SQL cannot reach it yet (${observed.failure?.message ?? 'no reason given'})`,
      );
    }
    if (observed.role === 'Fenced') {
      throw new ProviderError(
        'Rejected',
        `${this.controlPlane.name} is a fenced former primary (read-only), not a standby: it cannot be promoted; rebuild it as a replica of the current primary`,
        { retryable: false },
      );
    }
    if (observed.role !== 'Primary') {
      return this.pending(request, `${api.summary}, but SQL still sees a ${observed.role.toLowerCase()}`);
    }
    // After a promotion this adapter saw under way the heartbeat is written even when the epoch
    // is there already (the old primary's fence recorded it, and it replicated): the write is the
    // proof. The write refuses to lower a newer epoch: a later failover fenced this database.
    const drove = this.underWay.has(request.operationId);
    if (drove || observed.heartbeat?.epoch !== request.epoch) {
      await this.sql.writeHeartbeat(request.epoch, this.clock.now());
    }
    this.underWay.finish(request.operationId);
    return { state: 'Promoted', alreadyPrimary: !drove };
  }

  /**
   * The SQL side's fence. When SQL cannot apply it, the API may still vouch that the database
   * takes no writes (a replica, a stopped instance), which is what fencing is for; otherwise the
   * SQL error stands.
   */
  async fence(request: FenceRequest): Promise<{ detail: string }> {
    const instead = request.mode === 'Shutdown' ? this.controlPlane.shutdownUnavailable : undefined;
    try {
      if (instead === undefined) return await this.sql.fence(request);
      const { detail } = await this.sql.fence({ ...request, mode: 'ReadOnly' });
      return { detail: `${detail} (ReadOnly instead of Shutdown: ${instead})` };
    } catch (err) {
      const api = await this.controlPlane.view().catch(() => undefined);
      if (api && (api.role === 'Standby' || api.role === 'Fenced')) {
        const why = err instanceof Error ? err.message : String(err);
        return { detail: `${api.summary}, so it accepts no writes; the SQL fence was not applied (${why})` };
      }
      throw err;
    }
  }

  /** Undoes the SQL side's ReadOnly fence (a rolled-back switchover); a no-op where none holds. */
  unfence(): Promise<{ detail: string }> {
    return this.sql.unfence ? this.sql.unfence() : Promise.resolve({ detail: 'nothing to undo' });
  }

  /**
   * The control plane's: a managed service rebuilds a replica through its API, never through SQL
   * (the old primary's SQL side stays what it is until a person deletes the database).
   */
  reprotect(request: ReprotectRequest): Promise<ReprotectOutcome> {
    if (!this.controlPlane.reprotect) {
      return Promise.reject(
        new ProviderError('Rejected', `${this.controlPlane.name}: this provider cannot rebuild a replica`, {
          retryable: false,
        }),
      );
    }
    return this.controlPlane.reprotect(request);
  }

  /** The control plane's: a throwaway copy is made and deleted through the provider's API. */
  drillCopy(drillId: string, want: 'Serving' | 'Removed'): Promise<DrillCopyState> {
    if (!this.controlPlane.drillCopy)
      return Promise.reject(
        new ProviderError('Rejected', `${this.controlPlane.name}: this provider cannot make a drill copy`, {
          retryable: false,
        }),
      );
    return this.controlPlane.drillCopy(drillId, want);
  }

  async close(): Promise<void> {
    await Promise.all([this.controlPlane.close(), this.sql.close()]);
  }

  private pending(request: PromoteRequest, detail: string): PromoteOutcome {
    this.underWay.start(request.operationId);
    return { state: 'Pending', detail };
  }
}
