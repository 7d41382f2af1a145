/**
 * The database provider for PostgreSQL that people run themselves (VMs, bare metal, their own
 * Kubernetes): everything goes through SQL, promotion included (pg_promote), so the operator
 * needs nothing but a login role on each server.
 */
import { ProviderError } from '../errors.ts';
import type {
  DatabaseConnection,
  DatabaseObservation,
  DatabaseProvider,
  FenceRequest,
  PromoteOutcome,
  PromoteRequest,
} from './port.ts';
import { type ObservedWithHeartbeat, PostgresSql, type PostgresSqlOptions } from './postgres-sql.ts';
import { PromotionsUnderWay } from './promotions.ts';

export interface SelfManagedPostgresOptions extends PostgresSqlOptions {
  /**
   * How long one promote call lets pg_promote wait for the end of recovery before it reports
   * `Pending` (the next call checks again). Default 5; PostgreSQL needs at least 1.
   */
  promoteWaitSeconds?: number;
}

export class SelfManagedPostgres implements DatabaseProvider {
  private readonly sql: PostgresSql;
  private readonly promoteWaitSeconds: number;
  private readonly now: () => Date;
  private readonly underWay = new PromotionsUnderWay();

  constructor(connection: DatabaseConnection, options: SelfManagedPostgresOptions = {}) {
    this.sql = new PostgresSql(connection, options);
    this.promoteWaitSeconds = Math.max(1, Math.ceil(options.promoteWaitSeconds ?? 5));
    this.now = options.now ?? (() => new Date());
  }

  observe(): Promise<DatabaseObservation> {
    return this.sql.observe();
  }

  writeHeartbeat(epoch: number, at: Date): Promise<void> {
    return this.sql.writeHeartbeat(epoch, at);
  }

  observeWithHeartbeat(epoch: number, at: Date): Promise<ObservedWithHeartbeat> {
    return this.sql.observeWithHeartbeat(epoch, at);
  }

  /**
   * pg_promote() on a standby, waiting a few seconds at most: a standby still in recovery after
   * that is `Pending`, and a later call looks again (pg_promote() on a server already promoting
   * only signals it once more). Out of recovery, the heartbeat with the new epoch, written when
   * it is not there yet, proves it takes writes: `Promoted`. A server that is out of recovery
   * but read-only is a fenced former primary: promoting that would bring a stale copy back as
   * primary, so it is refused.
   */
  async promote(request: PromoteRequest): Promise<PromoteOutcome> {
    let promotedNow = false;
    if (await this.sql.isInRecovery()) {
      const [row] = await this.sql
        .query<{ promoted: boolean }>(
          'SELECT pg_promote(wait => true, wait_seconds => $1) AS promoted',
          [this.promoteWaitSeconds],
          // Server-wide: a standby that replayed its old primary's fence (connection limits,
          // closed databases) is still promoted through the maintenance database.
          { timeoutMs: (this.promoteWaitSeconds + 5) * 1000, serverWide: true },
        )
        .catch(async (err: unknown) => {
          // Someone (a person, a previous attempt) finished the promotion first: that is success.
          if (!(await this.sql.isInRecovery().catch(() => true))) return [{ promoted: true }];
          throw err;
        });
      if (!row?.promoted) {
        this.underWay.start(request.operationId);
        return {
          state: 'Pending',
          detail: `PostgreSQL ${this.sql.target} is still in recovery ${this.promoteWaitSeconds} s after pg_promote(); promoting again checks on it`,
        };
      }
      promotedNow = true;
    } else if (await this.sql.isReadOnly()) {
      throw new ProviderError(
        'Rejected',
        `PostgreSQL ${this.sql.target} is a fenced former primary (default_transaction_read_only = on), ` +
          'not a standby: it cannot be promoted; rebuild it as a standby of the current primary',
        { retryable: false },
      );
    }
    const observed = await this.sql.observe();
    // Written after a promotion this adapter drove even when the epoch is there already (the old
    // primary's fence recorded it, and it replicated): a normal, not explicitly read-write,
    // transaction, so the write proves the server takes writes. It refuses to lower a newer
    // epoch (a later failover fenced this database).
    const drove = promotedNow || this.underWay.has(request.operationId);
    if (drove || observed.heartbeat?.epoch !== request.epoch) {
      await this.sql.writeHeartbeat(request.epoch, this.now());
    }
    this.underWay.finish(request.operationId);
    return { state: 'Promoted', alreadyPrimary: !drove };
  }

  unfence(): Promise<{ detail: string }> {
    return this.sql.unfence();
  }

  fence(request: FenceRequest): Promise<{ detail: string }> {
    return this.sql.fence(request);
  }

  close(): Promise<void> {
    return this.sql.close();
  }
}
