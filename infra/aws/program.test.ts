/**
 * The AWS program under Pulumi's own mocks: which resources it registers, in which region, with
 * which inputs, and whether its outputs are specs the operator accepts. No cloud is involved.
 */
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import { failoverPolicySpec, replicaClusterSpec } from '../../operator/src/api/v1alpha1/index.ts';
import { failoverStackOutputs } from '../shared/outputs.ts';
import { StackConfigError } from '../shared/stack-config.ts';
import {
  installPulumiMocks,
  type PulumiRecorder,
  type RecordedResource,
  resolved,
  settled,
} from '../shared/testing/pulumi-mocks.ts';
import { BASE, NS, SECRET_KEYS } from './stack-fixture.ts';

let recorder: PulumiRecorder;
let program: typeof import('./program.ts');
let access: typeof import('./components/operator-access.ts');

beforeAll(async () => {
  // Mocks first, then the program: the AWS package reads the runtime settings when it loads.
  recorder = await installPulumiMocks(NS, 'staging');
  program = await import('./program.ts');
  access = await import('./components/operator-access.ts');
});

/** Sets the stack config (a key set to undefined is left out) and runs the program to the end. */
async function run(overrides: Record<string, string | undefined> = {}, secretKeys = SECRET_KEYS) {
  recorder.reset();
  const config = Object.fromEntries(
    Object.entries({ ...BASE, ...overrides }).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    ),
  );
  pulumi.runtime.setAllConfig(config, secretKeys);
  const outputs = program.provisionAwsRegions();
  const [replicaClusters, failoverPolicy, policyArn] = await Promise.all([
    resolved(outputs.replicaClusters),
    resolved(outputs.failoverPolicy),
    resolved(outputs.operatorPolicyArn),
  ]);
  await settled();
  return { outputs, replicaClusters, failoverPolicy, policyArn };
}

/** The region in a regional ARN. */
const regionOfArn = (arn: unknown) => String(arn).split(':')[3];

function policyDocument(): {
  Statement: { Sid: string; Action: string[]; Resource: string[]; Condition?: unknown }[];
} {
  const policy = recorder.one('aws:iam/policy:Policy');
  return JSON.parse(String(policy.inputs.policy));
}

const allActions = () => policyDocument().Statement.flatMap((s) => s.Action);
const byName = (type: string, name: string): RecordedResource =>
  recorder.ofType(type).find((r) => r.name === name) ?? expect.unreachable(`no ${type} ${name}`);

