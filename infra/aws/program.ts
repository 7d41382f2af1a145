/**
 * The AWS stack: a primary region and a standby region, each with its network and KMS key; an
 * RDS PostgreSQL primary with a cross-region read replica (or an Aurora global database); the
 * Route 53 record with its ownership TXT record; least-privilege IAM for the operator; the
 * database credentials in Secrets Manager, replicated to the standby region. Its outputs are the
 * specs of the operator's ReplicaClusters and FailoverPolicy.
 *
 * The configuration is read and checked first: a bad stack configuration stops the program
 * before a single resource is registered.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { failoverPolicySpec, replicaClusterSpec } from '../../operator/src/api/v1alpha1/index.ts';
import { ownershipRecordName } from '../../operator/src/providers/dns/port.ts';
import { failoverNames, failoverPolicySpecFrom } from '../shared/failover-config.ts';
import {
  checkedSpec,
  type FailoverPolicySpecInput,
  type NamedSpec,
  type ReplicaClusterSpecInput,
} from '../shared/outputs.ts';
import { awsPartition } from '../shared/regions.ts';
import type { ConfigSource } from '../shared/stack-config.ts';
import { type LiveTopology, liveTopology } from '../shared/topology.ts';
import { AuroraGlobalPostgres } from './components/aurora-global-postgres.ts';
import type { DatabaseEndpoint } from './components/database-placement.ts';
import { FailoverDnsRecord } from './components/failover-dns-record.ts';
import { OperatorAccess } from './components/operator-access.ts';
import { RegionalKey } from './components/regional-key.ts';
import { RegionalNetwork } from './components/regional-network.ts';
import { ReplicatedRdsPostgres } from './components/replicated-rds-postgres.ts';
import { ReplicatedSecret } from './components/replicated-secret.ts';
import { type AwsStackConfig, instanceClassFor, readAwsStackConfig } from './config.ts';

/** The AWS stack's outputs: the operator's specs first, then what a person needs to finish. */
export interface AwsStackOutputs {
  namespace: string;
  replicaClusters: pulumi.Output<NamedSpec<ReplicaClusterSpecInput>[]>;
  failoverPolicy: pulumi.Output<NamedSpec<FailoverPolicySpecInput>>;
  primaryRegion: string;
  standbyRegion: string;
  databaseKind: AwsStackConfig['databaseKind'];
  hostedZoneId: pulumi.Output<string>;
  /** Name servers to delegate the zone to, when the stack created it. */
  nameServers: pulumi.Output<string[]>;
  operatorPolicyArn: pulumi.Output<string>;
  operatorRoleArn: pulumi.Output<string> | undefined;
  operatorUserName: pulumi.Output<string> | undefined;
  masterCredentialsSecretArn: pulumi.Output<string>;
  operatorCredentialsSecretArn: pulumi.Output<string>;
}

