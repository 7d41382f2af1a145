/**
 * Pulumi's own mocks (`pulumi.runtime.setMocks`) with a recorder: every resource the program
 * registers is kept with its type, inputs and the region of its provider, and each resource gets
 * back the attributes the real provider would compute (ARNs, endpoints, zone IDs, UUIDs), shaped
 * like the real ones so that the stack outputs can be checked with the operator's schemas.
 *
 * Install the mocks before the program module is imported: provider packages read the runtime
 * settings when they load.
 */
import { createHash } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';

const ACCOUNT = '123456789012';

/** A resource as the program registered it. */
export interface RecordedResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  /** The region of the explicit AWS provider it was registered with, if any. */
  providerRegion?: string;
  custom: boolean;
  /** The resource options the engine would act on (the mocks alone do not see them). */
  options: { protect: boolean; retainOnDelete: boolean; ignoreChanges: string[]; importId?: string };
}

export interface PulumiRecorder {
  resources: RecordedResource[];
  calls: { token: string; inputs: Record<string, unknown>; providerRegion?: string }[];
  /** Forgets everything recorded so far (between scenarios in one test file). */
  reset(): void;
  ofType(type: string): RecordedResource[];
  /** The one resource of a type whose logical name ends with the suffix; throws otherwise. */
  one(type: string, nameSuffix?: string): RecordedResource;
}

/** A stable fake identifier derived from a name, so runs are reproducible. */
function digest(text: string, length: number, alphabet = '0123456789abcdef'): string {
  const bytes = createHash('sha256').update(text).digest();
  return Array.from(bytes.subarray(0, length), (b) => alphabet[b % alphabet.length]).join('');
}