describe('AWS stack: RDS primary with a cross-region read replica', () => {
  it('creates one provider per region and puts every regional resource in its region', async () => {
    await run();
    const providers = recorder.ofType('pulumi:providers:aws');
    expect(providers.map((p) => [p.name, p.inputs.region])).toEqual([
      ['aws-primary', 'us-east-1'],
      ['aws-standby', 'us-west-2'],
    ]);

    const regionsOf = (type: string) => recorder.ofType(type).map((r) => r.providerRegion);
    expect(regionsOf('aws:ec2/vpc:Vpc').sort()).toEqual(['us-east-1', 'us-west-2']);
    expect(regionsOf('aws:kms/key:Key').sort()).toEqual(['us-east-1', 'us-west-2']);
    expect(regionsOf('aws:rds/subnetGroup:SubnetGroup').sort()).toEqual(['us-east-1', 'us-west-2']);
    // Every resource that is not global went through one of the two regional providers.
    for (const r of recorder.resources.filter((r) => r.custom && !r.type.startsWith('pulumi:providers'))) {
      expect(r.providerRegion, `${r.type} ${r.name}`).toMatch(/^us-(east-1|west-2)$/);
    }

    // Subnets sit in the availability zones of their own region, one per zone.
    for (const subnet of recorder.ofType('aws:ec2/subnet:Subnet')) {
      expect(subnet.inputs.availabilityZone).toMatch(new RegExp(`^${subnet.providerRegion}[a-d]$`));
    }
    expect(recorder.ofType('aws:ec2/subnet:Subnet')).toHaveLength(6);
    expect(recorder.calls.map((c) => c.providerRegion).sort()).toEqual(['us-east-1', 'us-west-2']);
  });

  it('points the replica at the primary, in the standby region, encrypted with the standby key', async () => {
    await run();
    const primary = byName('aws:rds/instance:Instance', 'payments-primary');
    const replica = byName('aws:rds/instance:Instance', 'payments-replica');
    expect(primary.providerRegion).toBe('us-east-1');
    expect(replica.providerRegion).toBe('us-west-2');
    expect(primary.inputs).toMatchObject({
      identifier: 'payments-us-east-1',
      engine: 'postgres',
      engineVersion: '16.6',
      storageEncrypted: true,
      publiclyAccessible: false,
      dbName: 'payments',
      username: 'dbadmin',
    });
    expect(replica.inputs).toMatchObject({
      identifier: 'payments-us-west-2',
      replicateSourceDb: 'arn:aws:rds:us-east-1:123456789012:db:payments-us-east-1',
      storageEncrypted: true,
      publiclyAccessible: false,
    });
    // A key of each database's own region: a key never leaves its region.
    expect(regionOfArn(primary.inputs.kmsKeyId)).toBe('us-east-1');
    expect(regionOfArn(replica.inputs.kmsKeyId)).toBe('us-west-2');
    for (const key of recorder.ofType('aws:kms/key:Key')) expect(key.inputs.enableKeyRotation).toBe(true);
    // Backups on the replica too, so that it is a proper primary once promoted.
    expect(replica.inputs.backupRetentionPeriod).toBe(7);
  });

  it('admits PostgreSQL only from the VPCs and the allowed networks', async () => {
    await run({ [`${NS}:allowedCidrs`]: '["192.0.2.0/24"]' });
    const groups = recorder.ofType('aws:ec2/securityGroup:SecurityGroup');
    expect(groups).toHaveLength(2);
    for (const group of groups) {
      const ingress = group.inputs.ingress as { fromPort: number; toPort: number; cidrBlocks: string[] }[];
      expect(ingress).toHaveLength(1);
      expect(ingress[0]).toMatchObject({ fromPort: 5432, toPort: 5432 });
      expect(ingress[0]?.cidrBlocks.sort()).toEqual(['10.10.0.0/16', '10.20.0.0/16', '192.0.2.0/24']);
    }
    expect(recorder.ofType('aws:ec2/internetGateway:InternetGateway')).toHaveLength(0);
  });

  it('creates the zone, the record pointing at the primary and the ownership TXT record', async () => {
    const { replicaClusters } = await run();
    const zone = recorder.one('aws:route53/zone:Zone');
    expect(zone.inputs.name).toBe('example.com');
    const records = recorder
      .ofType('aws:route53/record:Record')
      .sort((a, b) => String(a.inputs.type).localeCompare(String(b.inputs.type)));
    expect(records.map((r) => [r.inputs.type, r.inputs.name])).toEqual([
      ['CNAME', 'payments-db.example.com'],
      ['TXT', '_failover.payments-db.example.com'],
    ]);
    const [cname, txt] = records;
    expect(cname?.inputs.records).toEqual([replicaClusters[0]?.spec.dnsTarget]);
    expect(cname?.inputs.records).toEqual(['payments-us-east-1.abcdefghijkl.us-east-1.rds.amazonaws.com']);
    expect(txt?.inputs.records).toEqual(['owner=default/payments', 'epoch=0']);
    expect(cname?.inputs.ttl).toBe(30);
  });

  it('grants the operator only the RDS, KMS and Route 53 actions it calls, on these resources only', async () => {
    await run();
    // (The replicas' statement repeats the instance actions on their names.)
    expect([...new Set(allActions())].sort()).toEqual(
      [
        ...access.RDS_INSTANCE_ACTIONS,
        ...access.RDS_REPROTECT_ACTIONS,
        'rds:DeleteDBInstance',
        ...access.KMS_REPLICA_ACTIONS,
        ...access.ROUTE53_ACTIONS,
      ].sort(),
    );
    const doc = policyDocument();
    for (const statement of doc.Statement) {
      expect(statement.Action.some((a) => a.includes('*'))).toBe(false);
      expect(statement.Resource).not.toContain('*');
    }
    const rds = doc.Statement.find((s) => s.Sid === 'ObserveAndPromoteRdsInstances');
    expect(rds?.Resource).toEqual([
      'arn:aws:rds:us-east-1:123456789012:db:payments-us-east-1',
      'arn:aws:rds:us-west-2:123456789012:db:payments-us-west-2',
    ]);
    // A reprotect's replica: only under the name the operator gives it (<replaced>-e<epoch>).
    const replicas = ['us-east-1', 'us-west-2'].map((r) => `arn:aws:rds:${r}:*:db:payments-${r}-e*`);
    const reprotect = doc.Statement.find((s) => s.Sid === 'ReprotectRdsInstances');
    expect(reprotect?.Action).toEqual([...access.RDS_REPROTECT_ACTIONS]);
    expect(reprotect?.Resource).toEqual(
      expect.arrayContaining([
        'arn:aws:rds:us-east-1:123456789012:db:payments-us-east-1',
        ...replicas,
        'arn:aws:rds:us-west-2:*:subgrp:*',
      ]),
    );
    expect(doc.Statement.find((s) => s.Sid === 'ObserveAndPromoteReprotectReplicas')?.Resource).toEqual(
      replicas,
    );
    // An isolated drill's copy: made, promoted and deleted under its own name only. Deleting is
    // allowed on nothing else (a database of the policy never matches *-drill-*).
    const drill = doc.Statement.find((s) => s.Sid === 'IsolatedDrillCopies');
    expect(drill?.Action).toEqual([...access.RDS_DRILL_COPY_ACTIONS]);
    expect(drill?.Resource).toEqual(
      expect.arrayContaining(
        ['us-east-1', 'us-west-2'].map((r) => `arn:aws:rds:${r}:*:db:payments-${r}*-drill-*`),
      ),
    );
    const deleters = doc.Statement.filter((s) => s.Action.includes('rds:DeleteDBInstance'));
    expect(deleters.map((s) => s.Sid)).toEqual(['IsolatedDrillCopies']);
    expect(doc.Statement.find((s) => s.Sid === 'EncryptReprotectReplicas')?.Resource).toEqual([
      expect.stringMatching(/^arn:aws:kms:us-east-1:/),
      expect.stringMatching(/^arn:aws:kms:us-west-2:/),
    ]);
    const zoneArn = doc.Statement.find((s) => s.Sid === 'ReadFailoverRecords')?.Resource[0];
    expect(zoneArn).toMatch(/^arn:aws:route53:::hostedzone\/Z[A-Z0-9]+$/);
    const change = doc.Statement.find((s) => s.Action.includes('route53:ChangeResourceRecordSets'));
    expect(change?.Resource).toEqual([zoneArn]);
    expect(change?.Condition).toEqual({
      'ForAllValues:StringEquals': {
        'route53:ChangeResourceRecordSetsNormalizedRecordNames': [
          'payments-db.example.com',
          '_failover.payments-db.example.com',
        ],
        'route53:ChangeResourceRecordSetsRecordTypes': ['CNAME', 'TXT'],
      },
    });
    const getChange = doc.Statement.find((s) => s.Action.includes('route53:GetChange'));
    expect(getChange?.Resource).toEqual(['arn:aws:route53:::change/*']);

    // Pod identity by default: a role EKS pods can assume, with that one policy attached.
    const role = recorder.one('aws:iam/role:Role');
    expect(JSON.parse(String(role.inputs.assumeRolePolicy)).Statement[0].Principal).toEqual({
      Service: 'pods.eks.amazonaws.com',
    });
    expect(recorder.ofType('aws:iam/rolePolicyAttachment:RolePolicyAttachment')).toHaveLength(1);
    expect(recorder.ofType('aws:iam/rolePolicy:RolePolicy')).toHaveLength(0);
    expect(recorder.ofType('aws:iam/accessKey:AccessKey')).toHaveLength(0);
  });

  it('keeps both credentials in Secrets Manager, replicated to the standby region with its key', async () => {
    await run();
    const secrets = recorder.ofType('aws:secretsmanager/secret:Secret');
    expect(secrets.map((s) => s.inputs.name).sort()).toEqual([
      'payments/master-credentials',
      'payments/operator-db-credentials',
    ]);
    for (const secret of secrets) {
      expect(secret.providerRegion).toBe('us-east-1');
      expect(regionOfArn(secret.inputs.kmsKeyId)).toBe('us-east-1');
      const replicas = secret.inputs.replicas as { region: string; kmsKeyId: string }[];
      expect(replicas).toHaveLength(1);
      expect(replicas[0]?.region).toBe('us-west-2');
      expect(regionOfArn(replicas[0]?.kmsKeyId)).toBe('us-west-2');
    }
  });

  it('outputs ReplicaCluster and FailoverPolicy specs that pass the operator validation', async () => {
    const { outputs, replicaClusters, failoverPolicy } = await run();
    expect(replicaClusters.map((c) => c.name)).toEqual(['payments-us-east-1', 'payments-us-west-2']);
    for (const cluster of replicaClusters) replicaClusterSpec.parse(cluster.spec);
    failoverPolicySpec.parse(failoverPolicy.spec);
    failoverStackOutputs.parse({ namespace: outputs.namespace, replicaClusters, failoverPolicy });

    expect(replicaClusters[1]?.spec).toEqual({
      region: 'us-west-2',
      provider: {
        type: 'AwsRds',
        awsRds: { region: 'us-west-2', dbInstanceIdentifier: 'payments-us-west-2' },
      },
      connection: {
        host: 'payments-us-west-2.abcdefghijkl.us-west-2.rds.amazonaws.com',
        port: 5432,
        database: 'payments',
        sslMode: 'require',
        credentialsSecretRef: { name: 'payments-db-credentials' },
      },
      dnsTarget: 'payments-us-west-2.abcdefghijkl.us-west-2.rds.amazonaws.com',
    });
    expect(failoverPolicy.name).toBe('payments');
    expect(failoverPolicy.spec).toMatchObject({
      primary: 'payments-us-east-1',
      standbys: ['payments-us-west-2'],
      dns: {
        provider: { type: 'Route53', route53: { hostedZoneId: expect.stringMatching(/^Z[A-Z0-9]+$/) } },
        zone: 'example.com',
        name: 'payments-db.example.com',
        type: 'CNAME',
        ttlSeconds: 30,
        ownerId: 'default/payments',
      },
      drills: { schedule: '0 3 * * 1', timeZone: 'UTC' },
    });
    // Passwords go to the databases and Secrets Manager, never into the outputs.
    expect(JSON.stringify({ replicaClusters, failoverPolicy })).not.toMatch(/Password-0123/);
  });

  it('carries the policy settings from the stack config into the FailoverPolicy', async () => {
    const { failoverPolicy } = await run({
      [`${NS}:namespace`]: 'payments-prod',
      [`${NS}:promotion`]: JSON.stringify({ mode: 'Manual', rpo: { maxLagSeconds: 5 } }),
      [`${NS}:drills`]: JSON.stringify({ schedule: '30 4 * * SUN', timeZone: 'Europe/Berlin' }),
      [`${NS}:ttlSeconds`]: '60',
    });
    expect(failoverPolicy.spec.promotion).toMatchObject({ mode: 'Manual', rpo: { maxLagSeconds: 5 } });
    expect(failoverPolicy.spec.drills).toMatchObject({ schedule: '30 4 * * SUN', timeZone: 'Europe/Berlin' });
    expect(failoverPolicy.spec.dns.ttlSeconds).toBe(60);
    expect(failoverPolicy.spec.dns.ownerId).toBe('payments-prod/payments');
    const txt = recorder.ofType('aws:route53/record:Record').find((r) => r.inputs.type === 'TXT');
    expect(txt?.inputs.records).toEqual(['owner=payments-prod/payments', 'epoch=0']);
  });

  it('uses an existing hosted zone when one is given, and scopes IAM to it', async () => {
    const { failoverPolicy } = await run({ [`${NS}:hostedZoneId`]: 'Z0123456789ABCDEFGHIJ' });
    expect(recorder.ofType('aws:route53/zone:Zone')).toHaveLength(0);
    for (const record of recorder.ofType('aws:route53/record:Record')) {
      expect(record.inputs.zoneId).toBe('Z0123456789ABCDEFGHIJ');
    }
    const change = policyDocument().Statement.find((s) =>
      s.Action.includes('route53:ChangeResourceRecordSets'),
    );
    expect(change?.Resource).toEqual(['arn:aws:route53:::hostedzone/Z0123456789ABCDEFGHIJ']);
    expect(failoverPolicy.spec.dns.provider).toEqual({
      type: 'Route53',
      route53: { hostedZoneId: 'Z0123456789ABCDEFGHIJ' },
    });
  });
});

