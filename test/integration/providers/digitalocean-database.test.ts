/**
 * The DigitalOcean control plane, composed (ManagedDatabase) with the real SQL side, against the
 * local DigitalOcean API stand-in and a real PostgreSQL primary and streaming standby. The
 * stand-in's promote endpoint runs pg_promote() on the real standby, as DigitalOcean does on its
 * side, so "writable after promotion" is real.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanControlPlane } from '../../../operator/src/providers/database/digitalocean.ts';
import { type DatabaseSql, ManagedDatabase } from '../../../operator/src/providers/database/managed.ts';
import type { DatabaseProvider, PromoteOutcome } from '../../../operator/src/providers/database/port.ts';
import { SelfManagedPostgres } from '../../../operator/src/providers/database/self-managed.ts';
import { ThrottledError } from '../../../operator/src/providers/dns/digitalocean.ts';
import { isProviderError, type ProviderError } from '../../../operator/src/providers/errors.ts';
import {
  type ClusterState,
  DigitalOceanApiServer,
  type ReplicaState,
} from '../../harness/digitalocean-api.ts';
import { freePort } from '../../harness/ports.ts';
import { type PostgresPair, startPostgresPair } from '../../harness/postgres.ts';
import { waitFor } from '../../harness/wait.ts';

let api: DigitalOceanApiServer;
let pair: PostgresPair;
let cluster: ClusterState;
let replica: ReplicaState;
const EPOCH = 7;

/** One SQL side per server, shared by the adapters below (each pools connections); closed at the end. */
const sqlSides = new Map<'primary' | 'standby', DatabaseProvider>();
function sqlSide(node: 'primary' | 'standby'): DatabaseProvider {
  let side = sqlSides.get(node);
  if (!side) {
    side = new SelfManagedPostgres(pair.connection(node), { applicationName: `do-test-${node}` });
    sqlSides.set(node, side);
  }
  return side;
}

/** The read-only node. Nothing to close: the control plane holds nothing, the SQL side is shared. */
function standbyAdapter(
  over: { token?: string; timeoutMs?: number; apiUrl?: string; sql?: DatabaseSql } = {},
) {
  return new ManagedDatabase({
    sql: over.sql ?? sqlSide('standby'),
    controlPlane: new DigitalOceanControlPlane({
      api: {
        token: over.token ?? api.token,
        apiUrl: over.apiUrl ?? api.url,
        timeoutMs: over.timeoutMs ?? 5_000,
      },
      databaseId: cluster.id,
      replicaName: replica.name,
    }),
  });
}

function primaryAdapter() {
  return new ManagedDatabase({
    sql: sqlSide('primary'),
    controlPlane: new DigitalOceanControlPlane({
      api: { token: api.token, apiUrl: api.url },
      databaseId: cluster.id,
    }),
  });
}

/** A SQL side for a port where nothing listens; closed at the end. */
async function unreachableSql(): Promise<DatabaseProvider> {
  const side = new SelfManagedPostgres(pair.connection('standby', { port: await freePort() }), {
    connectTimeoutMs: 3_000,
  });
  unreachableSides.push(side);
  return side;
}
const unreachableSides: DatabaseProvider[] = [];

async function rejection(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isProviderError(err)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  return err;
}

/** Promote requests the API accepted (204). */
const promoteCalls = () =>
  api.requestsMatching({ method: 'PUT', path: /\/promote$/ }).filter((r) => r.status === 204);

beforeAll(async () => {
  [api, pair] = await Promise.all([DigitalOceanApiServer.start(), startPostgresPair({ name: 'do-db' })]);
  ({ cluster, replica } = api.seedClusterWithReplica({
    cluster: { name: 'shop-ams3', region: 'ams3' },
    replica: { name: 'shop-nyc3', region: 'nyc3' },
  }));
  // What DigitalOcean does behind its promote endpoint, done to the real standby.
  api.onPromotion(async () => {
    await pair.sql('standby', 'SELECT pg_promote(true, 30)', [], 'postgres');
  });
});

afterAll(async () => {
  await Promise.all([...sqlSides.values(), ...unreachableSides].map((side) => side.close()));
  await Promise.all([api?.stop(), pair?.stop()]);
});

