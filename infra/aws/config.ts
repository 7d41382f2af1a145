/**
 * The AWS stack's configuration: every key, its default and its checks. Keys live in the
 * project's namespace (`failover-aws:primaryRegion`), not in `aws:`, which belongs to the AWS
 * provider and would reject keys it does not know.
 */
import { z } from 'zod';
import { objectName } from '../../operator/src/api/v1alpha1/index.ts';
import { cidrsOverlap, ipv4Cidr, prefixOf } from '../shared/cidr.ts';
import {
  checkRecordInZone,
  failoverConfigExamples,
  failoverConfigShape,
  failoverNames,
} from '../shared/failover-config.ts';
import { AWS_REGIONS, awsPartition } from '../shared/regions.ts';
import {
  type ConfigSource,
  configJson,
  configText,
  pulumiConfigSource,
  readStackConfig,
} from '../shared/stack-config.ts';
import { checkTopology, topologyConfigShape } from '../shared/topology.ts';

/** The Pulumi project name, which is also the config namespace. */
export const AWS_PROJECT = 'failover-aws';

const awsRegion = z.enum(AWS_REGIONS, {
  error: (issue) =>
    `${JSON.stringify(issue.input)} is not an AWS region this stack knows; use one like us-east-1 (the list is in infra/shared/regions.ts)`,
});

const vpcCidr = ipv4Cidr.refine((cidr) => prefixOf(cidr) >= 16 && prefixOf(cidr) <= 24, {
  message: 'must be a /16 to /24 network, like 10.10.0.0/16',
});