/** Provisions both regions from the stack configuration. */
export function provisionAwsRegions(source?: ConfigSource): AwsStackOutputs {
  const config = readAwsStackConfig(source);
  const names = failoverNames(config);
  const partition = awsPartition(config.primaryRegion);
  const databaseName = config.databaseName ?? config.name.replaceAll('-', '_');

  const tags = {
    'regionfailover.io/stack': `${pulumi.getProject()}/${pulumi.getStack()}`,
    'regionfailover.io/name': config.name,
  };
  // Explicit providers, one per region: no resource can land in a region picked up from the
  // environment. The names say where a region started; after a failover the operator's status,
  // not these names, says which one is primary.
  const primaryProvider = new aws.Provider('aws-primary', {
    region: config.primaryRegion,
    defaultTags: { tags },
  });
  const standbyProvider = new aws.Provider('aws-standby', {
    region: config.standbyRegion,
    defaultTags: { tags },
  });

  const primaryNetwork = new RegionalNetwork(
    `${config.name}-primary`,
    {
      region: config.primaryRegion,
      cidrBlock: config.primaryVpcCidr,
      allowedCidrs: [config.standbyVpcCidr, ...config.allowedCidrs],
    },
    { provider: primaryProvider },
  );
  const standbyNetwork = new RegionalNetwork(
    `${config.name}-standby`,
    {
      region: config.standbyRegion,
      cidrBlock: config.standbyVpcCidr,
      allowedCidrs: [config.primaryVpcCidr, ...config.allowedCidrs],
    },
    { provider: standbyProvider },
  );
  const primaryKey = new RegionalKey(
    `${config.name}-primary`,
    { region: config.primaryRegion, purpose: `${config.name}-db` },
    { provider: primaryProvider },
  );
  const standbyKey = new RegionalKey(
    `${config.name}-standby`,
    { region: config.standbyRegion, purpose: `${config.name}-db` },
    { provider: standbyProvider },
  );

  const placement = {
    primary: {
      region: config.primaryRegion,
      provider: primaryProvider,
      dbSubnetGroupName: primaryNetwork.dbSubnetGroupName,
      securityGroupIds: [primaryNetwork.securityGroupId],
      kmsKeyArn: primaryKey.arn,
    },
    standby: {
      region: config.standbyRegion,
      provider: standbyProvider,
      dbSubnetGroupName: standbyNetwork.dbSubnetGroupName,
      securityGroupIds: [standbyNetwork.securityGroupId],
      kmsKeyArn: standbyKey.arn,
    },
  };
  const common = {
    identifierBase: config.name,
    ...placement,
    instanceClass: instanceClassFor(config),
    engineVersion: config.engineVersion,
    backupRetentionDays: config.backupRetentionDays,
    deletionProtection: config.deletionProtection,
    databaseName,
    masterUsername: config.masterUsername,
    masterPassword: pulumi.secret(config.masterPassword),
  };

  let primary: DatabaseEndpoint;
  let standby: DatabaseEndpoint;
  let providerBlock: (endpoint: DatabaseEndpoint) => ReplicaClusterSpecInput['provider'];
  let databaseAccess: ConstructorParameters<typeof OperatorAccess>[1]['database'];
  // Without pod identity the operator reads AWS credentials from this Secret.
  const awsCredentials =
    config.operatorIdentity === 'iam-user'
      ? { credentialsSecretRef: { name: config.awsCredentialsSecretName, key: 'credentials' } }
      : {};

  const firstIds = {
    primary: `${config.name}-${config.primaryRegion}`,
    standby: `${config.name}-${config.standbyRegion}`,
  };
  const live = liveTopology(config, {
    primary: { name: firstIds.primary },
    standby: { name: firstIds.standby },
  });
  let firstPrimaryHost: pulumi.Output<string>;
  if (config.databaseKind === 'aurora-global') {
    checkAuroraTopology(live, firstIds);
    const aurora = new AuroraGlobalPostgres(config.name, common);
    primary = aurora.primary;
    standby = aurora.standby;
    firstPrimaryHost = primary.host;
    providerBlock = (endpoint) => ({
      type: 'AuroraGlobal',
      auroraGlobal: {
        region: endpoint.region,
        globalClusterIdentifier: aurora.globalClusterIdentifier,
        dbClusterIdentifier: endpoint.identifier,
        ...awsCredentials,
      },
    });
    databaseAccess = {
      kind: 'aurora-global',
      globalClusterArn: aurora.globalClusterArn,
      clusterArns: [primary.arn, standby.arn],
    };
  } else {
    const rds = new ReplicatedRdsPostgres(config.name, {
      ...common,
      allocatedStorageGb: config.allocatedStorageGb,
      multiAz: config.multiAz,
      ...rdsTopology(config, live, firstIds),
    });
    // What each region's ReplicaCluster names now: the first pair, or a reprotect's replica.
    primary = rds.current.primary;
    standby = rds.current.standby;
    firstPrimaryHost = rds.primary.host;
    providerBlock = (endpoint) => ({
      type: 'AwsRds',
      awsRds: { region: endpoint.region, dbInstanceIdentifier: endpoint.identifier, ...awsCredentials },
    });
    databaseAccess = {
      kind: 'rds-instance',
      instanceArns: rds.instanceArns,
      reprotect: {
        // A reprotect names its replica after the instance it replaces and the epoch.
        replicaArns: [config.primaryRegion, config.standbyRegion].map(
          (region) => `arn:${partition}:rds:${region}:*:db:${config.name}-${region}-e*`,
        ),
        // An isolated drill's copy of a standby: `<standby>-drill-<n>`.
        drillCopyArns: [config.primaryRegion, config.standbyRegion].map(
          (region) => `arn:${partition}:rds:${region}:*:db:${config.name}-${region}*-drill-*`,
        ),
        regions: [config.primaryRegion, config.standbyRegion],
        kmsKeyArns: [primaryKey.arn, standbyKey.arn],
      },
    };
  }

  const dns = new FailoverDnsRecord(
    config.name,
    {
      zoneName: config.zoneName,
      hostedZoneId: config.hostedZoneId,
      recordName: config.recordName,
      ttlSeconds: config.ttlSeconds,
      // The value the record is created with; the operator owns it from then on.
      target: firstPrimaryHost,
      ownerId: names.ownerId,
      partition,
    },
    { provider: primaryProvider },
  );

  const [serviceAccountNamespace = '', serviceAccountName = ''] = config.operatorServiceAccount.split('/');
  const operator = new OperatorAccess(
    `${config.name}-operator`,
    {
      baseName: config.name,
      partition,
      identity: config.operatorIdentity,
      serviceAccount: { namespace: serviceAccountNamespace, name: serviceAccountName },
      oidcProviderArn: config.oidcProviderArn,
      database: databaseAccess,
      hostedZoneArn: dns.hostedZoneArn,
      recordNames: [config.recordName, ownershipRecordName(config.recordName)],
      recordTypes: ['CNAME', 'TXT'],
    },
    { provider: primaryProvider },
  );

  const secret = (suffix: string, description: string, username: string, password: string) =>
    new ReplicatedSecret(
      `${config.name}-${suffix}`,
      {
        secretName: `${config.name}/${suffix}`,
        description,
        primaryKmsKeyArn: primaryKey.arn,
        standbyRegion: config.standbyRegion,
        standbyKmsKeyArn: standbyKey.arn,
        secretString: pulumi.secret(
          // The failover record, not an instance: after a failover an instance's endpoint is the
          // old primary, which clients must not reach; the record follows the primary.
          pulumi.jsonStringify({
            username,
            password,
            dbname: databaseName,
            host: config.recordName,
            port: 5432,
          }),
        ),
      },
      { provider: primaryProvider },
    );
  const masterSecret = secret(
    'master-credentials',
    `Master login of the ${config.name} database`,
    config.masterUsername,
    config.masterPassword,
  );
  const operatorSecret = secret(
    'operator-db-credentials',
    `Login of the failover operator on the ${config.name} database; copy it into the Kubernetes Secret ${names.credentialsSecretName}`,
    config.operatorDbUsername,
    config.operatorDbPassword,
  );

  const clusterSpec = (endpoint: DatabaseEndpoint) =>
    endpoint.host.apply(
      (host): ReplicaClusterSpecInput => ({
        region: endpoint.region,
        provider: providerBlock(endpoint),
        connection: {
          host,
          port: 5432,
          database: databaseName,
          sslMode: 'require',
          credentialsSecretRef: { name: names.credentialsSecretName },
        },
        dnsTarget: host,
      }),
    );
  const primaryName = names.clusterName(config.primaryRegion);
  const standbyName = names.clusterName(config.standbyRegion);
  const replicaClusters = pulumi
    .all([
      checkedSpec(replicaClusterSpec, `ReplicaCluster ${primaryName}`, clusterSpec(primary)),
      checkedSpec(replicaClusterSpec, `ReplicaCluster ${standbyName}`, clusterSpec(standby)),
    ])
    .apply(([primarySpec, standbySpec]) => [
      { name: primaryName, spec: primarySpec as ReplicaClusterSpecInput },
      { name: standbyName, spec: standbySpec as ReplicaClusterSpecInput },
    ]);

  const policySpec = dns.hostedZoneId.apply(
    (hostedZoneId): FailoverPolicySpecInput =>
      failoverPolicySpecFrom(
        config,
        { primary: primaryName, standbys: [standbyName] },
        {
          provider: {
            type: 'Route53',
            route53: { hostedZoneId, ...route53Region(partition), ...awsCredentials },
          },
          ttlSeconds: config.ttlSeconds,
        },
      ),
  );
  const failoverPolicy = checkedSpec(
    failoverPolicySpec,
    `FailoverPolicy ${names.policyName}`,
    policySpec,
  ).apply((spec) => ({ name: names.policyName, spec: spec as FailoverPolicySpecInput }));

  return {
    namespace: config.namespace,
    replicaClusters,
    failoverPolicy,
    primaryRegion: config.primaryRegion,
    standbyRegion: config.standbyRegion,
    databaseKind: config.databaseKind,
    hostedZoneId: dns.hostedZoneId,
    nameServers: dns.nameServers,
    operatorPolicyArn: operator.policyArn,
    operatorRoleArn: operator.roleArn,
    operatorUserName: operator.userName,
    masterCredentialsSecretArn: masterSecret.arn,
    operatorCredentialsSecretArn: operatorSecret.arn,
  };
}

