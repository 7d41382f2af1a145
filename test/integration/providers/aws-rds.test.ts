/**
 * The RDS control plane against a real moto_server (two regions: a source instance in us-east-1
 * and a cross-region read replica in eu-west-1) with the real AWS SDK, composed (ManagedDatabase)
 * with the real SQL side over a real PostgreSQL primary and streaming standby that stand for the
 * two instances' databases (moto runs no database).
 *
 * moto's PromoteReadReplica leaves ReadReplicaSourceDBInstanceIdentifier in place, so moto never
 * reports a promotion done: one test pins that down, and the test of the completed promotion
 * supplies the missing piece itself (see there).
 */
import {
  CreateDBInstanceCommand,
  CreateDBInstanceReadReplicaCommand,
  DescribeDBInstancesCommand,
  type DescribeDBInstancesCommandOutput,
  type RDSClient,
  RDSServiceException,
} from '@aws-sdk/client-rds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyAwsError } from '../../../operator/src/providers/aws.ts';
import {
  RdsControlPlane,
  type RdsControlPlaneOptions,
} from '../../../operator/src/providers/database/aws-rds.ts';
import { type DatabaseSql, ManagedDatabase } from '../../../operator/src/providers/database/managed.ts';
import type { PromoteOutcome, PromoteRequest } from '../../../operator/src/providers/database/port.ts';
import { ProviderError } from '../../../operator/src/providers/errors.ts';
import type { MotoServer } from '../../harness/moto.ts';
import { freePort } from '../../harness/ports.ts';
import type { PostgresNodeName, PostgresPair } from '../../harness/postgres.ts';
import { waitFor } from '../../harness/wait.ts';
import { AwsDatabaseFixture } from './aws-database-fixture.ts';

const EAST = { region: 'us-east-1', id: 'orders-east' };
const WEST = { region: 'eu-west-1', id: 'orders-west' };

let moto: MotoServer;
let pair: PostgresPair;
let sourceArn: string;
let aws: AwsDatabaseFixture;

beforeAll(async () => {
  aws = await AwsDatabaseFixture.start('rds');
  ({ moto, pair } = aws);
  const east = rdsClient(EAST.region);
  const west = rdsClient(WEST.region);
  const source = await east.send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: EAST.id,
      Engine: 'postgres',
      DBInstanceClass: 'db.t3.micro',
      AllocatedStorage: 20,
      MasterUsername: 'orders',
      MasterUserPassword: 'not-a-real-password',
    }),
  );
  sourceArn = source.DBInstance?.DBInstanceArn ?? '';
  // A cross-region replica names its source by ARN.
  await west.send(
    new CreateDBInstanceReadReplicaCommand({
      DBInstanceIdentifier: WEST.id,
      SourceDBInstanceIdentifier: sourceArn,
      DBInstanceClass: 'db.t3.micro',
    }),
  );
});

afterAll(async () => {
  await aws?.stop();
});

const rdsClient = (region: string): RDSClient => aws.rdsClient(region);
const sqlSide = (node: PostgresNodeName | { unreachablePort: number }) => aws.sqlSide(node);

function rds(
  instance: { region: string; id: string },
  sql: DatabaseSql,
  options: Partial<RdsControlPlaneOptions> = {},
): ManagedDatabase<RdsControlPlane> {
  const controlPlane = new RdsControlPlane({
    region: instance.region,
    dbInstanceIdentifier: instance.id,
    endpointUrl: moto.endpoint,
    credentials: moto.credentials,
    ...options,
  });
  return aws.track(new ManagedDatabase({ sql, controlPlane }));
}

