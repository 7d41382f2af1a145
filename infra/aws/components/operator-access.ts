/**
 * Least-privilege IAM for the operator: exactly the RDS and Route 53 actions its adapters call,
 * on this stack's databases and hosted zone only, and record changes only to the failover record
 * and its ownership TXT record; for a reprotect, a replica named after the instance it replaces
 * and a grant on its region's key; for an isolated drill, a copy of a standby under its own name,
 * the one thing it may delete. Nothing else: no Secrets Manager, no wildcard actions.
 *
 * The identity that holds the policy is one of:
 * - `eks-pod-identity`: a role for EKS Pod Identity (bind it with a pod identity association);
 * - `irsa`: a role for IAM Roles for Service Accounts, trusted only by the operator's service account;
 * - `iam-user`: a user for an operator outside EKS. No access key is made here, so none lands in
 *   the stack state; create one with the AWS CLI and store it in a Kubernetes Secret.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { parseComponentArgs, pulumiInput } from '../../shared/component-args.ts';

/** What the RDS adapter calls for a standalone instance and its cross-region replica. */
export const RDS_INSTANCE_ACTIONS = ['rds:DescribeDBInstances', 'rds:PromoteReadReplica'] as const;
/**
 * What the RDS adapter calls to reprotect: a cross-region read replica of the primary in the
 * former primary's region, tagged, and the former primary tagged as superseded. The replica is
 * encrypted with its region's key, so RDS needs a grant on it.
 */
export const RDS_REPROTECT_ACTIONS = [
  'rds:CreateDBInstanceReadReplica',
  'rds:AddTagsToResource',
  'rds:ListTagsForResource',
] as const;
export const KMS_REPLICA_ACTIONS = ['kms:CreateGrant', 'kms:DescribeKey'] as const;
/**
 * What an isolated drill calls on RDS: a read replica of the standby (`<standby>-drill-<n>`),
 * promoted, and deleted afterwards. Deleting is allowed on those names only: the operator deletes
 * nothing else.
 */
export const RDS_DRILL_COPY_ACTIONS = [
  'rds:CreateDBInstanceReadReplica',
  'rds:PromoteReadReplica',
  'rds:DeleteDBInstance',
  'rds:DescribeDBInstances',
  'rds:AddTagsToResource',
  'rds:ListTagsForResource',
] as const;
/** What the Aurora adapter calls for a global database. */
export const AURORA_GLOBAL_ACTIONS = [
  'rds:DescribeGlobalClusters',
  'rds:FailoverGlobalCluster',
  'rds:SwitchoverGlobalCluster',
  'rds:DescribeDBClusters',
] as const;
/** What the Route 53 adapter calls: read the records, compare-and-swap them, wait for the change. */
export const ROUTE53_ACTIONS = [
  'route53:ListResourceRecordSets',
  'route53:ChangeResourceRecordSets',
  'route53:GetChange',
] as const;

/** Where a reprotect's replicas and a drill's copies may be made: ARN patterns, regions, keys. */
export interface RdsReprotectAccess {
  replicaArns: string[];
  drillCopyArns: string[];
  regions: string[];
  kmsKeyArns: string[];
}

export type OperatorDatabaseAccess =
  | { kind: 'rds-instance'; instanceArns: string[]; reprotect?: RdsReprotectAccess }
  | { kind: 'aurora-global'; globalClusterArn: string; clusterArns: string[] };

interface PolicyStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string[]>>;
}

