/**
 * The Aurora global database control plane against a real moto_server (a global cluster with a
 * writer member in us-east-1 and a secondary in eu-west-1) with the real AWS SDK, composed
 * (ManagedDatabase) with the real SQL side over a real PostgreSQL primary and standby standing
 * for the members' databases.
 *
 * moto implements the global cluster's topology (DescribeGlobalClusters with IsWriter) but not
 * SwitchoverGlobalCluster or FailoverGlobalCluster: it records the request, then answers HTTP 500
 * "not implemented", and it never reports a FailoverState. The first promoting tests check what
 * the adapter sends to moto; the rest, which need an operation that Aurora accepts, runs and
 * finishes, mock exactly those parts with aws-sdk-client-mock (see GlobalOperationStandIn) and
 * leave everything else (DescribeDBClusters, the members and their ARNs, the SQL side) real.
 * Reprotection after a failover (Aurora adding the old writer back as a secondary) is the same:
 * moto models the end state and a detached member, and the steps between are laid over it. The
 * switchover the controller leaves to Aurora is the same again: the topology after it (the other
 * member the writer, the old writer its secondary) is a second global cluster laid in moto, and
 * a global cluster Status that moto keeps "available" is laid over.
 */
import {
  CreateDBClusterCommand,
  CreateGlobalClusterCommand,
  DBClusterNotFoundFault,
  DescribeDBClustersCommand,
  type DescribeDBClustersCommandInput,
  DescribeGlobalClustersCommand,
  type DescribeGlobalClustersCommandInput,
  FailoverGlobalClusterCommand,
  type FailoverState,
  type FailoverStatus,
  InvalidGlobalClusterStateFault,
  type RDSClient,
  RemoveFromGlobalClusterCommand,
  SwitchoverGlobalClusterCommand,
  type SwitchoverGlobalClusterCommandInput,
} from '@aws-sdk/client-rds';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuroraGlobalControlPlane,
  type AuroraGlobalControlPlaneOptions,
} from '../../../operator/src/providers/database/aurora-global.ts';
import { type DatabaseSql, ManagedDatabase } from '../../../operator/src/providers/database/managed.ts';
import type {
  DatabaseObservation,
  PromoteOutcome,
  PromoteRequest,
  ProviderSpec,
  ReprotectRequest,
} from '../../../operator/src/providers/database/port.ts';
import { ProviderError } from '../../../operator/src/providers/errors.ts';
import type { MotoServer } from '../../harness/moto.ts';
import { freePort } from '../../harness/ports.ts';
import type { PostgresNodeName, PostgresPair } from '../../harness/postgres.ts';
import { AwsDatabaseFixture } from './aws-database-fixture.ts';

const GLOBAL = 'orders-global';
/** A FailoverState status Aurora reports (API reference) but the SDK's FailoverStatus type lacks. */
const SWITCHING_OVER = 'switching-over' as FailoverStatus;
const EAST = { region: 'us-east-1', id: 'orders-east' };
const WEST = { region: 'eu-west-1', id: 'orders-west' };

let moto: MotoServer;
let pair: PostgresPair;
let eastArn: string;
let westArn: string;
let aws: AwsDatabaseFixture;

beforeAll(async () => {
  aws = await AwsDatabaseFixture.start('aurora');
  ({ moto, pair } = aws);
  const east = rdsClient(EAST.region);
  const west = rdsClient(WEST.region);
  await east.send(
    new CreateGlobalClusterCommand({
      GlobalClusterIdentifier: GLOBAL,
      Engine: 'aurora-postgresql',
      EngineVersion: '15.4',
    }),
  );
  // The first member is the writer; a member added later in another region is a secondary.
  const writer = await east.send(
    new CreateDBClusterCommand({
      DBClusterIdentifier: EAST.id,
      Engine: 'aurora-postgresql',
      EngineVersion: '15.4',
      GlobalClusterIdentifier: GLOBAL,
      MasterUsername: 'orders',
      MasterUserPassword: 'not-a-real-password',
    }),
  );
  const created = await west.send(
    new CreateDBClusterCommand({
      DBClusterIdentifier: WEST.id,
      Engine: 'aurora-postgresql',
      EngineVersion: '15.4',
      GlobalClusterIdentifier: GLOBAL,
    }),
  );
  eastArn = writer.DBCluster?.DBClusterArn ?? '';
  westArn = created.DBCluster?.DBClusterArn ?? '';
  // moto reports a new cluster "creating" once, then "available".
  await west.send(new DescribeDBClustersCommand({ DBClusterIdentifier: WEST.id }));
  await east.send(new DescribeDBClustersCommand({ DBClusterIdentifier: EAST.id }));
});

