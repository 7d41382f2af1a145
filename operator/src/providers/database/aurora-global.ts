/**
 * The control plane of one member cluster of an Aurora PostgreSQL global database. Aurora decides
 * which member is the writer: the global cluster's members say so (IsWriter), and a switchover or
 * failover of the global cluster is the only way to move the writer. ManagedDatabase (managed.ts)
 * composes it with the SQL side for observation, heartbeat and fencing.
 *
 * Two verbs, as Aurora has them: a Switchover (SwitchoverGlobalCluster) is planned, waits for the
 * secondary to catch up and loses nothing, needs a healthy primary, and makes the old writer a
 * secondary that replicates from the new one; a Failover (FailoverGlobalCluster with
 * AllowDataLoss) promotes the secondary whatever its lag, for a primary region that is gone. The
 * controller asks for a Failover only after the RPO check. A Switchover between two members is
 * Aurora's alone (capabilities.ts `switchesOverNatively`): the controller neither fences the old
 * writer by SQL (Aurora refuses ALTER SYSTEM) nor waits for a catch-up, it only marks the old
 * writer with the epoch and asks here.
 *
 * Where an operation stands is read from the world at every call, never remembered: done when
 * this member is the writer and nothing is under way (the global cluster's FailoverState, or its
 * Status "switching-over" or "failing-over" before FailoverState shows it); under way otherwise,
 * when it moves the writer here; to be started when nothing is under way.
 *
 * Fencing: after either operation Aurora itself makes the old writer a read-only secondary once it
 * can reach it, so a member Aurora lists as a secondary takes no writes; the fence otherwise is
 * the SQL side's.
 *
 * Reprotection is Aurora's too: after a failover it adds the old writer back as a secondary when
 * its region answers again, and resynchronizes it. The operator only waits for that; it never
 * creates or removes a member.
 */
import type { DBCluster, GlobalCluster, RDSClient } from '@aws-sdk/client-rds';
import { allInOrder } from '../../runtime/promises.ts';
import { type AwsClientOptions, awsClientConfig, awsErrorName, classifyAwsError } from '../aws.ts';
import { rdsSdk } from '../aws-sdk.ts';
import { ProviderError } from '../errors.ts';
import type { ControlPlane, ControlPlanePromotion, ControlPlaneView } from './managed.ts';
import type { PromoteRequest, ReprotectOutcome, ReprotectRequest } from './port.ts';

export interface AuroraGlobalControlPlaneOptions extends AwsClientOptions {
  /** spec.provider.auroraGlobal.globalClusterIdentifier. */
  globalClusterIdentifier: string;
  /** spec.provider.auroraGlobal.dbClusterIdentifier: this member. */
  dbClusterIdentifier: string;
  /** A client to use instead of making one (shared per region, tests); `close` leaves it open. */
  client?: RDSClient;
  /** Called once by `close` when `client` was given: hands a shared client back (SharedAwsClients). */
  release?: () => void;
}

/** What Aurora says about this member and the global cluster around it. */
export interface AuroraMemberView extends ControlPlaneView {
  clusterArn: string;
  isWriter: boolean;
  /** The global cluster's switchover or failover under way, if any. */
  operation?: { status: string; from?: string; to?: string };
  /** The writer member's cluster ARN, when Aurora lists one. */
  writerArn?: string;
  /** This member's SynchronizationStatus ("connected", "pending-resync"), when Aurora gives it. */
  synchronization?: string;
}

/** The RDS API for one member cluster of an Aurora PostgreSQL global database. */
export class AuroraGlobalControlPlane implements ControlPlane {
  readonly name: string;
  private readonly client: RDSClient;
  private readonly ownsClient: boolean;
  private readonly region: string;
  private readonly globalId: string;
  private readonly clusterId: string;
  private readonly release: (() => void) | undefined;
  private closed = false;