/** The operator's policy document, from resolved ARNs. */
export function operatorPolicyDocument(input: {
  partition: string;
  database: OperatorDatabaseAccess;
  hostedZoneArn: string;
  /** Every record name the operator changes, fully qualified, lowercase, without trailing dot. */
  recordNames: string[];
  recordTypes: string[];
}): { Version: '2012-10-17'; Statement: PolicyStatement[] } {
  const reprotect: PolicyStatement[] =
    input.database.kind === 'rds-instance' && input.database.reprotect
      ? reprotectStatements(input.partition, input.database.instanceArns, input.database.reprotect)
      : [];
  const database: PolicyStatement =
    input.database.kind === 'rds-instance'
      ? {
          Sid: 'ObserveAndPromoteRdsInstances',
          Effect: 'Allow',
          Action: [...RDS_INSTANCE_ACTIONS],
          Resource: input.database.instanceArns,
        }
      : {
          Sid: 'ObserveAndMoveAuroraGlobalWriter',
          Effect: 'Allow',
          Action: [...AURORA_GLOBAL_ACTIONS],
          // Switchover and failover are authorised on the global cluster and its members.
          Resource: [input.database.globalClusterArn, ...input.database.clusterArns],
        };
  return {
    Version: '2012-10-17',
    Statement: [
      database,
      ...reprotect,
      {
        Sid: 'ReadFailoverRecords',
        Effect: 'Allow',
        Action: ['route53:ListResourceRecordSets'],
        Resource: [input.hostedZoneArn],
      },
      {
        Sid: 'ChangeOnlyFailoverRecords',
        Effect: 'Allow',
        Action: ['route53:ChangeResourceRecordSets'],
        Resource: [input.hostedZoneArn],
        // Every record in a change batch must be one of ours, of one of our types.
        Condition: {
          'ForAllValues:StringEquals': {
            'route53:ChangeResourceRecordSetsNormalizedRecordNames': input.recordNames,
            'route53:ChangeResourceRecordSetsRecordTypes': input.recordTypes,
          },
        },
      },
      {
        Sid: 'WaitForRecordChanges',
        Effect: 'Allow',
        Action: ['route53:GetChange'],
        // Change IDs are only known once a change is made.
        Resource: [`arn:${input.partition}:route53:::change/*`],
      },
    ],
  };
}

/**
 * A reprotect creates a replica: allowed on the replica (named after the instance it replaces),
 * on the source (the primary, one of the stack's instances) and on the subnet group, option and
 * parameter groups RDS attaches; it tags what it made and the instance it supersedes.
 */
function reprotectStatements(
  partition: string,
  instanceArns: string[],
  r: RdsReprotectAccess,
): PolicyStatement[] {
  const attached = r.regions.flatMap((region) =>
    ['subgrp', 'og', 'pg'].map((kind) => `arn:${partition}:rds:${region}:*:${kind}:*`),
  );
  return [
    {
      Sid: 'ReprotectRdsInstances',
      Effect: 'Allow',
      Action: [...RDS_REPROTECT_ACTIONS],
      Resource: [...instanceArns, ...r.replicaArns, ...attached],
    },
    {
      Sid: 'ObserveAndPromoteReprotectReplicas',
      Effect: 'Allow',
      Action: [...RDS_INSTANCE_ACTIONS],
      Resource: r.replicaArns,
    },
    {
      Sid: 'IsolatedDrillCopies',
      Effect: 'Allow',
      Action: [...RDS_DRILL_COPY_ACTIONS],
      // A copy is made from a standby (one of the instances) and lives under its own name only.
      Resource: [...instanceArns, ...r.replicaArns, ...r.drillCopyArns, ...attached],
    },
    {
      Sid: 'EncryptReprotectReplicas',
      Effect: 'Allow',
      Action: [...KMS_REPLICA_ACTIONS],
      Resource: r.kmsKeyArns,
    },
  ];
}

/** Trust policies for the role the operator assumes. */
export function operatorTrustPolicy(
  identity: 'eks-pod-identity' | 'irsa',
  serviceAccount: { namespace: string; name: string },
  oidcProviderArn?: string,
): object {
  if (identity === 'eks-pod-identity') {
    return {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'pods.eks.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
        },
      ],
    };
  }
  if (!oidcProviderArn) throw new Error('an IRSA trust policy needs the OIDC provider ARN');
  const issuer = oidcProviderArn.replace(/^arn:[^:]+:iam::\d{12}:oidc-provider\//, '');
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: oidcProviderArn },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            [`${issuer}:sub`]: `system:serviceaccount:${serviceAccount.namespace}:${serviceAccount.name}`,
            [`${issuer}:aud`]: 'sts.amazonaws.com',
          },
        },
      },
    ],
  };
}

const arnList = z.array(pulumiInput<string>()).min(1);