describe('AWS stack: Aurora global database', () => {
  const aurora = { [`${NS}:databaseKind`]: 'aurora-global', [`${NS}:name`]: 'ledger' };

  it('creates the global cluster and one encrypted member cluster per region', async () => {
    await run({ ...aurora, [`${NS}:primaryRegion`]: 'eu-central-1', [`${NS}:standbyRegion`]: 'eu-west-1' });
    const global = recorder.one('aws:rds/globalCluster:GlobalCluster');
    expect(global.providerRegion).toBe('eu-central-1');
    expect(global.inputs).toMatchObject({
      globalClusterIdentifier: 'ledger-global',
      engine: 'aurora-postgresql',
      storageEncrypted: true,
    });
    const primary = byName('aws:rds/cluster:Cluster', 'ledger-primary');
    const secondary = byName('aws:rds/cluster:Cluster', 'ledger-secondary');
    expect([primary.providerRegion, secondary.providerRegion]).toEqual(['eu-central-1', 'eu-west-1']);
    for (const cluster of [primary, secondary]) {
      expect(cluster.inputs.globalClusterIdentifier).toBe('ledger-global');
      expect(cluster.inputs.storageEncrypted).toBe(true);
      expect(regionOfArn(cluster.inputs.kmsKeyId)).toBe(cluster.providerRegion);
    }
    expect(primary.inputs.masterUsername).toBe('dbadmin');
    expect(secondary.inputs.masterUsername).toBeUndefined();
    const instances = recorder.ofType('aws:rds/clusterInstance:ClusterInstance');
    expect(
      instances.map((i) => [i.inputs.clusterIdentifier, i.providerRegion, i.inputs.instanceClass]),
    ).toEqual([
      ['ledger-eu-central-1', 'eu-central-1', 'db.r6g.large'],
      ['ledger-eu-west-1', 'eu-west-1', 'db.r6g.large'],
    ]);
    expect(recorder.ofType('aws:rds/instance:Instance')).toHaveLength(0);
  });

  it('grants only the Aurora global actions, on the global cluster and its members', async () => {
    await run(aurora);
    expect(allActions().sort()).toEqual([...access.AURORA_GLOBAL_ACTIONS, ...access.ROUTE53_ACTIONS].sort());
    const rds = policyDocument().Statement.find((s) => s.Action.includes('rds:SwitchoverGlobalCluster'));
    expect(rds?.Resource).toEqual([
      'arn:aws:rds::123456789012:global-cluster:ledger-global',
      'arn:aws:rds:us-east-1:123456789012:cluster:ledger-us-east-1',
      'arn:aws:rds:us-west-2:123456789012:cluster:ledger-us-west-2',
    ]);
  });

  it('outputs AuroraGlobal ReplicaClusters that pass the operator validation', async () => {
    const { replicaClusters, failoverPolicy } = await run(aurora);
    for (const cluster of replicaClusters) replicaClusterSpec.parse(cluster.spec);
    failoverPolicySpec.parse(failoverPolicy.spec);
    expect(replicaClusters[0]?.spec.provider).toEqual({
      type: 'AuroraGlobal',
      auroraGlobal: {
        region: 'us-east-1',
        globalClusterIdentifier: 'ledger-global',
        dbClusterIdentifier: 'ledger-us-east-1',
      },
    });
    expect(replicaClusters[0]?.spec.dnsTarget).toBe(
      'ledger-us-east-1.cluster-abcdefghijkl.us-east-1.rds.amazonaws.com',
    );
  });
});

