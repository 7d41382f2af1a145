/**
 * The AWS components on their own, under Pulumi's mocks: their arguments are checked before they
 * register anything, and the values the operator takes over after creation (the replica's source,
 * the DNS records) are left alone by later `pulumi up` runs.
 */
import type * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import { cidrsOverlap, subnetCidr } from '../../shared/cidr.ts';
import {
  installPulumiMocks,
  type PulumiRecorder,
  resolved,
  settled,
} from '../../shared/testing/pulumi-mocks.ts';

let recorder: PulumiRecorder;
let awsModule: typeof aws;
let components: {
  network: typeof import('./regional-network.ts');
  rds: typeof import('./replicated-rds-postgres.ts');
  aurora: typeof import('./aurora-global-postgres.ts');
  dns: typeof import('./failover-dns-record.ts');
  access: typeof import('./operator-access.ts');
};

beforeAll(async () => {
  recorder = await installPulumiMocks('failover-aws', 'components');
  awsModule = await import('@pulumi/aws');
  components = {
    network: await import('./regional-network.ts'),
    rds: await import('./replicated-rds-postgres.ts'),
    aurora: await import('./aurora-global-postgres.ts'),
    dns: await import('./failover-dns-record.ts'),
    access: await import('./operator-access.ts'),
  };
});

/** Resource options of every resource created under a component, by logical name. */
function captureOptions() {
  const options = new Map<string, pulumi.CustomResourceOptions>();
  const transformation: pulumi.ResourceTransformation = (args) => {
    options.set(args.name, args.opts);
    return undefined;
  };
  return { options, transformations: [transformation] };
}

function placement(region: string) {
  return {
    region,
    provider: new awsModule.Provider(`p-${region}`, { region }),
    dbSubnetGroupName: `db-${region}`,
    securityGroupIds: [`sg-${region}`],
    kmsKeyArn: `arn:aws:kms:${region}:123456789012:key/k`,
  };
}

const databaseArgs = () => ({
  identifierBase: 'orders',
  primary: placement('eu-west-1'),
  standby: placement('eu-central-1'),
  instanceClass: 'db.t4g.medium',
  engineVersion: '16.6',
  backupRetentionDays: 7,
  deletionProtection: true,
  databaseName: 'orders',
  masterUsername: 'dbadmin',
  masterPassword: pulumi.secret('Master-Password-0123'),
});

describe('ReplicatedRdsPostgres', () => {
  it('leaves a promoted replica alone: its source is ignored after creation', async () => {
    const { options, transformations } = captureOptions();
    new components.rds.ReplicatedRdsPostgres(
      'orders',
      { ...databaseArgs(), allocatedStorageGb: 20, multiAz: false },
      { transformations },
    );
    await settled();
    expect(options.get('orders-replica')?.ignoreChanges).toEqual(['replicateSourceDb']);
    expect(options.get('orders-primary')?.ignoreChanges).toBeUndefined();
  });

  it('refuses bad arguments before registering anything, naming the argument', async () => {
    recorder.reset();
    expect(
      () =>
        new components.rds.ReplicatedRdsPostgres('bad', {
          ...databaseArgs(),
          instanceClass: 't4g.medium',
          allocatedStorageGb: 5,
          multiAz: false,
        }),
    ).toThrow(
      /ReplicatedRdsPostgres "bad": invalid arguments: args\.instanceClass: must be an RDS instance class; args\.allocatedStorageGb: Too small/,
    );
    await settled();
    // Nothing but the providers the test itself made: not the component, not a cloud resource.
    expect(recorder.resources.filter((r) => !r.type.startsWith('pulumi:providers'))).toEqual([]);
  });
});

describe('AuroraGlobalPostgres', () => {
  it('adds the secondary only after the primary has a writer, and leaves its source to Aurora', async () => {
    const { options, transformations } = captureOptions();
    new components.aurora.AuroraGlobalPostgres('ledger', databaseArgs(), { transformations });
    await settled();
    const secondary = options.get('ledger-secondary');
    expect(secondary?.ignoreChanges).toEqual(['replicationSourceIdentifier']);
    const dependsOn = (secondary?.dependsOn ?? []) as pulumi.Resource[];
    const urns = await Promise.all(dependsOn.map((resource) => resolved(resource.urn)));
    expect(urns).toEqual([expect.stringMatching(/rds\/clusterInstance:ClusterInstance::ledger-primary-1$/)]);
  });
});

describe('FailoverDnsRecord', () => {
  it('creates the record and its TXT once, then leaves their values to the operator', async () => {
    const { options, transformations } = captureOptions();
    new components.dns.FailoverDnsRecord(
      'shop',
      {
        zoneName: 'example.com',
        hostedZoneId: 'Z0123456789ABCDEFGHIJ',
        recordName: 'shop-db.example.com',
        ttlSeconds: 30,
        target: 'primary.example.net',
        ownerId: 'default/shop',
      },
      { provider: placement('us-east-1').provider, transformations },
    );
    await settled();
    expect(options.get('shop-record')?.ignoreChanges).toEqual(['records']);
    expect(options.get('shop-owner')?.ignoreChanges).toEqual(['records']);
  });
});

describe('RegionalNetwork', () => {
  it('refuses a network too large for one region', () => {
    expect(
      () =>
        new components.network.RegionalNetwork(
          'n',
          { region: 'us-east-1', cidrBlock: '10.0.0.0/8' },
          { provider: placement('us-east-1').provider },
        ),
    ).toThrow(/RegionalNetwork "n": invalid arguments: args\.cidrBlock: must be a \/16 to \/24 network/);
  });

  it('splits the VPC range like cidrsubnet and detects overlaps', () => {
    expect([0, 1, 2].map((i) => subnetCidr('10.10.0.0/16', 4, i))).toEqual([
      '10.10.0.0/20',
      '10.10.16.0/20',
      '10.10.32.0/20',
    ]);
    expect(subnetCidr('192.168.4.0/22', 2, 3)).toBe('192.168.7.0/24');
    expect(() => subnetCidr('10.0.0.0/30', 4, 0)).toThrow(/cannot be split/);
    expect(cidrsOverlap('10.10.0.0/16', '10.20.0.0/16')).toBe(false);
    expect(cidrsOverlap('10.10.0.0/16', '10.10.200.0/24')).toBe(true);
    expect(cidrsOverlap('10.0.0.0/8', '10.255.0.0/16')).toBe(true);
  });
});

describe('operatorPolicyDocument', () => {
  it('uses the partition of the regions for the change ARN', () => {
    const doc = components.access.operatorPolicyDocument({
      partition: 'aws-us-gov',
      database: { kind: 'rds-instance', instanceArns: ['arn:aws-us-gov:rds:us-gov-west-1:1:db:a'] },
      hostedZoneArn: 'arn:aws-us-gov:route53:::hostedzone/Z1',
      recordNames: ['db.example.com'],
      recordTypes: ['CNAME'],
    });
    expect(doc.Statement.at(-1)?.Resource).toEqual(['arn:aws-us-gov:route53:::change/*']);
  });
});
