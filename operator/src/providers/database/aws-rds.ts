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
 *
 * Reprotection: RDS cannot turn a former primary back into a replica, so a new cross-region read
 * replica of the active primary is created in the former primary's region, named after it and the
 * epoch and tagged with the operation. The former primary is tagged as superseded and left for a
 * person to delete: the operator never deletes a database.
 *
 * Isolated drills are the one exception, and only for what the drill made: a read replica of the
 * standby, promoted beside it and deleted afterwards (aws-rds-drill-copy.ts).
 */
import type { CreateDBInstanceReadReplicaCommandInput, DBInstance, RDSClient } from '@aws-sdk/client-rds';
import { allInOrder } from '../../runtime/promises.ts';
import { type AwsClientOptions, awsClientConfig, awsErrorName, classifyAwsError } from '../aws.ts';
import { rdsSdk } from '../aws-sdk.ts';
import { ProviderError } from '../errors.ts';
import { RdsDrillCopies } from './aws-rds-drill-copy.ts';
import type { ControlPlane, ControlPlanePromotion, ControlPlaneView } from './managed.ts';
import type {
  DatabaseRole,
  DrillCopyState,
  ProviderSpec,
  ReprotectOutcome,
  ReprotectRequest,
} from './port.ts';
import { replacementName } from './replacement-names.ts';

export interface RdsControlPlaneOptions extends AwsClientOptions {
  /** spec.provider.awsRds.dbInstanceIdentifier. */
  dbInstanceIdentifier: string;
  /** A client to use instead of making one (shared per region, tests); `close` leaves it open. */
  client?: RDSClient;
  /** Called once by `close` when `client` was given: hands a shared client back (SharedAwsClients). */
  release?: () => void;
  /**
   * This ReplicaCluster's spec.provider as written, which a reprotection's replacement copies
   * with the new identifier (keeping credentialsSecretRef and endpointUrl). Without it the block
   * is rebuilt from these options, and has no credentialsSecretRef.
   */
  provider?: ProviderSpec;
  /** Time source for the times a drill copy is tagged with. */
  now?: () => Date;
}

/** Tag keys on what reprotection creates and supersedes, for a person and for the next call. */
export const RDS_TAGS = {
  policy: 'failover-operator/policy',
  epoch: 'failover-operator/epoch',
  operationId: 'failover-operator/operation-id',
  replaces: 'failover-operator/replaces',
  supersededBy: 'failover-operator/superseded-by',
} as const;