describe('AWS stack: operator identity', () => {
  it('trusts only the operator service account with IRSA', async () => {
    const oidc = 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABCDEF';
    await run({
      [`${NS}:operatorIdentity`]: 'irsa',
      [`${NS}:oidcProviderArn`]: oidc,
      [`${NS}:operatorServiceAccount`]: 'failover/operator',
    });
    const trust = JSON.parse(String(recorder.one('aws:iam/role:Role').inputs.assumeRolePolicy));
    expect(trust.Statement).toEqual([
      {
        Effect: 'Allow',
        Principal: { Federated: oidc },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: {
            'oidc.eks.us-east-1.amazonaws.com/id/ABCDEF:sub': 'system:serviceaccount:failover:operator',
            'oidc.eks.us-east-1.amazonaws.com/id/ABCDEF:aud': 'sts.amazonaws.com',
          },
        },
      },
    ]);
  });

  it('makes an IAM user without an access key, and references the credentials Secret in the specs', async () => {
    const { replicaClusters, failoverPolicy } = await run({ [`${NS}:operatorIdentity`]: 'iam-user' });
    expect(recorder.ofType('aws:iam/role:Role')).toHaveLength(0);
    expect(recorder.one('aws:iam/user:User').inputs.name).toBe('payments-failover-operator');
    expect(recorder.ofType('aws:iam/accessKey:AccessKey')).toHaveLength(0);
    const ref = { name: 'failover-aws-credentials', key: 'credentials' };
    for (const cluster of replicaClusters) {
      expect(replicaClusterSpec.parse(cluster.spec).provider).toMatchObject({
        awsRds: { credentialsSecretRef: ref },
      });
    }
    expect(failoverPolicySpec.parse(failoverPolicy.spec).dns.provider).toMatchObject({
      route53: { credentialsSecretRef: ref },
    });
  });
});

