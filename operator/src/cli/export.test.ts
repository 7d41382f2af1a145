/**
 * `kubectl failover export`: manifests for Git and the topology for Pulumi, from a policy and its
 * ReplicaClusters as stored. Against a real API server (and `kubectl diff`): the kubectl-plugin
 * integration test.
 */
import { describe, expect, it } from 'vitest';
import { type OperationReport, publishedTopology } from '../api/v1alpha1/index.ts';
import type { KubeObject } from '../runtime/kube-client.ts';
import { exportManifests, exportTopology, pendingReplacement } from './export.ts';
import { policyView } from './policies.ts';

const rds = (name: string, region: string, id: string) => ({
  apiVersion: 'regionfailover.io/v1alpha1',
  kind: 'ReplicaCluster',
  metadata: {
    name,
    namespace: 'shop',
    uid: 'u',
    resourceVersion: '7',
    managedFields: [{ manager: 'kubectl' }],
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', team: 'payments' },
  },
  spec: {
    region,
    provider: {
      type: 'AwsRds',
      awsRds: { region, dbInstanceIdentifier: id, credentialsSecretRef: { name: 'aws', key: 'credentials' } },
    },
    connection: {
      host: `${id}.rds.example`,
      port: 5432,
      database: 'orders',
      credentialsSecretRef: { name: 'db' },
    },
    dnsTarget: `${id}.rds.example`,
  },
  status: { role: 'Standby' },
});

function policy(history: OperationReport[], over: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'FailoverPolicy',
    metadata: { name: 'orders', namespace: 'shop', uid: 'p', generation: 9 } as KubeObject['metadata'],
    spec: {
      primary: 'orders-us-east-1',
      standbys: ['orders-us-west-2'],
      dns: {
        provider: { type: 'Route53', route53: { hostedZoneId: 'Z1' } },
        zone: 'example.com',
        name: 'db.example.com',
      },
      promotionRequest: { id: 'r1', kind: 'Failover', target: 'orders-us-west-2' },
      ...over,
    },
    status: {
      activePrimary: 'orders-us-west-2',
      epoch: 1,
      topology: [
        { cluster: 'orders-us-west-2', role: 'Primary', ready: true },
        { cluster: 'orders-us-east-1', role: 'FormerPrimary', ready: false },
      ],
      history,
    },
  } as KubeObject;
}

const reprotect = (result: 'Aborted' | 'Succeeded', withReplacement: boolean): OperationReport => ({
  id: 'reprotect-e1',
  kind: 'Reprotect',
  trigger: 'Automatic',
  from: 'orders-us-east-1',
  to: 'orders-us-west-2',
  epoch: 1,
  result,
  startedAt: '2026-11-30T10:00:00Z',
  completedAt: '2026-11-30T10:20:00Z',
  ...(withReplacement
    ? {
        replacement: {
          cluster: 'orders-us-east-1',
          provider: {
            type: 'AwsRds',
            awsRds: { region: 'us-east-1', dbInstanceIdentifier: 'orders-us-east-1-e1' },
          },
          host: 'orders-us-east-1-e1.rds.example',
          port: 5432,
          superseded: 'orders-us-east-1',
        },
      }
    : {}),
});

const clusters = (eastId = 'orders-us-east-1') => [
  rds('orders-us-east-1', 'us-east-1', eastId),
  rds('orders-us-west-2', 'us-west-2', 'orders-us-west-2'),
];

