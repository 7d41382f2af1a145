/**
 * Amazon RDS for PostgreSQL: the control plane of one instance, either a standalone (primary)
 * instance or a cross-region read replica. The RDS API knows what the instance *is* (read
 * replica of whom, its status) and is the only way to promote a replica: RDS does not let its
 * users call pg_promote(). ManagedDatabase (managed.ts) composes it with the SQL side.
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
import { type AwsClientOptions, awsClientConfig, awsErrorName, classifyAwsError } from '../aws.ts';
import { ProviderError } from '../errors.ts';
import type { ControlPlane, ControlPlanePromotion, ControlPlaneView } from './managed.ts';
import type { DatabaseRole } from './port.ts';

export interface RdsControlPlaneOptions extends AwsClientOptions {
  /** spec.provider.awsRds.dbInstanceIdentifier. */
  dbInstanceIdentifier: string;
  /** A client to use instead of making one (shared per region, tests); `close` leaves it open. */
  client?: RDSClient;
}

/** Instance statuses in which RDS keeps the database down: it accepts no connections at all. */
const STOPPED = new Set(['stopped', 'stopping']);
/** Statuses in which RDS is still changing an instance; a promotion ends with a reboot in them. */
const CHANGING = new Set(['modifying', 'rebooting']);

/** The RDS API for one instance. */
export class RdsControlPlane implements ControlPlane {
  readonly name: string;
  private readonly client: RDSClient;
  private readonly ownsClient: boolean;
  private readonly region: string;
  private readonly id: string;

  constructor(options: RdsControlPlaneOptions) {
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new RDSClient(awsClientConfig(options));
    this.region = options.region;
    this.id = options.dbInstanceIdentifier;
    this.name = `RDS instance ${this.id} (${this.region})`;
  }

  /** What RDS says this instance is. Throws ProviderError. */
  async view(): Promise<ControlPlaneView> {
    return viewOf(await this.describe(), this.id, this.region);
  }

  /**
   * An instance with no replication source is the primary (unless stopped: a stale former
   * primary, refused), once RDS has finished changing it. A read replica RDS lists as "available" is sent PromoteReadReplica; one in
   * any other status is busy, normally with the promotion an earlier call asked for (RDS reports
   * "modifying" until it ends, then the instance without a source), and nothing is sent. A
   * request RDS refuses as busy (InvalidDBInstanceState) is that same promotion, seen early.
   */
  async promote(): Promise<ControlPlanePromotion> {
    const instance = await this.describe();
    const view = viewOf(instance, this.id, this.region);
    if (view.role === 'Fenced') {
      throw new ProviderError(
        'Rejected',
        `${this.name} is ${view.status} and no read replica: it is a stopped former primary, not a standby; promoting it would bring back stale data, so rebuild it as a read replica of the current primary`,
        { retryable: false },
      );
    }
    if (view.role === 'Primary') {
      if (!CHANGING.has(view.status)) return { state: 'Primary', summary: view.summary };
      return { state: 'Pending', detail: `${view.summary}: RDS is still changing it` };
    }
    if (view.status !== 'available') {
      return {
        state: 'Pending',
        detail: `${view.summary}: a promotion is under way, or RDS is busy with something else`,
      };
    }
    try {
      await this.client.send(new PromoteReadReplicaCommand({ DBInstanceIdentifier: this.id }));
    } catch (err) {
      // RDS refuses while the instance is busy, e.g. with the promotion an earlier call started.
      if (!/^InvalidDBInstanceState/.test(awsErrorName(err))) {
        throw classifyAwsError(err, `RDS PromoteReadReplica ${this.id} (${this.region})`);
      }
      return { state: 'Pending', detail: `RDS refused PromoteReadReplica as busy: ${view.summary}` };
    }
    return { state: 'Pending', detail: `PromoteReadReplica accepted; ${view.summary}` };
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
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

function viewOf(instance: DBInstance, id: string, region: string): ControlPlaneView {
  const status = instance.DBInstanceStatus ?? 'unknown';
  const source = instance.ReadReplicaSourceDBInstanceIdentifier;
  const role: DatabaseRole = source ? 'Standby' : STOPPED.has(status) ? 'Fenced' : 'Primary';
  const what = source ? `a read replica of ${source}` : 'a standalone instance (no replication source)';
  return {
    role,
    status,
    summary: `RDS lists instance ${id} (${region}) as "${status}", ${what}`,
    specField: 'spec.provider.awsRds.dbInstanceIdentifier',
  };
}