afterAll(async () => {
  await aws?.stop();
});

const rdsClient = (region: string): RDSClient => aws.rdsClient(region);
const sqlSide = (node: PostgresNodeName | { unreachablePort: number }) => aws.sqlSide(node);

function aurora(
  member: { region: string; id: string },
  sql: DatabaseSql,
  options: Partial<AuroraGlobalControlPlaneOptions> & { clock?: { now(): Date } } = {},
): ManagedDatabase<AuroraGlobalControlPlane> {
  const { clock, ...controlPlaneOptions } = options;
  const controlPlane = new AuroraGlobalControlPlane({
    region: member.region,
    globalClusterIdentifier: GLOBAL,
    dbClusterIdentifier: member.id,
    endpointUrl: moto.endpoint,
    credentials: moto.credentials,
    maxAttempts: 1,
    ...controlPlaneOptions,
  });
  return aws.track(new ManagedDatabase({ sql, controlPlane, ...(clock ? { clock } : {}) }));
}

/** Promote calls of one adapter, each timed; the slowest is checked at the end of a test. */
class PromoteCalls {
  readonly ms: number[] = [];
  private readonly adapter: ManagedDatabase;
  private readonly request: PromoteRequest;
  constructor(adapter: ManagedDatabase, request: PromoteRequest) {
    this.adapter = adapter;
    this.request = request;
  }
  async next(): Promise<PromoteOutcome> {
    const started = performance.now();
    const outcome = await this.adapter.promote(this.request);
    this.ms.push(Math.round(performance.now() - started));
    return outcome;
  }
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

/** The global-cluster operations moto received, with their parameters. */
function writerMovesSent(): { action?: string; region?: string; params: Record<string, string> }[] {
  return moto
    .recordedRequests()
    .filter((r) => r.action === 'SwitchoverGlobalCluster' || r.action === 'FailoverGlobalCluster')
    .map((r) => {
      const params = Object.fromEntries(new URLSearchParams(r.body));
      delete params.Action;
      delete params.Version;
      return { action: r.action, region: r.region, params };
    });
}

describe('observing', () => {
  it('sees the writer as primary and the secondary as standby, Aurora and SQL agreeing', async () => {
    const east = await aurora(EAST, sqlSide('primary')).observe();
    expect(east).toMatchObject({ reachable: true, role: 'Primary' });
    expect(east.failure).toBeUndefined();
    const west = await aurora(WEST, sqlSide('standby')).observe();
    expect(west).toMatchObject({ reachable: true, role: 'Standby' });
    expect(west.failure).toBeUndefined();
  });

  it('says what Aurora lists each member as', async () => {
    const west = await aurora(WEST, sqlSide('standby')).controlPlane.view();
    expect(west).toMatchObject({
      role: 'Standby',
      isWriter: false,
      clusterArn: westArn,
      status: 'available',
    });
    expect(west.operation).toBeUndefined();
    expect((await aurora(EAST, sqlSide('primary')).controlPlane.view()).isWriter).toBe(true);
  });

  it('takes the role from Aurora when SQL cannot reach the member', async () => {
    const port = await freePort();
    const west = await aurora(WEST, sqlSide({ unreachablePort: port })).observe();
    expect(west).toMatchObject({ reachable: false, role: 'Standby', failure: { reason: 'Unreachable' } });
    expect(west.failure?.message).toContain('read-only secondary');
    const east = await aurora(EAST, sqlSide({ unreachablePort: port })).observe();
    expect(east).toMatchObject({ reachable: false, role: 'Primary' });
  });

  it('reports Unknown when SQL sees a writable primary behind a member Aurora lists as a secondary', async () => {
    const observed = await aurora(WEST, sqlSide('primary')).observe();
    expect(observed).toMatchObject({
      reachable: true,
      role: 'Unknown',
      failure: { reason: 'ProviderError' },
    });
    expect(observed.failure?.message).toContain('spec.connection');
  });

  it('NotFound naming the spec field for a global cluster Aurora does not have', async () => {
    const err = await rejection(
      aurora(WEST, sqlSide('standby'), { globalClusterIdentifier: 'orders-nowhere' }).controlPlane.view(),
    );
    expect(err.reason).toBe('NotFound');
    expect(err.message).toContain('spec.provider.auroraGlobal.globalClusterIdentifier');
  });
});

describe('fencing', () => {
  it('succeeds on Aurora evidence when SQL cannot reach a member Aurora lists as a secondary', async () => {
    const adapter = aurora(WEST, sqlSide({ unreachablePort: await freePort() }));
    const { detail } = await adapter.fence({ operationId: 'op-fence', epoch: 1, mode: 'ReadOnly' });
    expect(detail).toContain('read-only secondary');
  });

  it('fails when SQL cannot reach the writer', async () => {
    const adapter = aurora(EAST, sqlSide({ unreachablePort: await freePort() }));
    const err = await rejection(adapter.fence({ operationId: 'op-fence', epoch: 1, mode: 'ReadOnly' }));
    expect(err.reason).toBe('Unreachable');
  });
});

describe('promoting', () => {
  it('does nothing for the writer: it is already primary', async () => {
    moto.clearRecording();
    expect(await aurora(EAST, sqlSide('primary')).promote({ operationId: 'op-1', epoch: 1 })).toEqual({
      state: 'Promoted',
      alreadyPrimary: true,
    });
    expect(writerMovesSent()).toEqual([]);
  });

  it('asks for a switchover to the secondary by ARN, in its region, by default (moto: 500 not implemented)', async () => {
    moto.clearRecording();
    const err = await rejection(aurora(WEST, sqlSide('standby')).promote({ operationId: 'op-2', epoch: 2 }));
    expect(writerMovesSent()).toEqual([
      {
        action: 'SwitchoverGlobalCluster',
        region: WEST.region,
        params: { GlobalClusterIdentifier: GLOBAL, TargetDbClusterIdentifier: westArn },
      },
    ]);
    // An answer the SDK cannot read (moto's HTML error page) is a retryable ProviderError.
    expect(err.reason).toBe('ProviderError');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('SwitchoverGlobalCluster');
  });

  it('asks for a switchover, not a failover, for kind Switchover (what the controller sends for a planned switchover)', async () => {
    moto.clearRecording();
    await rejection(
      aurora(WEST, sqlSide('standby')).promote({ operationId: 'op-2', epoch: 2, kind: 'Switchover' }),
    );
    expect(writerMovesSent()).toEqual([
      {
        action: 'SwitchoverGlobalCluster',
        region: WEST.region,
        params: { GlobalClusterIdentifier: GLOBAL, TargetDbClusterIdentifier: westArn },
      },
    ]);
  });

  it('asks for a failover with AllowDataLoss for kind Failover (moto: 500 not implemented)', async () => {
    moto.clearRecording();
    const err = await rejection(
      aurora(WEST, sqlSide('standby')).promote({ operationId: 'op-3', epoch: 3, kind: 'Failover' }),
    );
    expect(err.reason).toBe('ProviderError');
    expect(writerMovesSent()).toEqual([
      {
        action: 'FailoverGlobalCluster',
        region: WEST.region,
        params: {
          GlobalClusterIdentifier: GLOBAL,
          TargetDbClusterIdentifier: westArn,
          AllowDataLoss: 'true',
        },
      },
    ]);
  });

  // ---- Switchover and failover carried through: what moto cannot do is mocked ----
  //
  // Only these tests use aws-sdk-client-mock, and only for what moto does not implement:
  // SwitchoverGlobalCluster, FailoverGlobalCluster, and the FailoverState/IsWriter transitions
  // of DescribeGlobalClusters that an operation produces (see GlobalOperationStandIn).
  // DescribeDBClusters, the rest of DescribeGlobalClusters and the SQL side are real: the real
  // standby is promoted with pg_promote() while the operation runs, as Aurora promotes the
  // secondary's database, and the heartbeat is read back from it. The test moves Aurora along
  // between promote calls; no call waits for it.

  it('is Pending while the switchover runs, asks once, and is Promoted once Aurora lists the member as the writer with nothing under way', async () => {
    const at = new Date('2030-01-02T03:04:05.000Z');
    const standIn = new GlobalOperationStandIn(WEST.region);
    standIn.mock
      .on(SwitchoverGlobalClusterCommand)
      .callsFake((input: SwitchoverGlobalClusterCommandInput) => {
        standIn.log.push('SwitchoverGlobalCluster');
        standIn.operation = {
          Status: 'pending',
          FromDbClusterArn: eastArn,
          ToDbClusterArn: input.TargetDbClusterIdentifier,
          IsDataLossAllowed: false,
        };
        return { GlobalCluster: { GlobalClusterIdentifier: GLOBAL } };
      });
    const before = await heartbeatOn('standby');
    moto.clearRecording();
    const calls = new PromoteCalls(
      aurora(WEST, sqlSide('standby'), standIn.options({ clock: { now: () => at } })),
      {
        operationId: 'op-4',
        epoch: 4,
      },
    );

    expect(await calls.next()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('Switchover requested'),
    });
    standIn.operation = { ...(standIn.operation as FailoverState), Status: SWITCHING_OVER };
    expect(await calls.next()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('switching-over'),
    });
    // Aurora promotes the secondary's database while the operation still runs, and lists it as
    // the writer before the operation ends: not done yet.
    await promoteWestDatabase();
    standIn.writer = westArn;
    expect(await calls.next()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('the writer, switching-over'),
    });
    expect((await heartbeatOn('standby'))?.epoch).not.toBe(4);
    standIn.operation = undefined;
    expect(await calls.next()).toEqual({ state: 'Promoted', alreadyPrimary: false });

    // One request, by ARN, from the first call; the later calls only looked.
    expect(standIn.log).toEqual(['SwitchoverGlobalCluster']);
    expect(standIn.mock.commandCalls(SwitchoverGlobalClusterCommand).map((c) => c.args[0].input)).toEqual([
      { GlobalClusterIdentifier: GLOBAL, TargetDbClusterIdentifier: westArn },
    ]);
    expect(standIn.mock.commandCalls(FailoverGlobalClusterCommand)).toEqual([]);
    expect(before?.epoch).not.toBe(4);
    expect(await heartbeatOn('standby')).toEqual({ epoch: 4, writtenAt: at });
    expect(Math.max(...calls.ms)).toBeLessThan(1_000);
    // The mock took the operation; moto answered the rest.
    expect(writerMovesSent()).toEqual([]);
    expect(moto.recordedRequests().some((r) => r.action === 'DescribeDBClusters')).toBe(true);
  });

  it('reports an operation already moving the writer here without requesting another', async () => {
    // An earlier attempt's failover is under way when the operator asks again (after a restart).
    const standIn = new GlobalOperationStandIn(WEST.region);
    standIn.operation = {
      Status: 'failing-over',
      FromDbClusterArn: eastArn,
      ToDbClusterArn: westArn,
      IsDataLossAllowed: true,
    };
    const calls = new PromoteCalls(aurora(WEST, sqlSide('standby'), standIn.options()), {
      operationId: 'op-5',
      epoch: 5,
      kind: 'Failover',
    });
    expect(await calls.next()).toEqual({ state: 'Pending', detail: expect.stringContaining('failing-over') });
    expect(await calls.next()).toMatchObject({ state: 'Pending' });
    await promoteWestDatabase();
    standIn.writer = westArn;
    standIn.operation = undefined;
    expect(await calls.next()).toEqual({ state: 'Promoted', alreadyPrimary: false });
    // Nothing requested.
    expect(standIn.log).toEqual([]);
    expect(standIn.mock.commandCalls(FailoverGlobalClusterCommand)).toEqual([]);
    expect(standIn.mock.commandCalls(SwitchoverGlobalClusterCommand)).toEqual([]);
    expect((await heartbeatOn('standby'))?.epoch).toBe(5);
  });

  it('refuses with PreconditionFailed while an operation moves the writer to another member', async () => {
    // A third member, real in moto, that someone else is switching over to.
    const south = await rdsClient('ap-southeast-2').send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: 'orders-south',
        Engine: 'aurora-postgresql',
        EngineVersion: '15.4',
        GlobalClusterIdentifier: GLOBAL,
      }),
    );
    const southArn = south.DBCluster?.DBClusterArn ?? '';
    expect(southArn).toMatch(/^arn:aws:rds:ap-southeast-2:/);
    const elsewhere: FailoverState = {
      Status: SWITCHING_OVER,
      FromDbClusterArn: eastArn,
      ToDbClusterArn: southArn,
      IsDataLossAllowed: false,
    };
    const before = await heartbeatOn('standby');

    // Seen before anything is requested: refused at once.
    const seen = new GlobalOperationStandIn(WEST.region);
    seen.operation = elsewhere;
    const err = await rejection(
      aurora(WEST, sqlSide('standby'), seen.options()).promote({ operationId: 'op-6', epoch: 6 }),
    );
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.message).toContain(`switching-over to ${southArn}, not to ${westArn}`);
    expect(seen.log).toEqual([]);
    expect(seen.mock.commandCalls(SwitchoverGlobalClusterCommand)).toEqual([]);
    expect(seen.mock.commandCalls(FailoverGlobalClusterCommand)).toEqual([]);

    // Not seen yet by the first DescribeGlobalClusters: Aurora refuses the request as busy, and
    // the one look at what it is busy with finds where the operation goes, in the same call.
    const raced = new GlobalOperationStandIn(WEST.region);
    raced.mock.on(FailoverGlobalClusterCommand).callsFake(() => {
      raced.log.push('FailoverGlobalCluster');
      raced.operation = elsewhere;
      throw busy();
    });
    const late = await rejection(
      aurora(WEST, sqlSide('standby'), raced.options()).promote({
        operationId: 'op-6',
        epoch: 6,
        kind: 'Failover',
      }),
    );
    expect(late.reason).toBe('PreconditionFailed');
    expect(late.message).toContain(southArn);
    expect(raced.log).toEqual(['FailoverGlobalCluster']);
    // No heartbeat was written for the refused epoch.
    expect(await heartbeatOn('standby')).toEqual(before);
  });

  it('treats InvalidGlobalClusterStateFault from a second request as "under way": Pending, and not asked again', async () => {
    // The first DescribeGlobalClusters does not show the operation an earlier request started
    // yet; Aurora refuses the second request because of it, and it ends with west the writer.
    const standIn = new GlobalOperationStandIn(WEST.region);
    standIn.mock.on(SwitchoverGlobalClusterCommand).callsFake(() => {
      standIn.log.push('SwitchoverGlobalCluster');
      standIn.operation = {
        Status: SWITCHING_OVER,
        FromDbClusterArn: eastArn,
        ToDbClusterArn: westArn,
        IsDataLossAllowed: false,
      };
      throw busy();
    });
    const calls = new PromoteCalls(aurora(WEST, sqlSide('standby'), standIn.options()), {
      operationId: 'op-7',
      epoch: 7,
    });
    expect(await calls.next()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('refused the Switchover as busy'),
    });
    expect(await calls.next()).toMatchObject({ state: 'Pending' });
    await promoteWestDatabase();
    standIn.writer = westArn;
    standIn.operation = undefined;
    expect(await calls.next()).toEqual({ state: 'Promoted', alreadyPrimary: false });
    // Asked once, not again.
    expect(standIn.log).toEqual(['SwitchoverGlobalCluster']);
    expect((await heartbeatOn('standby'))?.epoch).toBe(7);

    // Only a busy global cluster is "under way": another refusal ends promote at once.
    const refused = new GlobalOperationStandIn(WEST.region);
    refused.mock.on(SwitchoverGlobalClusterCommand).callsFake(() => {
      refused.log.push('SwitchoverGlobalCluster');
      throw new DBClusterNotFoundFault({
        message: `DBCluster ${westArn} not found.`,
        $metadata: { httpStatusCode: 404 },
      });
    });
    const err = await rejection(
      aurora(WEST, sqlSide('standby'), refused.options()).promote({ operationId: 'op-8', epoch: 8 }),
    );
    expect(err.reason).toBe('NotFound');
    expect(err.message).toContain('SwitchoverGlobalCluster');
    expect(err.retryable).toBe(false);
    expect(refused.log).toEqual(['SwitchoverGlobalCluster']);
  });
});