  constructor(options: AuroraGlobalControlPlaneOptions) {
    this.ownsClient = options.client === undefined;
    this.release = options.release;
    this.client = options.client ?? new (rdsSdk().RDSClient)(awsClientConfig(options));
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

  /**
   * Whether Aurora has taken this former writer back: Protected once the global cluster lists it
   * as an "available" read-only secondary, synchronized (where Aurora says), with the primary's
   * cluster the writer and no switchover or failover under way. Until then Pending, saying what
   * Aurora lists; nothing is requested.
   */
  async reprotect(request: ReprotectRequest): Promise<ReprotectOutcome> {
    const primaryId = this.auroraPrimaryOf(request.primary);
    const view = await this.view();
    const pending = (why: string): ReprotectOutcome => ({
      state: 'Pending',
      detail: `${view.summary}: ${why}`,
    });
    if (view.operation) return pending('waiting for the operation to finish');
    if (view.role === 'Unknown') {
      return pending(
        'Aurora adds a former writer back as a secondary once its region answers; if it stays detached, a person must replace it with a new secondary cluster of the global cluster',
      );
    }
    if (view.isWriter) return pending(`still the writer; waiting for the failover to ${primaryId}`);
    if (!view.writerArn?.endsWith(`:cluster:${primaryId}`)) {
      return pending(`the writer is ${view.writerArn ?? 'not listed'}, not the primary ${primaryId}`);
    }
    if (view.synchronization !== undefined && view.synchronization !== 'connected') {
      return pending(`its synchronization is "${view.synchronization}"; waiting for "connected"`);
    }
    if (view.status !== 'available') return pending('waiting for "available"');
    return { state: 'Protected', detail: `${view.summary}, replicating from ${view.writerArn}` };
  }

  async close(): Promise<void> {
    if (!this.closed) {
      if (this.ownsClient) this.client.destroy();
      else this.release?.();
    }
    this.closed = true;
  }

  /** The primary's member cluster identifier; refused unless it is a member of this global cluster. */
  private auroraPrimaryOf(primary: ReprotectRequest['primary']): string {
    const block = primary.provider.auroraGlobal as
      | { globalClusterIdentifier?: unknown; dbClusterIdentifier?: unknown }
      | undefined;
    if (
      primary.provider.type !== 'AuroraGlobal' ||
      block?.globalClusterIdentifier !== this.globalId ||
      typeof block.dbClusterIdentifier !== 'string'
    ) {
      throw new ProviderError(
        'Rejected',
        `the primary ${primary.cluster} is not a member of global cluster ${this.globalId}: an Aurora member is only reprotected by the global cluster it belongs to; check spec.provider.auroraGlobal of both ReplicaClusters`,
        { retryable: false },
      );
    }
    return block.dbClusterIdentifier;
  }

  /** What Aurora says this member is. Throws ProviderError. */
  async view(): Promise<AuroraMemberView> {
    const [global, cluster] = await allInOrder([this.describeGlobal(), this.describeCluster()]);
    const clusterArn = cluster.DBClusterArn ?? '';
    const member = global.GlobalClusterMembers?.find((m) => m.DBClusterArn === clusterArn);
    const status = cluster.Status ?? 'unknown';
    const failover = global.FailoverState;
    const writerArn = global.GlobalClusterMembers?.find((m) => m.IsWriter === true)?.DBClusterArn;
    const operation: AuroraMemberView['operation'] =
      failover?.Status !== undefined
        ? {
            status: failover.Status,
            ...(failover.FromDbClusterArn ? { from: failover.FromDbClusterArn } : {}),
            ...(failover.ToDbClusterArn ? { to: failover.ToDbClusterArn } : {}),
          }
        : global.Status !== undefined && MOVING_WRITER.has(global.Status)
          ? // The global cluster says it is moving its writer before FailoverState says where.
            { status: global.Status }
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
        ...(writerArn ? { writerArn } : {}),
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
      ...(writerArn ? { writerArn } : {}),
      ...(member.SynchronizationStatus ? { synchronization: member.SynchronizationStatus } : {}),
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
        await this.client.send(
          new (rdsSdk().FailoverGlobalClusterCommand)({ ...target, AllowDataLoss: true }),
        );
      } else {
        await this.client.send(new (rdsSdk().SwitchoverGlobalClusterCommand)(target));
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
        new (rdsSdk().DescribeGlobalClustersCommand)({ GlobalClusterIdentifier: this.globalId }),
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
        new (rdsSdk().DescribeDBClustersCommand)({ DBClusterIdentifier: this.clusterId }),
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

/** Global cluster statuses that mean a switchover or failover is under way. */
const MOVING_WRITER = new Set(['switching-over', 'failing-over']);

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