/** Route 53's API lives in one region per partition; the operator's default is the commercial one. */
function route53Region(partition: ReturnType<typeof awsPartition>): { region?: string } {
  if (partition === 'aws-cn') return { region: 'cn-northwest-1' };
  if (partition === 'aws-us-gov') return { region: 'us-gov-west-1' };
  return {};
}

/**
 * The RDS pair's arguments from the live topology: the replicas a reprotect made (imported), the
 * instances they superseded, and those a person retired. A region whose database is not the one
 * first made there has a replacement; a first instance no member names any more is superseded.
 */
export function rdsTopology(
  config: { primaryRegion: string; retiredDatabases: string[] },
  live: LiveTopology,
  firstIds: { primary: string; standby: string },
): {
  replacements: { side: 'primary' | 'standby'; identifier: string; sourceSide: 'primary' | 'standby' }[];
  supersededReplacements: { side: 'primary' | 'standby'; identifier: string }[];
  superseded: string[];
  retired: string[];
} {
  const sideOf = (region: string): 'primary' | 'standby' =>
    region === config.primaryRegion ? 'primary' : 'standby';
  const active = sideOf(live.primaryRegion);
  const other = active === 'primary' ? 'standby' : 'primary';
  const firsts = new Set([firstIds.primary, firstIds.standby]);
  const replacements = [...live.byRegion.values()].flatMap((m) => {
    const side = sideOf(m.region);
    const name = m.database.name;
    if (!name || name === firstIds[side]) return [];
    // A standby replicates from the primary's side; a promoted replacement's source no longer matters.
    return [{ side, identifier: name, sourceSide: side === active ? other : active }];
  });
  const current = new Set([...live.byRegion.values()].map((m) => m.database.name));
  // An earlier reprotect's replica that a later one replaced: the stack made it part of itself by
  // importing it, and keeps it (unprotected) until a person retires it.
  const supersededReplacements = [...live.superseded]
    .filter(([name]) => !firsts.has(name) && !current.has(name))
    .map(([identifier, region]) => ({ side: sideOf(region), identifier }))
    .sort((x, y) => x.identifier.localeCompare(y.identifier));
  const superseded = [
    ...new Set([...live.superseded.keys(), ...[...firsts].filter((id) => !current.has(id))]),
  ];
  return { replacements, supersededReplacements, superseded, retired: config.retiredDatabases };
}

/** Aurora moves the writer inside one global database: its members are always the first two. */
function checkAuroraTopology(live: LiveTopology, firstIds: { primary: string; standby: string }): void {
  const names = [...live.byRegion.values()].map((m) => m.database.name);
  const unknown = names.filter((n) => n !== firstIds.primary && n !== firstIds.standby);
  if (unknown.length)
    throw new pulumi.RunError(
      `the topology names Aurora clusters this stack did not make (${unknown.join(', ')}); an Aurora global database keeps its member clusters across failovers, so export the topology of this stack's policy`,
    );
}