/** The longest DB instance identifier RDS accepts. */
const MAX_INSTANCE_ID = 63;

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
  private readonly options: RdsControlPlaneOptions;
  /** Clients for the primary's region (and endpoint), made for reprotection; closed with this one. */
  private readonly otherRegions = new Map<string, RDSClient>();
  private readonly drillCopies: RdsDrillCopies;
  private closed = false;

  constructor(options: RdsControlPlaneOptions) {
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new (rdsSdk().RDSClient)(awsClientConfig(options));
    this.region = options.region;
    this.id = options.dbInstanceIdentifier;
    this.options = options;
    this.name = `RDS instance ${this.id} (${this.region})`;
    this.drillCopies = new RdsDrillCopies({
      client: this.client,
      region: this.region,
      standbyId: this.id,
      ...(options.now ? { now: options.now } : {}),
    });
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
      await this.client.send(new (rdsSdk().PromoteReadReplicaCommand)({ DBInstanceIdentifier: this.id }));
    } catch (err) {
      // RDS refuses while the instance is busy, e.g. with the promotion an earlier call started.
      if (!/^InvalidDBInstanceState/.test(awsErrorName(err))) {
        throw classifyAwsError(err, `RDS PromoteReadReplica ${this.id} (${this.region})`);
      }
      return { state: 'Pending', detail: `RDS refused PromoteReadReplica as busy: ${view.summary}` };
    }
    return { state: 'Pending', detail: `PromoteReadReplica accepted; ${view.summary}` };
  }

  /**
   * One step of bringing this former primary's region back under protection. This instance, when
   * RDS lists it as a read replica of the primary already, is the replica (no replacement). Else
   * a new read replica of the primary, `<this id>-e<epoch>`, is asked for in this region, once
   * the primary is a standalone available instance, and found by name on later calls: Pending
   * until RDS lists it "available", then Protected with it as the replacement, this instance
   * tagged as superseded by it.
   */
  async reprotect(request: ReprotectRequest): Promise<ReprotectOutcome> {
    const target = rdsBlockOf(request.primary);
    const [primary, old] = await allInOrder([
      this.describeIn(
        this.clientFor(target),
        target.region,
        target.dbInstanceIdentifier,
        primaryHint(request.primary.cluster),
      ),
      this.find(this.id),
    ]);
    const primaryArn = primary.DBInstanceArn ?? target.dbInstanceIdentifier;
    const primaryName = `${target.dbInstanceIdentifier} (${target.region})`;
    if (old && isReplicaOf(old, primary)) {
      const status = old.DBInstanceStatus ?? 'unknown';
      const said = `RDS lists ${this.id} (${this.region}) as "${status}", a read replica of ${primaryName}`;
      return status === 'available'
        ? { state: 'Protected', detail: said }
        : { state: 'Pending', detail: `${said}; waiting for "available"` };
    }
    const id = replacementName({ replaces: this.id, epoch: request.epoch, maxLength: MAX_INSTANCE_ID });
    const replica = await this.find(id);
    if (!replica) {
      const source = primary.ReadReplicaSourceDBInstanceIdentifier;
      if (source || primary.DBInstanceStatus !== 'available') {
        const what = source ? `still a read replica of ${source}` : `"${primary.DBInstanceStatus}"`;
        return {
          state: 'Pending',
          detail: `the primary ${primaryName} is ${what}; a replica of it is asked for once it is a standalone "available" instance`,
        };
      }
      return this.createReplica(id, request, primary, target.region, old);
    }
    if (!isReplicaOf(replica, primary)) {
      throw new ProviderError(
        'PreconditionFailed',
        `RDS instance ${id} (${this.region}) exists but is not a read replica of the primary ${primaryArn} (it is ${replica.ReadReplicaSourceDBInstanceIdentifier ? `a replica of ${replica.ReadReplicaSourceDBInstanceIdentifier}` : 'a standalone instance'}): rename or delete it, the operator names the replica it creates ${id}`,
        { retryable: false },
      );
    }
    const status = replica.DBInstanceStatus ?? 'unknown';
    const address = replica.Endpoint?.Address;
    if (status !== 'available' || !address) {
      return {
        state: 'Pending',
        detail: `RDS lists the new read replica ${id} (${this.region}) of ${primaryName} as "${status}"; waiting for "available"`,
      };
    }
    if (old) await this.markSuperseded(old, id);
    return {
      state: 'Protected',
      detail: `RDS lists ${id} (${this.region}) as "available", a read replica of ${primaryName}; ${old ? `${this.id} is tagged ${RDS_TAGS.supersededBy}=${id} for a person to delete` : `${this.id} no longer exists`}`,
      replacement: {
        provider: this.providerWith(id),
        host: address,
        ...(replica.Endpoint?.Port !== undefined ? { port: replica.Endpoint.Port } : {}),
        superseded: this.id,
      },
    };
  }

  /**
   * One step of an isolated drill's copy of this (standby) instance: a read replica of it,
   * promoted, or deleted (want Removed). See aws-rds-drill-copy.ts.
   */
  drillCopy(drillId: string, want: 'Serving' | 'Removed'): Promise<DrillCopyState> {
    return this.drillCopies.step(drillId, want);
  }

  async close(): Promise<void> {
    if (!this.closed) {
      if (this.ownsClient) this.client.destroy();
      else this.options.release?.();
    }
    this.closed = true;
    for (const client of this.otherRegions.values()) client.destroy();
    this.otherRegions.clear();
  }

  /**
   * CreateDBInstanceReadReplica in this region, set up like the instance it replaces (class,
   * network, encryption key), tagged with the policy, epoch and operation. Pending: RDS takes
   * minutes, and the next call finds it by name.
   */
  private async createReplica(
    id: string,
    request: ReprotectRequest,
    primary: DBInstance,
    primaryRegion: string,
    old: DBInstance | undefined,
  ): Promise<ReprotectOutcome> {
    const crossRegion = primaryRegion !== this.region;
    const input: CreateDBInstanceReadReplicaCommandInput = {
      DBInstanceIdentifier: id,
      // Across regions RDS wants the source by ARN; from its region the SDK adds the PreSignedUrl
      // RDS needs for an encrypted source (it sends no SourceRegion parameter).
      SourceDBInstanceIdentifier: crossRegion ? primary.DBInstanceArn : primary.DBInstanceIdentifier,
      ...settingsOf(old ?? primary, old !== undefined),
      Tags: [
        { Key: RDS_TAGS.policy, Value: request.policy },
        { Key: RDS_TAGS.epoch, Value: String(request.epoch) },
        { Key: RDS_TAGS.operationId, Value: request.operationId },
        { Key: RDS_TAGS.replaces, Value: this.id },
      ],
    };
    const operation = `RDS CreateDBInstanceReadReplica ${id} (${this.region}) of ${primary.DBInstanceIdentifier} (${primaryRegion})`;
    try {
      await this.client.send(new (rdsSdk().CreateDBInstanceReadReplicaCommand)(input));
    } catch (err) {
      // A call racing this one created it first: the next call finds it.
      if (!/^DBInstanceAlreadyExists/.test(awsErrorName(err))) throw classifyAwsError(err, operation);
      return { state: 'Pending', detail: `${operation}: RDS says it exists already` };
    }
    return { state: 'Pending', detail: `${operation} accepted; RDS takes minutes to create it` };
  }

  /** Tags the former primary superseded-by the replica, unless it is tagged so already. */
  private async markSuperseded(old: DBInstance, replacement: string): Promise<void> {
    const arn = old.DBInstanceArn;
    if (!arn) return;
    const operation = `RDS AddTagsToResource ${this.id} (${this.region})`;
    try {
      // DescribeDBInstances carries the tags; ask for them where it does not (moto).
      const tags =
        old.TagList ??
        (await this.client.send(new (rdsSdk().ListTagsForResourceCommand)({ ResourceName: arn }))).TagList;
      if (tags?.some((t) => t.Key === RDS_TAGS.supersededBy && t.Value === replacement)) return;
      await this.client.send(
        new (rdsSdk().AddTagsToResourceCommand)({
          ResourceName: arn,
          Tags: [{ Key: RDS_TAGS.supersededBy, Value: replacement }],
        }),
      );
    } catch (err) {
      throw classifyAwsError(err, operation);
    }
  }

  /** This ReplicaCluster's provider block, naming `id` instead. */
  private providerWith(id: string): ProviderSpec {
    const own = this.options.provider;
    const block =
      own && typeof own.awsRds === 'object' && own.awsRds !== null
        ? (own.awsRds as Record<string, unknown>)
        : {
            region: this.region,
            ...(this.options.endpointUrl ? { endpointUrl: this.options.endpointUrl } : {}),
          };
    return { ...(own ?? {}), type: 'AwsRds', awsRds: { ...block, dbInstanceIdentifier: id } };
  }

  private async describe(): Promise<DBInstance> {
    return this.describeIn(
      this.client,
      this.region,
      this.id,
      'check spec.provider.awsRds.dbInstanceIdentifier and region',
    );
  }

  /** The instance of this region, or undefined when RDS has none of that name. */
  private async find(id: string): Promise<DBInstance | undefined> {
    try {
      return await this.describeIn(this.client, this.region, id, '');
    } catch (err) {
      if (err instanceof ProviderError && err.reason === 'NotFound') return undefined;
      throw err;
    }
  }

  private async describeIn(client: RDSClient, region: string, id: string, hint: string): Promise<DBInstance> {
    const operation = `RDS DescribeDBInstances ${id} (${region})`;
    const suffix = hint ? `; ${hint}` : '';
    let instances: DBInstance[] | undefined;
    try {
      const out = await client.send(new (rdsSdk().DescribeDBInstancesCommand)({ DBInstanceIdentifier: id }));
      instances = out.DBInstances;
    } catch (err) {
      const classified = classifyAwsError(err, operation);
      if (classified.reason !== 'NotFound') throw classified;
      throw new ProviderError('NotFound', `${operation}: no such DB instance${suffix}`, { cause: err });
    }
    // RDS keeps identifiers in lower case.
    const found = instances?.find((i) => i.DBInstanceIdentifier?.toLowerCase() === id.toLowerCase());
    if (!found) throw new ProviderError('NotFound', `${operation}: RDS returned no instance ${id}${suffix}`);
    return found;
  }

  /**
   * A client for the primary's region: this one for this region, else one with these credentials
   * and the primary block's endpointUrl (an endpoint, such as a VPC endpoint, serves one region).
   */
  private clientFor(primary: { region: string; endpointUrl?: string }): RDSClient {
    if (primary.region === this.region) return this.client;
    const key = `${primary.region} ${primary.endpointUrl ?? ''}`;
    let client = this.otherRegions.get(key);
    if (!client) {
      const { endpointUrl: _ours, ...options } = this.options;
      client = new (rdsSdk().RDSClient)(
        awsClientConfig({
          ...options,
          region: primary.region,
          ...(primary.endpointUrl ? { endpointUrl: primary.endpointUrl } : {}),
        }),
      );
      this.otherRegions.set(key, client);
    }
    return client;
  }
}

