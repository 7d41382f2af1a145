/**
 * Keeps the DigitalOcean API stand-in honest. The adapters parse responses with zod schemas
 * written from the published API; here (1) the published example payloads parse with those
 * schemas, so the schemas accept what the real API sends, and (2) every response the stand-in
 * gives parses with the same schemas and carries only documented attributes, status codes and
 * headers, so the stand-in cannot drift from what the adapters expect.
 *
 * The examples are from github.com/digitalocean/openapi, specification/resources/... (paths given
 * beside each), trimmed of attributes nobody here reads, with their host names replaced by example ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import {
  databaseClusterResponseSchema,
  databaseClustersResponseSchema,
  databaseReplicaResponseSchema,
  databaseReplicasResponseSchema,
} from '../../../operator/src/providers/database/digitalocean.ts';
import {
  digitalOceanErrorSchema,
  domainRecordResponseSchema,
  domainRecordsPageSchema,
} from '../../../operator/src/providers/dns/digitalocean.ts';
import { DigitalOceanApiServer } from '../../harness/digitalocean-api.ts';

/** Attributes the published models define (models/*.yml `properties`). */
const DOMAIN_RECORD_KEYS = [
  'data',
  'flags',
  'id',
  'name',
  'port',
  'priority',
  'tag',
  'ttl',
  'type',
  'weight',
];
const CONNECTION_KEYS = ['database', 'host', 'password', 'port', 'ssl', 'uri', 'user'];
const CLUSTER_KEYS = new Set([
  'id',
  'name',
  'engine',
  'version',
  'semantic_version',
  'num_nodes',
  'size',
  'region',
  'status',
  'created_at',
  'private_network_uuid',
  'tags',
  'db_names',
  'ui_connection',
  'connection',
  'private_connection',
  'standby_connection',
  'standby_private_connection',
  'users',
  'maintenance_window',
  'project_id',
  'rules',
  'version_end_of_life',
  'version_end_of_availability',
  'storage_size_mib',
  'metrics_endpoints',
]);
const REPLICA_KEYS = new Set([
  'id',
  'name',
  'region',
  'size',
  'status',
  'tags',
  'created_at',
  'private_network_uuid',
  'connection',
  'private_connection',
  'storage_size_mib',
]);

const published = {
  /** domains/examples.yml#DomainRecordsAll (first record) */
  domainRecords: {
    domain_records: [
      {
        id: 28448429,
        type: 'NS',
        name: '@',
        data: 'ns1.example.net',
        priority: null,
        port: null,
        ttl: 1800,
        weight: null,
        flags: null,
        tag: null,
      },
    ],
    links: {},
    meta: { total: 1 },
  },
  /** domains/examples.yml#DomainRecordCreated */
  domainRecordCreated: {
    domain_record: {
      id: 28448433,
      type: 'A',
      name: 'www',
      data: '162.10.66.0',
      priority: null,
      port: null,
      ttl: 1800,
      weight: null,
      flags: null,
      tag: null,
    },
  },
  /** databases/responses/database_cluster.yml */
  cluster: {
    database: {
      id: '9cc10173-e9ea-4176-9dbc-a4cee4c4ff30',
      name: 'backend',
      engine: 'pg',
      version: '14',
      semantic_version: '14.5',
      connection: {
        uri: 'postgres://doadmin:example_password@db.example.com:25060/defaultdb?sslmode=require',
        database: '',
        host: 'db.example.com',
        port: 25060,
        user: 'doadmin',
        password: 'example_password',
        ssl: true,
      },
      users: [{ name: 'doadmin', role: 'primary', password: 'example_password' }],
      db_names: ['defaultdb'],
      num_nodes: 2,
      region: 'nyc3',
      status: 'creating',
      created_at: '2019-01-11T18:37:36Z',
      maintenance_window: { day: 'saturday', hour: '08:45:12', pending: true, description: [] },
      size: 'db-s-2vcpu-4gb',
      tags: ['production'],
      private_network_uuid: 'd455e75d-4858-4eec-8c95-da2f0a5f93a7',
      storage_size_mib: 61440,
    },
  },
  /** databases/responses/database_replica.yml (note `status: active`, outside the documented enum) */
  replica: {
    replica: {
      name: 'read-nyc3-01',
      connection: {
        uri: '',
        database: 'defaultdb',
        host: 'read-nyc3-01.db.example.com',
        port: 25060,
        user: 'doadmin',
        password: 'wv78n3zpz42xezdk',
        ssl: true,
      },
      region: 'nyc3',
      status: 'active',
      created_at: '0001-01-01T00:00:00Z',
    },
  },
  /** shared/responses/unexpected_error.yml */
  error: { id: 'im_a_teapot', message: 'how do you do?' },
};