describe('AWS stack: invalid configuration stops before any resource is registered', () => {
  const cases: [string, Record<string, string | undefined>, RegExp, string[]?][] = [
    ['a missing region', { [`${NS}:standbyRegion`]: undefined }, /failover-aws:standbyRegion: is required/],
    [
      'an unknown region',
      { [`${NS}:primaryRegion`]: 'us-east-9' },
      /failover-aws:primaryRegion: "us-east-9" is not an AWS region/,
    ],
    [
      'the same region twice',
      { [`${NS}:standbyRegion`]: 'us-east-1' },
      /failover-aws:standbyRegion: must differ/,
    ],
    [
      'regions in two partitions',
      { [`${NS}:standbyRegion`]: 'cn-north-1' },
      /failover-aws:standbyRegion: cn-north-1 is in another AWS partition/,
    ],
    [
      'a missing password',
      { [`${NS}:masterPassword`]: undefined },
      /failover-aws:masterPassword: is required/,
    ],
    [
      'a password in plain text',
      {},
      /failover-aws:operatorDbPassword: is stored in plain text.*--secret/,
      [`${NS}:masterPassword`],
    ],
    [
      'a password RDS refuses',
      { [`${NS}:masterPassword`]: 'has/slash-in-it' },
      /failover-aws:masterPassword: must not contain/,
    ],
    [
      'a record outside the zone',
      { [`${NS}:recordName`]: 'db.example.org' },
      /failover-aws:recordName: must be inside zoneName example.com/,
    ],
    [
      'a misspelt key',
      { [`${NS}:standbyRegoin`]: 'us-west-2' },
      /failover-aws:standbyRegoin: is not a setting of this stack; did you mean failover-aws:standbyRegion\?/,
    ],
    [
      'IRSA without its OIDC provider',
      { [`${NS}:operatorIdentity`]: 'irsa' },
      /failover-aws:oidcProviderArn: is required when/,
    ],
    [
      'a drill schedule the operator refuses',
      { [`${NS}:drills`]: '{"schedule":"99 * * * *"}' },
      /failover-aws:drills\.schedule: must be a five-field cron expression/,
    ],
    [
      'a number that is not one',
      { [`${NS}:ttlSeconds`]: 'thirty' },
      /failover-aws:ttlSeconds: must be a number/,
    ],
    [
      'overlapping networks',
      { [`${NS}:standbyVpcCidr`]: '10.10.128.0/20' },
      /failover-aws:standbyVpcCidr: 10.10.128.0\/20 overlaps/,
    ],
  ];

  it.each(cases)('refuses %s, naming the key', async (_, overrides, message, secretKeys = SECRET_KEYS) => {
    recorder.reset();
    const config = Object.fromEntries(
      Object.entries({ ...BASE, ...overrides }).filter(
        (entry): entry is [string, string] => entry[1] !== undefined,
      ),
    );
    pulumi.runtime.setAllConfig(config, secretKeys);
    let error: unknown;
    try {
      program.provisionAwsRegions();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StackConfigError);
    // A RunError: Pulumi prints the message alone, without a stack trace.
    expect(pulumi.RunError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(message);
    await settled();
    expect(recorder.resources).toEqual([]);
  });

  it('lists every problem at once', () => {
    pulumi.runtime.setAllConfig({ [`${NS}:primaryRegion`]: 'mars-1' }, []);
    expect(() => program.provisionAwsRegions()).toThrow(
      /primaryRegion: "mars-1" is not[\s\S]*standbyRegion: is required[\s\S]*masterPassword: is required/,
    );
  });
});

describe('AWS stack entry point', () => {
  it('exports the stack outputs from index.ts', async () => {
    recorder.reset();
    pulumi.runtime.setAllConfig(BASE, SECRET_KEYS);
    const index = await import('./index.ts');
    const [replicaClusters, failoverPolicy] = await Promise.all([
      resolved(index.replicaClusters),
      resolved(index.failoverPolicy),
    ]);
    await settled();
    failoverStackOutputs.parse({ namespace: index.namespace, replicaClusters, failoverPolicy });
    expect(index.primaryRegion).toBe('us-east-1');
  });
});