/** The active primary's RDS block, from the ReprotectRequest. */
function rdsBlockOf(primary: ReprotectRequest['primary']): {
  region: string;
  dbInstanceIdentifier: string;
  endpointUrl?: string;
} {
  const block = primary.provider.awsRds as
    | { region?: unknown; dbInstanceIdentifier?: unknown; endpointUrl?: unknown }
    | undefined;
  if (
    primary.provider.type !== 'AwsRds' ||
    typeof block?.region !== 'string' ||
    typeof block.dbInstanceIdentifier !== 'string'
  ) {
    throw new ProviderError(
      'Rejected',
      `the primary ${primary.cluster} is a ${primary.provider.type} database: an RDS instance can only be rebuilt as a read replica of an RDS primary`,
      { retryable: false },
    );
  }
  return {
    region: block.region,
    dbInstanceIdentifier: block.dbInstanceIdentifier,
    ...(typeof block.endpointUrl === 'string' ? { endpointUrl: block.endpointUrl } : {}),
  };
}

function primaryHint(cluster: string): string {
  return `check spec.provider.awsRds of the primary ReplicaCluster ${cluster}`;
}

/** RDS names a same-region source by identifier and a cross-region one by ARN. */
function isReplicaOf(instance: DBInstance, primary: DBInstance): boolean {
  const source = instance.ReadReplicaSourceDBInstanceIdentifier;
  return (
    source !== undefined && (source === primary.DBInstanceArn || source === primary.DBInstanceIdentifier)
  );
}

