/**
 * Reprotection of a former RDS primary against a real moto_server with the real AWS SDK: after a
 * failover from us-east-1 to eu-west-1, a new cross-region read replica of the eu-west-1 primary
 * is created in us-east-1 and named in the ReplicaCluster's place.
 *
 * moto cannot finish a promotion (PromoteReadReplica leaves the source in place, see
 * aws-rds.test.ts), so the active primary here is created standalone, as a promotion leaves it.
 * moto lists a new replica "available" at once; the "creating" RDS reports for minutes is laid
 * over its answer where a test says so. No call here touches SQL: the SQL side is a port where
 * nothing listens.
 */
import {
  CreateDBInstanceCommand,
  CreateDBInstanceReadReplicaCommand,
  type DBInstance,
  DescribeDBInstancesCommand,
  type DescribeDBInstancesCommandOutput,
  ListTagsForResourceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RDS_TAGS, RdsControlPlane } from '../../../operator/src/providers/database/aws-rds.ts';
import { ManagedDatabase } from '../../../operator/src/providers/database/managed.ts';
import type {
  ProviderSpec,
  ReprotectOutcome,
  ReprotectRequest,
} from '../../../operator/src/providers/database/port.ts';
import { SelfManagedPostgres } from '../../../operator/src/providers/database/self-managed.ts';
import { ProviderError } from '../../../operator/src/providers/errors.ts';
import { MotoServer } from '../../harness/moto.ts';
import { freePort } from '../../harness/ports.ts';

const EAST = 'us-east-1';
const WEST = 'eu-west-1';
/** The former primary (us-east-1) and the active primary, promoted in eu-west-1. */
const OLD = 'orders-east';
const PRIMARY = 'orders-west';
const CREDENTIALS_REF = { name: 'aws-credentials', key: 'credentials.json' };

let moto: MotoServer;
let primaryArn: string;
let sqlPort: number;
const clients: RDSClient[] = [];
const adapters: ManagedDatabase[] = [];

beforeAll(async () => {
  [moto, sqlPort] = await Promise.all([MotoServer.start({ name: 'rds-reprotect' }), freePort()]);
  await createInstance(EAST, OLD);
  primaryArn = (await createInstance(WEST, PRIMARY)).DBInstanceArn ?? '';
});

afterAll(async () => {
  await Promise.all(adapters.map((a) => a.close()));
  for (const c of clients) c.destroy();
  await moto?.stop();
});

function rdsClient(region: string): RDSClient {
  const client = new RDSClient({ region, endpoint: moto.endpoint, credentials: moto.credentials });
  clients.push(client);
  return client;
}

async function createInstance(region: string, id: string): Promise<DBInstance> {
  const out = await rdsClient(region).send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: id,
      Engine: 'postgres',
      DBInstanceClass: 'db.r6g.large',
      AllocatedStorage: 20,
      MasterUsername: 'orders',
      MasterUserPassword: 'not-a-real-password',
    }),
  );
  return out.DBInstance ?? {};
}

async function describeInstance(region: string, id: string): Promise<DBInstance | undefined> {
  const out = await rdsClient(region)
    .send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))
    .catch(() => undefined);
  return out?.DBInstances?.[0];
}

