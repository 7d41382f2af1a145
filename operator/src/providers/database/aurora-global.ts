/**
 * The control plane of one member cluster of an Aurora PostgreSQL global database. Aurora decides
 * which member is the writer: the global cluster's members say so (IsWriter), and a switchover or
 * failover of the global cluster is the only way to move the writer. ManagedDatabase (managed.ts)
 * composes it with the SQL side for observation, heartbeat and fencing.
 *
 * Two verbs, as Aurora has them: a Switchover (SwitchoverGlobalCluster) is planned, waits for the
 * secondary to catch up and loses nothing, and needs a healthy primary; a Failover
 * (FailoverGlobalCluster with AllowDataLoss) promotes the secondary whatever its lag, for a
 * primary region that is gone. The controller asks for a Failover only after the RPO check.
 *
 * Fencing: after either operation Aurora itself makes the old writer a read-only secondary once it
 * can reach it, so a member Aurora lists as a secondary takes no writes; the fence otherwise is
 * the SQL side's.
 */
import {
  type DBCluster,
  DescribeDBClustersCommand,
  DescribeGlobalClustersCommand,
  FailoverGlobalClusterCommand,
  type GlobalCluster,
  RDSClient,
  SwitchoverGlobalClusterCommand,
} from '@aws-sdk/client-rds';
import { type AwsClientOptions, awsClientConfig, awsErrorName, classifyAwsError } from '../aws.ts';
import { ProviderError } from '../errors.ts';
import type { ControlPlane, ControlPlanePromotion, ControlPlaneView } from './managed.ts';
import type { PromoteRequest } from './port.ts';

export interface AuroraGlobalControlPlaneOptions extends AwsClientOptions {
  /** spec.provider.auroraGlobal.globalClusterIdentifier. */
  globalClusterIdentifier: string;
  /** spec.provider.auroraGlobal.dbClusterIdentifier: this member. */
  dbClusterIdentifier: string;
  /** A client to use instead of making one (shared per region, tests); `close` leaves it open. */
  client?: RDSClient;
}

/** What Aurora says about this member and the global cluster around it. */
export interface AuroraMemberView extends ControlPlaneView {
  clusterArn: string;
  isWriter: boolean;
  /** The global cluster's switchover or failover under way, if any. */
  operation?: { status: string; from?: string; to?: string };
}

/** The RDS API for one member cluster of an Aurora PostgreSQL global database. */
export class AuroraGlobalControlPlane implements ControlPlane {
  readonly name: string;
  private readonly client: RDSClient;
  private readonly ownsClient: boolean;
  private readonly region: string;
  private readonly globalId: string;
  private readonly clusterId: string;

  constructor(options: AuroraGlobalControlPlaneOptions) {
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new RDSClient(awsClientConfig(options));
    this.region = options.region;
    this.globalId = options.globalClusterIdentifier;
    this.clusterId = options.dbClusterIdentifier;
    this.name = `Aurora cluster ${this.clusterId} (${this.region})`;
  }

  /**
   * The writer with no operation under way is the primary. Otherwise an operation already moving
   * the writer here is reported, never requested twice, and one moving it elsewhere is refused;
   * with none under way, SwitchoverGlobalCluster is requested, or FailoverGlobalCluster with
   * AllowDataLoss for `kind: 'Failover'` (default: Switchover).
   */
  async promote(request: PromoteRequest): Promise<ControlPlanePromotion> {
    const kind = request.kind ?? 'Switchover';
    const view = await this.view();
    if (view.isWriter && !view.operation) return { state: 'Primary', summary: view.summary };
    if (view.operation) {
      this.assertOperationComesHere(view);
      return { state: 'Pending', detail: view.summary };
    }
    if (await this.requestPromotion(kind, view.clusterArn)) {
      return { state: 'Pending', detail: `${kind} requested; ${view.summary}` };
    }
    // Aurora refused as busy: look once at what it is busy with (an operation an earlier call
    // started, or one going elsewhere, which is refused).
    const busy = await this.view();
    if (busy.operation) this.assertOperationComesHere(busy);
    return { state: 'Pending', detail: `Aurora refused the ${kind} as busy; ${busy.summary}` };
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }

  /** What Aurora says this member is. Throws ProviderError. */
  async view(): Promise<AuroraMemberView> {
    const [global, cluster] = await Promise.all([this.describeGlobal(), this.describeCluster()]);
    const clusterArn = cluster.DBClusterArn ?? '';
    const member = global.GlobalClusterMembers?.find((m) => m.DBClusterArn === clusterArn);
    const status = cluster.Status ?? 'unknown';
    const failover = global.FailoverState;
    const operation =
      failover?.Status !== undefined
        ? {
            status: failover.Status,
            ...(failover.FromDbClusterArn ? { from: failover.FromDbClusterArn } : {}),
            ...(failover.ToDbClusterArn ? { to: failover.ToDbClusterArn } : {}),
          }
        : undefined;
    const where = `member ${this.clusterId} (${this.region}) of global cluster ${this.globalId}`;
    if (!member) {
      // Detached (for example by a failover in an older Aurora version): a standalone cluster
      // that may take writes, and that the global database no longer replicates to.
      return {
        role: 'Unknown',
        status,
        summary: `Aurora does not list cluster ${this.clusterId} (${this.region}) as a member of global cluster ${this.globalId} (cluster "${status}")`,
        specField: 'spec.provider.auroraGlobal.dbClusterIdentifier',
        clusterArn,
        isWriter: false,
        ...(operation ? { operation } : {}),
      };
    }
    const isWriter = member.IsWriter === true;
    const under = operation
      ? `, ${operation.status} from ${operation.from ?? '?'} to ${operation.to ?? '?'}`
      : '';
    return {
      role: isWriter ? 'Primary' : 'Standby',
      status,
      summary: `Aurora lists ${where} as "${status}", ${isWriter ? 'the writer' : 'a read-only secondary'}${under}`,
      specField: 'spec.provider.auroraGlobal.dbClusterIdentifier',
      clusterArn,
      isWriter,
      ...(operation ? { operation } : {}),
    };
  }

  /** Refuses to wait for, or to disturb, an operation that moves the writer elsewhere. */
  private assertOperationComesHere(view: AuroraMemberView): void {
    if (view.operation?.to !== undefined && view.operation.to !== view.clusterArn) {
      throw new ProviderError(
        'PreconditionFailed',
        `global cluster ${this.globalId} is ${view.operation.status} to ${view.operation.to}, not to ${view.clusterArn}: wait for it to finish, then decide again`,
      );
    }
  }

  /** Sends the request; false when Aurora refused it because the global cluster is busy. */
  private async requestPromotion(kind: 'Switchover' | 'Failover', clusterArn: string): Promise<boolean> {
    // Aurora wants the target by ARN so it can find the cluster in its region.
    const target = { GlobalClusterIdentifier: this.globalId, TargetDbClusterIdentifier: clusterArn };
    const operation = `Aurora ${kind === 'Failover' ? 'FailoverGlobalCluster' : 'SwitchoverGlobalCluster'} of ${this.globalId} to ${this.clusterId} (${this.region})`;
    try {
      if (kind === 'Failover') {
        await this.client.send(new FailoverGlobalClusterCommand({ ...target, AllowDataLoss: true }));
      } else {
        await this.client.send(new SwitchoverGlobalClusterCommand(target));
      }
      return true;
    } catch (err) {
      // Aurora refuses while the global cluster is busy: with an operation started by an earlier
      // call, one DescribeGlobalClusters has not shown yet, or something else.
      if (/^Invalid(GlobalCluster|DBCluster)State/.test(awsErrorName(err))) return false;
      throw classifyAwsError(err, operation);
    }
  }

  private async describeGlobal(): Promise<GlobalCluster> {
    const operation = `Aurora DescribeGlobalClusters ${this.globalId} (${this.region})`;
    let found: GlobalCluster | undefined;
    try {
      const out = await this.client.send(
        new DescribeGlobalClustersCommand({ GlobalClusterIdentifier: this.globalId }),
      );
      found = out.GlobalClusters?.find((g) => g.GlobalClusterIdentifier === this.globalId);
    } catch (err) {
      throw notFoundHint(classifyAwsError(err, operation), 'globalClusterIdentifier');
    }
    if (!found)
      throw notFoundHint(
        new ProviderError('NotFound', `${operation}: no such global cluster`),
        'globalClusterIdentifier',
      );
    return found;
  }

  private async describeCluster(): Promise<DBCluster> {
    const operation = `RDS DescribeDBClusters ${this.clusterId} (${this.region})`;
    let found: DBCluster | undefined;
    try {
      const out = await this.client.send(
        new DescribeDBClustersCommand({ DBClusterIdentifier: this.clusterId }),
      );
      found = out.DBClusters?.find((c) => c.DBClusterIdentifier === this.clusterId);
    } catch (err) {
      throw notFoundHint(classifyAwsError(err, operation), 'dbClusterIdentifier');
    }
    if (!found)
      throw notFoundHint(
        new ProviderError('NotFound', `${operation}: no such DB cluster`),
        'dbClusterIdentifier',
      );
    return found;
  }
}

function notFoundHint(err: ProviderError, field: string): ProviderError {
  if (err.reason !== 'NotFound') return err;
  return new ProviderError(
    'NotFound',
    `${err.message}; check spec.provider.auroraGlobal.${field} and region`,
    {
      cause: err.cause,
    },
  );
}
