/**
 * From stack outputs to manifests: what the command writes is what the operator's own schemas
 * accept, a bad input is refused with the path of what is wrong, and the command reads a file or
 * standard input as documented.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as pulumi from '@pulumi/pulumi';
import { loadAll } from 'js-yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { failoverPolicy, replicaCluster } from '../../operator/src/api/v1alpha1/index.ts';
import { installPulumiMocks, resolved, settled } from './testing/pulumi-mocks.ts';
import { manifestsFromStackOutputs, renderManifests } from './to-manifests.ts';

const COMMAND = fileURLToPath(new URL('./to-manifests.ts', import.meta.url));

/** Outputs as `pulumi stack output --json` prints them for an AWS stack (and more besides). */
function awsOutputs() {
  const cluster = (region: string) => ({
    name: `payments-${region}`,
    spec: {
      region,
      provider: { type: 'AwsRds', awsRds: { region, dbInstanceIdentifier: `payments-${region}` } },
      connection: {
        host: `payments-${region}.abcdefghijkl.${region}.rds.amazonaws.com`,
        port: 5432,
        database: 'payments',
        sslMode: 'require',
        credentialsSecretRef: { name: 'payments-db-credentials' },
      },
      dnsTarget: `payments-${region}.abcdefghijkl.${region}.rds.amazonaws.com`,
    },
  });
  return {
    namespace: 'payments',
    replicaClusters: [cluster('us-east-1'), cluster('us-west-2')],
    failoverPolicy: {
      name: 'payments',
      spec: {
        primary: 'payments-us-east-1',
        standbys: ['payments-us-west-2'],
        dns: {
          provider: { type: 'Route53', route53: { hostedZoneId: 'Z0123456789ABCDEFGHIJ' } },
          zone: 'example.com',
          name: 'payments-db.example.com',
          type: 'CNAME',
          ttlSeconds: 30,
          ownerId: 'payments/payments',
        },
        drills: { schedule: '0 3 * * 1', timeZone: 'UTC' },
      },
    },
    hostedZoneId: 'Z0123456789ABCDEFGHIJ',
    masterCredentialsSecretArn: '[secret]',
  };
}

describe('manifestsFromStackOutputs', () => {
  it('writes ReplicaClusters, then the FailoverPolicy, that the operator schemas accept', () => {
    const docs = loadAll(renderManifests(manifestsFromStackOutputs(awsOutputs()))) as Record<
      string,
      unknown
    >[];
    expect(docs.map((d) => d.kind)).toEqual(['ReplicaCluster', 'ReplicaCluster', 'FailoverPolicy']);
    for (const doc of docs) {
      expect(doc.apiVersion).toBe('regionfailover.io/v1alpha1');
      expect(doc.metadata).toMatchObject({ namespace: 'payments' });
      (doc.kind === 'FailoverPolicy' ? failoverPolicy : replicaCluster).parse(doc);
    }
    // As exported: defaults are left to the API server.
    expect(docs[0]?.spec).toEqual(awsOutputs().replicaClusters[0]?.spec);
  });

  it('refuses a spec the operator would refuse, with the path to it', () => {
    const outputs = awsOutputs();
    (outputs.replicaClusters[1]?.spec.connection as { port: number }).port = 0;
    expect(() => manifestsFromStackOutputs(outputs)).toThrow(
      /replicaClusters\[1\]\.spec\.connection\.port: Too small/,
    );
  });

  it('refuses a policy whose clusters are not among the outputs', () => {
    const outputs = awsOutputs();
    outputs.failoverPolicy.spec.standbys = ['payments-eu-west-1'];
    expect(() => manifestsFromStackOutputs(outputs)).toThrow(
      /failoverPolicy\.spec\.standbys\[0\]: names ReplicaCluster payments-eu-west-1, which the stack outputs do not contain/,
    );
  });

  it('says what is wrong with outputs of some other stack', () => {
    expect(() => manifestsFromStackOutputs({ bucketName: 'x' })).toThrow(
      /not a failover stack[\s\S]*namespace: [\s\S]*replicaClusters: /,
    );
  });

  it('says when a spec value was hidden as a secret', () => {
    const outputs = awsOutputs() as unknown as { replicaClusters: { spec: { dnsTarget: string } }[] };
    (outputs.replicaClusters[0] as { spec: { dnsTarget: string } }).spec.dnsTarget = '[secret]';
    expect(() => manifestsFromStackOutputs(outputs)).toThrow(
      /replicaClusters\[0\]\.spec\.dnsTarget is "\[secret\]"/,
    );
  });
});

describe('to-manifests command', () => {
  const run = (args: string[], input?: string) =>
    spawnSync(process.execPath, [COMMAND, ...args], { input, encoding: 'utf8', timeout: 30_000 });

  it('reads the outputs from standard input', () => {
    const result = run([], JSON.stringify(awsOutputs()));
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect((loadAll(result.stdout) as { kind: string }[]).map((d) => d.kind)).toEqual([
      'ReplicaCluster',
      'ReplicaCluster',
      'FailoverPolicy',
    ]);
  });

  it('reads the outputs from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'to-manifests-'));
    try {
      const file = join(dir, 'outputs.json');
      writeFileSync(file, JSON.stringify(awsOutputs()));
      const result = run([file]);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('kind: FailoverPolicy');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails with a message and exit code 1 on bad input', () => {
    const notJson = run([], 'Current stack is staging');
    expect(notJson.status).toBe(1);
    expect(notJson.stderr).toMatch(/standard input is not JSON .*pulumi stack output --json/);
    expect(notJson.stdout).toBe('');

    const invalid = run([], JSON.stringify({ ...awsOutputs(), namespace: 'Payments' }));
    expect(invalid.status).toBe(1);
    expect(invalid.stderr).toMatch(/namespace: must be a Kubernetes namespace name/);
  });
});

describe('a DigitalOcean stack, end to end under mocks', () => {
  beforeAll(async () => {
    await installPulumiMocks('failover-digitalocean', 'production');
  });

  it('gives outputs that become manifests the operator accepts', async () => {
    const ns = 'failover-digitalocean';
    pulumi.runtime.setAllConfig(
      {
        [`${ns}:name`]: 'shop',
        [`${ns}:namespace`]: 'shop',
        [`${ns}:primaryRegion`]: 'ams3',
        [`${ns}:standbyRegion`]: 'nyc3',
        [`${ns}:zoneName`]: 'example.com',
        [`${ns}:recordName`]: 'shop-db.example.com',
        [`${ns}:trustedSources`]: '[{"type":"tag","value":"failover-operator"}]',
      },
      [],
    );
    const { provisionDigitalOceanRegions } = await import('../digitalocean/program.ts');
    const stack = provisionDigitalOceanRegions();
    // What `pulumi stack output --json` prints: resolved values, as JSON.
    const printed = JSON.stringify({
      namespace: stack.namespace,
      replicaClusters: await resolved(stack.replicaClusters),
      failoverPolicy: await resolved(stack.failoverPolicy),
      databaseId: await resolved(stack.databaseId),
    });
    await settled();
    const docs = loadAll(renderManifests(manifestsFromStackOutputs(JSON.parse(printed)))) as {
      kind: string;
      metadata: { name: string };
    }[];
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      'ReplicaCluster/shop-ams3',
      'ReplicaCluster/shop-nyc3',
      'FailoverPolicy/shop',
    ]);
    for (const doc of docs) (doc.kind === 'FailoverPolicy' ? failoverPolicy : replicaCluster).parse(doc);
  });
});
