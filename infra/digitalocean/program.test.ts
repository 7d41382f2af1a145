/**
 * The DigitalOcean program under Pulumi's own mocks: which resources it registers, in which
 * region, and whether its outputs are specs the operator accepts. No cloud is involved.
 */
import * as pulumi from '@pulumi/pulumi';
import { beforeAll, describe, expect, it } from 'vitest';
import { failoverPolicySpec, replicaClusterSpec } from '../../operator/src/api/v1alpha1/index.ts';
import { failoverStackOutputs } from '../shared/outputs.ts';
import { StackConfigError } from '../shared/stack-config.ts';
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
  // Mocks first, then the program: the provider package reads the runtime settings when it loads.
  recorder = await installPulumiMocks(NS, 'staging');
  program = await import('./program.ts');
});

function setConfig(overrides: Record<string, string | undefined>) {
  recorder.reset();
  const config = Object.fromEntries(
    Object.entries({ ...BASE, ...overrides }).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    ),
  );
  pulumi.runtime.setAllConfig(config, []);
}

async function run(overrides: Record<string, string | undefined> = {}) {
  setConfig(overrides);
  const outputs = program.provisionDigitalOceanRegions();
  const [replicaClusters, failoverPolicy] = await Promise.all([
    resolved(outputs.replicaClusters),
    resolved(outputs.failoverPolicy),
  ]);
  await settled();
  return { outputs, replicaClusters, failoverPolicy };
}

