/**
 * `pulumi up` after a failover, a reprotect and a failback, under Pulumi's own mocks: the program
 * runs with each topology the operator's export would give (`kubectl failover export --pulumi`),
 * and what the engine would do from one to the next is worked out from what it registered
 * (shared/testing/preview.ts). Nothing that holds data is created, changed or deleted; the
 * operator's replicas are imported; the ReplicaCluster specs are those the operator's export
 * writes for Git.
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
import { BASE, NS, SECRET_KEYS } from './stack-fixture.ts';

const A = 'us-east-1';
const B = 'us-west-2';

let recorder: PulumiRecorder;
let program: typeof import('./program.ts');

beforeAll(async () => {
  recorder = await installPulumiMocks(NS, 'production');
  program = await import('./program.ts');
});

async function run(config: Record<string, string>) {
  recorder.reset();
  pulumi.runtime.setAllConfig({ ...BASE, ...config }, SECRET_KEYS);
  const outputs = program.provisionAwsRegions();
  const replicaClusters = await resolved(outputs.replicaClusters);
  await resolved(outputs.operatorPolicyArn);
  await settled();
  return { resources: [...recorder.resources], replicaClusters };
}

type Run = { stage: string } & Awaited<ReturnType<typeof run>>;
const member = (region: string, role: Member['role'], name: string, replaces?: string): Member => ({
  cluster: `payments-${region}`,
  region,
  provider: 'AwsRds',
  role,
  database: { name },
  host: `${name}.abcdefghijkl.${region}.rds.amazonaws.com`,
  ...(replaces ? { replaces } : {}),
});
const topology = (epoch: number, primary: string, members: Member[], superseded: [string, string][] = []) =>
  topologyConfig('payments', epoch, `payments-${primary}`, members, superseded);
// After the second cycle: the home region's replica replaced again; three databases superseded.
const SECOND_CYCLE = topology(
  5,
  B,
  [
    member(B, 'Primary', `payments-${B}-e3`, `payments-${B}`),
    member(A, 'Standby', `payments-${A}-e4`, `payments-${A}-e1`),
  ],
  [
    [A, `payments-${A}`],
    [B, `payments-${B}`],
    [A, `payments-${A}-e1`],
  ],
);

/** The life of the pair, as the operator's export would describe each stage. */
const RDS_STAGES: [string, Record<string, string>][] = [
  ['as first made', {}],
  [
    'after a failover to the standby region',
    {
      [`${NS}:topology`]: topology(1, B, [
        member(B, 'Primary', `payments-${B}`),
        member(A, 'FormerPrimary', `payments-${A}`),
      ]),
    },
  ],
  [
    'after the reprotect (a new replica in the old region)',
    {
      [`${NS}:topology`]: topology(1, B, [
        member(B, 'Primary', `payments-${B}`),
        member(A, 'Standby', `payments-${A}-e1`, `payments-${A}`),
      ]),
    },
  ],
  [
    'after the failback and its reprotect',
    {
      [`${NS}:topology`]: topology(3, A, [
        member(A, 'Primary', `payments-${A}-e1`, `payments-${A}`),
        member(B, 'Standby', `payments-${B}-e3`, `payments-${B}`),
      ]),
    },
  ],
  [
    'after a second failover and the reprotect of the home region again',
    { [`${NS}:topology`]: SECOND_CYCLE },
  ],
  [
    'after a person retires the superseded instances',
    {
      [`${NS}:topology`]: SECOND_CYCLE,
      [`${NS}:retiredDatabases`]: JSON.stringify([`payments-${A}`, `payments-${B}`, `payments-${A}-e1`]),
    },
  ],
];