describe('a switchover the operator leaves to Aurora (SwitchoverGlobalCluster), there and back', () => {
  // What the controller does for a Switchover between two members (act.ts, capabilities.ts
  // `switchesOverNatively`): Fencing only marks the old writer with the epoch, then Promoting
  // asks the target for kind Switchover; Aurora catches up, switches and demotes the old writer.

  it('marks the old writer with the epoch through SQL without ALTER SYSTEM: it still takes writes until Aurora demotes it', async () => {
    const east = aurora(EAST, sqlSide('primary'));
    const { detail } = await east.fence({ operationId: 'switchover-e30', epoch: 30, mode: 'EpochOnly' });
    expect(detail).toContain('epoch 30 recorded');
    const seen = await east.observe();
    expect(seen).toMatchObject({ reachable: true, role: 'Primary', heartbeat: { fencedEpoch: 30 } });
    expect(
      await pair.sql('primary', "SELECT current_setting('default_transaction_read_only') AS ro"),
    ).toEqual([{ ro: 'off' }]);
    // The mark is undone with the rest of a fence when a switchover rolls back.
    expect((await east.unfence()).detail).toContain('fence mark cleared');
    expect((await east.observe()).heartbeat?.fencedEpoch).toBeUndefined();
  });

  it('reads a switchover under way from the global cluster Status before FailoverState shows it: Pending, nothing asked', async () => {
    const standIn = new GlobalOperationStandIn(WEST.region);
    standIn.status = 'switching-over';
    const west = aurora(WEST, sqlSide('standby'), standIn.options()).controlPlane;
    expect(await west.view()).toMatchObject({ isWriter: false, operation: { status: 'switching-over' } });
    expect(await west.promote({ operationId: 'op-31', epoch: 31, kind: 'Switchover' })).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('switching-over'),
    });
    // Aurora already lists west as the writer while it demotes east: still not done.
    standIn.writer = westArn;
    expect(await west.promote({ operationId: 'op-31', epoch: 31, kind: 'Switchover' })).toMatchObject({
      state: 'Pending',
    });
    standIn.status = undefined;
    expect(await west.promote({ operationId: 'op-31', epoch: 31, kind: 'Switchover' })).toMatchObject({
      state: 'Primary',
    });
    expect(standIn.mock.commandCalls(SwitchoverGlobalClusterCommand)).toEqual([]);
    expect(standIn.mock.commandCalls(FailoverGlobalClusterCommand)).toEqual([]);
  });

  it('moto: after the switchover (laid by hand: west the writer, east its secondary) the new writer is done, the old one rejoined, and the way back asks for a switchover to east', async () => {
    // A global cluster in moto whose first member, west, is the writer: the topology a switchover
    // from east leaves behind, real in moto (which cannot switch over itself).
    const back = 'orders-global-back';
    const westBack = { region: WEST.region, id: 'orders-west-back' };
    const eastBack = { region: EAST.region, id: 'orders-east-back' };
    await rdsClient(WEST.region).send(
      new CreateGlobalClusterCommand({
        GlobalClusterIdentifier: back,
        Engine: 'aurora-postgresql',
        EngineVersion: '15.4',
      }),
    );
    const writer = await rdsClient(WEST.region).send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: westBack.id,
        Engine: 'aurora-postgresql',
        EngineVersion: '15.4',
        GlobalClusterIdentifier: back,
        MasterUsername: 'orders',
        MasterUserPassword: 'not-a-real-password',
      }),
    );
    const secondary = await rdsClient(EAST.region).send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: eastBack.id,
        Engine: 'aurora-postgresql',
        EngineVersion: '15.4',
        GlobalClusterIdentifier: back,
      }),
    );
    const westBackArn = writer.DBCluster?.DBClusterArn ?? '';
    const eastBackArn = secondary.DBCluster?.DBClusterArn ?? '';
    const member = (m: { region: string; id: string }, node: PostgresNodeName) =>
      aurora(m, sqlSide(node), { globalClusterIdentifier: back });
    const westMember = member(westBack, 'primary');
    const eastMember = member(eastBack, 'standby');
    moto.clearRecording();

    // The switchover there is done: west is the writer with nothing under way; nothing is asked.
    expect(
      await westMember.controlPlane.promote({ operationId: 'op-32', epoch: 32, kind: 'Switchover' }),
    ).toMatchObject({ state: 'Primary' });
    // Aurora made east a read-only secondary of west: it is protected without any request, which
    // is what lets a drill come back (capabilities.ts rejoinsAfterSwitchover).
    expect(await eastMember.controlPlane.view()).toMatchObject({ role: 'Standby', writerArn: westBackArn });
    expect(
      await eastMember.reprotect({
        operationId: 'op-33',
        epoch: 32,
        policy: 'orders',
        primary: {
          cluster: 'west',
          provider: {
            type: 'AuroraGlobal',
            auroraGlobal: {
              region: WEST.region,
              globalClusterIdentifier: back,
              dbClusterIdentifier: westBack.id,
            },
          },
        },
      }),
    ).toEqual({ state: 'Protected', detail: expect.stringContaining(`replicating from ${westBackArn}`) });
    expect(writerMovesSent()).toEqual([]);

    // The way back: a switchover to east, asked of Aurora in east's region, by ARN (moto: 500).
    const err = await rejection(
      eastMember.controlPlane.promote({ operationId: 'op-34', epoch: 33, kind: 'Switchover' }),
    );
    expect(err.reason).toBe('ProviderError');
    expect(writerMovesSent()).toEqual([
      {
        action: 'SwitchoverGlobalCluster',
        region: EAST.region,
        params: { GlobalClusterIdentifier: back, TargetDbClusterIdentifier: eastBackArn },
      },
    ]);
  });
});

