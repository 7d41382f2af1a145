/**
 * `pulumi up` after a failover, a reprotect and a failback on DigitalOcean, under Pulumi's own
 * mocks (see infra/aws/topology.test.ts). The read-only node the operator promotes becomes a
 * cluster of its own with the same UUID: the node leaves the stack (forgotten, never deleted) and
 * the cluster is imported, so a refresh cannot make the stack create a new node of the old
 * primary. Nodes a reprotect made are imported, each behind a firewall the stack adds.
 */
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import { type PublishedTopology, TOPOLOGY_VERSION } from '../../operator/src/api/v1alpha1/index.ts';
import { describeChanges, harmful, preview } from '../shared/testing/preview.ts';
import {
  installPulumiMocks,
  type PulumiRecorder,
  resolved,
  settled,
} from '../shared/testing/pulumi-mocks.ts';
import { BASE, NS } from './stack-fixture.ts';

let recorder: PulumiRecorder;
let program: typeof import('./program.ts');

beforeAll(async () => {
  recorder = await installPulumiMocks(NS, 'production');
  program = await import('./program.ts');
});

async function run(config: Record<string, string>) {
  recorder.reset();
  pulumi.runtime.setAllConfig({ ...BASE, ...config }, []);
  const outputs = program.provisionDigitalOceanRegions();
  const [replicaClusters, clusterId, replicaUuid] = await Promise.all([
    resolved(outputs.replicaClusters),
    resolved(outputs.databaseId),
    resolved(outputs.replicaUuid),
  ]);
  await settled();
  return { resources: [...recorder.resources], replicaClusters, clusterId, replicaUuid };
}
type Run = { stage: string } & Awaited<ReturnType<typeof run>>;

type Member = PublishedTopology['members'][number];
const member = (
  region: string,
  role: Member['role'],
  database: Member['database'],
  replaces?: string,
): Member => ({
  cluster: `shop-${region}`,
  region,
  provider: 'DigitalOcean',
  role,
  database,
  host: `${database.name ?? 'shop-ams3'}-do-user-1234567-0.b.db.ondigitalocean.com`,
  ...(replaces ? { replaces } : {}),
});
const topology = (epoch: number, primary: string, members: Member[]) =>
  JSON.stringify({
    version: TOPOLOGY_VERSION,
    policy: 'shop',
    namespace: 'default',
    epoch,
    activePrimary: `shop-${primary}`,
    members,
  } satisfies PublishedTopology);