export const operatorAccessArgs = z.object({
  /** Names the role, user and policy. */
  baseName: z.string().min(1).max(40),
  partition: z.enum(['aws', 'aws-cn', 'aws-us-gov']),
  identity: z.enum(['eks-pod-identity', 'irsa', 'iam-user']),
  serviceAccount: z.object({ namespace: z.string().min(1), name: z.string().min(1) }),
  oidcProviderArn: z.string().optional(),
  database: z.discriminatedUnion('kind', [
    z.object({
      kind: z.literal('rds-instance'),
      instanceArns: arnList,
      reprotect: z
        .object({
          replicaArns: z.array(z.string()).min(1),
          drillCopyArns: z.array(z.string()).min(1),
          regions: z.array(z.string()).min(1),
          kmsKeyArns: arnList,
        })
        .optional(),
    }),
    z.object({
      kind: z.literal('aurora-global'),
      globalClusterArn: pulumiInput<string>(),
      clusterArns: arnList,
    }),
  ]),
  hostedZoneArn: pulumiInput<string>(),
  recordNames: z.array(z.string().min(1)).min(1),
  recordTypes: z.array(z.enum(['A', 'AAAA', 'CNAME', 'TXT'])).min(1),
});

export type OperatorAccessArgs = z.input<typeof operatorAccessArgs>;

export class OperatorAccess extends pulumi.ComponentResource {
  readonly policyArn: pulumi.Output<string>;
  /** The role for the operator's service account (eks-pod-identity, irsa). */
  readonly roleArn?: pulumi.Output<string>;
  /** The user to create an access key for (iam-user). */
  readonly userName?: pulumi.Output<string>;

  /** IAM is global: any of the stack's AWS providers will do for `opts.provider`. */
  constructor(name: string, args: OperatorAccessArgs, opts: pulumi.ComponentResourceOptions) {
    // Checked before super(): a component with bad arguments registers nothing, not even itself.
    const a = parseComponentArgs('OperatorAccess', name, operatorAccessArgs, args);
    super('regionfailover:aws:OperatorAccess', name, {}, opts);
    if (a.identity === 'irsa' && !a.oidcProviderArn) {
      throw new Error(`OperatorAccess "${name}": identity irsa needs args.oidcProviderArn`);
    }
    const child = { parent: this };

    const database: pulumi.Output<OperatorDatabaseAccess> =
      a.database.kind === 'rds-instance'
        ? pulumi
            .all([pulumi.all(a.database.instanceArns), pulumi.all(a.database.reprotect?.kmsKeyArns ?? [])])
            .apply(([instanceArns, kmsKeyArns]) => {
              const r = a.database.kind === 'rds-instance' ? a.database.reprotect : undefined;
              return {
                kind: 'rds-instance' as const,
                instanceArns,
                ...(r
                  ? {
                      reprotect: {
                        replicaArns: r.replicaArns,
                        drillCopyArns: r.drillCopyArns,
                        regions: r.regions,
                        kmsKeyArns,
                      },
                    }
                  : {}),
              };
            })
        : pulumi
            .all([a.database.globalClusterArn, pulumi.all(a.database.clusterArns)])
            .apply(([globalClusterArn, clusterArns]) => ({
              kind: 'aurora-global' as const,
              globalClusterArn,
              clusterArns,
            }));

    const policy = new aws.iam.Policy(
      `${name}-policy`,
      {
        description: `Regional failover operator: promote ${a.baseName} and re-point its DNS record`,
        policy: pulumi.all([database, a.hostedZoneArn]).apply(([db, hostedZoneArn]) =>
          JSON.stringify(
            operatorPolicyDocument({
              partition: a.partition,
              database: db,
              hostedZoneArn,
              recordNames: a.recordNames,
              recordTypes: a.recordTypes,
            }),
          ),
        ),
      },
      child,
    );
    this.policyArn = policy.arn;

    if (a.identity === 'iam-user') {
      const user = new aws.iam.User(`${name}-user`, { name: `${a.baseName}-failover-operator` }, child);
      new aws.iam.UserPolicyAttachment(
        `${name}-user-policy`,
        { user: user.name, policyArn: policy.arn },
        child,
      );
      this.userName = user.name;
    } else {
      const role = new aws.iam.Role(
        `${name}-role`,
        {
          description: `Assumed by the regional failover operator (${a.serviceAccount.namespace}/${a.serviceAccount.name})`,
          assumeRolePolicy: JSON.stringify(
            operatorTrustPolicy(a.identity, a.serviceAccount, a.oidcProviderArn),
          ),
        },
        child,
      );
      new aws.iam.RolePolicyAttachment(
        `${name}-role-policy`,
        { role: role.name, policyArn: policy.arn },
        child,
      );
      this.roleArn = role.arn;
    }
    this.registerOutputs({ policyArn: this.policyArn, roleArn: this.roleArn, userName: this.userName });
  }
}