describe('reprotecting a former writer (Aurora rejoins it by itself; nothing is requested)', () => {
  // moto implements neither FailoverGlobalCluster nor an old writer rejoining: what it models
  // for real is the end state (a secondary member of the writer) and a detached cluster. The
  // steps in between (writer moved, member not listed yet, resynchronizing) are laid over moto's
  // answer by GlobalOperationStandIn.

  function auroraBlock(id: string, global = GLOBAL): ProviderSpec {
    return {
      type: 'AuroraGlobal',
      auroraGlobal: { region: 'any', globalClusterIdentifier: global, dbClusterIdentifier: id },
    };
  }
  const reprotectRequest = (primary: string, global = GLOBAL): ReprotectRequest => ({
    operationId: 'op-9',
    epoch: 9,
    policy: 'orders',
    primary: { cluster: primary, provider: auroraBlock(primary, global) },
  });
  const writesSent = () =>
    moto.recordedRequests().filter((r) => r.action !== undefined && !r.action.startsWith('Describe'));

  it('moto: a member listed as a secondary of the primary writer is Protected, with no replacement', async () => {
    moto.clearRecording();
    expect(await aurora(WEST, sqlSide('standby')).reprotect(reprotectRequest(EAST.id))).toEqual({
      state: 'Protected',
      detail: expect.stringContaining(`a read-only secondary, replicating from ${eastArn}`),
    });
    expect(writesSent()).toEqual([]);
  });

  it('moto: a member detached from the global cluster is Pending, saying a person may have to replace it', async () => {
    // moto removes members only in the global cluster's own region: a second member there.
    const detached = { region: EAST.region, id: 'orders-east-2' };
    await rdsClient(EAST.region).send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: detached.id,
        Engine: 'aurora-postgresql',
        EngineVersion: '15.4',
        GlobalClusterIdentifier: GLOBAL,
      }),
    );
    await rdsClient(EAST.region).send(
      new RemoveFromGlobalClusterCommand({
        GlobalClusterIdentifier: GLOBAL,
        DbClusterIdentifier: detached.id,
      }),
    );
    const member = aurora(detached, sqlSide('standby'));
    expect((await member.controlPlane.view()).role).toBe('Unknown');
    moto.clearRecording();
    expect(await member.reprotect(reprotectRequest(EAST.id))).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('if it stays detached, a person must replace it'),
    });
    expect(writesSent()).toEqual([]);
  });

  it('is Pending through the failover, while Aurora has not listed the old writer again and while it resynchronizes; then Protected', async () => {
    const standIn = new GlobalOperationStandIn(EAST.region);
    const east = aurora(EAST, sqlSide('primary'), standIn.options());
    const request = reprotectRequest(WEST.id);
    const step = async () => east.reprotect(request);

    // moto's own answer: east is still the writer (moto cannot fail over).
    expect(await step()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining(`still the writer; waiting for the failover to ${WEST.id}`),
    });
    standIn.operation = {
      Status: 'failing-over',
      FromDbClusterArn: eastArn,
      ToDbClusterArn: westArn,
      IsDataLossAllowed: true,
    };
    expect(await step()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('waiting for the operation to finish'),
    });
    // West writes; east's region is down, and Aurora does not list it until it answers again.
    standIn.operation = undefined;
    standIn.writer = westArn;
    standIn.unlisted.add(eastArn);
    expect(await step()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('does not list cluster orders-east'),
    });
    // Added back as a secondary, still resynchronizing.
    standIn.unlisted.delete(eastArn);
    standIn.synchronization.set(eastArn, 'pending-resync');
    expect(await step()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('"pending-resync"; waiting for "connected"'),
    });
    standIn.synchronization.set(eastArn, 'connected');
    expect(await step()).toEqual({
      state: 'Protected',
      detail: expect.stringContaining(`replicating from ${westArn}`),
    });
    // Only looked: no global-cluster request of any kind.
    expect(standIn.log).toEqual([]);
    expect(standIn.mock.commandCalls(FailoverGlobalClusterCommand)).toEqual([]);
    expect(standIn.mock.commandCalls(SwitchoverGlobalClusterCommand)).toEqual([]);
  });

  it('is Pending while the writer is another member than the primary, and refuses a primary outside this global cluster', async () => {
    expect(await aurora(WEST, sqlSide('standby')).reprotect(reprotectRequest('orders-south'))).toEqual({
      state: 'Pending',
      detail: expect.stringContaining(`the writer is ${eastArn}, not the primary orders-south`),
    });
    const err = await rejection(
      aurora(WEST, sqlSide('standby')).reprotect(reprotectRequest(EAST.id, 'other-global')),
    );
    expect(err).toMatchObject({ reason: 'Rejected', retryable: false });
    expect(err.message).toContain('spec.provider.auroraGlobal');
  });
});

