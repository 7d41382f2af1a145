/**
 * Isolated drills on Amazon RDS: a throwaway copy of the standby instance that proves it can
 * become a primary without touching it. The copy is a read replica of the standby in its region
 * (a cascading replica: RDS for PostgreSQL 14.1 or later), promoted to a standalone instance once
 * RDS lists it "available", and deleted without a final snapshot when the drill is done. Each
 * call is one step decided from what RDS lists now, so the operator simply calls again on a later
 * reconcile; nothing here waits for RDS, which takes minutes for each step.
 *
 * The copy's name follows from the standby and the drill (`<standby>-drill-<n>`): a call finds by
 * name what an earlier one asked for. Its tags say which drill made it, of which standby and when,
 * so a leftover is findable, and an instance of that name without them is never promoted or
 * deleted: it is not this drill's.
 */
import { createHash } from 'node:crypto';
import type { CreateDBInstanceReadReplicaCommandInput, DBInstance, RDSClient } from '@aws-sdk/client-rds';
import { awsErrorName, classifyAwsError } from '../aws.ts';
import { rdsSdk } from '../aws-sdk.ts';
import { ProviderError } from '../errors.ts';
import type { DrillCopyState } from './port.ts';

/** Tag keys on a drill copy, for the next call and for a person looking for leftovers. */
export const RDS_DRILL_TAGS = {
  /** The drill id: what marks the instance as this drill's copy. */
  drill: 'failover-operator/drill',
  /** The standby instance it copies. */
  copyOf: 'failover-operator/drill-copy-of',
  /** When CreateDBInstanceReadReplica was sent (ISO 8601). */
  requestedAt: 'failover-operator/drill-requested-at',
  /** When a call first saw it promoted and available (ISO 8601). */
  promotedAt: 'failover-operator/drill-promoted-at',
} as const;

/** The longest DB instance identifier RDS accepts. */
const MAX_INSTANCE_ID = 63;

/**
 * Statuses from which RDS does not bring an instance to "available" by itself: the copy will not
 * serve, and the drill fails (its removal still deletes it).
 */
const BROKEN = new Set([
  'failed',
  'incompatible-credentials',
  'incompatible-network',
  'incompatible-option-group',
  'incompatible-parameters',
  'incompatible-restore',
  'inaccessible-encryption-credentials',
  'inaccessible-encryption-credentials-recoverable',
  'insufficient-capacity',
  'restore-error',
  'storage-full',
  'stopped',
  'stopping',
]);

/**
 * `<standby>-drill-<n>`, valid as an RDS identifier (a letter first, letters, digits and single
 * hyphens, at most 63). `n` is the drill id's time stamp for the operator's ids
 * (`drill-20261201060430123` gives `20261201060430123`), else a hash of the id. A standby id too
 * long keeps its head and gets a hash of the whole, so two long ids that share a head still differ.
 */
export function drillCopyName(standbyId: string, drillId: string): string {
  const tail = drillId.replace(/^drill-/, '');
  const n = /^[a-z0-9]{1,20}$/.test(tail) ? tail : hash(drillId, 10);
  const suffix = `-drill-${n}`;
  const cleaned = clean(standbyId) || 'db';
  const head = /^[a-z]/.test(cleaned) ? cleaned : `db-${cleaned}`;
  if (head.length + suffix.length <= MAX_INSTANCE_ID) return `${head}${suffix}`;
  const room = MAX_INSTANCE_ID - suffix.length - 7;
  return `${head.slice(0, room).replace(/-+$/, '')}-${hash(standbyId, 6)}${suffix}`;
}

export interface RdsDrillCopiesOptions {
  /** The client of the standby's region. */
  client: RDSClient;
  region: string;
  /** The standby instance the copies are made of. */
  standbyId: string;
  /** Time source for the requested-at and promoted-at tags. */
  now?: () => Date;
}

/** Drill copies of one standby instance. */
export class RdsDrillCopies {
  private readonly client: RDSClient;
  private readonly region: string;
  private readonly standbyId: string;
  private readonly now: () => Date;