async function tagsOf(region: string, arn: string): Promise<Record<string, string>> {
  const out = await rdsClient(region).send(new ListTagsForResourceCommand({ ResourceName: arn }));
  return Object.fromEntries((out.TagList ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

/** The ReplicaCluster's spec.provider block of an instance in `region`. */
function providerBlock(region: string, id: string): ProviderSpec {
  return {
    type: 'AwsRds',
    awsRds: {
      region,
      dbInstanceIdentifier: id,
      endpointUrl: moto.endpoint,
      credentialsSecretRef: CREDENTIALS_REF,
    },
  };
}

/** The adapter of the former primary `id` in us-east-1, as the factory makes it. */
function formerPrimary(id: string, client?: RDSClient): ManagedDatabase<RdsControlPlane> {
  const adapter = new ManagedDatabase({
    sql: new SelfManagedPostgres(
      {
        host: '127.0.0.1',
        port: sqlPort,
        database: 'postgres',
        sslMode: 'disable',
        user: 'x',
        password: 'x',
      },
      { connectTimeoutMs: 1_000 },
    ),
    controlPlane: new RdsControlPlane({
      region: EAST,
      dbInstanceIdentifier: id,
      endpointUrl: moto.endpoint,
      credentials: moto.credentials,
      provider: providerBlock(EAST, id),
      ...(client ? { client } : {}),
    }),
  });
  adapters.push(adapter);
  return adapter;
}

function request(over: Partial<ReprotectRequest> = {}): ReprotectRequest {
  return {
    operationId: 'op-6',
    epoch: 6,
    policy: 'orders',
    primary: { cluster: 'orders-west', provider: providerBlock(WEST, PRIMARY) },
    ...over,
  };
}

/** The write requests moto received, with the parameters that matter here. */
function writesSent(): { action?: string; region?: string; params: Record<string, string> }[] {
  return moto
    .recordedRequests()
    .filter((r) => r.action !== undefined && !/^(Describe|List)/.test(r.action))
    .map((r) => {
      const params = Object.fromEntries(new URLSearchParams(r.body));
      delete params.Action;
      delete params.Version;
      delete params.PreSignedUrl;
      return { action: r.action, region: r.region, params };
    });
}

async function timed(adapter: ManagedDatabase, req: ReprotectRequest): Promise<ReprotectOutcome> {
  const started = performance.now();
  const outcome = await adapter.reprotect(req);
  // Never waits for RDS: a few requests to a local server.
  expect(performance.now() - started).toBeLessThan(2_000);
  return outcome;
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('reprotecting a former RDS primary', () => {
  it('creates a read replica of the primary in the old region, Pending until RDS lists it available, then names it as the replacement', async () => {
    // RDS reports a new replica "creating" for minutes; moto lists it "available" at once.
    const client = rdsClient(EAST);
    let creating = true;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'DescribeDBInstancesCommand' && creating) {
          for (const i of (result.output as DescribeDBInstancesCommandOutput).DBInstances ?? []) {
            if (i.DBInstanceIdentifier === 'orders-east-e6') i.DBInstanceStatus = 'creating';
          }
        }
        return result;
      },
      { step: 'initialize', name: 'rdsCreatingReplica' },
    );
    const adapter = formerPrimary(OLD, client);
    moto.clearRecording();

    const first = await timed(adapter, request());
    expect(first).toEqual({
      state: 'Pending',
      detail: expect.stringContaining(
        'CreateDBInstanceReadReplica orders-east-e6 (us-east-1) of orders-west (eu-west-1) accepted',
      ),
    });
    expect(writesSent()).toEqual([
      {
        action: 'CreateDBInstanceReadReplica',
        region: EAST,
        params: expect.objectContaining({
          DBInstanceIdentifier: 'orders-east-e6',
          SourceDBInstanceIdentifier: primaryArn,
          DBInstanceClass: 'db.r6g.large',
          // Settings of the instance it replaces, as a stack that made that one declares them.
          StorageType: 'gp2',
          AutoMinorVersionUpgrade: 'true',
          DeletionProtection: 'false',
          CopyTagsToSnapshot: 'false',
        }),
      },
    ]);
    // The SDK's presigned request for the source region, which RDS needs for an encrypted source.
    const presigned = new URL(
      new URLSearchParams(
        moto.recordedRequests().find((r) => r.action === 'CreateDBInstanceReadReplica')?.body ?? '',
      ).get('PreSignedUrl') ?? 'http://none',
    );
    expect(presigned.hostname).toBe(`rds.${WEST}.amazonaws.com`);
    expect(presigned.searchParams.get('DestinationRegion')).toBe(EAST);
    expect(presigned.searchParams.get('X-Amz-Credential')).toContain(`/${WEST}/rds/`);

    moto.clearRecording();
    expect(await timed(adapter, request())).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('as "creating"; waiting for "available"'),
    });
    expect(writesSent()).toEqual([]);

    creating = false;
    const protectedNow = await timed(adapter, request());
    expect(protectedNow).toEqual({
      state: 'Protected',
      detail: expect.stringContaining(`${OLD} is tagged ${RDS_TAGS.supersededBy}=orders-east-e6`),
      replacement: {
        provider: providerBlock(EAST, 'orders-east-e6'),
        host: 'orders-east-e6.aaaaaaaaaa.us-east-1.rds.amazonaws.com',
        port: 5432,
        superseded: OLD,
      },
    });
    expect(writesSent().map((w) => w.action)).toEqual(['AddTagsToResource']);

    // What RDS now has: the replica in us-east-1, of the primary, tagged; the old one kept.
    const replica = await describeInstance(EAST, 'orders-east-e6');
    expect(replica?.ReadReplicaSourceDBInstanceIdentifier).toBe(primaryArn);
    expect(replica?.DBInstanceArn).toMatch(/^arn:aws:rds:us-east-1:\d+:db:orders-east-e6$/);
    expect((await describeInstance(WEST, PRIMARY))?.ReadReplicaDBInstanceIdentifiers).toContain(
      replica?.DBInstanceArn,
    );
    expect(await tagsOf(EAST, replica?.DBInstanceArn ?? '')).toMatchObject({
      [RDS_TAGS.policy]: 'orders',
      [RDS_TAGS.epoch]: '6',
      [RDS_TAGS.operationId]: 'op-6',
      [RDS_TAGS.replaces]: OLD,
    });
    const old = await describeInstance(EAST, OLD);
    expect(old?.DBInstanceStatus).toBe('available');
    expect(await tagsOf(EAST, old?.DBInstanceArn ?? '')).toMatchObject({
      [RDS_TAGS.supersededBy]: 'orders-east-e6',
    });
  });

  it('is idempotent: called again, by this adapter or a fresh one, it creates and tags nothing', async () => {
    moto.clearRecording();
    for (const adapter of [formerPrimary(OLD), formerPrimary(OLD)]) {
      expect(await timed(adapter, request())).toMatchObject({
        state: 'Protected',
        replacement: { provider: providerBlock(EAST, 'orders-east-e6'), superseded: OLD },
      });
    }
    expect(writesSent()).toEqual([]);
    const all = await rdsClient(EAST).send(new DescribeDBInstancesCommand({}));
    expect((all.DBInstances ?? []).map((i) => i.DBInstanceIdentifier).sort()).toEqual([
      OLD,
      'orders-east-e6',
    ]);
  });

  it('answers Protected without a replacement for an instance that is a replica of the primary already', async () => {
    await rdsClient(EAST).send(
      new CreateDBInstanceReadReplicaCommand({
        DBInstanceIdentifier: 'orders-east-back',
        SourceDBInstanceIdentifier: primaryArn,
      }),
    );
    moto.clearRecording();
    expect(await timed(formerPrimary('orders-east-back'), request())).toEqual({
      state: 'Protected',
      detail: expect.stringContaining('a read replica of orders-west (eu-west-1)'),
    });
    expect(writesSent()).toEqual([]);
  });

  it('waits, asking for nothing, while the primary is still a read replica (its promotion has not finished)', async () => {
    // A failover to orders-west-2 whose promotion RDS has not finished: still a read replica.
    await rdsClient(WEST).send(
      new CreateDBInstanceReadReplicaCommand({
        DBInstanceIdentifier: 'orders-west-2',
        SourceDBInstanceIdentifier: (await describeInstance(EAST, OLD))?.DBInstanceArn,
      }),
    );
    moto.clearRecording();
    const outcome = await timed(
      formerPrimary(OLD),
      request({
        epoch: 7,
        primary: { cluster: 'orders-west-2', provider: providerBlock(WEST, 'orders-west-2') },
      }),
    );
    expect(outcome).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('is still a read replica of'),
    });
    expect(writesSent()).toEqual([]);
    expect(await describeInstance(EAST, 'orders-east-e7')).toBeUndefined();
  });

  it('refuses, naming what to do, when another instance holds the replacement name', async () => {
    await createInstance(EAST, 'orders-east-e8');
    moto.clearRecording();
    const err = await rejection(formerPrimary(OLD).reprotect(request({ epoch: 8 })));
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('exists but is not a read replica of the primary');
    expect(writesSent()).toEqual([]);
  });

  it('still rebuilds the region when the former primary is gone, from the primary settings', async () => {
    const adapter = formerPrimary('orders-gone');
    expect(await timed(adapter, request({ epoch: 9 }))).toMatchObject({ state: 'Pending' });
    expect(await timed(adapter, request({ epoch: 9 }))).toEqual({
      state: 'Protected',
      detail: expect.stringContaining('orders-gone no longer exists'),
      replacement: expect.objectContaining({
        provider: providerBlock(EAST, 'orders-gone-e9'),
        superseded: 'orders-gone',
      }),
    });
  });

  it("reaches the primary's region through the primary block's endpointUrl (an endpoint serves one region)", async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const block = providerBlock(WEST, PRIMARY);
    const err = await rejection(
      formerPrimary(OLD).reprotect(
        request({
          primary: {
            cluster: 'orders-west',
            provider: { ...block, awsRds: { ...(block.awsRds as object), endpointUrl: dead } },
          },
        }),
      ),
    );
    expect(err.reason).toBe('Unreachable');
    expect(err.message).toContain(`DescribeDBInstances ${PRIMARY} (${WEST})`);
  });

  it('refuses a primary of another provider, and NotFound names the primary ReplicaCluster to check', async () => {
    const other = await rejection(
      formerPrimary(OLD).reprotect(
        request({ primary: { cluster: 'orders-do', provider: { type: 'DigitalOcean' } } }),
      ),
    );
    expect(other).toMatchObject({ reason: 'Rejected', retryable: false });
    const missing = await rejection(
      formerPrimary(OLD).reprotect(
        request({ primary: { cluster: 'orders-west', provider: providerBlock(WEST, 'orders-nowhere') } }),
      ),
    );
    expect(missing.reason).toBe('NotFound');
    expect(missing.message).toContain('spec.provider.awsRds of the primary ReplicaCluster orders-west');
  });
});