/** Aurora's refusal while the global cluster is busy with a switchover or failover. */
function busy(): InvalidGlobalClusterStateFault {
  return new InvalidGlobalClusterStateFault({
    message: `Global cluster ${GLOBAL} is not in a valid state for this operation`,
    $metadata: { httpStatusCode: 400 },
  });
}

/** What Aurora does to the secondary's database during the operation: it starts taking writes. */
async function promoteWestDatabase(): Promise<void> {
  // Once: a later test finds it promoted already.
  await pair.sql('standby', 'SELECT CASE WHEN pg_is_in_recovery() THEN pg_promote(true, 60) END');
}

/** The heartbeat as a node's database holds it, read through a fresh SQL adapter. */
async function heartbeatOn(node: PostgresNodeName): Promise<DatabaseObservation['heartbeat']> {
  const sql = sqlSide(node);
  try {
    return (await sql.observe()).heartbeat;
  } finally {
    await sql.close();
  }
}

/**
 * What moto cannot do, mocked with aws-sdk-client-mock on the adapter's own RDSClient:
 * SwitchoverGlobalCluster and FailoverGlobalCluster (each test says how they answer), and the
 * FailoverState and IsWriter an operation moves, laid over moto's real DescribeGlobalClusters
 * answer (and, for reprotection, members left out and their SynchronizationStatus).
 * DescribeDBClusters goes to moto untouched. The test moves `writer` and `operation` as Aurora
 * would, between calls. `log` lists, in order, the writer-moving requests.
 */