  constructor(options: RdsDrillCopiesOptions) {
    this.client = options.client;
    this.region = options.region;
    this.standbyId = options.standbyId;
    this.now = options.now ?? (() => new Date());
  }

  /** One step toward `want` for the copy of `drillId`. Throws ProviderError when RDS fails a call. */
  async step(drillId: string, want: 'Serving' | 'Removed'): Promise<DrillCopyState> {
    const id = drillCopyName(this.standbyId, drillId);
    const copy = await this.find(id);
    const tags = copy ? await this.tagsOf(copy) : {};
    const ours =
      copy !== undefined &&
      tags[RDS_DRILL_TAGS.drill] === drillId &&
      tags[RDS_DRILL_TAGS.copyOf] === this.standbyId;
    if (want === 'Removed') {
      if (!copy) return { phase: 'Removed', message: `RDS has no instance ${this.at(id)}` };
      if (!ours) {
        return {
          phase: 'Removed',
          message: `RDS instance ${this.at(id)} is not the copy of drill ${drillId} (${this.tagsWanted(drillId)}): left alone`,
        };
      }
      return this.remove(id, copy, tags);
    }
    if (!copy) return this.create(id, drillId);
    if (!ours) {
      return {
        phase: 'Failed',
        message: `RDS instance ${this.at(id)} exists but is not the copy of drill ${drillId} (${this.tagsWanted(drillId)}): rename or delete it, the operator names this drill's copy ${id}`,
      };
    }
    return this.serve(id, copy, tags);
  }

  /** Asks for the read replica of the standby, once the standby is "available". */
  private async create(id: string, drillId: string): Promise<DrillCopyState> {
    const standby = await this.find(this.standbyId);
    if (!standby) {
      throw new ProviderError(
        'NotFound',
        `RDS DescribeDBInstances ${this.at(this.standbyId)}: no such DB instance; check spec.provider.awsRds.dbInstanceIdentifier and region`,
      );
    }
    const status = standby.DBInstanceStatus ?? 'unknown';
    if (status !== 'available') {
      return {
        phase: 'Copying',
        message: `RDS lists the standby ${this.at(this.standbyId)} as "${status}"; its copy ${id} is asked for once it is "available"`,
      };
    }
    const requestedAt = this.now().toISOString();
    const operation = `RDS CreateDBInstanceReadReplica ${this.at(id)} of ${this.standbyId}`;
    try {
      await this.client.send(
        new (rdsSdk().CreateDBInstanceReadReplicaCommand)(
          this.replicaInput(id, drillId, standby, requestedAt),
        ),
      );
    } catch (err) {
      // A call racing this one created it first: the next call finds it.
      if (/^DBInstanceAlreadyExists/.test(awsErrorName(err))) {
        return { phase: 'Copying', message: `${operation}: RDS says it exists already` };
      }
      const classified = classifyAwsError(err, operation);
      if (classified.reason !== 'Rejected') throw classified;
      throw new ProviderError(
        'Rejected',
        `${classified.message} (a read replica of a read replica needs RDS for PostgreSQL 14.1 or later, and at most three replicas in a chain)`,
        { cause: err },
      );
    }
    return {
      phase: 'Copying',
      createdAt: requestedAt,
      message: `${operation} accepted; RDS takes minutes to create it`,
    };
  }