describe('kubectl failover export', () => {
  it('writes the stored specs for Git: no status, server fields, tool annotations or requests', () => {
    const [east, west, p] = exportManifests(policyView(policy([]), clusters()));
    expect(east).toEqual({
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'ReplicaCluster',
      metadata: { name: 'orders-us-east-1', namespace: 'shop', annotations: { team: 'payments' } },
      spec: rds('orders-us-east-1', 'us-east-1', 'orders-us-east-1').spec,
    });
    expect(west?.metadata.name).toBe('orders-us-west-2');
    expect(p?.kind).toBe('FailoverPolicy');
    expect(p?.spec).not.toHaveProperty('promotionRequest');
    // The home region stays spec.primary: it is where failback returns, not who is primary now.
    expect(p?.spec.primary).toBe('orders-us-east-1');
  });

  it('re-points a ReplicaCluster at the replacement its reprotect made, credentials kept', () => {
    const view = policyView(policy([reprotect('Aborted', true)]), clusters());
    const [east] = exportManifests(view);
    expect(east?.spec).toMatchObject({
      provider: {
        type: 'AwsRds',
        awsRds: {
          region: 'us-east-1',
          dbInstanceIdentifier: 'orders-us-east-1-e1',
          credentialsSecretRef: { name: 'aws', key: 'credentials' },
        },
      },
      connection: { host: 'orders-us-east-1-e1.rds.example', port: 5432, database: 'orders' },
      dnsTarget: 'orders-us-east-1-e1.rds.example',
    });
    const topology = exportTopology(view);
    expect(publishedTopology.safeParse(topology).success).toBe(true);
    expect(topology).toMatchObject({
      epoch: 1,
      activePrimary: 'orders-us-west-2',
      members: [
        {
          cluster: 'orders-us-west-2',
          region: 'us-west-2',
          role: 'Primary',
          database: { name: 'orders-us-west-2' },
        },
        {
          cluster: 'orders-us-east-1',
          role: 'FormerPrimary',
          database: { name: 'orders-us-east-1-e1' },
          replaces: 'orders-us-east-1',
          repointPending: true,
        },
      ],
      // What reprotects replaced, while history remembers: a stack keeps them until retired.
      superseded: [{ region: 'us-east-1', name: 'orders-us-east-1' }],
    });
  });

  it('changes nothing once the spec names the replacement, and still says what it replaced', () => {
    const view = policyView(policy([reprotect('Aborted', true)]), clusters('orders-us-east-1-e1'));
    expect(pendingReplacement(view, 'orders-us-east-1')).toBeUndefined();
    const [east] = exportManifests(view);
    expect(east?.spec).toEqual(rds('orders-us-east-1', 'us-east-1', 'orders-us-east-1-e1').spec);
    expect(exportTopology(view).members[1]).toMatchObject({
      database: { name: 'orders-us-east-1-e1' },
      replaces: 'orders-us-east-1',
    });
    expect(exportTopology(view).members[1]).not.toHaveProperty('repointPending');
  });

  it('keeps a re-point pending past a later reprotect that made nothing, and leaves a spec pointed elsewhere alone', () => {
    const failed: OperationReport = {
      ...reprotect('Aborted', false),
      id: 'reprotect-e1-later',
      reason: 'Timeout',
    };
    const view = policyView(policy([failed, reprotect('Aborted', true)]), clusters());
    expect(pendingReplacement(view, 'orders-us-east-1')?.provider.awsRds?.dbInstanceIdentifier).toBe(
      'orders-us-east-1-e1',
    );
    const elsewhere = policyView(policy([reprotect('Aborted', true)]), clusters('orders-us-east-1-restored'));
    expect(pendingReplacement(elsewhere, 'orders-us-east-1')).toBeUndefined();
  });

  it('leaves maintenance mode out of Git: a sync would pause the policy again', () => {
    const [, , p] = exportManifests(
      policyView(policy([], { paused: true, pauseReason: 'kernel upgrade' }), clusters()),
    );
    expect(p?.spec).not.toHaveProperty('paused');
    expect(p?.spec).not.toHaveProperty('pauseReason');
  });

  it('follows only the newest reprotect of a cluster', () => {
    const view = policyView(policy([reprotect('Succeeded', false), reprotect('Aborted', true)]), clusters());
    expect(pendingReplacement(view, 'orders-us-east-1')).toBeUndefined();
  });

  it('names a promoted DigitalOcean node by the cluster it became (status.databaseId)', () => {
    const node = {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'ReplicaCluster',
      metadata: { name: 'orders-nyc3', namespace: 'shop' },
      spec: {
        region: 'nyc3',
        provider: {
          type: 'DigitalOcean',
          digitalOcean: {
            databaseId: '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30',
            replicaName: 'orders-nyc3',
            tokenSecretRef: { name: 'do', key: 'token' },
          },
        },
        connection: {
          host: 'replica.db.example',
          port: 25060,
          database: 'defaultdb',
          credentialsSecretRef: { name: 'db' },
        },
        dnsTarget: 'replica.db.example',
      },
    };
    const cluster = {
      ...node,
      metadata: { name: 'orders-ams3', namespace: 'shop' },
      spec: {
        ...node.spec,
        region: 'ams3',
        provider: {
          type: 'DigitalOcean',
          digitalOcean: {
            databaseId: '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30',
            tokenSecretRef: { name: 'do', key: 'token' },
          },
        },
      },
    };
    const spec = { primary: 'orders-ams3', standbys: ['orders-nyc3'], promotionRequest: undefined };
    const before = policyView(policy([], spec), [cluster, node]);
    before.status = { activePrimary: 'orders-ams3', epoch: 0 };
    expect(exportTopology(before).members[1]?.database).toEqual({
      name: 'orders-nyc3',
      parentId: '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30',
    });
    // Promoted, before the operator has reported the cluster it became: no guess.
    const unreported = policyView(policy([], spec), [cluster, node]);
    unreported.status = { activePrimary: 'orders-nyc3', epoch: 1 };
    expect(() => exportTopology(unreported)).toThrow(
      /has not reported which DigitalOcean cluster the promoted node/,
    );
    const promoted = { ...node, status: { databaseId: '5d4f2c1e-0000-4000-8000-000000000001' } };
    const after = policyView(policy([], spec), [cluster, promoted]);
    after.status = { activePrimary: 'orders-nyc3', epoch: 1 };
    expect(exportTopology(after).members[0]).toMatchObject({
      cluster: 'orders-nyc3',
      role: 'Primary',
      database: {
        name: 'orders-nyc3',
        id: '5d4f2c1e-0000-4000-8000-000000000001',
        parentId: '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30',
      },
    });
  });
});