/** One promote call, and how long it took. */
async function timedPromote(
  adapter: ManagedDatabase,
  request: PromoteRequest,
): Promise<{ outcome: PromoteOutcome; ms: number }> {
  const started = performance.now();
  const outcome = await adapter.promote(request);
  return { outcome, ms: Math.round(performance.now() - started) };
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

function promoteRequestsSent(): { region?: string; instance: string | null }[] {
  return moto
    .recordedRequests()
    .filter((r) => r.action === 'PromoteReadReplica')
    .map((r) => ({ region: r.region, instance: new URLSearchParams(r.body).get('DBInstanceIdentifier') }));
}

describe('observing', () => {
  it('sees the source as primary and the cross-region replica as standby, RDS and SQL agreeing', async () => {
    const east = await rds(EAST, sqlSide('primary')).observe();
    expect(east).toMatchObject({ reachable: true, role: 'Primary' });
    expect(east.failure).toBeUndefined();
    expect(east.replicas).toEqual([expect.objectContaining({ state: 'streaming' })]);
    const west = await rds(WEST, sqlSide('standby')).observe();
    expect(west).toMatchObject({ reachable: true, role: 'Standby' });
    expect(west.failure).toBeUndefined();
    expect(west.receiveLsn).toBeDefined();
  });

  it('takes the role from RDS when SQL cannot reach the database', async () => {
    const port = await freePort();
    const west = await rds(WEST, sqlSide({ unreachablePort: port })).observe();
    expect(west).toMatchObject({ reachable: false, role: 'Standby', failure: { reason: 'Unreachable' } });
    expect(west.failure?.message).toContain(`read replica of ${sourceArn}`);
    const east = await rds(EAST, sqlSide({ unreachablePort: port })).observe();
    expect(east).toMatchObject({ reachable: false, role: 'Primary', failure: { reason: 'Unreachable' } });
  });

  it('reports Unknown when SQL and RDS contradict each other (connection pointing at the wrong server)', async () => {
    // RDS lists orders-west as a replica, but the connection reaches the writable primary.
    const observed = await rds(WEST, sqlSide('primary')).observe();
    expect(observed).toMatchObject({
      reachable: true,
      role: 'Unknown',
      failure: { reason: 'ProviderError' },
    });
    expect(observed.failure?.message).toContain('spec.connection');
  });

  it('keeps the SQL observation when the RDS API cannot be reached', async () => {
    const adapter = rds(WEST, sqlSide('standby'), {
      endpointUrl: `http://127.0.0.1:${await freePort()}`,
      maxAttempts: 1,
    });
    const observed = await adapter.observe();
    expect(observed).toMatchObject({ reachable: true, role: 'Standby' });
    expect(observed.failure).toBeUndefined();
  });

  it('writes the heartbeat through SQL, and the standby replays it', async () => {
    const at = new Date('2026-11-21T10:00:00Z');
    await rds(EAST, sqlSide('primary')).writeHeartbeat(1, at);
    const west = rds(WEST, sqlSide('standby'));
    const replayed = await waitFor(
      async () => {
        const o = await west.observe();
        return o.heartbeat?.epoch === 1 ? o.heartbeat : undefined;
      },
      { description: 'the standby to replay heartbeat epoch 1', timeoutMs: 30_000 },
    );
    expect(replayed.writtenAt.toISOString()).toBe(at.toISOString());
  });
});

describe('fencing', () => {
  it('is the SQL side fence while SQL reaches the database', async () => {
    const { detail } = await rds(EAST, sqlSide('primary')).fence({
      operationId: 'op-fence',
      epoch: 2,
      mode: 'EpochOnly',
    });
    expect(detail).toMatch(/epoch 2/);
    // The mark is the fence's; the row's own epoch stays the one the database was primary at.
    expect((await rds(EAST, sqlSide('primary')).observe()).heartbeat?.fencedEpoch).toBe(2);
  });

  it('succeeds on RDS evidence when SQL cannot reach a database RDS lists as a read replica', async () => {
    const adapter = rds(WEST, sqlSide({ unreachablePort: await freePort() }));
    const { detail } = await adapter.fence({ operationId: 'op-fence', epoch: 2, mode: 'ReadOnly' });
    expect(detail).toContain('read replica');
    expect(detail).toContain('accepts no writes');
  });

  it('fails when SQL cannot reach a database RDS lists as a standalone instance', async () => {
    const adapter = rds(EAST, sqlSide({ unreachablePort: await freePort() }));
    const err = await rejection(adapter.fence({ operationId: 'op-fence', epoch: 2, mode: 'ReadOnly' }));
    expect(err.reason).toBe('Unreachable');
  });
});

describe('errors', () => {
  it('NotFound, not retryable, for an instance RDS does not have', async () => {
    const adapter = rds({ region: WEST.region, id: 'orders-nowhere' }, sqlSide('standby'));
    const err = await rejection(adapter.promote({ operationId: 'op-x', epoch: 9 }));
    expect(err.reason).toBe('NotFound');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('spec.provider.awsRds.dbInstanceIdentifier');
  });

  it('AuthenticationFailed when the credentials are refused', async () => {
    await moto.requireAuthentication(true);
    try {
      const err = await rejection(
        rds(WEST, sqlSide('standby'), { maxAttempts: 1 }).promote({ operationId: 'op-x', epoch: 9 }),
      );
      expect(err.reason).toBe('AuthenticationFailed');
    } finally {
      await moto.requireAuthentication(false);
    }
  });

  it('Unreachable when nothing listens at the endpoint', async () => {
    const adapter = rds(WEST, sqlSide('standby'), {
      endpointUrl: `http://127.0.0.1:${await freePort()}`,
      maxAttempts: 1,
    });
    const err = await rejection(adapter.promote({ operationId: 'op-x', epoch: 9 }));
    expect(err.reason).toBe('Unreachable');
    expect(err.retryable).toBe(true);
  });

  it('Throttled for the Query API throttling errors (SDK exceptions; moto never throttles)', () => {
    for (const name of ['Throttling', 'RequestLimitExceeded']) {
      const err = new RDSServiceException({
        name,
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
        message: 'Rate exceeded',
      });
      expect(classifyAwsError(err, 'RDS PromoteReadReplica').reason).toBe('Throttled');
    }
  });
});

describe('promoting', () => {
  it('does nothing for an instance with no replication source: it is already primary', async () => {
    moto.clearRecording();
    const result = await rds(EAST, sqlSide('primary')).promote({ operationId: 'op-3', epoch: 3 });
    expect(result).toEqual({ state: 'Promoted', alreadyPrimary: true });
    expect(promoteRequestsSent()).toEqual([]);
    // A promotion interrupted before its heartbeat still owes it: the epoch is brought up to date.
    expect((await rds(EAST, sqlSide('primary')).observe()).heartbeat?.epoch).toBe(3);
  });

  it('refuses a standalone instance that was fenced: a stale former primary is not "already primary"', async () => {
    const east = rds(EAST, sqlSide('primary'));
    await east.fence({ operationId: 'op-4', epoch: 4, mode: 'ReadOnly' });
    moto.clearRecording();
    const err = await rejection(east.promote({ operationId: 'op-4', epoch: 4 }));
    expect(err.reason).toBe('Rejected');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('fenced former primary');
    expect(promoteRequestsSent()).toEqual([]);
  });

  it('moto: sends PromoteReadReplica to the replica region and returns Pending at once; moto never reports it done', async () => {
    moto.clearRecording();
    const { outcome, ms } = await timedPromote(rds(WEST, sqlSide('standby')), {
      operationId: 'op-4',
      epoch: 4,
    });
    expect(outcome).toEqual({
      state: 'Pending',
      detail: expect.stringContaining(`a read replica of ${sourceArn}`),
    });
    expect(ms).toBeLessThan(1_000);
    expect(promoteRequestsSent()).toEqual([{ region: WEST.region, instance: WEST.id }]);
    // RDS, not the operator, promotes the database of a managed replica: SQL was not asked to.
    const standbySql = sqlSide('standby');
    expect((await standbySql.observe()).role).toBe('Standby');
    await standbySql.close();
    // The moto gap itself: after PromoteReadReplica, the replica still names its source.
    const described = await rdsClient(WEST.region).send(
      new DescribeDBInstancesCommand({ DBInstanceIdentifier: WEST.id }),
    );
    expect(described.DBInstances?.[0]?.ReadReplicaSourceDBInstanceIdentifier).toBe(sourceArn);
  });

  it('is Pending while RDS promotes, asks once, and is Promoted on the call after SQL sees a writable primary; again is a no-op', async () => {
    // What moto leaves out, supplied on the real client: after accepting PromoteReadReplica, RDS
    // reports the replica "modifying", then the instance without a source while it reboots, then
    // "available". The test moves RDS along (`rdsSays`) and promotes the real standby
    // (pg_promote) itself, as RDS does behind its API; DescribeDBInstances answers are rewritten
    // to match.
    const client = rdsClient(WEST.region);
    let rdsSays: 'as moto says' | 'modifying' | 'rebooting' | 'available' = 'as moto says';
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'PromoteReadReplicaCommand') rdsSays = 'modifying';
        if (context.commandName === 'DescribeDBInstancesCommand' && rdsSays !== 'as moto says') {
          for (const instance of (result.output as DescribeDBInstancesCommandOutput).DBInstances ?? []) {
            if (instance.DBInstanceIdentifier !== WEST.id) continue;
            instance.DBInstanceStatus = rdsSays;
            if (rdsSays !== 'modifying') delete instance.ReadReplicaSourceDBInstanceIdentifier;
          }
        }
        return result;
      },
      { step: 'initialize', name: 'rdsPromotionLifecycle' },
    );
    moto.clearRecording();
    const adapter = rds(WEST, sqlSide('standby'), { client });
    const request = { operationId: 'op-5', epoch: 5 };
    const calls: { outcome: PromoteOutcome; ms: number }[] = [];
    const promote = async () => {
      const call = await timedPromote(adapter, request);
      calls.push(call);
      return call.outcome;
    };

    expect(await promote()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('PromoteReadReplica accepted'),
    });
    expect(await promote()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('as "modifying", a read replica of'),
    });
    // Asked once: the second call found the promotion under way.
    expect(promoteRequestsSent()).toEqual([{ region: WEST.region, instance: WEST.id }]);

    rdsSays = 'rebooting';
    expect(await promote()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('RDS is still changing it'),
    });
    // RDS lists it done, but its database has not come out of recovery yet: SQL is the evidence.
    rdsSays = 'available';
    expect(await promote()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('SQL still sees a standby'),
    });
    expect((await aws.track(sqlSide('standby')).observe()).heartbeat?.epoch).not.toBe(5);

    await pair.standby.query('SELECT pg_promote(true, 60)');
    const promoted = await waitFor(
      async () => {
        const outcome = await promote();
        return outcome.state === 'Promoted' ? outcome : undefined;
      },
      { description: 'promote to report Promoted', timeoutMs: 30_000 },
    );
    expect(promoted).toEqual({ state: 'Promoted', alreadyPrimary: false });
    expect(promoteRequestsSent()).toEqual([{ region: WEST.region, instance: WEST.id }]);
    expect(await adapter.observe()).toMatchObject({
      reachable: true,
      role: 'Primary',
      heartbeat: { epoch: 5 },
    });
    // No call waited for RDS: each is a few requests to local servers.
    expect(Math.max(...calls.map((c) => c.ms))).toBeLessThan(1_000);

    moto.clearRecording();
    expect(await adapter.promote(request)).toEqual({ state: 'Promoted', alreadyPrimary: true });
    expect(promoteRequestsSent()).toEqual([]);
  });
});
