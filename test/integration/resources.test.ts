/**
 * The CRDs in crds/ against the real API server: every example is accepted, defaults are applied,
 * printer columns show, and invalid resources are rejected with a message naming the field. Each
 * verdict is compared with the operator's own zod validation, so the two cannot drift apart.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
} from '@kubernetes/client-node';
import { loadAll } from 'js-yaml';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { failoverPolicy, replicaCluster } from '../../operator/src/api/v1alpha1/index.ts';
import { formatPath } from '../../operator/src/api/validate.ts';
import { installCrds } from '../harness/crds.ts';
import { sharedKubeConfig } from './shared-control-plane.ts';

const namespace = `crd-${randomBytes(3).toString('hex')}`;
let kc: KubeConfig;
let objects: KubernetesObjectApi;

beforeAll(async () => {
  kc = sharedKubeConfig();
  objects = KubernetesObjectApi.makeApiClient(kc);
  await installCrds(kc);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
});

type Obj = KubernetesObject & {
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  [k: string]: unknown;
};

function validCluster(name = 'alpha'): Obj {
  return {
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'ReplicaCluster',
    metadata: { name, namespace },
    spec: {
      region: 'region-a',
      provider: { type: 'SelfManaged' },
      connection: { host: '127.0.0.1', credentialsSecretRef: { name: 'pg' } },
      dnsTarget: '127.0.0.1',
    },
  };
}

function validPolicy(name = 'orders'): Obj {
  return {
    apiVersion: 'regionfailover.io/v1alpha1',
    kind: 'FailoverPolicy',
    metadata: { name, namespace },
    spec: {
      primary: 'alpha',
      standbys: ['beta'],
      dns: {
        provider: {
          type: 'RFC2136',
          rfc2136: { server: '127.0.0.1:5353', tsig: { keyName: 'k', secretRef: { name: 't', key: 's' } } },
        },
        zone: 'failover.test',
        name: 'db.failover.test',
      },
      promotion: { rpo: { maxLagSeconds: 30 } },
    },
  };
}

/** Creates an object and returns the API server's error message, or undefined when accepted. */
async function create(obj: Obj): Promise<string | undefined> {
  try {
    await objects.create(obj);
    return undefined;
  } catch (err) {
    const body = (err as { body?: unknown }).body;
    const parsed =
      typeof body === 'string' ? (JSON.parse(body) as { message?: string }) : (body as { message?: string });
    return parsed?.message ?? String(err);
  }
}

/** The operator's verdict: undefined when valid, else the issue paths. */
function zodIssues(obj: Obj): string[] | undefined {
  const schema = obj.kind === 'FailoverPolicy' ? failoverPolicy : replicaCluster;
  const result = schema.safeParse(obj);
  return result.success ? undefined : result.error.issues.map((i) => formatPath(i.path));
}

const set = (path: string, value: unknown) => (obj: Obj) => {
  const keys = path.split('.');
  let node = obj as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) node = node[key] as Record<string, unknown>;
  const last = keys.at(-1) as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
};

interface Case {
  what: string;
  make: () => Obj;
  change: (obj: Obj) => void;
  /** The field the API server must name. */
  field: string;
  /** Words the message must contain. */
  says: RegExp;
}

