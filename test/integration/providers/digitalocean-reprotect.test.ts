/**
 * Reprotection of a former DigitalOcean primary against the local DigitalOcean API stand-in:
 * after a failover from ams3 (cluster shop-ams3) to nyc3 (its read-only node shop-nyc3, promoted
 * into a cluster), a read-only node of the new primary is created in ams3 and named in the
 * ReplicaCluster's place. No call here touches SQL: the SQL side is a port where nothing listens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanControlPlane } from '../../../operator/src/providers/database/digitalocean.ts';
import { ManagedDatabase } from '../../../operator/src/providers/database/managed.ts';
import type {
  ProviderSpec,
  ReprotectOutcome,
  ReprotectRequest,
} from '../../../operator/src/providers/database/port.ts';
import { SelfManagedPostgres } from '../../../operator/src/providers/database/self-managed.ts';
import { isProviderError, type ProviderError } from '../../../operator/src/providers/errors.ts';
import { type ClusterState, DigitalOceanApiServer } from '../../harness/digitalocean-api.ts';
import { freePort } from '../../harness/ports.ts';

const TOKEN_REF = { name: 'do-token', key: 'token' };
const REPLACEMENT = 'orders-shop-ams3-e4';

let api: DigitalOceanApiServer;
let sqlPort: number;
/** The former primary (ams3) and the active primary, promoted from its nyc3 node. */
let old: ClusterState;
let primary: ClusterState;
const adapters: ManagedDatabase[] = [];