describe('DigitalOcean stack across a failover, reprotect and failback', () => {
  it('plans no harm to a database at any stage, and adopts what the operator made', async () => {
    const first = await run({});
    const a = first.clusterId;
    const b = first.replicaUuid;
    // The UUID DigitalOcean gave the reprotect's node (kept when it is promoted), once it exists.
    let NODE_E1 = '';
    const stages: [string, () => Record<string, string>][] = [
      [
        'after a failover to the standby region',
        () => ({
          [`${NS}:topology`]: topology(1, 'nyc3', [
            member('nyc3', 'Primary', { name: 'shop-nyc3', parentId: a, id: b }),
            member('ams3', 'FormerPrimary', { id: a }),
          ]),
        }),
      ],
      [
        'after the reprotect (a new read-only node in the old region)',
        () => ({
          [`${NS}:topology`]: topology(1, 'nyc3', [
            member('nyc3', 'Primary', { name: 'shop-nyc3', parentId: a, id: b }),
            member('ams3', 'Standby', { name: 'shop-ams3-e1', parentId: b }, 'shop-ams3'),
          ]),
        }),
      ],
      [
        'after the failback and its reprotect',
        () => ({
          [`${NS}:topology`]: topology(3, 'ams3', [
            member('ams3', 'Primary', { name: 'shop-ams3-e1', parentId: b, id: NODE_E1 }, 'shop-ams3'),
            member('nyc3', 'Standby', { name: 'shop-nyc3-e3', parentId: NODE_E1 }, 'shop-nyc3'),
          ]),
        }),
      ],
      [
        'after a person retires the superseded clusters',
        () => ({
          [`${NS}:topology`]: topology(3, 'ams3', [
            member('ams3', 'Primary', { name: 'shop-ams3-e1', parentId: b, id: NODE_E1 }, 'shop-ams3'),
            member('nyc3', 'Standby', { name: 'shop-nyc3-e3', parentId: NODE_E1 }, 'shop-nyc3'),
          ]),
          [`${NS}:retiredDatabases`]: JSON.stringify(['shop-ams3', 'shop-nyc3']),
        }),
      ],
    ];
    const runs: Run[] = [{ stage: 'as first made', ...first }];
    for (const [stage, config] of stages) {
      runs.push({ stage, ...(await run(config())) });
      const firewall = runs.at(-1)?.resources.find((r) => r.name === 'shop-shop-ams3-e1-firewall');
      NODE_E1 ||= String(firewall?.inputs.clusterId ?? '');
    }
    const plans = runs
      .slice(1)
      .map((r, i) => ({ stage: r.stage, changes: preview(runs[i]?.resources ?? [], r.resources) }));
    for (const p of plans)
      process.stdout.write(`[pulumi preview] digitalocean, ${p.stage}: ${describeChanges(p.changes)}\n`);
    for (const p of plans) expect(harmful(p.changes), p.stage).toEqual([]);
    const [failover, reprotect, failback, retire] = plans.map((p) => p.changes);

    // The promoted node: forgotten as a node, imported as the cluster it became (same UUID), its
    // firewall untouched.
    expect(failover).toEqual([
      { kind: 'import', type: 'digitalocean:index/databaseCluster:DatabaseCluster', name: 'shop-promoted' },
      { kind: 'forget', type: 'digitalocean:index/databaseReplica:DatabaseReplica', name: 'shop-replica' },
    ]);
    const promoted = runs[1]?.resources.find((r) => r.name === 'shop-promoted');
    expect(promoted).toMatchObject({
      inputs: { name: 'shop-nyc3', region: 'nyc3', nodeCount: 1 },
      options: { importId: b, retainOnDelete: true, protect: true },
    });
    // The reprotect's node: imported under the new primary, with a firewall of its own; the
    // cluster it replaces is no longer protected.
    expect(reprotect).toEqual(
      expect.arrayContaining([
        {
          kind: 'import',
          type: 'digitalocean:index/databaseReplica:DatabaseReplica',
          name: 'shop-shop-ams3-e1',
        },
        {
          kind: 'create',
          type: 'digitalocean:index/databaseFirewall:DatabaseFirewall',
          name: 'shop-shop-ams3-e1-firewall',
        },
        {
          kind: 'unprotect',
          type: 'digitalocean:index/databaseCluster:DatabaseCluster',
          name: 'shop-primary',
        },
      ]),
    );
    expect(runs[2]?.resources.find((r) => r.name === 'shop-shop-ams3-e1')?.options.importId).toBe(
      `${b},shop-ams3-e1`,
    );
    expect(failback).toEqual(
      expect.arrayContaining([
        {
          kind: 'import',
          type: 'digitalocean:index/databaseCluster:DatabaseCluster',
          name: 'shop-shop-ams3-e1-promoted',
        },
        {
          kind: 'forget',
          type: 'digitalocean:index/databaseReplica:DatabaseReplica',
          name: 'shop-shop-ams3-e1',
        },
        {
          kind: 'import',
          type: 'digitalocean:index/databaseReplica:DatabaseReplica',
          name: 'shop-shop-nyc3-e3',
        },
        {
          kind: 'unprotect',
          type: 'digitalocean:index/databaseCluster:DatabaseCluster',
          name: 'shop-promoted',
        },
      ]),
    );
    expect(retire?.filter((c) => c.type.startsWith('digitalocean:index/database'))).toEqual(
      expect.arrayContaining([
        { kind: 'forget', type: 'digitalocean:index/databaseCluster:DatabaseCluster', name: 'shop-primary' },
        { kind: 'forget', type: 'digitalocean:index/databaseCluster:DatabaseCluster', name: 'shop-promoted' },
      ]),
    );

    // The ReplicaClusters as the operator's export writes them: a promoted node keeps the spec that
    // named it (its old parent and its name); a reprotect's node is named under its primary.
    const blocks = runs.map((r) =>
      r.replicaClusters.map((c) => (c.spec.provider as { digitalOcean: object }).digitalOcean),
    );
    const token = { tokenSecretRef: { name: 'do-api', key: 'token' } };
    expect(blocks[0]).toEqual([
      { databaseId: a, ...token },
      { databaseId: a, replicaName: 'shop-nyc3', ...token },
    ]);
    expect(blocks[1]).toEqual(blocks[0]);
    expect(blocks[2]).toEqual([
      { databaseId: b, replicaName: 'shop-ams3-e1', ...token },
      { databaseId: a, replicaName: 'shop-nyc3', ...token },
    ]);
    expect(blocks[3]).toEqual([
      { databaseId: b, replicaName: 'shop-ams3-e1', ...token },
      { databaseId: NODE_E1, replicaName: 'shop-nyc3-e3', ...token },
    ]);
  });
});