// One pair, one promotion: these run in order and each builds on the state the one before left.
describe.sequential('DigitalOcean database, with real PostgreSQL', () => {
  it('observes the read-only node as a streaming standby', async () => {
    const obs = await standbyAdapter().observe();
    expect(obs).toMatchObject({ reachable: true, role: 'Standby' });
    expect(obs.failure).toBeUndefined();
    // A node is named exactly by its spec: no id to report.
    expect(obs.databaseId).toBeUndefined();
  });

  it('observes the cluster itself as the primary', async () => {
    expect(await primaryAdapter().observe()).toMatchObject({ reachable: true, role: 'Primary' });
  });

  it('reports Unknown when SQL sees a primary but the API still lists a read-only node', async () => {
    const obs = await standbyAdapter({ sql: sqlSide('primary') }).observe();
    expect(obs.role).toBe('Unknown');
    expect(obs.failure?.message).toContain('spec.connection');
  });

  it('keeps the SQL observation when the API fails', async () => {
    api.failNext(1, { status: 500 });
    expect(await standbyAdapter().observe()).toMatchObject({ reachable: true, role: 'Standby' });
  });

  it('takes the role from the API when SQL cannot reach the node, and fences on its word that a read-only node takes no writes', async () => {
    const adapter = standbyAdapter({ sql: await unreachableSql() });
    const obs = await adapter.observe();
    expect(obs).toMatchObject({ reachable: false, role: 'Standby', failure: { reason: 'Unreachable' } });
    expect(obs.failure?.message).toContain(`lists ${replica.name} as a read-only node`);
    const { detail } = await adapter.fence({ operationId: 'op-0', epoch: EPOCH, mode: 'ReadOnly' });
    expect(detail).toContain('accepts no writes');
  });

  it('fences through SQL, turning Shutdown (impossible on a managed cluster) into ReadOnly and saying so', async () => {
    const { detail } = await primaryAdapter().fence({ operationId: 'op-1', epoch: EPOCH, mode: 'Shutdown' });
    expect(detail).toContain('ReadOnly instead of Shutdown');
    expect((await primaryAdapter().observe()).role).toBe('Fenced');
  });

  it('refuses to promote with a bad token, before anything changes', async () => {
    const err = await rejection(
      standbyAdapter({ token: 'dop_v1_wrong' }).promote({ operationId: 'op-1', epoch: EPOCH }),
    );
    expect(err.reason).toBe('AuthenticationFailed');
    expect(promoteCalls()).toEqual([]);
  });

  it('surfaces a 429 on the promote request as Throttled with the retry hint', async () => {
    api.failNext(1, { status: 429, retryAfterSeconds: 3, method: 'PUT' });
    const err = await rejection(standbyAdapter().promote({ operationId: 'op-1', epoch: EPOCH }));
    expect(err).toBeInstanceOf(ThrottledError);
    expect((err as ThrottledError).retryAfterMs).toBe(3_000);
    expect((await standbyAdapter().observe()).role).toBe('Standby');
  });

  it('is Pending at once while DigitalOcean creates the promoted cluster, asks once, and is Promoted on a later call', async () => {
    api.promotionDurationMs = 60_000;
    const adapter = standbyAdapter();
    const request = { operationId: 'op-1', epoch: EPOCH };
    const ms: number[] = [];
    const promote = async (): Promise<PromoteOutcome> => {
      const started = performance.now();
      try {
        return await adapter.promote(request);
      } finally {
        ms.push(Math.round(performance.now() - started));
      }
    };

    // What the tests before wrote on the primary (a fence's mark) has reached the standby: it
    // replays on its own time, and a read before that would not be the "before" of this test.
    await pair.waitForReplayCatchUp();
    const before = (await sqlSide('standby').observe()).heartbeat;
    expect(await promote()).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('promotion requested'),
    });
    expect(await promote()).toEqual({ state: 'Pending', detail: expect.stringContaining('"creating"') });
    // An API failure while it runs is an error the controller retries, not a failed promotion.
    api.failNext(1, { status: 503, method: 'GET' });
    const err = await rejection(promote());
    expect(err.reason).toBe('ProviderError');
    expect(err.retryable).toBe(true);
    expect(promoteCalls()).toHaveLength(1);
    expect(api.clusterNamed(replica.name)?.status).toBe('creating');
    // SQL already sees the promoted database, but nothing is written before the API says online.
    expect((await sqlSide('standby').observe()).heartbeat).toEqual(before);

    const promoted = api.clusterNamed(replica.name);
    if (promoted) promoted.onlineAt = Date.now() + 1_000;
    const outcome = await waitFor(
      async () => {
        const o = await promote();
        return o.state === 'Promoted' ? o : undefined;
      },
      { description: 'promote to report Promoted once the cluster is online', timeoutMs: 30_000 },
    );
    expect(outcome).toEqual({ state: 'Promoted', alreadyPrimary: false });
    expect(promoteCalls()).toHaveLength(1);
    expect(api.clusterNamed(replica.name)?.status).toBe('online');
    expect(cluster.replicas).toEqual([]);
    // No call waited for DigitalOcean: each is a few requests to local servers.
    expect(Math.max(...ms)).toBeLessThan(1_000);
    // The heartbeat with the new epoch was written on the new primary (even though the fence's
    // epoch had replicated to it already): it accepts writes.
    const obs = await standbyAdapter().observe();
    expect(obs).toMatchObject({ reachable: true, role: 'Primary', heartbeat: { epoch: EPOCH } });
    // The cluster it was promoted into, under the same spec: its id is what a stack imports.
    expect(obs.databaseId).toBe(api.clusterNamed(replica.name)?.id);
    expect(obs.heartbeat?.writtenAt.getTime()).toBeGreaterThan(before?.writtenAt.getTime() ?? 0);
  });

  it('is idempotent: promoting the promoted node reports alreadyPrimary and sends nothing', async () => {
    api.requests.length = 0;
    expect(await standbyAdapter().promote({ operationId: 'op-1', epoch: EPOCH })).toEqual({
      state: 'Promoted',
      alreadyPrimary: true,
    });
    expect(api.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('writes a heartbeat still owed by a promotion interrupted before it', async () => {
    expect(await standbyAdapter().promote({ operationId: 'op-2', epoch: EPOCH + 1 })).toEqual({
      state: 'Promoted',
      alreadyPrimary: true,
    });
    expect((await standbyAdapter().observe()).heartbeat?.epoch).toBe(EPOCH + 1);
  });
});

describe('DigitalOcean database: API failures', () => {
  it('maps an unknown cluster to NotFound and says which settings to check', async () => {
    const adapter = new ManagedDatabase({
      sql: sqlSide('primary'),
      controlPlane: new DigitalOceanControlPlane({
        api: { token: api.token, apiUrl: api.url },
        databaseId: '00000000-0000-4000-8000-000000000000',
        replicaName: 'nowhere',
      }),
    });
    const err = await rejection(adapter.promote({ operationId: 'op-3', epoch: 1 }));
    expect(err.reason).toBe('NotFound');
    expect(err.message).toContain('replicaName');
  });

  it('maps a 5xx on the first read to a retryable ProviderError', async () => {
    api.failNext(1, { status: 502 });
    const err = await rejection(standbyAdapter().promote({ operationId: 'op-1', epoch: EPOCH }));
    expect(err.reason).toBe('ProviderError');
    expect(err.retryable).toBe(true);
  });

  it('maps a slow API to Timeout', async () => {
    api.latencyMs = 3_000;
    try {
      const err = await rejection(
        standbyAdapter({ timeoutMs: 300 }).promote({ operationId: 'op-1', epoch: EPOCH }),
      );
      expect(err.reason).toBe('Timeout');
    } finally {
      api.latencyMs = 0;
    }
  });

  it('maps an API that is not there to Unreachable', async () => {
    const gone = await DigitalOceanApiServer.start();
    const url = gone.url;
    await gone.stop();
    const err = await rejection(
      standbyAdapter({ apiUrl: url }).promote({ operationId: 'op-1', epoch: EPOCH }),
    );
    expect(err.reason).toBe('Unreachable');
  });
});
