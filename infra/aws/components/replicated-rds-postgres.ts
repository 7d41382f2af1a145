/**
 * An RDS for PostgreSQL primary and its cross-region read replica, both encrypted with a key of
 * their own region. The operator promotes the replica with PromoteReadReplica; this component
 * only creates the pair and then stays out of the way of that promotion.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { parseComponentArgs, pulumiInput } from '../../shared/component-args.ts';
import { type DatabaseEndpoint, databasePlacement } from './database-placement.ts';

export const replicatedRdsPostgresArgs = z.object({
  /** Instances are named `<identifierBase>-<region>`. */
  identifierBase: z.string().regex(/^[a-z](-?[a-z0-9])*$/, 'must be an RDS identifier prefix, like payments'),
  primary: databasePlacement,
  standby: databasePlacement,
  instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, 'must be an RDS instance class'),
  engineVersion: z.string().min(1),
  allocatedStorageGb: z.number().int().min(20).max(65536),
  multiAz: z.boolean(),
  backupRetentionDays: z.number().int().min(1).max(35),
  deletionProtection: z.boolean(),
  databaseName: z.string().min(1),
  masterUsername: z.string().min(1),
  masterPassword: pulumiInput<string>(),
});

export type ReplicatedRdsPostgresArgs = z.input<typeof replicatedRdsPostgresArgs>;

export class ReplicatedRdsPostgres extends pulumi.ComponentResource {
  readonly primary: DatabaseEndpoint;
  readonly standby: DatabaseEndpoint;

  constructor(name: string, args: ReplicatedRdsPostgresArgs, opts: pulumi.ComponentResourceOptions = {}) {
    // Checked before super(): a component with bad arguments registers nothing, not even itself.
    const a = parseComponentArgs('ReplicatedRdsPostgres', name, replicatedRdsPostgresArgs, args);
    super('regionfailover:aws:ReplicatedRdsPostgres', name, {}, opts);
    const primaryId = `${a.identifierBase}-${a.primary.region}`;
    const standbyId = `${a.identifierBase}-${a.standby.region}`;

    const shared = {
      instanceClass: a.instanceClass,
      storageType: 'gp3',
      storageEncrypted: true,
      multiAz: a.multiAz,
      // Backups on the replica too: once promoted it is the primary and must have them.
      backupRetentionPeriod: a.backupRetentionDays,
      deletionProtection: a.deletionProtection,
      publiclyAccessible: false,
      autoMinorVersionUpgrade: true,
      copyTagsToSnapshot: true,
    };

    const primary = new aws.rds.Instance(
      `${name}-primary`,
      {
        ...shared,
        identifier: primaryId,
        engine: 'postgres',
        engineVersion: a.engineVersion,
        allocatedStorage: a.allocatedStorageGb,
        kmsKeyId: a.primary.kmsKeyArn,
        dbName: a.databaseName,
        username: a.masterUsername,
        password: a.masterPassword,
        dbSubnetGroupName: a.primary.dbSubnetGroupName,
        vpcSecurityGroupIds: a.primary.securityGroupIds,
        skipFinalSnapshot: false,
        finalSnapshotIdentifier: `${primaryId}-final`,
      },
      { parent: this, provider: a.primary.provider },
    );

    const replica = new aws.rds.Instance(
      `${name}-replica`,
      {
        ...shared,
        identifier: standbyId,
        // Cross-region replicas name their source by ARN; the engine and version come with it.
        replicateSourceDb: primary.arn,
        // An encrypted cross-region replica needs a key in its own region.
        kmsKeyId: a.standby.kmsKeyArn,
        dbSubnetGroupName: a.standby.dbSubnetGroupName,
        vpcSecurityGroupIds: a.standby.securityGroupIds,
        // RDS refuses a final snapshot of a read replica.
        skipFinalSnapshot: true,
      },
      {
        parent: this,
        provider: a.standby.provider,
        // After the operator promotes the replica its source is gone on purpose; a later
        // `pulumi up` must not try to make it a replica again.
        ignoreChanges: ['replicateSourceDb'],
      },
    );

    this.primary = {
      region: a.primary.region,
      identifier: primaryId,
      arn: primary.arn,
      host: primary.address,
    };
    this.standby = {
      region: a.standby.region,
      identifier: standbyId,
      arn: replica.arn,
      host: replica.address,
    };
    this.registerOutputs({ primaryArn: primary.arn, standbyArn: replica.arn });
  }
}
