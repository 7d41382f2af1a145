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
import {
  failoverPolicySpec,
  replicaClusterSpec,
  type TopologyDatabase,
} from '../../operator/src/api/v1alpha1/index.ts';
import { failoverNames, failoverPolicySpecFrom } from '../shared/failover-config.ts';
import {
  checkedSpec,
  type FailoverPolicySpecInput,
  type NamedSpec,
  type ReplicaClusterSpecInput,
} from '../shared/outputs.ts';
import type { ConfigSource } from '../shared/stack-config.ts';
import { type LiveTopology, liveTopology } from '../shared/topology.ts';
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

  const live = liveTopology(config, {
    primary: {},
    standby: { name: `${config.name}-${config.standbyRegion}` },
  });
  const shape = doTopology(config, live);
  const database = new ReplicatedManagedPostgres(config.name, {
    ...shape.args,
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
    // The value the record is created with; the operator owns it from then on.
    target: database.primaryHost,
    ownerId: names.ownerId,
  });

  const tokenSecretRef = { name: config.tokenSecretName, key: config.tokenSecretKey };
  /** A ReplicaCluster spec as its region's database is now (as the operator's export names it). */
  const clusterSpec = (region: string) => {
    const where = shape.where(region, database);
    return pulumi.all([where.databaseId, where.host, where.port, database.database]).apply(
      ([databaseId, h, p, db]): ReplicaClusterSpecInput => ({
        region,
        provider: {
          type: 'DigitalOcean',
          digitalOcean: {
            databaseId,
            ...(where.replicaName ? { replicaName: where.replicaName } : {}),
            tokenSecretRef,
          },
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
  };

  const primaryName = names.clusterName(config.primaryRegion);
  const standbyName = names.clusterName(config.standbyRegion);
  const replicaClusters = pulumi
    .all([
      checkedSpec(replicaClusterSpec, `ReplicaCluster ${primaryName}`, clusterSpec(config.primaryRegion)),
      checkedSpec(replicaClusterSpec, `ReplicaCluster ${standbyName}`, clusterSpec(config.standbyRegion)),
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

type Database = ReplicatedManagedPostgres;

/**
 * The pair's arguments from the live topology, and where each region's ReplicaCluster points.
 * A region's database is the cluster first made there, the first read-only node (or the cluster
 * it was promoted into), or a node a reprotect made (or the cluster it was promoted into).
 */
export function doTopology(
  config: { name: string; primaryRegion: string; standbyRegion: string; retiredDatabases: string[] },
  live: LiveTopology,
) {
  const firstCluster = `${config.name}-${config.primaryRegion}`;
  const firstNode = `${config.name}-${config.standbyRegion}`;
  const a = live.byRegion.get(config.primaryRegion)?.database ?? {};
  const b = live.byRegion.get(config.standbyRegion)?.database ?? { name: firstNode };
  const made = (d: TopologyDatabase) => d.name !== undefined && d.name !== firstNode;
  const members = [
    { region: config.primaryRegion, d: a },
    { region: config.standbyRegion, d: b },
  ];
  const firstNodeCurrent = b.name === firstNode;
  const current = new Set([a.name, b.name]);
  const superseded = [
    ...live.superseded.keys(),
    ...(a.name !== undefined ? [firstCluster] : []),
    ...(firstNodeCurrent ? [] : [firstNode]),
  ];
  const args = {
    // A first node no longer current was promoted before (only a primary is ever superseded).
    replicaPromoted: !firstNodeCurrent || b.id !== undefined,
    ...(firstNodeCurrent && b.id ? { promotedReplicaId: b.id } : {}),
    replacementNodes: members.flatMap(({ region, d }) =>
      made(d) && d.id === undefined && d.parentId && d.name
        ? [{ parentId: d.parentId, name: d.name, region }]
        : [],
    ),
    promotedNodes: members.flatMap(({ region, d }) =>
      made(d) && d.id !== undefined && d.name ? [{ id: d.id, name: d.name, region }] : [],
    ),
    // A node a reprotect made that a later one replaced was a primary in between (only a primary
    // is replaced), so it is a cluster the stack imported then: kept, unprotected, until retired.
    supersededClusters: [...live.superseded]
      .filter(([name]) => name !== firstCluster && name !== firstNode && !current.has(name))
      .map(([name, region]) => ({ name, region }))
      .sort((x, y) => x.name.localeCompare(y.name)),
    superseded: [...new Set(superseded)],
    retired: config.retiredDatabases,
  };
  /** The identifiers, host and port a region's ReplicaCluster names. */
  const where = (region: string, db: Database) => {
    const d = region === config.primaryRegion ? a : b;
    if (d.name === undefined) return { databaseId: db.clusterId, host: db.primaryHost, port: db.primaryPort };
    const node =
      db.replacementNodes.find((n) => n.name === d.name) ?? db.promotedNodes.find((n) => n.name === d.name);
    const parent = d.parentId ? pulumi.output(d.parentId) : db.clusterId;
    if (node) return { databaseId: parent, replicaName: d.name, host: node.host, port: node.port };
    return { databaseId: parent, replicaName: d.name, host: db.replicaHost, port: db.replicaPort };
  };
  return { args, where };
}
