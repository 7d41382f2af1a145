/**
 * An isolated drill's copy of an RDS standby against a real moto_server with the real AWS SDK:
 * a read replica of the standby (a cross-region replica in eu-west-1 of a source in us-east-1),
 * promoted, then deleted, one idempotent step per call.
 *
 * What moto does and does not: CreateDBInstanceReadReplica (with its Tags), PromoteReadReplica
 * and DeleteDBInstance are implemented, but moto lists a new replica "available" at once, and its
 * PromoteReadReplica leaves ReadReplicaSourceDBInstanceIdentifier in place, so moto never lists
 * the copy standalone. `RdsLifecycle` lays what RDS reports over moto's DescribeDBInstances
 * answers on the adapter's client: "creating" for a while, then "modifying" and "rebooting"
 * through the promotion, then the instance without a source. DeleteDBInstance removes the
 * instance at once in moto (RDS: "deleting" for minutes). No call here touches SQL.
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
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RdsControlPlane } from '../../../operator/src/providers/database/aws-rds.ts';
import { RDS_DRILL_TAGS } from '../../../operator/src/providers/database/aws-rds-drill-copy.ts';
import type { DatabaseProvider, DrillCopyState } from '../../../operator/src/providers/database/port.ts';
import { ProviderError } from '../../../operator/src/providers/errors.ts';
import { MotoServer } from '../../harness/moto.ts';
import { freePort } from '../../harness/ports.ts';
import { waitFor } from '../../harness/wait.ts';

const EAST = 'us-east-1';
const WEST = 'eu-west-1';
/** The primary's source instance, and the standby the drills copy. */
const SOURCE = 'orders-east';
const STANDBY = 'orders-west';
const DRILL = 'drill-20261201060430123';
const COPY = `${STANDBY}-drill-20261201060430123`;

let moto: MotoServer;
let sourceArn: string;
const clients: RDSClient[] = [];
const planes: RdsControlPlane[] = [];

beforeAll(async () => {
  moto = await MotoServer.start({ name: 'rds-drill-copy' });
  const source = await rdsClient(EAST).send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: SOURCE,
      Engine: 'postgres',
      EngineVersion: '16.3',
      DBInstanceClass: 'db.r6g.large',
      AllocatedStorage: 20,
      MasterUsername: 'orders',
      MasterUserPassword: 'not-a-real-password',
    }),
  );
  sourceArn = source.DBInstance?.DBInstanceArn ?? '';
  // A cross-region replica names its source by ARN.
  await rdsClient(WEST).send(
    new CreateDBInstanceReadReplicaCommand({
      DBInstanceIdentifier: STANDBY,
      SourceDBInstanceIdentifier: sourceArn,
      DBInstanceClass: 'db.r6g.large',
    }),
  );
});

afterAll(async () => {
  await Promise.all(planes.map((p) => p.close()));
  for (const c of clients) c.destroy();
  await moto?.stop();
});

beforeEach(() => moto.clearRecording());

function rdsClient(region: string): RDSClient {
  const client = new RDSClient({ region, endpoint: moto.endpoint, credentials: moto.credentials });
  clients.push(client);
  return client;
}