class GlobalOperationStandIn {
  readonly client: RDSClient;
  readonly mock: AwsClientStub<RDSClient>;
  writer = eastArn;
  operation: FailoverState | undefined;
  /** The global cluster's Status, which moto keeps "available". */
  status: string | undefined;
  /** Members Aurora does not list (a former writer not added back yet). */
  readonly unlisted = new Set<string>();
  /** SynchronizationStatus per member ARN, which moto never reports. */
  readonly synchronization = new Map<string, string>();
  readonly log: string[] = [];

  constructor(region: string) {
    this.client = rdsClient(region);
    const real = rdsClient(region);
    this.mock = mockClient(this.client);
    this.mock
      .on(DescribeDBClustersCommand)
      .callsFake((input: DescribeDBClustersCommandInput) => real.send(new DescribeDBClustersCommand(input)));
    this.mock
      .on(DescribeGlobalClustersCommand)
      .callsFake(async (input: DescribeGlobalClustersCommandInput) => {
        const out = await real.send(new DescribeGlobalClustersCommand(input));
        for (const global of out.GlobalClusters ?? []) {
          global.GlobalClusterMembers = (global.GlobalClusterMembers ?? []).filter(
            (m) => !this.unlisted.has(m.DBClusterArn ?? ''),
          );
          for (const member of global.GlobalClusterMembers) {
            member.IsWriter = member.DBClusterArn === this.writer;
            const synchronization = this.synchronization.get(member.DBClusterArn ?? '');
            if (synchronization) member.SynchronizationStatus = synchronization as 'connected';
          }
          if (this.operation) global.FailoverState = { ...this.operation };
          else delete global.FailoverState;
          if (this.status) global.Status = this.status;
        }
        return out;
      });
  }

  /** Adapter options: this client. */
  options<T extends object>(extra: T = {} as T): T & { client: RDSClient } {
    return { client: this.client, ...extra };
  }
}