const cluster = validCluster;
const policy = validPolicy;
const invalid: Case[] = [
  {
    what: 'an uppercase region',
    make: cluster,
    change: set('spec.region', 'US-East'),
    field: 'spec.region',
    says: /lowercase letters, digits and dashes/,
  },
  {
    what: 'an unknown provider',
    make: cluster,
    change: set('spec.provider', { type: 'Oracle' }),
    field: 'spec.provider.type',
    says: /Unsupported value: "Oracle"/,
  },
  {
    what: 'AwsRds without its block',
    make: cluster,
    change: set('spec.provider', { type: 'AwsRds' }),
    field: 'spec.provider.awsRds',
    says: /awsRds is required when type is AwsRds/,
  },
  {
    what: 'a provider block that does not match the type',
    make: cluster,
    change: set('spec.provider', {
      type: 'SelfManaged',
      awsRds: { region: 'us-east-1', dbInstanceIdentifier: 'db' },
    }),
    field: 'spec.provider.awsRds',
    says: /awsRds may only be set when type is AwsRds/,
  },
  {
    what: 'an AWS region that does not exist in form',
    make: cluster,
    change: set('spec.provider', {
      type: 'AwsRds',
      awsRds: { region: 'mars-1', dbInstanceIdentifier: 'db' },
    }),
    field: 'spec.provider.awsRds.region',
    says: /must be an AWS region/,
  },
  {
    what: 'a DigitalOcean database id that is not a UUID',
    make: cluster,
    change: set('spec.provider', {
      type: 'DigitalOcean',
      digitalOcean: { databaseId: 'abc', tokenSecretRef: { name: 'do', key: 'token' } },
    }),
    field: 'spec.provider.digitalOcean.databaseId',
    says: /must be a database cluster UUID/,
  },
  {
    what: 'a port out of range',
    make: cluster,
    change: set('spec.connection.port', 70000),
    field: 'spec.connection.port',
    says: /less than or equal to 65535/,
  },
  {
    what: 'an unknown sslMode',
    make: cluster,
    change: set('spec.connection.sslMode', 'prefer'),
    field: 'spec.connection.sslMode',
    says: /Unsupported value: "prefer"/,
  },
  {
    what: 'no credentials Secret',
    make: cluster,
    change: set('spec.connection.credentialsSecretRef', undefined),
    field: 'spec.connection.credentialsSecretRef',
    says: /Required value/,
  },
  {
    what: 'a DNS target that is not a host',
    make: cluster,
    change: set('spec.dnsTarget', 'not a host!'),
    field: 'spec.dnsTarget',
    says: /IP address or a lowercase hostname/,
  },
  {
    what: 'an app endpoint that is not http',
    make: cluster,
    change: set('spec.appEndpoints', [{ name: 'api', url: 'ftp://x' }]),
    field: 'spec.appEndpoints[0].url',
    says: /http:\/\/ or https:\/\/ URL/,
  },
  {
    what: 'two app endpoints with one name',
    make: cluster,
    change: set('spec.appEndpoints', [
      { name: 'api', url: 'http://a' },
      { name: 'api', url: 'http://b' },
    ]),
    field: 'spec.appEndpoints[1]',
    says: /Duplicate value/,
  },
  {
    what: 'no spec at all',
    make: cluster,
    change: set('spec', undefined),
    field: 'spec',
    says: /Required value/,
  },
  {
    what: 'a standby that is the primary',
    make: policy,
    change: set('spec.standbys', ['beta', 'alpha']),
    field: 'spec.standbys',
    says: /standbys must not include the primary/,
  },
  {
    what: 'no standby',
    make: policy,
    change: set('spec.standbys', []),
    field: 'spec.standbys',
    says: /at least 1 items/,
  },
  {
    what: 'the same standby twice',
    make: policy,
    change: set('spec.standbys', ['beta', 'beta']),
    field: 'spec.standbys[1]',
    says: /Duplicate value/,
  },
  {
    what: 'six standbys',
    make: policy,
    change: set('spec.standbys', ['b', 'c', 'd', 'e', 'f', 'g']),
    field: 'spec.standbys',
    says: /at most 5 items/,
  },
  {
    what: 'a record outside its zone',
    make: policy,
    change: set('spec.dns.name', 'db.other.test'),
    field: 'spec.dns.name',
    says: /dns.name must be inside dns.zone/,
  },
  {
    what: 'a zero TTL',
    make: policy,
    change: set('spec.dns.ttlSeconds', 0),
    field: 'spec.dns.ttlSeconds',
    says: /greater than or equal to 5/,
  },
  {
    what: 'a TXT record type',
    make: policy,
    change: set('spec.dns.type', 'TXT'),
    field: 'spec.dns.type',
    says: /Unsupported value: "TXT"/,
  },
  {
    what: 'RFC2136 without its block',
    make: policy,
    change: set('spec.dns.provider', { type: 'RFC2136' }),
    field: 'spec.dns.provider.rfc2136',
    says: /rfc2136 is required when type is RFC2136/,
  },
  {
    what: 'a lowercase Route 53 zone id',
    make: policy,
    change: set('spec.dns.provider', { type: 'Route53', route53: { hostedZoneId: 'z123' } }),
    field: 'spec.dns.provider.route53.hostedZoneId',
    says: /must be a Route 53 hosted zone ID/,
  },
  {
    what: 'a quorum of zero',
    make: policy,
    change: set('spec.detection', { quorum: 0 }),
    field: 'spec.detection.quorum',
    says: /greater than or equal to 1/,
  },
  {
    what: 'a zero probe interval',
    make: policy,
    change: set('spec.detection', { probeIntervalSeconds: 0 }),
    field: 'spec.detection.probeIntervalSeconds',
    says: /greater than or equal to 1/,
  },
  {
    what: 'an unknown promotion mode',
    make: policy,
    change: set('spec.promotion', { mode: 'Yolo' }),
    field: 'spec.promotion.mode',
    says: /Unsupported value: "Yolo"/,
  },
  {
    what: 'a negative RPO budget',
    make: policy,
    change: set('spec.promotion', { rpo: { maxLagSeconds: -1 } }),
    field: 'spec.promotion.rpo.maxLagSeconds',
    says: /greater than or equal to 0/,
  },
  {
    what: 'a cron minute of 99',
    make: policy,
    change: set('spec.drills', { schedule: '99 * * * *' }),
    field: 'spec.drills.schedule',
    says: /five-field cron expression/,
  },
  {
    what: 'a six-field cron',
    make: policy,
    change: set('spec.drills', { schedule: '0 0 3 * * 1' }),
    field: 'spec.drills.schedule',
    says: /five-field cron expression/,
  },
  {
    what: 'a time zone with spaces',
    make: policy,
    change: set('spec.drills', { timeZone: 'Not A Zone' }),
    field: 'spec.drills.timeZone',
    says: /IANA time zone/,
  },
  {
    what: 'a request for a cluster outside the policy',
    make: policy,
    change: set('spec.promotionRequest', { id: 'r1', target: 'gamma' }),
    field: 'spec.promotionRequest.target',
    says: /target must be the primary or one of the standbys/,
  },
  {
    what: 'a switchover that allows data loss',
    make: policy,
    change: set('spec.promotionRequest', {
      id: 'r1',
      target: 'beta',
      kind: 'Switchover',
      allowDataLoss: true,
    }),
    field: 'spec.promotionRequest.allowDataLoss',
    says: /a Switchover never loses data/,
  },
  {
    what: 'a failover beyond the RPO budget without allowDataLoss',
    make: policy,
    change: set('spec.promotionRequest', { id: 'r1', target: 'beta', kind: 'Failover', maxLagSeconds: 600 }),
    field: 'spec.promotionRequest.allowDataLoss',
    says: /exceeds the RPO budget.*allowDataLoss: true/,
  },
  {
    what: 'a primary Lease margin below its renew interval',
    make: policy,
    change: set('spec.primaryLease', { renewIntervalSeconds: 2, safetyMarginSeconds: 1 }),
    field: 'spec.primaryLease.safetyMarginSeconds',
    says: /safetyMarginSeconds is below renewIntervalSeconds/,
  },
  {
    what: 'a primary Lease that leaves less than two renewals before the fence',
    make: policy,
    change: set('spec.primaryLease', { durationSeconds: 5, renewIntervalSeconds: 2, safetyMarginSeconds: 2 }),
    field: 'spec.primaryLease.durationSeconds',
    says: /less than two renewals/,
  },
  {
    what: 'a primary Lease longer than the detection window, unsaid',
    make: policy,
    change: set('spec.primaryLease', { durationSeconds: 60 }),
    field: 'spec.primaryLease.durationSeconds',
    says: /longer than the detection window.*allowLongerThanDetection/,
  },
  {
    what: 'a request id with capitals',
    make: policy,
    change: set('spec.promotionRequest', { id: 'Bad_ID', target: 'beta' }),
    field: 'spec.promotionRequest.id',
    says: /lowercase letters, digits and dashes/,
  },
];