describe('the adapters’ schemas accept the published examples', () => {
  it.each([
    ['domain records list', domainRecordsPageSchema, published.domainRecords],
    ['created domain record', domainRecordResponseSchema, published.domainRecordCreated],
    ['database cluster', databaseClusterResponseSchema, published.cluster],
    ['database clusters', databaseClustersResponseSchema, { databases: [published.cluster.database] }],
    ['read-only replica', databaseReplicaResponseSchema, published.replica],
    ['read-only replicas', databaseReplicasResponseSchema, { replicas: [published.replica.replica] }],
    ['error', digitalOceanErrorSchema, published.error],
  ] as [string, z.ZodType, unknown][])('%s', (_name, schema, example) => {
    expect(schema.safeParse(example).error).toBeUndefined();
  });
});

describe('the stand-in answers as the published API does', () => {
  let api: DigitalOceanApiServer;
  let clusterId = '';

  async function call(method: string, path: string, body?: unknown, token?: string) {
    const res = await fetch(`${api.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token ?? api.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    // shared/headers.yml: every response carries the rate-limit headers, as integers.
    for (const h of ['ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset']) {
      expect(res.headers.get(h), `${method} ${path}: ${h}`).toMatch(/^\d+$/);
    }
    return {
      status: res.status,
      headers: res.headers,
      text,
      json: text ? (JSON.parse(text) as unknown) : undefined,
    };
  }

  function parsed<T>(schema: z.ZodType<T>, json: unknown): T {
    const r = schema.safeParse(json);
    expect(r.error).toBeUndefined();
    return r.data as T;
  }

  beforeAll(async () => {
    api = await DigitalOceanApiServer.start();
    api.addDomain('example.com');
    ({
      cluster: { id: clusterId },
    } = api.seedClusterWithReplica());
  });

  afterAll(async () => {
    await api.stop();
  });

  it('domain records: create 201, get and update 200, delete 204, with exactly the documented attributes', async () => {
    const created = await call('POST', '/v2/domains/example.com/records', {
      type: 'CNAME',
      name: 'www',
      data: 'web.example.net.',
      ttl: 60,
    });
    expect(created.status).toBe(201);
    const { domain_record: record } = parsed(domainRecordResponseSchema, created.json);
    expect(Object.keys(record).sort()).toEqual(DOMAIN_RECORD_KEYS);
    expect(record).toMatchObject({
      name: 'www',
      data: 'web.example.net',
      ttl: 60,
      priority: null,
      tag: null,
    });

    const got = await call('GET', `/v2/domains/example.com/records/${record.id}`);
    expect(got.status).toBe(200);
    parsed(domainRecordResponseSchema, got.json);

    const updated = await call('PUT', `/v2/domains/example.com/records/${record.id}`, {
      type: 'CNAME',
      name: 'www',
      data: 'web2.example.net.',
      ttl: 60,
    });
    expect(updated.status).toBe(200);
    expect(parsed(domainRecordResponseSchema, updated.json).domain_record.data).toBe('web2.example.net');

    const deleted = await call('DELETE', `/v2/domains/example.com/records/${record.id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
  });

  it('domain records list: name (fully qualified) and type filters, pages with links and meta.total', async () => {
    for (let i = 0; i < 3; i++) {
      await call('POST', '/v2/domains/example.com/records', {
        type: 'TXT',
        name: '_x',
        data: `n=${i}`,
        ttl: 60,
      });
    }
    const first = await call(
      'GET',
      '/v2/domains/example.com/records?name=_x.example.com&type=TXT&per_page=2',
    );
    const page1 = parsed(domainRecordsPageSchema, first.json);
    expect(page1.meta.total).toBe(3);
    expect(page1.domain_records).toHaveLength(2);
    expect(Object.keys(page1.links?.pages ?? {}).sort()).toEqual(['last', 'next']);

    const second = await call(
      'GET',
      '/v2/domains/example.com/records?name=_x.example.com&type=TXT&per_page=2&page=2',
    );
    const page2 = parsed(domainRecordsPageSchema, second.json);
    expect(page2.domain_records.map((r) => r.data)).toEqual(['n=2']);
    expect(Object.keys(page2.links?.pages ?? {}).sort()).toEqual(['first', 'prev']);

    const apex = parsed(
      domainRecordsPageSchema,
      (await call('GET', '/v2/domains/example.com/records?name=example.com')).json,
    );
    expect(apex.domain_records.every((r) => r.name === '@')).toBe(true);
    expect(apex.links).toEqual({});
  });

  it('databases: cluster, cluster list, replica and replica list with documented attributes only', async () => {
    const one = parsed(databaseClusterResponseSchema, (await call('GET', `/v2/databases/${clusterId}`)).json);
    const list = parsed(databaseClustersResponseSchema, (await call('GET', '/v2/databases')).json);
    const replicas = parsed(
      databaseReplicasResponseSchema,
      (await call('GET', `/v2/databases/${clusterId}/replicas`)).json,
    );
    const name = replicas.replicas?.[0]?.name ?? '';
    const replica = parsed(
      databaseReplicaResponseSchema,
      (await call('GET', `/v2/databases/${clusterId}/replicas/${name}`)).json,
    );
    for (const c of [one.database, ...(list.databases ?? [])]) {
      expect(Object.keys(c).filter((k) => !CLUSTER_KEYS.has(k))).toEqual([]);
      expect(Object.keys(c.connection ?? {}).sort()).toEqual(CONNECTION_KEYS);
    }
    expect(Object.keys(replica.replica).filter((k) => !REPLICA_KEYS.has(k))).toEqual([]);
    expect(Object.keys(replica.replica.connection ?? {}).sort()).toEqual(CONNECTION_KEYS);
  });

  it('creating a read-only node answers 201 with the documented replica, "forking" until it is ready ("active")', async () => {
    const body = { name: 'read-ams3-01', region: 'ams3', size: 'db-s-2vcpu-4gb' };
    const res = await call('POST', `/v2/databases/${clusterId}/replicas`, body);
    expect(res.status).toBe(201);
    const { replica } = parsed(databaseReplicaResponseSchema, res.json);
    expect(Object.keys(replica).filter((k) => !REPLICA_KEYS.has(k))).toEqual([]);
    expect(Object.keys(replica.connection ?? {}).sort()).toEqual(CONNECTION_KEYS);
    expect(replica).toMatchObject({ ...body, status: 'forking' });
    const got = await call('GET', `/v2/databases/${clusterId}/replicas/read-ams3-01`);
    expect(parsed(databaseReplicaResponseSchema, got.json).replica.status).toBe('active');

    // name and size are required (databases_create_replica requestBody); a name in use is refused.
    for (const bad of [{ region: 'ams3', size: 'db-s-2vcpu-4gb' }, { name: 'read-ams3-02' }, body]) {
      const refused = await call('POST', `/v2/databases/${clusterId}/replicas`, bad);
      expect(refused.status).toBe(422);
      parsed(digitalOceanErrorSchema, refused.json);
    }
  });

  it('promote answers 204 without a body, and the node becomes a standalone cluster of the same name', async () => {
    const res = await call('PUT', `/v2/databases/${clusterId}/replicas/shop-nyc3/promote`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    const list = parsed(databaseClustersResponseSchema, (await call('GET', '/v2/databases')).json);
    expect(list.databases?.find((c) => c.name === 'shop-nyc3')?.status).toBe('online');
    expect((await call('GET', `/v2/databases/${clusterId}/replicas/shop-nyc3`)).status).toBe(404);
  });

  it('errors: 401, 404, 422 and 429 with the documented bodies, and Retry-After on 429', async () => {
    const unauthorized = await call('GET', '/v2/databases', undefined, 'wrong');
    expect(unauthorized.status).toBe(401);
    expect(parsed(digitalOceanErrorSchema, unauthorized.json).id).toBe('Unauthorized');

    const notFound = await call('GET', '/v2/domains/missing.example/records');
    expect(notFound.status).toBe(404);
    expect(parsed(digitalOceanErrorSchema, notFound.json).id).toBe('not_found');

    const invalid = await call('POST', '/v2/domains/example.com/records', {
      type: 'CNAME',
      name: 'x',
      data: 'no-dot',
    });
    expect(invalid.status).toBe(422);
    expect(parsed(digitalOceanErrorSchema, invalid.json).message).toContain('dot');

    api.failNext(1, { status: 429, retryAfterSeconds: 11 });
    const throttled = await call('GET', '/v2/databases');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('11');
    expect(throttled.headers.get('ratelimit-remaining')).toBe('0');
    expect(parsed(digitalOceanErrorSchema, throttled.json).id).toBe('too_many_requests');

    api.failNext(1, { status: 503 });
    const unavailable = await call('GET', '/v2/databases');
    expect(unavailable.status).toBe(503);
    parsed(digitalOceanErrorSchema, unavailable.json);
  });
});
