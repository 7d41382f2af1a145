/**
 * `pulumi up` after a failover, a reprotect and a failback on DigitalOcean, under Pulumi's own
 * mocks (see infra/aws/topology.test.ts). The read-only node the operator promotes becomes a
 * cluster of its own with the same UUID: the node leaves the stack (forgotten, never deleted) and
 * the cluster is imported, so a refresh cannot make the stack create a new node of the old
 * primary. Nodes a reprotect made are imported, each behind a firewall the stack adds.
 */
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import { describeChanges, harmful, type PlannedChange, preview } from '../shared/testing/preview.ts';
import {
  installPulumiMocks,
  type PulumiRecorder,
  resolved,
  settled,
} from '../shared/testing/pulumi-mocks.ts';
import { type Member, topologyConfig } from '../shared/testing/topology.ts';
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
const topology = (epoch: number, primary: string, members: Member[], superseded: [string, string][] = []) =>
  topologyConfig('shop', epoch, `shop-${primary}`, members, superseded);
const SUPERSEDED: [string, string][] = [
  ['ams3', 'shop-ams3'],
  ['nyc3', 'shop-nyc3'],
  ['ams3', 'shop-ams3-e1'],
];

describe('DigitalOcean stack across a failover, reprotect and failback', () => {
  it('plans no harm to a database at any stage, and adopts what the operator made', async () => {
    const first = await run({});
    const a = first.clusterId;
    const b = first.replicaUuid;
    // The UUIDs DigitalOcean gave the reprotects' nodes (kept when one is promoted), once they exist.
    const uuid: Record<string, string> = {};
    const e1 = () => uuid['shop-ams3-e1'] ?? '';
    const e3 = () => uuid['shop-nyc3-e3'] ?? '';
    const failedBack = () => [
      member('ams3', 'Primary', { name: 'shop-ams3-e1', parentId: b, id: e1() }, 'shop-ams3'),
      member('nyc3', 'Standby', { name: 'shop-nyc3-e3', parentId: e1() }, 'shop-nyc3'),
    ];
    const again = () => [
      member('nyc3', 'Primary', { name: 'shop-nyc3-e3', parentId: e1(), id: e3() }, 'shop-nyc3'),
      member('ams3', 'Standby', { name: 'shop-ams3-e4', parentId: e3() }, 'shop-ams3-e1'),
    ];
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
        () => ({ [`${NS}:topology`]: topology(3, 'ams3', failedBack(), SUPERSEDED.slice(0, 2)) }),
      ],
      [
        'after a second failover and the reprotect of the home region again',
        () => ({ [`${NS}:topology`]: topology(5, 'nyc3', again(), SUPERSEDED) }),
      ],
      [
        'after a person retires the superseded clusters',
        () => ({
          [`${NS}:topology`]: topology(5, 'nyc3', again(), SUPERSEDED),
          [`${NS}:retiredDatabases`]: JSON.stringify(SUPERSEDED.map(([, name]) => name)),
        }),
      ],
    ];
    const runs: Run[] = [{ stage: 'as first made', ...first }];
    for (const [stage, config] of stages) {
      runs.push({ stage, ...(await run(config())) });
      for (const node of ['shop-ams3-e1', 'shop-nyc3-e3']) {
        const firewall = runs.at(-1)?.resources.find((r) => r.name === `shop-${node}-firewall`);
        if (firewall && !uuid[node]) uuid[node] = String(firewall.inputs.clusterId);
      }
    }
    const plans = runs
      .slice(1)
      .map((r, i) => ({ stage: r.stage, changes: preview(runs[i]?.resources ?? [], r.resources) }));
    for (const p of plans)
      process.stdout.write(`[pulumi preview] digitalocean, ${p.stage}: ${describeChanges(p.changes)}\n`);
    const retired = SUPERSEDED.map(([, name]) => name);
    for (const p of plans) expect(harmful(p.changes, p === plans.at(-1) ? retired : []), p.stage).toEqual([]);
    const kinds = (changes: PlannedChange[] | undefined) =>
      (changes ?? []).map((c) => `${c.kind} ${c.type.split(':').pop()} ${c.name}`).sort();
    const [failover, reprotect, failback, secondCycle, retire] = plans.map((p) => p.changes);

    // The promoted node: forgotten as a node, imported as the cluster it became (same UUID), its
    // firewall untouched.
    expect(kinds(failover)).toEqual([
      'forget DatabaseReplica shop-replica',
      'import DatabaseCluster shop-promoted',
    ]);
    expect(runs[1]?.resources.find((r) => r.name === 'shop-promoted')).toMatchObject({
      inputs: { name: 'shop-nyc3', region: 'nyc3', nodeCount: 1 },
      options: { importId: b, retainOnDelete: true, protect: true },
    });
    // The reprotect's node: imported under the new primary, with a firewall of its own; the
    // cluster it replaces is no longer protected.
    expect(kinds(reprotect)).toEqual([
      'create DatabaseFirewall shop-shop-ams3-e1-firewall',
      'import DatabaseReplica shop-shop-ams3-e1',
      'unprotect DatabaseCluster shop-primary',
    ]);
    expect(runs[2]?.resources.find((r) => r.name === 'shop-shop-ams3-e1')?.options.importId).toBe(
      `${b},shop-ams3-e1`,
    );
    expect(kinds(failback)).toEqual([
      'create DatabaseFirewall shop-shop-nyc3-e3-firewall',
      'forget DatabaseReplica shop-shop-ams3-e1',
      'import DatabaseCluster shop-shop-ams3-e1-promoted',
      'import DatabaseReplica shop-shop-nyc3-e3',
      'unprotect DatabaseCluster shop-promoted',
    ]);
    // A promoted node a later reprotect superseded stays in the stack, unprotected.
    expect(kinds(secondCycle)).toEqual([
      'create DatabaseFirewall shop-shop-ams3-e4-firewall',
      'forget DatabaseReplica shop-shop-nyc3-e3',
      'import DatabaseCluster shop-shop-nyc3-e3-promoted',
      'import DatabaseReplica shop-shop-ams3-e4',
      'unprotect DatabaseCluster shop-shop-ams3-e1-promoted',
    ]);
    // Retiring forgets the superseded clusters and their firewalls (a removed firewall would open
    // a database to every address); nothing is deleted.
    expect(kinds(retire)).toEqual([
      'forget DatabaseCluster shop-primary',
      'forget DatabaseCluster shop-promoted',
      'forget DatabaseCluster shop-shop-ams3-e1-promoted',
      'forget DatabaseFirewall shop-primary-firewall',
      'forget DatabaseFirewall shop-replica-firewall',
      'forget DatabaseFirewall shop-shop-ams3-e1-firewall',
      'forget DatabaseUser shop-operator',
    ]);

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
      { databaseId: e1(), replicaName: 'shop-nyc3-e3', ...token },
    ]);
    expect(blocks[4]).toEqual([
      { databaseId: e3(), replicaName: 'shop-ams3-e4', ...token },
      { databaseId: e1(), replicaName: 'shop-nyc3-e3', ...token },
    ]);
  });

  it('refuses to retire the first cluster while it is the database of its region', async () => {
    await expect(
      run({
        [`${NS}:topology`]: topology(1, 'nyc3', [
          member('nyc3', 'Primary', { name: 'shop-nyc3', parentId: 'x', id: 'y' }),
          member('ams3', 'FormerPrimary', { id: 'x' }),
        ]),
        [`${NS}:retiredDatabases`]: JSON.stringify(['shop-ams3']),
      }),
    ).rejects.toThrow(/retiredDatabases\[0\]: shop-ams3 is a database of the policy now/);
  });
});