/** The standby's control plane, seen as the port's drillCopy. */
function standby(
  options: { client?: RDSClient; id?: string; endpointUrl?: string; now?: () => Date } = {},
): Required<Pick<DatabaseProvider, 'drillCopy'>> {
  const plane = new RdsControlPlane({
    region: WEST,
    dbInstanceIdentifier: options.id ?? STANDBY,
    endpointUrl: options.endpointUrl ?? moto.endpoint,
    credentials: moto.credentials,
    maxAttempts: 1,
    ...(options.client ? { client: options.client } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  planes.push(plane);
  return plane;
}

async function describeInstance(id: string): Promise<DBInstance | undefined> {
  const out = await rdsClient(WEST)
    .send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))
    .catch(() => undefined);
  return out?.DBInstances?.[0];
}

async function tagsOf(arn: string): Promise<Record<string, string>> {
  const out = await rdsClient(WEST).send(new ListTagsForResourceCommand({ ResourceName: arn }));
  return Object.fromEntries((out.TagList ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
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
      return { action: r.action, region: r.region, params };
    });
}

/** One call, which never waits for RDS: a few requests to a local server. */
async function step(
  adapter: Required<Pick<DatabaseProvider, 'drillCopy'>>,
  want: 'Serving' | 'Removed',
  drillId = DRILL,
): Promise<DrillCopyState> {
  const started = performance.now();
  const state = await adapter.drillCopy(drillId, want);
  expect(performance.now() - started).toBeLessThan(2_000);
  return state;
}

/** Calls until `phase`, with a generous deadline; every state seen on the way. */
async function until(
  adapter: Required<Pick<DatabaseProvider, 'drillCopy'>>,
  want: 'Serving' | 'Removed',
  phase: DrillCopyState['phase'],
): Promise<DrillCopyState[]> {
  const seen: DrillCopyState[] = [];
  await waitFor(
    async () => {
      const state = await step(adapter, want);
      seen.push(state);
      if (state.phase === 'Failed') throw new Error(`drill copy failed: ${state.message}`);
      return state.phase === phase;
    },
    { description: `the drill copy to be ${phase}`, timeoutMs: 60_000, intervalMs: 50 },
  );
  return seen;
}

/**
 * What moto leaves out of an instance's life, laid over its DescribeDBInstances answers for one
 * instance on one client: each answer takes the next status RDS would report; after the
 * promotion's, the instance has no source any more, as RDS lists a promoted replica.
 */
class RdsLifecycle {
  private queue: { status: string; replica: boolean }[] = [];
  private promoted = false;

  constructor(client: RDSClient, id: string, over: { broken?: string } = {}) {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const input = args.input as { DBInstanceIdentifier?: string };
        if (input.DBInstanceIdentifier !== id) return result;
        if (context.commandName === 'CreateDBInstanceReadReplicaCommand') {
          this.queue = [
            { status: 'creating', replica: true },
            { status: over.broken ?? 'creating', replica: true },
          ];
          if (over.broken) this.queue.push(...Array(100).fill({ status: over.broken, replica: true }));
        }
        if (context.commandName === 'PromoteReadReplicaCommand') {
          this.queue = [
            { status: 'modifying', replica: true },
            { status: 'modifying', replica: true },
            { status: 'rebooting', replica: false },
          ];
          this.promoted = true;
        }
        if (context.commandName === 'DescribeDBInstancesCommand') {
          const next = this.queue.shift();
          for (const i of (result.output as DescribeDBInstancesCommandOutput).DBInstances ?? []) {
            if (i.DBInstanceIdentifier !== id) continue;
            if (next) i.DBInstanceStatus = next.status;
            if ((next && !next.replica) || (!next && this.promoted)) {
              delete i.ReadReplicaSourceDBInstanceIdentifier;
            }
          }
        }
        return result;
      },
      { step: 'initialize', name: 'rdsLifecycle' },
    );
  }
}