/**
 * What the new replica takes from the instance it replaces, which had the region's network
 * set up: class, subnet group, security groups, Multi-AZ, public access, and the KMS key of this
 * region for an encrypted one (RDS requires it across regions). Without that instance, only the
 * primary's class. The parameter group is left to RDS's default: the primary may run another
 * major version than the instance it replaces did.
 */
function settingsOf(
  instance: DBInstance,
  inThisRegion: boolean,
): Partial<CreateDBInstanceReadReplicaCommandInput> {
  const settings: Partial<CreateDBInstanceReadReplicaCommandInput> = {};
  if (instance.DBInstanceClass) settings.DBInstanceClass = instance.DBInstanceClass;
  if (!inThisRegion) return settings;
  const subnetGroup = instance.DBSubnetGroup?.DBSubnetGroupName;
  if (subnetGroup) settings.DBSubnetGroupName = subnetGroup;
  const groups = (instance.VpcSecurityGroups ?? []).flatMap((g) =>
    g.VpcSecurityGroupId ? [g.VpcSecurityGroupId] : [],
  );
  if (groups.length > 0) settings.VpcSecurityGroupIds = groups;
  if (instance.MultiAZ !== undefined) settings.MultiAZ = instance.MultiAZ;
  if (instance.PubliclyAccessible !== undefined) settings.PubliclyAccessible = instance.PubliclyAccessible;
  if (instance.StorageEncrypted && instance.KmsKeyId) settings.KmsKeyId = instance.KmsKeyId;
  // Made like the instance it replaces, so infrastructure code that made that one can import this
  // one without a difference (backups cannot be set on a new read replica: RDS has no parameter).
  if (instance.StorageType) settings.StorageType = instance.StorageType;
  if (instance.AutoMinorVersionUpgrade !== undefined)
    settings.AutoMinorVersionUpgrade = instance.AutoMinorVersionUpgrade;
  if (instance.CopyTagsToSnapshot !== undefined) settings.CopyTagsToSnapshot = instance.CopyTagsToSnapshot;
  if (instance.DeletionProtection !== undefined) settings.DeletionProtection = instance.DeletionProtection;
  return settings;
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