describe('examples', () => {
  const dir = join(import.meta.dirname, '..', '..', 'examples');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    it(`${file} is accepted by the API server and by the operator`, async () => {
      const docs = loadAll(readFileSync(join(dir, file), 'utf8')) as Obj[];
      const ns = `ex-${randomBytes(3).toString('hex')}`;
      await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
      const { stdout } = await promisify(execFile)('kubectl', ['apply', '-n', ns, '-f', join(dir, file)], {
        env: { ...process.env, KUBECONFIG: inject('controlPlane').kubeconfigPath },
      });
      expect(stdout).toMatch(/created/);
      for (const doc of docs.filter((d) => d.apiVersion?.startsWith('regionfailover.io/'))) {
        expect(zodIssues(doc), `${doc.kind}/${doc.metadata?.name}`).toBeUndefined();
      }
    });
  }
});

describe('defaults', () => {
  it('are applied by the API server as the schema says, and match zod defaults', async () => {
    const minimal = validPolicy('defaults');
    (minimal.spec as Record<string, unknown>).promotion = undefined;
    delete (minimal.spec as Record<string, unknown>).promotion;
    await objects.create(minimal);
    const stored = (await objects.read(minimal)) as Obj;
    const spec = stored.spec as Record<string, Record<string, unknown>>;
    expect(spec.detection).toEqual({ probeIntervalSeconds: 5, failureThreshold: 3, quorum: 2 });
    expect(spec.promotion).toEqual({
      mode: 'Automatic',
      rpo: { maxLagSeconds: 30, maxLagBytes: 16777216 },
      cooldownSeconds: 3600,
      holdDownSeconds: 0,
      requireHealthyAppEndpoints: false,
      fencing: 'ReadOnly',
    });
    expect(spec.dns?.ttlSeconds).toBe(30);
    expect(spec.dns?.type).toBe('CNAME');
    // zod fills in exactly the same defaults.
    const parsed = failoverPolicy.parse(minimal);
    expect(parsed.spec.detection).toEqual(spec.detection);
    expect(parsed.spec.promotion).toEqual(spec.promotion);
  });
});