// RDS and Aurora PostgreSQL both accept these; the tighter Aurora length limit applies to both.
const masterPassword = z
  .string()
  .min(8, 'must be at least 8 characters')
  .max(41, 'must be at most 41 characters (the Aurora limit)')
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
  .refine((p) => !/[/"@]/.test(p), { message: 'must not contain /, " or @ (RDS refuses them)' });

const postgresRole = (what: string) =>
  z
    .string()
    .regex(
      /^[a-z][a-z0-9_]{0,15}$/,
      `must be a ${what}: a lowercase letter, then up to 15 letters, digits or _`,
    )
    .refine((name) => !['postgres', 'rdsadmin', 'admin', 'root'].includes(name), {
      message: 'is reserved by RDS; choose another name',
    });

export const awsStackConfig = z
  .object({
    ...failoverConfigShape,
    ...topologyConfigShape,
    primaryRegion: configText(awsRegion),
    standbyRegion: configText(awsRegion),
    databaseKind: configText(
      z.enum(['rds-instance', 'aurora-global'], {
        error: 'must be rds-instance (RDS with a cross-region read replica) or aurora-global',
      }),
    ).default('rds-instance'),
    instanceClass: configText(
      z.string().regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, 'must be an RDS instance class, like db.t4g.medium'),
    ).optional(),
    engineVersion: configText(
      z.string().regex(/^\d+(\.\d+)?$/, 'must be a PostgreSQL version such as 16.6'),
    ).default('16.6'),
    allocatedStorageGb: configJson(z.number().int().min(20).max(65536)).default(20),
    multiAz: configJson(z.boolean()).default(false),
    backupRetentionDays: configJson(z.number().int().min(1).max(35)).default(7),
    deletionProtection: configJson(z.boolean()).default(true),
    primaryVpcCidr: configText(vpcCidr).default('10.10.0.0/16'),
    standbyVpcCidr: configText(vpcCidr).default('10.20.0.0/16'),
    allowedCidrs: configJson(z.array(ipv4Cidr).max(50)).default([]),
    databaseName: configText(
      z
        .string()
        .regex(
          /^[a-z][a-z0-9_]{0,62}$/,
          'must be a lowercase letter, then letters, digits or _ (at most 63)',
        ),
    ).optional(),
    masterUsername: configText(postgresRole('master user name')).default('dbadmin'),
    masterPassword: configText(masterPassword),
    operatorDbUsername: configText(postgresRole('PostgreSQL role name')).default('failover_operator'),
    operatorDbPassword: configText(z.string().min(16, 'must be at least 16 characters').max(128)),
    hostedZoneId: configText(
      z.string().regex(/^Z[A-Z0-9]+$/, 'must be a Route 53 hosted zone ID, like Z0123456789ABCDEFGHIJ'),
    ).optional(),
    ttlSeconds: configJson(z.number().int().min(5).max(3600)).default(30),
    operatorIdentity: configText(
      z.enum(['eks-pod-identity', 'irsa', 'iam-user'], {
        error: 'must be eks-pod-identity, irsa or iam-user',
      }),
    ).default('eks-pod-identity'),
    operatorServiceAccount: configText(
      z
        .string()
        .regex(
          /^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/,
          'must be <namespace>/<service account>, like failover-system/failover-operator',
        ),
    ).default('failover-system/failover-operator'),
    oidcProviderArn: configText(
      z
        .string()
        .regex(
          /^arn:aws(-cn|-us-gov)?:iam::\d{12}:oidc-provider\/.+$/,
          'must be an IAM OIDC provider ARN, like arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC',
        ),
    ).optional(),
    awsCredentialsSecretName: configText(objectName('Secret with AWS credentials.')).default(
      'failover-aws-credentials',
    ),
  })
  .superRefine((c, ctx) => {
    if (c.standbyRegion === c.primaryRegion) {
      ctx.addIssue({
        code: 'custom',
        path: ['standbyRegion'],
        message: `must differ from ${AWS_PROJECT}:primaryRegion (both are ${c.primaryRegion}): the standby has to survive the loss of the primary's region`,
      });
    } else if (awsPartition(c.standbyRegion) !== awsPartition(c.primaryRegion)) {
      ctx.addIssue({
        code: 'custom',
        path: ['standbyRegion'],
        message: `${c.standbyRegion} is in another AWS partition than ${c.primaryRegion}; RDS cannot replicate across partitions`,
      });
    }
    if (cidrsOverlap(c.primaryVpcCidr, c.standbyVpcCidr)) {
      ctx.addIssue({
        code: 'custom',
        path: ['standbyVpcCidr'],
        message: `${c.standbyVpcCidr} overlaps ${AWS_PROJECT}:primaryVpcCidr ${c.primaryVpcCidr}; the two networks must not overlap so they can be peered`,
      });
    }
    if (c.operatorIdentity === 'irsa' && !c.oidcProviderArn) {
      ctx.addIssue({
        code: 'custom',
        path: ['oidcProviderArn'],
        message: `is required when ${AWS_PROJECT}:operatorIdentity is irsa: the ARN of the EKS cluster's IAM OIDC provider`,
      });
    }
    if (c.operatorDbUsername === c.masterUsername) {
      ctx.addIssue({
        code: 'custom',
        path: ['operatorDbUsername'],
        message: 'must differ from masterUsername: the operator gets a role of its own, not the master login',
      });
    }
    checkRecordInZone(c, ctx);
    checkTopology(c, failoverNames(c), ctx);
  });

export type AwsStackConfig = z.output<typeof awsStackConfig>;

/** Reads and checks the stack configuration; throws StackConfigError naming each bad key. */
export function readAwsStackConfig(source: ConfigSource = pulumiConfigSource()): AwsStackConfig {
  return readStackConfig(
    {
      namespace: AWS_PROJECT,
      schema: awsStackConfig,
      secretKeys: ['masterPassword', 'operatorDbPassword'],
      examples: {
        ...failoverConfigExamples,
        primaryRegion: 'us-east-1',
        standbyRegion: 'us-west-2',
        masterPassword: '"$(openssl rand -hex 20)"',
        operatorDbPassword: '"$(openssl rand -hex 20)"',
      },
    },
    source,
  );
}

/** Default instance class per database kind: a small class that each kind supports for replication. */
export function instanceClassFor(config: AwsStackConfig): string {
  return config.instanceClass ?? (config.databaseKind === 'aurora-global' ? 'db.r6g.large' : 'db.t4g.medium');
}