describe('DigitalOcean stack', () => {
  it('creates the cluster in the primary region and its read-only node in the standby region', async () => {
    const { outputs } = await run();
    const cluster = recorder.one('digitalocean:index/databaseCluster:DatabaseCluster');
    expect(cluster.inputs).toMatchObject({
      name: 'shop-ams3',
      engine: 'pg',
      version: '16',
      region: 'ams3',
      size: 'db-s-1vcpu-2gb',
      nodeCount: 1,
    });
    const replica = recorder.one('digitalocean:index/databaseReplica:DatabaseReplica');
    expect(replica.inputs).toMatchObject({ name: 'shop-nyc3', region: 'nyc3', size: 'db-s-1vcpu-2gb' });
    // The read-only node replicates from the primary cluster.
    expect(replica.inputs.clusterId).toBe(await resolved(outputs.databaseId));
  });

  it('closes both the cluster and the read-only node to everything but the trusted sources', async () => {
    const { outputs } = await run();
    const firewalls = recorder.ofType('digitalocean:index/databaseFirewall:DatabaseFirewall');
    expect(firewalls.map((f) => f.inputs.clusterId).sort()).toEqual(
      [await resolved(outputs.databaseId), await resolved(outputs.replicaUuid)].sort(),
    );
    for (const firewall of firewalls) {
      expect(firewall.inputs.rules).toEqual([
        { type: 'k8s', value: 'ff2a6c52-5a44-4b63-b99c-0e98e7a63d61' },
        { type: 'ip_addr', value: '192.0.2.10' },
      ]);
    }
  });

  it('creates the domain, the record pointing at the primary and the ownership TXT records', async () => {
    await run();
    expect(recorder.one('digitalocean:index/domain:Domain').inputs.name).toBe('example.com');
    const records = recorder
      .ofType('digitalocean:index/dnsRecord:DnsRecord')
      .map((r) => [r.inputs.type, r.inputs.name, r.inputs.value, r.inputs.ttl])
      .sort();
    expect(records).toEqual([
      ['CNAME', 'shop-db', 'shop-ams3-do-user-1234567-0.b.db.ondigitalocean.com.', 30],
      ['TXT', '_failover.shop-db', 'epoch=0', 30],
      ['TXT', '_failover.shop-db', 'owner=default/shop', 30],
    ]);
  });

  it('uses an existing domain when told to', async () => {
    await run({ [`${NS}:createDomain`]: 'false' });
    expect(recorder.ofType('digitalocean:index/domain:Domain')).toHaveLength(0);
    for (const record of recorder.ofType('digitalocean:index/dnsRecord:DnsRecord')) {
      expect(record.inputs.domain).toBe('example.com');
    }
  });

  it('gives the operator a login of its own and keeps its password a secret', async () => {
    const { outputs } = await run();
    expect(recorder.one('digitalocean:index/databaseUser:DatabaseUser').inputs.name).toBe(
      'failover_operator',
    );
    expect(await pulumi.isSecret(outputs.operatorDbPassword)).toBe(true);
  });

  it('outputs ReplicaCluster and FailoverPolicy specs that pass the operator validation', async () => {
    const { outputs, replicaClusters, failoverPolicy } = await run();
    for (const cluster of replicaClusters) replicaClusterSpec.parse(cluster.spec);
    failoverPolicySpec.parse(failoverPolicy.spec);
    failoverStackOutputs.parse({ namespace: outputs.namespace, replicaClusters, failoverPolicy });

    const databaseId = await resolved(outputs.databaseId);
    expect(databaseId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const tokenSecretRef = { name: 'do-api', key: 'token' };
    expect(replicaClusters).toEqual([
      {
        name: 'shop-ams3',
        spec: {
          region: 'ams3',
          provider: { type: 'DigitalOcean', digitalOcean: { databaseId, tokenSecretRef } },
          connection: {
            host: 'shop-ams3-do-user-1234567-0.b.db.ondigitalocean.com',
            port: 25060,
            database: 'defaultdb',
            sslMode: 'require',
            credentialsSecretRef: { name: 'shop-db-credentials' },
          },
          dnsTarget: 'shop-ams3-do-user-1234567-0.b.db.ondigitalocean.com',
        },
      },
      {
        name: 'shop-nyc3',
        spec: {
          region: 'nyc3',
          provider: {
            type: 'DigitalOcean',
            digitalOcean: { databaseId, replicaName: 'shop-nyc3', tokenSecretRef },
          },
          connection: {
            host: 'replica-shop-nyc3-do-user-1234567-0.b.db.ondigitalocean.com',
            port: 25060,
            database: 'defaultdb',
            sslMode: 'require',
            credentialsSecretRef: { name: 'shop-db-credentials' },
          },
          dnsTarget: 'replica-shop-nyc3-do-user-1234567-0.b.db.ondigitalocean.com',
        },
      },
    ]);
    expect(failoverPolicy).toMatchObject({
      name: 'shop',
      spec: {
        primary: 'shop-ams3',
        standbys: ['shop-nyc3'],
        dns: {
          provider: { type: 'DigitalOcean', digitalOcean: { tokenSecretRef } },
          zone: 'example.com',
          name: 'shop-db.example.com',
          ownerId: 'default/shop',
        },
      },
    });
    expect(JSON.stringify({ replicaClusters, failoverPolicy })).not.toContain('mock-generated-password');
  });

  it('exports the stack outputs from index.ts', async () => {
    setConfig({});
    const index = await import('./index.ts');
    const [replicaClusters, failoverPolicy] = await Promise.all([
      resolved(index.replicaClusters),
      resolved(index.failoverPolicy),
    ]);
    await settled();
    failoverStackOutputs.parse({ namespace: index.namespace, replicaClusters, failoverPolicy });
  });
});

describe('DigitalOcean stack: invalid configuration stops before any resource is registered', () => {
  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    [
      'a missing region',
      { [`${NS}:primaryRegion`]: undefined },
      /failover-digitalocean:primaryRegion: is required\. Set it with: pulumi config set failover-digitalocean:primaryRegion ams3/,
    ],
    [
      'an unknown region',
      { [`${NS}:standbyRegion`]: 'nyc9' },
      /failover-digitalocean:standbyRegion: "nyc9" is not a DigitalOcean region/,
    ],
    [
      'the same region twice',
      { [`${NS}:standbyRegion`]: 'ams3' },
      /failover-digitalocean:standbyRegion: must differ from failover-digitalocean:primaryRegion \(both are ams3\)/,
    ],
    [
      'no trusted source',
      { [`${NS}:trustedSources`]: '[]' },
      /failover-digitalocean:trustedSources: must list at least one/,
    ],
    [
      'a missing firewall',
      { [`${NS}:trustedSources`]: undefined },
      /failover-digitalocean:trustedSources: is required/,
    ],
    [
      'a bad trusted source type',
      { [`${NS}:trustedSources`]: '[{"type":"vpc","value":"x"}]' },
      /failover-digitalocean:trustedSources\[0\]\.type: must be ip_addr, droplet, k8s, tag or app/,
    ],
    [
      'a TTL DigitalOcean refuses',
      { [`${NS}:ttlSeconds`]: '10' },
      /failover-digitalocean:ttlSeconds: must be at least 30/,
    ],
    [
      'a record at the zone apex',
      { [`${NS}:recordName`]: 'example.com' },
      /failover-digitalocean:recordName: must be a name below zoneName example.com/,
    ],
    [
      'an RPO budget the operator refuses',
      { [`${NS}:promotion`]: '{"rpo":{"maxLagSeconds":-1}}' },
      /failover-digitalocean:promotion\.rpo\.maxLagSeconds/,
    ],
  ];

  it.each(cases)('refuses %s, naming the key', async (_, overrides, message) => {
    setConfig(overrides);
    expect(() => program.provisionDigitalOceanRegions()).toThrow(StackConfigError);
    expect(() => program.provisionDigitalOceanRegions()).toThrow(message);
    await settled();
    expect(recorder.resources).toEqual([]);
  });
});
