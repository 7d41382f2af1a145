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
  /**
   * Read replicas the operator made by reprotect in place of a former primary, to import (the
   * stack never creates them): the side they are in, and the side whose database they replicate.
   */
  replacements: z
    .array(
      z.object({
        side: z.enum(['primary', 'standby']),
        identifier: z.string().regex(/^[a-z](-?[a-z0-9])*$/, 'must be an RDS identifier'),
        sourceSide: z.enum(['primary', 'standby']),
      }),
    )
    .default([]),
  /** Replicas the stack imported earlier that a later reprotect superseded: kept, not imported again. */
  supersededReplacements: z
    .array(
      z.object({
        side: z.enum(['primary', 'standby']),
        identifier: z.string().regex(/^[a-z](-?[a-z0-9])*$/, 'must be an RDS identifier'),
      }),
    )
    .default([]),
  /** Identifiers a reprotect superseded: still declared, but no longer protected from removal. */
  superseded: z.array(z.string()).default([]),
  /** Superseded identifiers a person retired: the stack forgets them (it never deletes a database). */
  retired: z.array(z.string()).default([]),
});

export type ReplicatedRdsPostgresArgs = z.input<typeof replicatedRdsPostgresArgs>;

export class ReplicatedRdsPostgres extends pulumi.ComponentResource {
  /** The pair as first made (the original primary's endpoint seeds the DNS record). */
  readonly primary: DatabaseEndpoint;
  readonly standby: DatabaseEndpoint;
  /** Each side's database now: the one first made, or the replica a reprotect made there. */
  readonly current: { primary: DatabaseEndpoint; standby: DatabaseEndpoint };
  /** Every instance the stack declares, for the operator's IAM policy. */
  readonly instanceArns: pulumi.Output<string>[];

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

    // Pulumi never deletes a database (retainOnDelete: leaving the stack only forgets it), and
    // refuses to replace one in use (protect, with deletionProtection); a superseded one is not
    // protected, so that retiring it is one config change.
    const holdsData = (id: string) => ({
      retainOnDelete: true,
      protect: a.deletionProtection && !a.superseded.includes(id),
    });
    const retired = new Set(a.retired);

    const primary = retired.has(primaryId)
      ? undefined
      : new aws.rds.Instance(
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
          { parent: this, provider: a.primary.provider, ...holdsData(primaryId) },
        );

    /** A cross-region read replica in `place`, the first one or one a reprotect made. */
    const replicaInputs = (place: typeof a.standby, identifier: string, source: pulumi.Input<string>) => ({
      ...shared,
      identifier,
      // Cross-region replicas name their source by ARN; the engine and version come with it.
      replicateSourceDb: source,
      // An encrypted cross-region replica needs a key in its own region.
      kmsKeyId: place.kmsKeyArn,
      dbSubnetGroupName: place.dbSubnetGroupName,
      vpcSecurityGroupIds: place.securityGroupIds,
      // RDS refuses a final snapshot of a read replica.
      skipFinalSnapshot: true,
    });

    const replica = retired.has(standbyId)
      ? undefined
      : new aws.rds.Instance(
          `${name}-replica`,
          // (Once the first primary is retired, its identifier stands in: the source is ignored.)
          replicaInputs(a.standby, standbyId, primary?.arn ?? primaryId),
          {
            parent: this,
            provider: a.standby.provider,
            // After the operator promotes the replica its source is gone on purpose; a later
            // `pulumi up` must not try to make it a replica again.
            ignoreChanges: ['replicateSourceDb'],
            ...holdsData(standbyId),
          },
        );

    const endpoint = (region: string, identifier: string, made: aws.rds.Instance | undefined) => ({
      region,
      identifier,
      arn: made?.arn ?? pulumi.output(''),
      host: made?.address ?? pulumi.output(''),
    });
    this.primary = endpoint(a.primary.region, primaryId, primary);
    this.standby = endpoint(a.standby.region, standbyId, replica);

    // The operator's replicas, imported: declared as the operator made them (settings copied from
    // the instance they replace: aws-rds.ts settingsOf), so the import plans no change.
    const current = { primary: this.primary, standby: this.standby };
    const arns = [primary?.arn, replica?.arn].filter((x): x is pulumi.Output<string> => x !== undefined);
    // In a stable order: the same topology always declares the same list.
    const made = [
      ...a.replacements.map((r) => ({ ...r, current: true })),
      ...a.supersededReplacements
        .filter((r) => !retired.has(r.identifier))
        .map((r) => ({
          ...r,
          sourceSide: r.side === 'primary' ? ('standby' as const) : ('primary' as const),
          current: false,
        })),
    ].sort((x, y) => x.identifier.localeCompare(y.identifier));
    for (const r of made) {
      const place = a[r.side];
      const instance = new aws.rds.Instance(
        `${name}-${r.identifier}`,
        replicaInputs(place, r.identifier, current[r.sourceSide].arn),
        {
          parent: this,
          provider: place.provider,
          // Imported while in use; one superseded since is in the stack already.
          ...(r.current ? { import: r.identifier } : {}),
          // The source and tags are the operator's; RDS cannot set backups on a new read
          // replica, so the import would fail on them (set them once it is promoted: infra/README.md);
          // skipFinalSnapshot is the provider's own setting, not the instance's, and never used
          // (retainOnDelete: Pulumi never deletes it).
          ignoreChanges: [
            'replicateSourceDb',
            'tags',
            'tagsAll',
            'backupRetentionPeriod',
            'skipFinalSnapshot',
          ],
          ...holdsData(r.identifier),
        },
      );
      if (r.current) current[r.side] = endpoint(place.region, r.identifier, instance);
      arns.push(instance.arn);
    }
    this.current = current;
    this.instanceArns = arns;
    this.registerOutputs({ instanceArns: arns });
  }
}