describe('an isolated drill copy of an RDS standby', () => {
  let before: DBInstance | undefined;
  let serving: DrillCopyState;

  it('creates a tagged read replica of the standby, promotes it once available, and is Serving once RDS lists it standalone', async () => {
    before = await describeInstance(STANDBY);
    const client = rdsClient(WEST);
    new RdsLifecycle(client, COPY);
    const clock = new Date('2026-12-01T06:04:31.000Z');
    const adapter = standby({ client, now: () => clock });

    const seen = await until(adapter, 'Serving', 'Serving');
    expect(seen[0]).toEqual({
      phase: 'Copying',
      createdAt: '2026-12-01T06:04:31.000Z',
      message: expect.stringContaining(
        `CreateDBInstanceReadReplica ${COPY} (${WEST}) of ${STANDBY} accepted`,
      ),
    });
    const messages = seen.map((s) => `${s.phase}: ${s.message}`);
    expect(messages).toEqual([
      expect.stringContaining('accepted; RDS takes minutes'),
      expect.stringMatching(/as "creating", a read replica of orders-west; promoted once "available"/),
      expect.stringMatching(/as "creating", a read replica of/),
      expect.stringContaining('PromoteReadReplica accepted'),
      expect.stringMatching(/as "modifying", a read replica of/),
      expect.stringMatching(/as "modifying", a read replica of/),
      expect.stringMatching(/as "rebooting", no read replica any more; serving once "available"/),
      expect.stringMatching(/^Serving: .* a standalone instance promoted from a read replica of orders-west/),
    ]);
    serving = seen.at(-1) as DrillCopyState;
    expect(serving).toEqual({
      phase: 'Serving',
      endpoint: { host: `${COPY}.aaaaaaaaaa.${WEST}.rds.amazonaws.com`, port: 5432 },
      createdAt: '2026-12-01T06:04:31.000Z',
      promotedAt: '2026-12-01T06:04:31.000Z',
      message: expect.any(String),
    });

    // Asked once each, in the standby's region, as a throwaway copy of the standby.
    expect(writesSent()).toEqual([
      {
        action: 'CreateDBInstanceReadReplica',
        region: WEST,
        params: expect.objectContaining({
          DBInstanceIdentifier: COPY,
          SourceDBInstanceIdentifier: STANDBY,
          DBInstanceClass: 'db.r6g.large',
          MultiAZ: 'false',
          DeletionProtection: 'false',
          'Tags.Tag.1.Key': RDS_DRILL_TAGS.drill,
          'Tags.Tag.1.Value': DRILL,
        }),
      },
      {
        action: 'PromoteReadReplica',
        region: WEST,
        params: { DBInstanceIdentifier: COPY, BackupRetentionPeriod: '0' },
      },
      {
        action: 'AddTagsToResource',
        region: WEST,
        params: expect.objectContaining({ 'Tags.Tag.1.Key': RDS_DRILL_TAGS.promotedAt }),
      },
    ]);
  });

  it('leaves a copy RDS has: tagged, promoted (as far as moto tells), and the standby as it was', async () => {
    const copy = await describeInstance(COPY);
    expect(copy?.DBInstanceArn).toMatch(new RegExp(`^arn:aws:rds:${WEST}:\\d+:db:${COPY}$`));
    expect(copy?.DBInstanceStatus).toBe('available');
    expect(copy?.BackupRetentionPeriod).toBe(0);
    // moto's gap: after PromoteReadReplica the copy still names its source (RDS drops it).
    expect(copy?.ReadReplicaSourceDBInstanceIdentifier).toBe(STANDBY);
    expect(await tagsOf(copy?.DBInstanceArn ?? '')).toEqual({
      [RDS_DRILL_TAGS.drill]: DRILL,
      [RDS_DRILL_TAGS.copyOf]: STANDBY,
      [RDS_DRILL_TAGS.requestedAt]: '2026-12-01T06:04:31.000Z',
      [RDS_DRILL_TAGS.promotedAt]: '2026-12-01T06:04:31.000Z',
    });

    // The standby: still a replica of the source, as it was, untagged; it has a replica now.
    const after = await describeInstance(STANDBY);
    expect(after?.ReadReplicaSourceDBInstanceIdentifier).toBe(sourceArn);
    expect(after).toMatchObject({
      DBInstanceStatus: before?.DBInstanceStatus,
      DBInstanceClass: before?.DBInstanceClass,
      Endpoint: before?.Endpoint,
      BackupRetentionPeriod: before?.BackupRetentionPeriod,
    });
    expect(after?.ReadReplicaDBInstanceIdentifiers).toEqual([COPY]);
    expect(await tagsOf(after?.DBInstanceArn ?? '')).toEqual({});
  });

  it('is idempotent: Serving again, from this client or a fresh adapter, changes nothing', async () => {
    // A fresh adapter sees moto's answer, which still names the source: lay the promotion over it.
    const client = rdsClient(WEST);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'DescribeDBInstancesCommand') {
          for (const i of (result.output as DescribeDBInstancesCommandOutput).DBInstances ?? []) {
            if (i.DBInstanceIdentifier === COPY) delete i.ReadReplicaSourceDBInstanceIdentifier;
          }
        }
        return result;
      },
      { step: 'initialize', name: 'rdsPromoted' },
    );
    const later = new Date('2026-12-01T07:00:00.000Z');
    for (const adapter of [standby({ client, now: () => later }), standby({ client, now: () => later })]) {
      expect(await step(adapter, 'Serving')).toEqual(serving);
    }
    expect(writesSent()).toEqual([]);
  });

  it('deletes the copy without a final snapshot, Removed once RDS has it no more; again stays Removed', async () => {
    const adapter = standby();
    const seen = await until(adapter, 'Removed', 'Removed');
    expect(seen.map((s) => s.phase)).toEqual(['Copying', 'Removed']);
    expect(seen[0]).toEqual({
      phase: 'Copying',
      createdAt: '2026-12-01T06:04:31.000Z',
      promotedAt: '2026-12-01T06:04:31.000Z',
      message: `deleting: RDS DeleteDBInstance ${COPY} (${WEST}) accepted`,
    });
    expect(writesSent()).toEqual([
      {
        action: 'DeleteDBInstance',
        region: WEST,
        params: { DBInstanceIdentifier: COPY, SkipFinalSnapshot: 'true', DeleteAutomatedBackups: 'true' },
      },
    ]);
    expect(await describeInstance(COPY)).toBeUndefined();

    moto.clearRecording();
    expect(await step(adapter, 'Removed')).toEqual({
      phase: 'Removed',
      message: `RDS has no instance ${COPY} (${WEST})`,
    });
    expect(await step(standby(), 'Removed')).toMatchObject({ phase: 'Removed' });
    expect(writesSent()).toEqual([]);

    const after = await describeInstance(STANDBY);
    expect(after?.DBInstanceStatus).toBe('available');
    expect(after?.ReadReplicaSourceDBInstanceIdentifier).toBe(sourceArn);
    // moto's gap: a promoted replica it deletes stays in its former source's list of replicas.
    expect(after?.ReadReplicaDBInstanceIdentifiers).toEqual([COPY]);
  });

  it('removes a copy still being created (a drill cancelled early); the standby lists no replica of it', async () => {
    const drill = 'drill-20261201080000000';
    const id = `${STANDBY}-drill-20261201080000000`;
    const client = rdsClient(WEST);
    new RdsLifecycle(client, id);
    const adapter = standby({ client });
    expect(await step(adapter, 'Serving', drill)).toMatchObject({ phase: 'Copying' });
    expect((await describeInstance(STANDBY))?.ReadReplicaDBInstanceIdentifiers).toContain(id);
    expect(await step(adapter, 'Removed', drill)).toMatchObject({
      phase: 'Copying',
      message: expect.stringMatching(/^deleting: /),
    });
    expect(await step(adapter, 'Removed', drill)).toMatchObject({ phase: 'Removed' });
    expect(writesSent().map((w) => w.action)).toEqual(['CreateDBInstanceReadReplica', 'DeleteDBInstance']);
    expect(await describeInstance(id)).toBeUndefined();
    expect((await describeInstance(STANDBY))?.ReadReplicaDBInstanceIdentifiers).not.toContain(id);
  });

  it('reports Failed for a copy RDS cannot bring up, and still removes it', async () => {
    const drill = 'drill-20261201090000000';
    const id = `${STANDBY}-drill-20261201090000000`;
    const client = rdsClient(WEST);
    new RdsLifecycle(client, id, { broken: 'incompatible-parameters' });
    const adapter = standby({ client });
    expect(await step(adapter, 'Serving', drill)).toMatchObject({ phase: 'Copying' });
    expect(await step(adapter, 'Serving', drill)).toMatchObject({ phase: 'Copying' });
    expect(await step(adapter, 'Serving', drill)).toMatchObject({
      phase: 'Failed',
      message: `RDS lists ${id} (${WEST}) as "incompatible-parameters": the copy will not serve`,
    });
    expect(writesSent().map((w) => w.action)).toEqual(['CreateDBInstanceReadReplica']);
    expect(await step(adapter, 'Removed', drill)).toMatchObject({ phase: 'Copying' });
    expect(await step(adapter, 'Removed', drill)).toMatchObject({ phase: 'Removed' });
  });

  it('never promotes nor deletes an instance of the copy name that is not the drill copy', async () => {
    const drill = 'drill-20261201100000000';
    const id = `${STANDBY}-drill-20261201100000000`;
    await rdsClient(WEST).send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: id,
        Engine: 'postgres',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 20,
        MasterUsername: 'someone',
        MasterUserPassword: 'not-a-real-password',
      }),
    );
    moto.clearRecording();
    const adapter = standby();
    const failed = await step(adapter, 'Serving', drill);
    expect(failed).toEqual({
      phase: 'Failed',
      message: expect.stringContaining(`exists but is not the copy of drill ${drill}`),
    });
    expect(failed.message).toContain(`rename or delete it, the operator names this drill's copy ${id}`);
    expect(await step(adapter, 'Removed', drill)).toEqual({
      phase: 'Removed',
      message: expect.stringContaining('left alone'),
    });
    expect(writesSent()).toEqual([]);
    expect((await describeInstance(id))?.DBInstanceStatus).toBe('available');
  });

  it('throws ProviderError: NotFound for a standby RDS does not have, Unreachable when nothing answers', async () => {
    const missing = await standby({ id: 'orders-nowhere' })
      .drillCopy(DRILL, 'Serving')
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ProviderError);
    expect(missing).toMatchObject({ reason: 'NotFound', retryable: false });
    expect((missing as Error).message).toContain('check spec.provider.awsRds.dbInstanceIdentifier');

    const dead = await standby({ endpointUrl: `http://127.0.0.1:${await freePort()}` })
      .drillCopy(DRILL, 'Removed')
      .catch((e: unknown) => e);
    expect(dead).toBeInstanceOf(ProviderError);
    expect(dead).toMatchObject({ reason: 'Unreachable', retryable: true });
    expect(writesSent()).toEqual([]);
  });
});
