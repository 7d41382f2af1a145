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
  PromoteRequest,
} from './port.ts';
import { PostgresSql, type PostgresSqlOptions } from './postgres-sql.ts';

export interface SelfManagedPostgresOptions extends PostgresSqlOptions {
  /** How long pg_promote may wait for the end of recovery. Default 60. */
  promoteTimeoutSeconds?: number;
}

export class SelfManagedPostgres implements DatabaseProvider {
  private readonly sql: PostgresSql;
  private readonly promoteTimeoutSeconds: number;
  private readonly now: () => Date;

  constructor(connection: DatabaseConnection, options: SelfManagedPostgresOptions = {}) {
    this.sql = new PostgresSql(connection, options);
    this.promoteTimeoutSeconds = options.promoteTimeoutSeconds ?? 60;
    this.now = options.now ?? (() => new Date());
  }

  observe(): Promise<DatabaseObservation> {
    return this.sql.observe();
  }

  writeHeartbeat(epoch: number, at: Date): Promise<void> {
    return this.sql.writeHeartbeat(epoch, at);
  }

  /**
   * pg_promote() on a standby, then proof that it takes writes: the heartbeat with the new
   * epoch. A server that is already out of recovery is left alone, unless it is a fenced former
   * primary: promoting that would bring a stale copy back as primary, so it is refused.
   */
  async promote(request: PromoteRequest): Promise<{ alreadyPrimary: boolean }> {
    if (!(await this.sql.isInRecovery())) {
      if (await this.sql.isReadOnly()) {
        throw new ProviderError(
          'Rejected',
          `PostgreSQL ${this.sql.target} is a fenced former primary (default_transaction_read_only = on), ` +
            'not a standby: it cannot be promoted; rebuild it as a standby of the current primary',
          { retryable: false },
        );
      }
      return { alreadyPrimary: true };
    }
    const [row] = await this.sql
      .query<{ promoted: boolean }>(
        'SELECT pg_promote(wait => true, wait_seconds => $1) AS promoted',
        [this.promoteTimeoutSeconds],
        { timeoutMs: (this.promoteTimeoutSeconds + 5) * 1000 },
      )
      .catch(async (err: unknown) => {
        // Someone (a person, a previous attempt) finished the promotion first: that is success.
        if (!(await this.sql.isInRecovery().catch(() => true))) return [{ promoted: true }];
        throw err;
      });
    if (!row?.promoted) {
      throw new ProviderError(
        'Timeout',
        `PostgreSQL ${this.sql.target} did not finish promoting within ${this.promoteTimeoutSeconds} s; ` +
          'it may still finish: observe it again before retrying',
      );
    }
    // A normal (not explicitly read-write) transaction, so a server that is read-only fails here.
    await this.sql.writeHeartbeat(request.epoch, this.now());
    return { alreadyPrimary: false };
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