describe('AWS RDS stack across a failover, reprotect and failback', () => {
  it('plans no harm to a database at any stage, and imports what the operator made', async () => {
    const runs: Run[] = [];
    for (const [stage, config] of RDS_STAGES) runs.push({ stage, ...(await run(config)) });
    const plans = runs
      .slice(1)
      .map((r, i) => ({ stage: r.stage, changes: preview(runs[i]?.resources ?? [], r.resources) }));
    for (const p of plans)
      process.stdout.write(`[pulumi preview] aws rds-instance, ${p.stage}: ${describeChanges(p.changes)}\n`);
    const retired = [`payments-${A}`, `payments-${B}`, `payments-${A}-e1`];
    for (const p of plans) expect(harmful(p.changes, p === plans.at(-1) ? retired : []), p.stage).toEqual([]);

    const instance = 'aws:rds/instance:Instance';
    const policy = {
      kind: 'update',
      type: 'aws:iam/policy:Policy',
      name: 'payments-operator-policy',
      fields: ['policy'],
    };
    const kinds = (changes: PlannedChange[]) =>
      changes.map((c) => `${c.kind} ${c.database ?? c.name}`).sort();
    const [failover, reprotect, failback, again, retire] = plans.map((p) => p.changes);
    // The failover itself changes nothing the stack declares.
    expect(failover).toEqual([]);
    // The reprotect's replica is imported (and the operator's IAM policy names it); the instance
    // it superseded is no longer protected.
    expect(kinds(reprotect ?? [])).toEqual([
      `import payments-${A}-e1`,
      `unprotect payments-${A}`,
      'update payments-operator-policy',
    ]);
    expect(reprotect).toContainEqual(policy);
    expect(kinds(failback ?? [])).toEqual([
      `import payments-${B}-e3`,
      `unprotect payments-${B}`,
      'update payments-operator-policy',
    ]);
    // A replica the stack imported, superseded by a later reprotect, stays in the stack, unprotected.
    expect(kinds(again ?? [])).toEqual([
      `import payments-${A}-e4`,
      `unprotect payments-${A}-e1`,
      'update payments-operator-policy',
    ]);
    // Retiring forgets the superseded instances; nothing is deleted.
    expect(kinds(retire ?? [])).toEqual([
      `forget payments-${A}`,
      `forget payments-${A}-e1`,
      `forget payments-${B}`,
      'update payments-operator-policy',
    ]);
    expect(retire?.filter((c) => c.type === instance).every((c) => c.kind === 'forget')).toBe(true);

    // The ReplicaClusters name each region's database as it is now.
    const ids = runs.map((r) =>
      r.replicaClusters.map(
        (c) => (c.spec.provider as { awsRds: { dbInstanceIdentifier: string } }).awsRds.dbInstanceIdentifier,
      ),
    );
    expect(ids).toEqual([
      [`payments-${A}`, `payments-${B}`],
      [`payments-${A}`, `payments-${B}`],
      [`payments-${A}-e1`, `payments-${B}`],
      [`payments-${A}-e1`, `payments-${B}-e3`],
      [`payments-${A}-e4`, `payments-${B}-e3`],
      [`payments-${A}-e4`, `payments-${B}-e3`],
    ]);
    // The imported replica is declared as the operator made it: in its region, with its key.
    const imported = runs[2]?.resources.find((r) => r.name === `payments-payments-${A}-e1`);
    expect(imported).toMatchObject({
      providerRegion: A,
      inputs: { identifier: `payments-${A}-e1`, storageEncrypted: true },
      options: { importId: `payments-${A}-e1`, retainOnDelete: true, protect: true },
    });
    expect(imported?.options.ignoreChanges).toEqual(expect.arrayContaining(['replicateSourceDb']));
  });

  it('refuses a topology of another policy or other regions, and retiring a database in use', async () => {
    const other = topology(1, B, [
      member(B, 'Primary', `payments-${B}`),
      member('eu-west-1', 'Standby', 'x'),
    ]);
    await expect(run({ [`${NS}:topology`]: other })).rejects.toThrow(/topology\.members: cover the regions/);
    await expect(
      run({
        [`${NS}:topology`]: topology(1, B, [
          member(B, 'Primary', `payments-${B}`),
          member(A, 'FormerPrimary', `payments-${A}`),
        ]),
        [`${NS}:retiredDatabases`]: JSON.stringify([`payments-${B}`]),
      }),
    ).rejects.toThrow(/retiredDatabases\[0\]: payments-us-west-2 is a database of the policy now/);
  });
});

describe('Aurora global stack across a failover and failback', () => {
  const aurora = { [`${NS}:databaseKind`]: 'aurora-global' };
  const amember = (region: string, role: Member['role']): Member => ({
    ...member(region, role, `payments-${region}`),
    provider: 'AuroraGlobal',
  });
  it('changes nothing: the writer moves inside the global database', async () => {
    const stages: [string, Record<string, string>][] = [
      ['as first made', aurora],
      [
        'after a failover',
        { ...aurora, [`${NS}:topology`]: topology(1, B, [amember(B, 'Primary'), amember(A, 'Standby')]) },
      ],
      [
        'after the failback',
        { ...aurora, [`${NS}:topology`]: topology(2, A, [amember(A, 'Primary'), amember(B, 'Standby')]) },
      ],
    ];
    const runs: Run[] = [];
    for (const [stage, config] of stages) runs.push({ stage, ...(await run(config)) });
    for (const [i, r] of runs.slice(1).entries()) {
      const changes = preview(runs[i]?.resources ?? [], r.resources);
      process.stdout.write(`[pulumi preview] aws aurora-global, ${r.stage}: ${describeChanges(changes)}\n`);
      expect(changes, r.stage).toEqual([]);
    }
    await expect(
      run({
        ...aurora,
        [`${NS}:topology`]: topology(1, B, [
          amember(B, 'Primary'),
          member(A, 'Standby', 'payments-elsewhere'),
        ]),
      }),
    ).rejects.toThrow(/Aurora clusters this stack did not make \(payments-elsewhere\)/);
  });
});