function uuidFor(name: string): string {
  const h = digest(name, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Attributes the cloud would compute for a new resource. */
function computed(type: string, name: string, inputs: Record<string, unknown>, region: string) {
  const str = (key: string) => (typeof inputs[key] === 'string' ? (inputs[key] as string) : name);
  switch (type) {
    case 'aws:rds/instance:Instance': {
      const id = str('identifier');
      const address = `${id}.abcdefghijkl.${region}.rds.amazonaws.com`;
      return {
        arn: `arn:aws:rds:${region}:${ACCOUNT}:db:${id}`,
        address,
        endpoint: `${address}:5432`,
        port: 5432,
      };
    }
    case 'aws:rds/cluster:Cluster': {
      const id = str('clusterIdentifier');
      return {
        arn: `arn:aws:rds:${region}:${ACCOUNT}:cluster:${id}`,
        endpoint: `${id}.cluster-abcdefghijkl.${region}.rds.amazonaws.com`,
        readerEndpoint: `${id}.cluster-ro-abcdefghijkl.${region}.rds.amazonaws.com`,
        port: 5432,
      };
    }
    case 'aws:rds/globalCluster:GlobalCluster':
      return { arn: `arn:aws:rds::${ACCOUNT}:global-cluster:${str('globalClusterIdentifier')}` };
    case 'aws:kms/key:Key': {
      const keyId = uuidFor(`${region}/${name}`);
      return { arn: `arn:aws:kms:${region}:${ACCOUNT}:key/${keyId}`, keyId };
    }
    case 'aws:route53/zone:Zone': {
      const zoneId = `Z${digest(name, 20, '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ')}`;
      return {
        zoneId,
        arn: `arn:aws:route53:::hostedzone/${zoneId}`,
        nameServers: ['ns-1.awsdns-01.org', 'ns-2.awsdns-02.co.uk'],
      };
    }
    case 'aws:iam/role:Role':
      return { arn: `arn:aws:iam::${ACCOUNT}:role/${name}`, name };
    case 'aws:iam/policy:Policy':
      return { arn: `arn:aws:iam::${ACCOUNT}:policy/${name}`, name };
    case 'aws:iam/user:User':
      return { arn: `arn:aws:iam::${ACCOUNT}:user/${str('name')}` };
    case 'aws:secretsmanager/secret:Secret':
      return { arn: `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:${str('name')}-AbCdEf` };
    case 'aws:ec2/vpc:Vpc':
      return { arn: `arn:aws:ec2:${region}:${ACCOUNT}:vpc/vpc-${digest(name, 17)}` };
    case 'aws:rds/subnetGroup:SubnetGroup':
      return { name: str('name') };
    case 'digitalocean:index/databaseCluster:DatabaseCluster': {
      const host = `${str('name')}-do-user-1234567-0.b.db.ondigitalocean.com`;
      return { host, privateHost: `private-${host}`, port: 25060, database: 'defaultdb', user: 'doadmin' };
    }
    case 'digitalocean:index/databaseReplica:DatabaseReplica': {
      const host = `replica-${str('name')}-do-user-1234567-0.b.db.ondigitalocean.com`;
      return {
        // By its DigitalOcean name: a node promoted into a cluster keeps its UUID.
        uuid: uuidFor(`digitalocean/${str('name')}`),
        host,
        privateHost: `private-${host}`,
        port: 25060,
        database: 'defaultdb',
      };
    }
    case 'digitalocean:index/databaseUser:DatabaseUser':
      return { password: 'mock-generated-password', role: 'normal' };
    default:
      return {};
  }
}

/** The ID the provider would give: AWS uses the identifier for RDS, DigitalOcean a UUID. */
function idFor(type: string, name: string, inputs: Record<string, unknown>): string {
  const named = (key: string) => (typeof inputs[key] === 'string' ? (inputs[key] as string) : `${name}-id`);
  switch (type) {
    case 'aws:rds/instance:Instance':
      return named('identifier');
    case 'aws:rds/cluster:Cluster':
      return named('clusterIdentifier');
    case 'aws:rds/globalCluster:GlobalCluster':
      return named('globalClusterIdentifier');
    case 'digitalocean:index/databaseCluster:DatabaseCluster':
      return uuidFor(`digitalocean/${named('name')}`);
    default:
      return `${name}-id`;
  }
}

/** Installs the mocks and returns the recorder. Call once per test file, before importing a program. */
export async function installPulumiMocks(project: string, stack = 'test'): Promise<PulumiRecorder> {
  const providerRegions = new Map<string, string>();
  const regionOf = (providerRef: string | undefined) =>
    providerRef ? providerRegions.get(providerRef.split('::').pop() ?? '') : undefined;

  const recorder: PulumiRecorder = {
    resources: [],
    calls: [],
    reset() {
      this.resources = [];
      this.calls = [];
    },
    ofType(type) {
      return this.resources.filter((r) => r.type === type);
    },
    one(type, nameSuffix = '') {
      const found = this.ofType(type).filter((r) => r.name.endsWith(nameSuffix));
      if (found.length !== 1) {
        throw new Error(
          `expected one ${type} named *${nameSuffix}, found ${found.map((r) => r.name).join(', ')}`,
        );
      }
      return found[0] as RecordedResource;
    },
  };

  // The mocks see a resource's inputs, not its options: read those from the request on its way.
  const options = new Map<string, RecordedResource['options']>();
  const optionsOf = (type: string, name: string) =>
    options.get(`${type}::${name}`) ?? { protect: false, retainOnDelete: false, ignoreChanges: [] };

  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = args.inputs as Record<string, unknown>;
        // An imported resource keeps the id it was imported by (a DigitalOcean node: its UUID is its own).
        const id = args.id && !args.id.includes(',') ? args.id : idFor(args.type, args.name, inputs);
        if (args.type === 'pulumi:providers:aws' && typeof inputs.region === 'string') {
          providerRegions.set(id, inputs.region);
        }
        const providerRegion = regionOf(args.provider);
        recorder.resources.push({
          type: args.type,
          name: args.name,
          inputs,
          custom: args.custom ?? false,
          options: optionsOf(args.type, args.name),
          ...(providerRegion ? { providerRegion } : {}),
        });
        const region = providerRegion ?? (typeof inputs.region === 'string' ? inputs.region : 'mock-region');
        return { id, state: { ...inputs, ...computed(args.type, args.name, inputs, region) } };
      },
      call(args) {
        const providerRegion = regionOf(args.provider);
        recorder.calls.push({
          token: args.token,
          inputs: args.inputs as Record<string, unknown>,
          ...(providerRegion ? { providerRegion } : {}),
        });
        if (args.token === 'aws:index/getAvailabilityZones:getAvailabilityZones') {
          const region = providerRegion ?? 'mock-region';
          return { names: ['a', 'b', 'c', 'd'].map((s) => `${region}${s}`), zoneIds: [] };
        }
        return {};
      },
    },
    project,
    stack,
    false,
  );
  interface Request {
    getType(): string;
    getName(): string;
    getProtect(): boolean;
    getRetainondelete(): boolean;
    getIgnorechangesList(): string[];
    getImportid(): string;
  }
  const monitor = (
    pulumi.runtime as unknown as {
      getMonitor(): { registerResource(req: Request, ...rest: unknown[]): unknown };
    }
  ).getMonitor();
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: Request, ...rest: unknown[]) => {
    options.set(`${req.getType()}::${req.getName()}`, {
      protect: Boolean(req.getProtect()),
      retainOnDelete: Boolean(req.getRetainondelete()),
      ignoreChanges: req.getIgnorechangesList(),
      ...(req.getImportid() ? { importId: req.getImportid() } : {}),
    });
    return register(req, ...rest);
  };
  return recorder;
}

/** The value of an Output, once known. */
export function resolved<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply(resolve));
}

/** Waits until every resource the program started registering has reached the mocks. */
export async function settled(): Promise<void> {
  // Exported by the runtime but missing from its type declarations.
  const runtime = pulumi.runtime as unknown as { waitForRPCs(): Promise<void> };
  await runtime.waitForRPCs();
}