  /**
   * Like the standby, where it matters for reaching it: class (a promotion of the standby would
   * serve on that size), security groups (RDS would otherwise give a same-region replica the
   * VPC's default group), public access. Single-AZ and without deletion protection: throwaway.
   * Subnet group, parameter group and encryption key follow the standby by RDS's own default.
   */
  private replicaInput(
    id: string,
    drillId: string,
    standby: DBInstance,
    requestedAt: string,
  ): CreateDBInstanceReadReplicaCommandInput {
    const groups = (standby.VpcSecurityGroups ?? []).flatMap((g) =>
      g.VpcSecurityGroupId ? [g.VpcSecurityGroupId] : [],
    );
    return {
      DBInstanceIdentifier: id,
      SourceDBInstanceIdentifier: this.standbyId,
      ...(standby.DBInstanceClass ? { DBInstanceClass: standby.DBInstanceClass } : {}),
      ...(groups.length > 0 ? { VpcSecurityGroupIds: groups } : {}),
      ...(standby.PubliclyAccessible !== undefined ? { PubliclyAccessible: standby.PubliclyAccessible } : {}),
      MultiAZ: false,
      DeletionProtection: false,
      Tags: [
        { Key: RDS_DRILL_TAGS.drill, Value: drillId },
        { Key: RDS_DRILL_TAGS.copyOf, Value: this.standbyId },
        { Key: RDS_DRILL_TAGS.requestedAt, Value: requestedAt },
      ],
    };
  }

  /** The copy exists and is this drill's: promote it once available, Serving once RDS is done. */
  private async serve(id: string, copy: DBInstance, tags: Record<string, string>): Promise<DrillCopyState> {
    const status = copy.DBInstanceStatus ?? 'unknown';
    const source = copy.ReadReplicaSourceDBInstanceIdentifier;
    const times = timesOf(copy, tags);
    const listed = `RDS lists ${this.at(id)} as "${status}"`;
    if (status === 'deleting') {
      return {
        phase: 'Copying',
        ...times,
        message: `${listed} (an earlier removal); a new copy is asked for once it is gone`,
      };
    }
    if (BROKEN.has(status)) {
      return { phase: 'Failed', ...times, message: `${listed}: the copy will not serve` };
    }
    if (source) {
      if (status !== 'available') {
        return {
          phase: 'Copying',
          ...times,
          message: `${listed}, a read replica of ${source}; promoted once "available"`,
        };
      }
      return { phase: 'Copying', ...times, message: await this.promote(id, listed) };
    }
    const address = copy.Endpoint?.Address;
    if (status !== 'available' || !address) {
      return {
        phase: 'Copying',
        ...times,
        message: `${listed}, no read replica any more; serving once "available"`,
      };
    }
    const promotedAt = times.promotedAt ?? (await this.markPromoted(id, copy));
    return {
      phase: 'Serving',
      endpoint: { host: address, port: copy.Endpoint?.Port ?? 5432 },
      ...times,
      promotedAt,
      message: `${listed}, a standalone instance promoted from a read replica of ${this.standbyId}`,
    };
  }

  /**
   * PromoteReadReplica without automated backups (a throwaway copy needs none, and the backup RDS
   * takes after a promotion otherwise keeps it busy for minutes). A request RDS refuses as busy is
   * the promotion an earlier call asked for, seen early.
   */
  private async promote(id: string, listed: string): Promise<string> {
    try {
      await this.client.send(
        new (rdsSdk().PromoteReadReplicaCommand)({ DBInstanceIdentifier: id, BackupRetentionPeriod: 0 }),
      );
    } catch (err) {
      if (!/^InvalidDBInstanceState/.test(awsErrorName(err))) {
        throw classifyAwsError(err, `RDS PromoteReadReplica ${this.at(id)}`);
      }
      return `RDS refused PromoteReadReplica as busy: ${listed}`;
    }
    return `PromoteReadReplica accepted; ${listed}, a read replica of ${this.standbyId} until RDS finishes`;
  }

  /** Tags the copy with the moment it was first seen serving, which later calls report. */
  private async markPromoted(id: string, copy: DBInstance): Promise<string> {
    const at = this.now().toISOString();
    const arn = copy.DBInstanceArn;
    if (!arn) return at;
    try {
      await this.client.send(
        new (rdsSdk().AddTagsToResourceCommand)({
          ResourceName: arn,
          Tags: [{ Key: RDS_DRILL_TAGS.promotedAt, Value: at }],
        }),
      );
    } catch (err) {
      throw classifyAwsError(err, `RDS AddTagsToResource ${this.at(id)}`);
    }
    return at;
  }

