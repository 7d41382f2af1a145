/**
 * An Aurora PostgreSQL global database: a primary cluster in one region and a secondary cluster
 * in another, one instance each, every cluster encrypted with a key of its own region. The
 * operator moves the writer with SwitchoverGlobalCluster (planned) or FailoverGlobalCluster
 * (region lost).
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { parseComponentArgs, pulumiInput } from '../../shared/component-args.ts';
import { type DatabaseEndpoint, databasePlacement } from './database-placement.ts';

export const auroraGlobalPostgresArgs = z.object({
  /** Clusters are named `<identifierBase>-<region>`, the global cluster `<identifierBase>-global`. */
  identifierBase: z
    .string()
    .regex(/^[a-z](-?[a-z0-9])*$/, 'must be an Aurora identifier prefix, like ledger'),
  primary: databasePlacement,
  standby: databasePlacement,
  instanceClass: z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, 'must be an RDS instance class'),
  engineVersion: z.string().min(1),
  backupRetentionDays: z.number().int().min(1).max(35),
  deletionProtection: z.boolean(),
  databaseName: z.string().min(1),
  masterUsername: z.string().min(1),
  masterPassword: pulumiInput<string>(),
});

export type AuroraGlobalPostgresArgs = z.input<typeof auroraGlobalPostgresArgs>;

export class AuroraGlobalPostgres extends pulumi.ComponentResource {
  readonly globalClusterIdentifier: string;
  readonly globalClusterArn: pulumi.Output<string>;
  readonly primary: DatabaseEndpoint;
  readonly standby: DatabaseEndpoint;

  constructor(name: string, args: AuroraGlobalPostgresArgs, opts: pulumi.ComponentResourceOptions = {}) {
    // Checked before super(): a component with bad arguments registers nothing, not even itself.
    const a = parseComponentArgs('AuroraGlobalPostgres', name, auroraGlobalPostgresArgs, args);
    super('regionfailover:aws:AuroraGlobalPostgres', name, {}, opts);
    const globalId = `${a.identifierBase}-global`;
    const primaryId = `${a.identifierBase}-${a.primary.region}`;
    const standbyId = `${a.identifierBase}-${a.standby.region}`;
    const engine = 'aurora-postgresql';

    const global = new aws.rds.GlobalCluster(
      `${name}-global`,
      {
        globalClusterIdentifier: globalId,
        engine,
        engineVersion: a.engineVersion,
        databaseName: a.databaseName,
        storageEncrypted: true,
        deletionProtection: a.deletionProtection,
      },
      { parent: this, provider: a.primary.provider },
    );

    const clusterDefaults = {
      engine,
      engineVersion: a.engineVersion,
      globalClusterIdentifier: global.id,
      storageEncrypted: true,
      backupRetentionPeriod: a.backupRetentionDays,
      deletionProtection: a.deletionProtection,
      copyTagsToSnapshot: true,
    };

    const primaryCluster = new aws.rds.Cluster(
      `${name}-primary`,
      {
        ...clusterDefaults,
        clusterIdentifier: primaryId,
        kmsKeyId: a.primary.kmsKeyArn,
        databaseName: a.databaseName,
        masterUsername: a.masterUsername,
        // RDS cannot manage the master password in Secrets Manager for a global database.
        masterPassword: a.masterPassword,
        dbSubnetGroupName: a.primary.dbSubnetGroupName,
        vpcSecurityGroupIds: a.primary.securityGroupIds,
        skipFinalSnapshot: false,
        finalSnapshotIdentifier: `${primaryId}-final`,
      },
      { parent: this, provider: a.primary.provider },
    );

    const primaryInstance = new aws.rds.ClusterInstance(
      `${name}-primary-1`,
      {
        identifier: `${primaryId}-1`,
        clusterIdentifier: primaryCluster.id,
        instanceClass: a.instanceClass,
        engine,
        engineVersion: a.engineVersion,
        dbSubnetGroupName: a.primary.dbSubnetGroupName,
        publiclyAccessible: false,
      },
      { parent: this, provider: a.primary.provider },
    );

    const standbyCluster = new aws.rds.Cluster(
      `${name}-secondary`,
      {
        ...clusterDefaults,
        clusterIdentifier: standbyId,
        // An encrypted secondary needs a key in its own region.
        kmsKeyId: a.standby.kmsKeyArn,
        dbSubnetGroupName: a.standby.dbSubnetGroupName,
        vpcSecurityGroupIds: a.standby.securityGroupIds,
        // A secondary cluster cannot take a final snapshot.
        skipFinalSnapshot: true,
      },
      {
        parent: this,
        provider: a.standby.provider,
        // A secondary can only join once the primary has a writer instance.
        dependsOn: [primaryInstance],
        // Aurora sets and clears the replication source itself as the writer moves between
        // regions; a later `pulumi up` must not fight a switchover the operator made.
        ignoreChanges: ['replicationSourceIdentifier'],
      },
    );

    new aws.rds.ClusterInstance(
      `${name}-secondary-1`,
      {
        identifier: `${standbyId}-1`,
        clusterIdentifier: standbyCluster.id,
        instanceClass: a.instanceClass,
        engine,
        engineVersion: a.engineVersion,
        dbSubnetGroupName: a.standby.dbSubnetGroupName,
        publiclyAccessible: false,
      },
      { parent: this, provider: a.standby.provider },
    );

    this.globalClusterIdentifier = globalId;
    this.globalClusterArn = global.arn;
    // The cluster (writer) endpoints: the secondary's starts answering writes once it is promoted.
    this.primary = {
      region: a.primary.region,
      identifier: primaryId,
      arn: primaryCluster.arn,
      host: primaryCluster.endpoint,
    };
    this.standby = {
      region: a.standby.region,
      identifier: standbyId,
      arn: standbyCluster.arn,
      host: standbyCluster.endpoint,
    };
    this.registerOutputs({ globalClusterArn: global.arn });
  }
}