describe('printer columns', () => {
  it('kubectl get shows primary, phase, lag, epoch and last drill', async () => {
    await objects.create(validPolicy('columns'));
    const { stdout } = await promisify(execFile)('kubectl', ['get', 'fpol', 'columns', '-n', namespace], {
      env: { ...process.env, KUBECONFIG: inject('controlPlane').kubeconfigPath },
    });
    expect(stdout.split('\n')[0]).toMatch(
      /NAME\s+PRIMARY\s+PHASE\s+LAG\(S\)\s+EPOCH\s+LAST-DRILL\s+DRILLED\s+AGE/,
    );
    const { stdout: categories } = await promisify(execFile)(
      'kubectl',
      ['get', 'failover', '-n', namespace],
      {
        env: { ...process.env, KUBECONFIG: inject('controlPlane').kubeconfigPath },
      },
    );
    expect(categories).toContain('failoverpolicy.regionfailover.io/columns');
  });
});

describe('invalid resources', () => {
  it('there are at least 25 distinct cases', () => {
    expect(new Set(invalid.map((c) => c.what)).size).toBeGreaterThanOrEqual(25);
  });

  for (const c of invalid) {
    it(`rejects ${c.what}, naming ${c.field}; zod agrees`, async () => {
      const obj = c.make();
      obj.metadata = { ...obj.metadata, name: `bad-${randomBytes(4).toString('hex')}` };
      c.change(obj);
      const message = await create(obj);
      expect(message, 'the API server accepted it').toBeDefined();
      expect(message).toContain(`${c.field}:`);
      expect(message).toMatch(c.says);
      const issues = zodIssues(obj);
      expect(issues, 'zod accepted what the API server refused').toBeDefined();
      // zod names the same field or the object that holds it.
      expect(issues?.some((p) => c.field.startsWith(p.replace(/\[\d+\]$/, '')))).toBe(true);
    });
  }
});

describe('updates', () => {
  const update = async (obj: Obj, change: (o: Obj) => void) => {
    const stored = (await objects.read(obj)) as Obj;
    change(stored);
    try {
      await objects.replace(stored);
      return undefined;
    } catch (err) {
      return JSON.parse(String((err as { body?: string }).body)).message as string;
    }
  };

  it('refuse to change a cluster region or provider type', async () => {
    const obj = validCluster('immutable');
    await objects.create(obj);
    expect(await update(obj, set('spec.region', 'region-z'))).toMatch(/spec.region: .*region is immutable/);
    expect(
      await update(
        obj,
        set('spec.provider', { type: 'AwsRds', awsRds: { region: 'us-east-1', dbInstanceIdentifier: 'db' } }),
      ),
    ).toMatch(/spec.provider.type: .*provider.type is immutable/);
    // A mutable field still changes.
    expect(await update(obj, set('spec.dnsTarget', '127.0.0.2'))).toBeUndefined();
  });

  it('refuse to change the DNS zone, name or type of a policy', async () => {
    const obj = validPolicy('immutable-dns');
    await objects.create(obj);
    expect(await update(obj, set('spec.dns.zone', 'other.test'))).toMatch(
      /spec.dns.zone: .*dns.zone is immutable/,
    );
    expect(await update(obj, set('spec.dns.type', 'A'))).toMatch(/spec.dns.type: .*dns.type is immutable/);
  });

  it('refuse to change a promotion request without a new id', async () => {
    const obj = validPolicy('request');
    (obj.spec as Record<string, unknown>).standbys = ['beta', 'gamma'];
    await objects.create(obj);
    expect(await update(obj, set('spec.promotionRequest', { id: 'r1', target: 'beta' }))).toBeUndefined();
    expect(await update(obj, set('spec.promotionRequest', { id: 'r1', target: 'gamma' }))).toMatch(
      /spec.promotionRequest: .*give the new request a new id/,
    );
    expect(await update(obj, set('spec.promotionRequest', { id: 'r2', target: 'gamma' }))).toBeUndefined();
  });
});