beforeAll(async () => {
  [api, sqlPort] = await Promise.all([
    DigitalOceanApiServer.start({ replicaCreationDurationMs: 10 * 60_000 }),
    freePort(),
  ]);
  const seeded = api.seedClusterWithReplica({
    cluster: { name: 'shop-ams3', region: 'ams3' },
    replica: { name: 'shop-nyc3', region: 'nyc3' },
  });
  old = seeded.cluster;
  // The failover: DigitalOcean promotes the node into a cluster of the same name.
  const res = await fetch(`${api.url}/v2/databases/${old.id}/replicas/shop-nyc3/promote`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${api.token}` },
  });
  expect(res.status).toBe(204);
  const promoted = api.clusterNamed('shop-nyc3');
  if (!promoted) throw new Error('the stand-in did not promote shop-nyc3');
  primary = promoted;
});

afterAll(async () => {
  await Promise.all(adapters.map((a) => a.close()));
  await api?.stop();
});

/** A ReplicaCluster's spec.provider block. */
function providerBlock(databaseId: string, replicaName?: string): ProviderSpec {
  return {
    type: 'DigitalOcean',
    digitalOcean: {
      databaseId,
      ...(replicaName ? { replicaName } : {}),
      tokenSecretRef: TOKEN_REF,
      apiUrl: api.url,
    },
  };
}

/** The adapter of a ReplicaCluster with this provider block, as the factory makes it. */
function adapter(databaseId: string, replicaName?: string): ManagedDatabase<DigitalOceanControlPlane> {
  const managed = new ManagedDatabase({
    sql: new SelfManagedPostgres(
      {
        host: '127.0.0.1',
        port: sqlPort,
        database: 'defaultdb',
        sslMode: 'disable',
        user: 'x',
        password: 'x',
      },
      { connectTimeoutMs: 1_000 },
    ),
    controlPlane: new DigitalOceanControlPlane({
      api: { token: api.token, apiUrl: api.url },
      databaseId,
      ...(replicaName ? { replicaName } : {}),
      provider: providerBlock(databaseId, replicaName),
    }),
  });
  adapters.push(managed);
  return managed;
}

function request(over: Partial<ReprotectRequest> = {}): ReprotectRequest {
  return {
    operationId: 'op-4',
    epoch: 4,
    policy: 'orders',
    // The primary's ReplicaCluster still names the node it was promoted from.
    primary: { cluster: 'shop-nyc3', provider: providerBlock(old.id, 'shop-nyc3') },
    ...over,
  };
}

const created = () =>
  api.requestsMatching({ method: 'POST', path: /\/replicas$/ }).filter((r) => r.status === 201);
const writes = () => api.requests.filter((r) => r.method !== 'GET');

async function timed(managed: ManagedDatabase, req: ReprotectRequest): Promise<ReprotectOutcome> {
  const started = performance.now();
  const outcome = await managed.reprotect(req);
  // Never waits for DigitalOcean: a few requests to a local server.
  expect(performance.now() - started).toBeLessThan(2_000);
  return outcome;
}

async function rejection(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isProviderError(err)) throw new Error(`expected a ProviderError, got ${String(err)}`);
  return err;
}

describe.sequential('reprotecting a former DigitalOcean primary', () => {
  it('adds a read-only node of the primary in the old region, Pending while it forks, then names it as the replacement', async () => {
    const former = adapter(old.id);
    api.requests.length = 0;

    expect(await timed(former, request())).toEqual({
      state: 'Pending',
      detail: expect.stringContaining(`create read-only node ${REPLACEMENT} (ams3) of cluster shop-nyc3`),
    });
    expect(created()).toHaveLength(1);
    expect(created()[0]?.path).toBe(`/v2/databases/${primary.id}/replicas`);
    // What the API was asked for: the node in the old region, at the primary's size.
    expect(primary.replicas).toEqual([
      expect.objectContaining({ name: REPLACEMENT, region: 'ams3', size: primary.size, status: 'forking' }),
    ]);

    expect(await timed(former, request())).toEqual({
      state: 'Pending',
      detail: expect.stringContaining(`lists ${REPLACEMENT} (ams3) as a read-only node ("forking")`),
    });
    expect(created()).toHaveLength(1);

    const node = primary.replicas[0];
    if (node) node.activeAt = Date.now();
    expect(await timed(former, request())).toEqual({
      state: 'Protected',
      detail: expect.stringContaining('shop-ams3 is left for a person to delete'),
      replacement: {
        provider: providerBlock(primary.id, REPLACEMENT),
        host: `replica-${REPLACEMENT}.db.example.com`,
        port: 25060,
        superseded: 'shop-ams3',
      },
    });
    // The former primary is still there: nothing is deleted.
    expect(api.clusters.get(old.id)?.status).toBe('online');
    expect(writes()).toHaveLength(1);
  });

  it('is idempotent: called again, by a fresh adapter too, it creates nothing', async () => {
    api.requests.length = 0;
    for (const former of [adapter(old.id), adapter(old.id)]) {
      expect(await timed(former, request())).toMatchObject({
        state: 'Protected',
        replacement: { provider: providerBlock(primary.id, REPLACEMENT), superseded: 'shop-ams3' },
      });
    }
    expect(writes()).toEqual([]);
    expect(primary.replicas.map((r) => r.name)).toEqual([REPLACEMENT]);
  });

  it('the ReplicaCluster naming the replacement sees a standby, and reprotecting it is Protected with no replacement', async () => {
    const replacement = adapter(primary.id, REPLACEMENT);
    expect(await replacement.controlPlane.view()).toMatchObject({ role: 'Standby', status: 'active' });
    api.requests.length = 0;
    expect(await timed(replacement, request())).toEqual({
      state: 'Protected',
      detail: expect.stringContaining(
        `lists ${REPLACEMENT} as a read-only node ("active") of the primary cluster shop-nyc3`,
      ),
    });
    expect(writes()).toEqual([]);
  });

  it('waits, asking for nothing, while the primary is still a read-only node or not online yet', async () => {
    const other = api.seedClusterWithReplica({
      cluster: { name: 'cart-ams3', region: 'ams3' },
      replica: { name: 'cart-nyc3', region: 'nyc3' },
    });
    const former = adapter(other.cluster.id);
    api.requests.length = 0;
    const notPromoted = request({
      primary: { cluster: 'cart-nyc3', provider: providerBlock(other.cluster.id, 'cart-nyc3') },
    });
    expect(await timed(former, notPromoted)).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('the primary cart-nyc3 is still a read-only node'),
    });

    api.promotionDurationMs = 10 * 60_000;
    try {
      await fetch(`${api.url}/v2/databases/${other.cluster.id}/replicas/cart-nyc3/promote`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${api.token}` },
      });
    } finally {
      api.promotionDurationMs = 0;
    }
    api.requests.length = 0;
    expect(await timed(former, notPromoted)).toEqual({
      state: 'Pending',
      detail: expect.stringContaining('is "creating"; a read-only node of it is asked for once it is online'),
    });
    expect(writes()).toEqual([]);
  });

  it('refuses a primary of another provider, and NotFound names the primary ReplicaCluster to check', async () => {
    const other = await rejection(
      adapter(old.id).reprotect(
        request({ primary: { cluster: 'orders-rds', provider: { type: 'AwsRds' } } }),
      ),
    );
    expect(other).toMatchObject({ reason: 'Rejected', retryable: false });
    const missing = await rejection(
      adapter(old.id).reprotect(
        request({ primary: { cluster: 'shop-nyc3', provider: providerBlock(old.id, 'nowhere') } }),
      ),
    );
    expect(missing.reason).toBe('NotFound');
    expect(missing.message).toContain('spec.provider.digitalOcean of the primary ReplicaCluster shop-nyc3');
  });

  it('maps API failures as the other calls do: a 5xx is retryable, a 429 is Throttled', async () => {
    api.failNext(1, { status: 503, method: 'POST' });
    const other = api.seedClusterWithReplica({
      cluster: { name: 'pay-ams3', region: 'ams3' },
      replica: { name: 'pay-nyc3', region: 'nyc3' },
    });
    await fetch(`${api.url}/v2/databases/${other.cluster.id}/replicas/pay-nyc3/promote`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${api.token}` },
    });
    const req = request({
      primary: { cluster: 'pay-nyc3', provider: providerBlock(other.cluster.id, 'pay-nyc3') },
    });
    const err = await rejection(adapter(other.cluster.id).reprotect(req));
    expect(err).toMatchObject({ reason: 'ProviderError', retryable: true });
    // Asked again after the failure: created once.
    expect(await timed(adapter(other.cluster.id), req)).toMatchObject({ state: 'Pending' });
    expect(api.clusterNamed('pay-nyc3')?.replicas.map((r) => r.name)).toEqual(['orders-pay-ams3-e4']);
  });
});