  /**
   * DeleteDBInstance without a final snapshot, and without keeping automated backups: nothing of
   * a drill copy is worth keeping. While RDS deletes it (minutes) the phase stays Copying,
   * the message starting "deleting".
   */
  private async remove(id: string, copy: DBInstance, tags: Record<string, string>): Promise<DrillCopyState> {
    const status = copy.DBInstanceStatus ?? 'unknown';
    const times = timesOf(copy, tags);
    if (status === 'deleting') {
      return { phase: 'Copying', ...times, message: `deleting: RDS lists ${this.at(id)} as "deleting"` };
    }
    const operation = `RDS DeleteDBInstance ${this.at(id)}`;
    try {
      await this.client.send(
        new (rdsSdk().DeleteDBInstanceCommand)({
          DBInstanceIdentifier: id,
          SkipFinalSnapshot: true,
          DeleteAutomatedBackups: true,
        }),
      );
    } catch (err) {
      const name = awsErrorName(err);
      if (/^DBInstanceNotFound/.test(name)) {
        return { phase: 'Removed', ...times, message: `RDS has no instance ${this.at(id)}` };
      }
      // Busy (being created, promoted, rebooted): RDS deletes it once it is not.
      if (!/^InvalidDBInstanceState/.test(name)) throw classifyAwsError(err, operation);
      return {
        phase: 'Copying',
        ...times,
        message: `deleting: RDS refused ${operation} while it is "${status}"; asked again on the next call`,
      };
    }
    return { phase: 'Copying', ...times, message: `deleting: ${operation} accepted` };
  }

  /** The instance of this region, or undefined when RDS has none of that name. */
  private async find(id: string): Promise<DBInstance | undefined> {
    const operation = `RDS DescribeDBInstances ${this.at(id)}`;
    try {
      const out = await this.client.send(
        new (rdsSdk().DescribeDBInstancesCommand)({ DBInstanceIdentifier: id }),
      );
      // RDS keeps identifiers in lower case.
      return out.DBInstances?.find((i) => i.DBInstanceIdentifier?.toLowerCase() === id.toLowerCase());
    } catch (err) {
      const classified = classifyAwsError(err, operation);
      if (classified.reason === 'NotFound') return undefined;
      throw classified;
    }
  }

  /** DescribeDBInstances carries the tags; ask for them where it does not (moto). */
  private async tagsOf(instance: DBInstance): Promise<Record<string, string>> {
    let list = instance.TagList;
    if (!list && instance.DBInstanceArn) {
      try {
        list = (
          await this.client.send(
            new (rdsSdk().ListTagsForResourceCommand)({ ResourceName: instance.DBInstanceArn }),
          )
        ).TagList;
      } catch (err) {
        throw classifyAwsError(
          err,
          `RDS ListTagsForResource ${this.at(instance.DBInstanceIdentifier ?? '?')}`,
        );
      }
    }
    return Object.fromEntries((list ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  }

  private tagsWanted(drillId: string): string {
    return `no tags ${RDS_DRILL_TAGS.drill}=${drillId} and ${RDS_DRILL_TAGS.copyOf}=${this.standbyId}`;
  }

  private at(id: string): string {
    return `${id} (${this.region})`;
  }
}

/** When the copy was asked for and seen promoted, from its tags (RDS's creation time otherwise). */
function timesOf(
  copy: DBInstance,
  tags: Record<string, string>,
): Pick<DrillCopyState, 'createdAt' | 'promotedAt'> {
  const createdAt = tags[RDS_DRILL_TAGS.requestedAt] ?? copy.InstanceCreateTime?.toISOString();
  const promotedAt = tags[RDS_DRILL_TAGS.promotedAt];
  return { ...(createdAt ? { createdAt } : {}), ...(promotedAt ? { promotedAt } : {}) };
}

function hash(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** Lower case; anything but letters and digits becomes one hyphen; no hyphen at either end. */
function clean(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}
