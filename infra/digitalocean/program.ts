/**
 * The DigitalOcean stack: a managed PostgreSQL cluster in the primary region with a read-only
 * node in the standby region, database firewalls, a login for the operator, and the domain with
 * the failover record and its ownership TXT records. Its outputs are the specs of the operator's
 * ReplicaClusters and FailoverPolicy.
 *
 * The operator's API token is not made here: DigitalOcean issues scoped tokens only in its control
 * panel, so the specs reference a Kubernetes Secret that holds one (see infra/README.md for scopes).
 *
 * The configuration is read and checked first: a bad stack configuration stops the program
 * before a single resource is registered.
 */
import * as pulumi from '@pulumi/pulumi';
import { failoverPolicySpec, replicaClusterSpec } from '../../operator/src/api/v1alpha1/index.ts';
import { failoverNames, failoverPolicySpecFrom } from '../shared/failover-config.ts';
import {
  checkedSpec,
  type FailoverPolicySpecInput,
  type NamedSpec,
  type ReplicaClusterSpecInput,
} from '../shared/outputs.ts';
import type { ConfigSource } from '../shared/stack-config.ts';
import { FailoverDomainRecord } from './components/failover-domain-record.ts';
import { ReplicatedManagedPostgres } from './components/replicated-managed-postgres.ts';
import { readDigitalOceanStackConfig } from './config.ts';

/** The DigitalOcean stack's outputs: the operator's specs first, then what a person needs to finish. */
export interface DigitalOceanStackOutputs {
  namespace: string;
  replicaClusters: pulumi.Output<NamedSpec<ReplicaClusterSpecInput>[]>;
  failoverPolicy: pulumi.Output<NamedSpec<FailoverPolicySpecInput>>;
  primaryRegion: string;
  standbyRegion: string;
  databaseId: pulumi.Output<string>;
  replicaUuid: pulumi.Output<string>;
  operatorDbUsername: pulumi.Output<string>;
  /** A Pulumi secret: `pulumi stack output operatorDbPassword --show-secrets`. */
  operatorDbPassword: pulumi.Output<string>;
}

/** Provisions both regions from the stack configuration. */
export function provisionDigitalOceanRegions(source?: ConfigSource): DigitalOceanStackOutputs {
  const config = readDigitalOceanStackConfig(source);
  const names = failoverNames(config);

  const database = new ReplicatedManagedPostgres(config.name, {
    nameBase: config.name,
    primaryRegion: config.primaryRegion,
    standbyRegion: config.standbyRegion,
    size: config.size,
    replicaSize: config.replicaSize ?? config.size,
    nodeCount: config.nodeCount,
    engineVersion: config.engineVersion,
    trustedSources: config.trustedSources,
    operatorUsername: config.operatorDbUsername,
    tags: [`regionfailover-${config.name}`],
  });

  new FailoverDomainRecord(config.name, {
    zoneName: config.zoneName,
    createDomain: config.createDomain,
    recordName: config.recordName,
    ttlSeconds: config.ttlSeconds,
    target: database.primaryHost,
    ownerId: names.ownerId,
  });

  const tokenSecretRef = { name: config.tokenSecretName, key: config.tokenSecretKey };
  const clusterSpec = (
    region: string,
    host: pulumi.Output<string>,
    port: pulumi.Output<number>,
    replicaName: string | undefined,
  ) =>
    pulumi.all([database.clusterId, host, port, database.database]).apply(
      ([databaseId, h, p, db]): ReplicaClusterSpecInput => ({
        region,
        provider: {
          type: 'DigitalOcean',
          digitalOcean: { databaseId, ...(replicaName ? { replicaName } : {}), tokenSecretRef },
        },
        connection: {
          host: h,
          port: p,
          database: db,
          sslMode: 'require',
          credentialsSecretRef: { name: names.credentialsSecretName },
        },
        dnsTarget: h,
      }),
    );

  const primaryName = names.clusterName(config.primaryRegion);
  const standbyName = names.clusterName(config.standbyRegion);
  const replicaClusters = pulumi
    .all([
      checkedSpec(
        replicaClusterSpec,
        `ReplicaCluster ${primaryName}`,
        clusterSpec(config.primaryRegion, database.primaryHost, database.primaryPort, undefined),
      ),
      checkedSpec(
        replicaClusterSpec,
        `ReplicaCluster ${standbyName}`,
        clusterSpec(config.standbyRegion, database.replicaHost, database.replicaPort, database.replicaName),
      ),
    ])
    .apply(([primarySpec, standbySpec]) => [
      { name: primaryName, spec: primarySpec as ReplicaClusterSpecInput },
      { name: standbyName, spec: standbySpec as ReplicaClusterSpecInput },
    ]);

  const policySpec = failoverPolicySpecFrom(
    config,
    { primary: primaryName, standbys: [standbyName] },
    { provider: { type: 'DigitalOcean', digitalOcean: { tokenSecretRef } }, ttlSeconds: config.ttlSeconds },
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
    databaseId: database.clusterId,
    replicaUuid: database.replicaUuid,
    operatorDbUsername: database.operatorUsername,
    operatorDbPassword: database.operatorPassword,
  };
}
