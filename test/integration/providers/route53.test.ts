/**
 * The Route 53 DNS provider against a real moto_server with the real AWS SDK: create, compare-
 * and-swap, ownership, idempotence and error classification. moto's request recording is the
 * witness of what the adapter sent. The tests named "moto:" pin down what moto itself enforces,
 * because the adapter's safety claim (rule 4) rests on Route 53 refusing a stale batch.
 */
import {
  ChangeResourceRecordSetsCommand,
  type ChangeResourceRecordSetsCommandOutput,
  CreateHostedZoneCommand,
  ListResourceRecordSetsCommand,
  PriorRequestNotComplete,
  Route53Client,
  ThrottlingException,
} from '@aws-sdk/client-route-53';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { classifyAwsError } from '../../../operator/src/providers/aws.ts';
import { createDnsProvider } from '../../../operator/src/providers/dns/factory.ts';
import type { DnsChange } from '../../../operator/src/providers/dns/port.ts';
import { Route53Dns } from '../../../operator/src/providers/dns/route53.ts';
import { ProviderError } from '../../../operator/src/providers/errors.ts';
import { MotoServer } from '../../harness/moto.ts';

let moto: MotoServer;
/** A client of the test's own, standing for people and other tools that touch the zone. */
let other: Route53Client;
let zoneId: string;
const adapters: Route53Dns[] = [];

const record = { zone: 'example.com', name: 'orders-db.example.com', type: 'CNAME' as const };
const OWNER = 'shop/orders';
const EAST = 'pg.us-east-1.example.com';
const WEST = 'pg.eu-west-1.example.com';

beforeAll(async () => {
  moto = await MotoServer.start({ name: 'route53' });
  other = new Route53Client({ endpoint: moto.endpoint, region: 'us-east-1', credentials: moto.credentials });
});

afterAll(async () => {
  await Promise.all(adapters.map((a) => a.close()));
  other?.destroy();
  await moto?.stop();
});

beforeEach(async () => {
  if (!moto.running) await moto.restart();
  await moto.requireAuthentication(false);
  await moto.reset();
  const zone = await other.send(
    new CreateHostedZoneCommand({ Name: 'example.com', CallerReference: `${Date.now()}` }),
  );
  zoneId = (zone.HostedZone?.Id ?? '').replace('/hostedzone/', '');
  moto.clearRecording();
});

function dns(options: Partial<ConstructorParameters<typeof Route53Dns>[0]> = {}): Route53Dns {
  const adapter = new Route53Dns({
    hostedZoneId: zoneId,
    endpointUrl: moto.endpoint,
    credentials: moto.credentials,
    ...options,
  });
  adapters.push(adapter);
  return adapter;
}

function change(fields: Partial<DnsChange> = {}): DnsChange {
  return { record, value: EAST, ttl: 30, owner: OWNER, epoch: 1, ...fields };
}

/** The zone's records as Route 53 lists them, apart from the zone's own NS and SOA. */
async function zoneRecords(): Promise<{ name: string; type: string; ttl?: number; values: string[] }[]> {
  const out = await other.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
  return (out.ResourceRecordSets ?? [])
    .filter((r) => r.Type !== 'NS' && r.Type !== 'SOA')
    .map((r) => ({
      name: r.Name ?? '',
      type: r.Type ?? '',
      ...(r.TTL !== undefined ? { ttl: r.TTL } : {}),
      values: (r.ResourceRecords ?? []).map((v) => v.Value ?? ''),
    }));
}

/** ChangeResourceRecordSets requests moto received (POST .../rrset), with their XML bodies. */
function changeBatchesSent(): string[] {
  return moto
    .recordedRequests()
    .filter((r) => r.method === 'POST' && /\/hostedzone\/[^/]+\/rrset\/?$/.test(r.path))
    .map((r) => r.body);
}

/** Changes a record set behind the operator's back, with a batch of the test's own. */
async function changeBehindOurBack(
  changes: {
    action: 'CREATE' | 'DELETE';
    name: string;
    type: 'CNAME' | 'TXT';
    value: string;
    ttl?: number;
  }[],
): Promise<ChangeResourceRecordSetsCommandOutput> {
  return other.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: zoneId,
      ChangeBatch: {
        Changes: changes.map((c) => ({
          Action: c.action,
          ResourceRecordSet: {
            Name: c.name,
            Type: c.type,
            TTL: c.ttl ?? 30,
            ResourceRecords: [{ Value: c.value }],
          },
        })),
      },
    }),
  );
}

async function rejection(promise: Promise<unknown>): Promise<ProviderError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('Route 53 adapter', () => {
  it('reads an absent record as empty', async () => {
    expect(await dns().read(record)).toEqual({});
  });

  it('creates an absent record and its ownership TXT in one batch, and reports the change id', async () => {
    const adapter = dns();
    const result = await adapter.apply(change());
    expect(result).toMatchObject({ changed: true, changeId: expect.stringMatching(/\S/) });
    expect(await zoneRecords()).toEqual([
      { name: 'orders-db.example.com.', type: 'CNAME', ttl: 30, values: [`${EAST}.`] },
      {
        name: '_failover.orders-db.example.com.',
        type: 'TXT',
        ttl: 30,
        values: ['"owner=shop/orders" "epoch=1"'],
      },
    ]);
    expect(await adapter.read(record)).toEqual({ value: EAST, ttl: 30, owner: OWNER, epoch: 1 });
    const batches = changeBatchesSent();
    expect(batches).toHaveLength(1);
    expect(batches[0]).not.toContain('<Action>DELETE</Action>');
  });

  it('is idempotent: re-applying the change it already made sends nothing', async () => {
    const adapter = dns();
    await adapter.apply(change());
    moto.clearRecording();
    expect(await adapter.apply(change())).toEqual({ changed: false });
    expect(changeBatchesSent()).toEqual([]);
  });

  it('swaps the value when the record holds the expected one: DELETEs the exact old sets, CREATEs the new', async () => {
    const adapter = dns();
    await adapter.apply(change());
    moto.clearRecording();
    const result = await adapter.apply(change({ expected: EAST, value: WEST, epoch: 2 }));
    expect(result.changed).toBe(true);
    expect(await adapter.read(record)).toEqual({ value: WEST, ttl: 30, owner: OWNER, epoch: 2 });
    const [batch] = changeBatchesSent();
    // One batch, deletes first, each DELETE carrying the TTL and value it was read with.
    const actions = [...(batch ?? '').matchAll(/<Action>(\w+)<\/Action>/g)].map((m) => m[1]);
    expect(actions).toEqual(['DELETE', 'DELETE', 'CREATE', 'CREATE']);
    expect(batch).toMatch(/<Action>DELETE<\/Action>.*<TTL>30<\/TTL>.*pg\.us-east-1\.example\.com\./s);
    expect(batch).toContain('epoch=1');
    expect(batch).toContain('epoch=2');
    // The same change again: the record holds the new value, owner and epoch.
    expect(await adapter.apply(change({ expected: EAST, value: WEST, epoch: 2 }))).toEqual({
      changed: false,
    });
  });

  it('changes the TTL alone at the same epoch (a drill lowers it, then puts it back)', async () => {
    const adapter = dns();
    await adapter.apply(change());
    moto.clearRecording();
    expect((await adapter.apply(change({ expected: EAST, ttl: 5 }))).changed).toBe(true);
    expect(await adapter.read(record)).toEqual({ value: EAST, ttl: 5, owner: OWNER, epoch: 1 });
    expect(changeBatchesSent()).toHaveLength(1);
    // Not back to 30: moto refuses a CREATE identical to one in its journal (see "gap:" below).
    expect((await adapter.apply(change({ expected: EAST, ttl: 60 }))).changed).toBe(true);
    expect(await adapter.read(record)).toMatchObject({ ttl: 60, epoch: 1 });
    expect(await adapter.apply(change({ expected: EAST, ttl: 60 }))).toEqual({ changed: false });
  });

  it('counts a batch that applied but whose answer was refused on a retry as made, not as lost', async () => {
    // The SDK retries a batch whose answer never came; Route 53 refuses the retry, whose exact
    // DELETEs no longer match, with InvalidChangeBatch. Here: the batch goes through, and the
    // answer the adapter gets is that refusal.
    await dns().apply(change());
    const client = new Route53Client({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: moto.credentials,
    });
    let apply = true;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName !== 'ChangeResourceRecordSetsCommand') return next(args);
        if (apply) await next(args);
        throw Object.assign(new Error('Tried to delete resource record set but it was not found'), {
          name: 'InvalidChangeBatch',
          $metadata: {},
        });
      },
      { step: 'initialize', name: 'answerLost' },
    );
    try {
      const adapter = dns({ client });
      expect((await adapter.apply(change({ expected: EAST, value: WEST, epoch: 2 }))).changed).toBe(true);
      expect(await adapter.read(record)).toEqual({ value: WEST, ttl: 30, owner: OWNER, epoch: 2 });
      // Control: a refused batch that did not apply is still a lost race.
      apply = false;
      const err = await rejection(adapter.apply(change({ expected: WEST, value: EAST, epoch: 3 })));
      expect(err.reason).toBe('PreconditionFailed');
      expect(await adapter.read(record)).toMatchObject({ value: WEST, epoch: 2 });
    } finally {
      client.destroy();
    }
  });

  it('writes a new epoch when the record already points at the target, swapping only the TXT', async () => {
    const adapter = dns();
    await adapter.apply(change());
    moto.clearRecording();
    const result = await adapter.apply(change({ expected: WEST, value: EAST, epoch: 5 }));
    expect(result.changed).toBe(true);
    expect(await adapter.read(record)).toEqual({ value: EAST, ttl: 30, owner: OWNER, epoch: 5 });
    const [batch] = changeBatchesSent();
    expect([...(batch ?? '').matchAll(/<Type>(\w+)<\/Type>/g)].map((m) => m[1])).toEqual(['TXT', 'TXT']);
  });

  it('refuses with PreconditionFailed when the record was changed behind its back, and sends nothing', async () => {
    const adapter = dns();
    await adapter.apply(change());
    await changeBehindOurBack([
      { action: 'DELETE', name: record.name, type: 'CNAME', value: `${EAST}.` },
      { action: 'CREATE', name: record.name, type: 'CNAME', value: 'pg.elsewhere.example.com' },
    ]);
    moto.clearRecording();
    const err = await rejection(adapter.apply(change({ expected: EAST, value: WEST, epoch: 2 })));
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('pg.elsewhere.example.com');
    expect(changeBatchesSent()).toEqual([]);
    expect(await adapter.read(record)).toMatchObject({ value: 'pg.elsewhere.example.com', epoch: 1 });
  });

  it('refuses a change with an older epoch than the record carries, even when the value matches', async () => {
    // Failover to WEST (epoch 2), failback by a newer decision (epoch 3, TTL 60 so that moto
    // accepts the batch; see "moto:" below); a stale decider still holding the epoch-2 plan
    // finds the record at the value it expects.
    const adapter = dns();
    await adapter.apply(change());
    await adapter.apply(change({ expected: EAST, value: WEST, epoch: 2 }));
    await adapter.apply(change({ expected: WEST, value: EAST, epoch: 3, ttl: 60 }));
    moto.clearRecording();
    const err = await rejection(adapter.apply(change({ expected: EAST, value: WEST, epoch: 2 })));
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.message).toContain('epoch 3');
    expect(changeBatchesSent()).toEqual([]);
    expect(await adapter.read(record)).toEqual({ value: EAST, ttl: 60, owner: OWNER, epoch: 3 });
  });

  it('refuses with PreconditionFailed when it expects a record that is absent', async () => {
    const err = await rejection(dns().apply(change({ expected: EAST, value: WEST, epoch: 2 })));
    expect(err.reason).toBe('PreconditionFailed');
    expect(await zoneRecords()).toEqual([]);
  });

  it('never takes over a record that has no ownership TXT', async () => {
    await changeBehindOurBack([{ action: 'CREATE', name: record.name, type: 'CNAME', value: EAST }]);
    moto.clearRecording();
    const err = await rejection(dns().apply(change({ expected: EAST, value: WEST, epoch: 2 })));
    expect(err.reason).toBe('OwnershipConflict');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('_failover.orders-db.example.com');
    expect(changeBatchesSent()).toEqual([]);
  });

  it('never changes a record whose ownership TXT names another owner, even to the same value', async () => {
    await changeBehindOurBack([
      { action: 'CREATE', name: record.name, type: 'CNAME', value: EAST },
      {
        action: 'CREATE',
        name: `_failover.${record.name}`,
        type: 'TXT',
        value: '"owner=shop/payments" "epoch=7"',
      },
    ]);
    moto.clearRecording();
    const adapter = dns();
    expect(await adapter.read(record)).toEqual({ value: EAST, ttl: 30, owner: 'shop/payments', epoch: 7 });
    for (const attempt of [
      change({ expected: EAST, value: WEST, epoch: 8 }),
      change({ value: EAST, epoch: 7 }),
    ]) {
      const err = await rejection(adapter.apply(attempt));
      expect(err.reason).toBe('OwnershipConflict');
      expect(err.message).toContain('shop/payments');
    }
    expect(changeBatchesSent()).toEqual([]);
  });

  it('returns once Route 53 accepted the batch: a PENDING change is not waited for, GetChange never asked', async () => {
    // Route 53 answers PENDING and turns INSYNC within about a minute; moto answers INSYNC at
    // once. A middleware on the real client makes the SDK see PENDING, as from Route 53.
    const client = new Route53Client({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: moto.credentials,
    });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const output = result.output as ChangeResourceRecordSetsCommandOutput;
        if (context.commandName === 'ChangeResourceRecordSetsCommand' && output.ChangeInfo) {
          output.ChangeInfo.Status = 'PENDING';
        }
        return result;
      },
      { step: 'initialize', name: 'answerPending' },
    );
    try {
      const started = performance.now();
      const result = await dns({ client }).apply(change());
      const elapsedMs = performance.now() - started;
      expect(result).toMatchObject({
        changed: true,
        status: 'PENDING',
        changeId: expect.stringMatching(/\S/),
      });
      // Three requests to a local server: two reads and the batch.
      expect(elapsedMs).toBeLessThan(1_000);
      expect(changeBatchesSent()).toHaveLength(1);
      const getChanges = moto
        .recordedRequests()
        .filter((r) => r.method === 'GET' && r.path.includes('/change/'));
      expect(getChanges).toEqual([]);
      // The change is in, whatever its propagation: the API lists the new record.
      expect(await dns({ client }).read(record)).toEqual({ value: EAST, ttl: 30, owner: OWNER, epoch: 1 });
    } finally {
      client.destroy();
    }
  });

  it('close destroys a client it made, and a second close is harmless; a client it was given stays open', async () => {
    // moto ends idle connections within half a second, so an open socket cannot show the release
    // here; the client's own destroy(), which ends its connection pool, is counted instead.
    const destroyed = vi.spyOn(Route53Client.prototype, 'destroy');
    try {
      const own = new Route53Dns({
        hostedZoneId: zoneId,
        endpointUrl: moto.endpoint,
        credentials: moto.credentials,
      });
      await own.read(record);
      await own.close();
      await own.close();
      expect(destroyed).toHaveBeenCalledTimes(1);

      const given = new Route53Client({
        endpoint: moto.endpoint,
        region: 'us-east-1',
        credentials: moto.credentials,
      });
      try {
        const borrowed = new Route53Dns({ hostedZoneId: zoneId, client: given });
        await borrowed.read(record);
        await borrowed.close();
        expect(destroyed).toHaveBeenCalledTimes(1);
        // Still usable: the adapter did not destroy what it did not make.
        expect(await new Route53Dns({ hostedZoneId: zoneId, client: given }).read(record)).toEqual({});
      } finally {
        given.destroy();
      }
      expect(destroyed).toHaveBeenCalledTimes(2);
    } finally {
      destroyed.mockRestore();
    }
  });

  it('through the factory, every DNS check with the same credentials shares one client, which close leaves open', async () => {
    const made = vi.spyOn(Route53Client.prototype, 'send');
    const constructed: unknown[] = [];
    const provider = {
      type: 'Route53' as const,
      route53: { hostedZoneId: zoneId, region: 'us-east-1', endpointUrl: moto.endpoint },
    };
    const secret = JSON.stringify(moto.credentials);
    try {
      for (let i = 0; i < 3; i++) {
        const adapter = createDnsProvider(provider, secret, 'Secret shop/aws key credentials.json');
        expect(await adapter.read(record)).toEqual({});
        constructed.push(made.mock.contexts.at(-1));
        await adapter.close();
      }
      // One client for the three checks, still open after each close (each read used it).
      expect(new Set(constructed).size).toBe(1);
      // Other credentials (a rotated Secret) get a client of their own.
      const rotated = createDnsProvider(
        provider,
        JSON.stringify({ ...moto.credentials, sessionToken: 'rotated' }),
        'Secret shop/aws key credentials.json',
      );
      await rotated.read(record);
      expect(made.mock.contexts.at(-1)).not.toBe(constructed[0]);
      await rotated.close();
    } finally {
      made.mockRestore();
    }
  });

  it('maps a batch Route 53 refuses (InvalidChangeBatch) to PreconditionFailed; nothing of the batch applies', async () => {
    // The one race moto does catch (see "moto:" below): a CREATE identical to one in its change
    // journal, of a record set that exists again. The record is created and deleted once so the
    // journal holds the adapter's CREATE; between the adapter's read (absent) and its batch,
    // another writer creates the record.
    const adapter = dns();
    await adapter.apply(change());
    await changeBehindOurBack([
      { action: 'DELETE', name: record.name, type: 'CNAME', value: `${EAST}.` },
      {
        action: 'DELETE',
        name: `_failover.${record.name}`,
        type: 'TXT',
        value: '"owner=shop/orders" "epoch=1"',
      },
    ]);
    const client = new Route53Client({
      endpoint: moto.endpoint,
      region: 'us-east-1',
      credentials: moto.credentials,
    });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ChangeResourceRecordSetsCommand') {
          await changeBehindOurBack([{ action: 'CREATE', name: record.name, type: 'CNAME', value: WEST }]);
        }
        return next(args);
      },
      { step: 'initialize', name: 'competingWriter' },
    );
    try {
      const err = await rejection(dns({ client }).apply(change()));
      expect(err.reason).toBe('PreconditionFailed');
      expect(err.message).toContain('already exists');
      // The competitor's record stands and the adapter's TXT CREATE, in the same batch, did not apply.
      expect(await zoneRecords()).toEqual([
        { name: 'orders-db.example.com.', type: 'CNAME', ttl: 30, values: [WEST] },
      ]);
    } finally {
      client.destroy();
    }
  });
});

describe('Route 53 adapter: remove (an isolated drill cleans up its drill record)', () => {
  const drill = { ...record, name: '_drill.orders-db.example.com' };

  it('DELETEs the record and its TXT with the values and TTL read, in one batch; a second remove sends nothing', async () => {
    const adapter = dns();
    await adapter.apply(change({ record: drill, ttl: 45, epoch: 3 }));
    moto.clearRecording();
    expect(await adapter.remove(drill, OWNER)).toEqual({ removed: true });
    expect(await adapter.read(drill)).toEqual({});
    expect(await zoneRecords()).toEqual([]);
    const [batch, ...more] = changeBatchesSent();
    expect(more).toEqual([]);
    expect([...(batch ?? '').matchAll(/<Action>(\w+)<\/Action>/g)].map((m) => m[1])).toEqual([
      'DELETE',
      'DELETE',
    ]);
    expect(batch).toMatch(/<Type>CNAME<\/Type><TTL>45<\/TTL>.*pg\.us-east-1\.example\.com\./s);
    expect(batch).toContain('epoch=3');

    moto.clearRecording();
    expect(await adapter.remove(drill, OWNER)).toEqual({ removed: false });
    expect(changeBatchesSent()).toEqual([]);
    // The next drill creates it again.
    expect(await adapter.apply(change({ record: drill, epoch: 4 }))).toMatchObject({ changed: true });
    expect(await adapter.read(drill)).toEqual({ value: EAST, ttl: 30, owner: OWNER, epoch: 4 });
  });

  it('deletes an ownership TXT naming it that was left alone', async () => {
    await changeBehindOurBack([
      {
        action: 'CREATE',
        name: `_failover.${drill.name}`,
        type: 'TXT',
        value: '"owner=shop/orders" "epoch=2"',
      },
    ]);
    expect(await dns().remove(drill, OWNER)).toEqual({ removed: true });
    expect(await zoneRecords()).toEqual([]);
  });

  it("never deletes another owner's record, and sends nothing", async () => {
    await dns().apply(change({ record: drill, owner: 'shop/payments' }));
    moto.clearRecording();
    const err = await rejection(dns().remove(drill, OWNER));
    expect(err.reason).toBe('OwnershipConflict');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('names owner "shop/payments", not "shop/orders"');
    expect(changeBatchesSent()).toEqual([]);
    expect(await dns().read(drill)).toEqual({ value: EAST, ttl: 30, owner: 'shop/payments', epoch: 1 });
  });

  it('never deletes a record without an ownership TXT, and sends nothing', async () => {
    await changeBehindOurBack([{ action: 'CREATE', name: drill.name, type: 'CNAME', value: EAST }]);
    moto.clearRecording();
    const err = await rejection(dns().remove(drill, OWNER));
    expect(err.reason).toBe('OwnershipConflict');
    expect(err.message).toContain(
      'without an ownership TXT record at _failover._drill.orders-db.example.com',
    );
    expect(changeBatchesSent()).toEqual([]);
    expect(await zoneRecords()).toEqual([
      { name: '_drill.orders-db.example.com.', type: 'CNAME', ttl: 30, values: [EAST] },
    ]);
  });
});

describe('moto: what its ChangeResourceRecordSets enforces', () => {
  it('refuses a whole batch whose DELETE names values the record set never had', async () => {
    await changeBehindOurBack([{ action: 'CREATE', name: record.name, type: 'CNAME', value: EAST }]);
    const attempt = changeBehindOurBack([
      { action: 'DELETE', name: record.name, type: 'CNAME', value: 'never-there.example.com' },
      { action: 'CREATE', name: record.name, type: 'CNAME', value: WEST },
    ]);
    // Route 53 says InvalidChangeBatch here; moto says InvalidInput, which the adapter treats as
    // Rejected (it is Route 53's code for a malformed request).
    await expect(attempt).rejects.toMatchObject({ name: 'InvalidInput' });
    const ttlMismatch = changeBehindOurBack([
      { action: 'DELETE', name: record.name, type: 'CNAME', value: EAST, ttl: 300 },
      { action: 'CREATE', name: record.name, type: 'CNAME', value: WEST },
    ]);
    await expect(ttlMismatch).rejects.toMatchObject({ name: 'InvalidInput' });
    expect(await zoneRecords()).toEqual([
      { name: 'orders-db.example.com.', type: 'CNAME', ttl: 30, values: [EAST] },
    ]);
  });

  it('gap: accepts a stale DELETE of a value the record held earlier (Route 53 refuses it), losing the newer write', async () => {
    // moto checks a DELETE against its journal of past CREATEs, not against the current record
    // set. This is the race rule 4 is about; against moto only the adapter's read-before-write
    // guards it, so the batch-level CAS is proven by Route 53's documented behaviour, not here.
    await changeBehindOurBack([{ action: 'CREATE', name: record.name, type: 'CNAME', value: EAST }]);
    await changeBehindOurBack([
      { action: 'DELETE', name: record.name, type: 'CNAME', value: EAST },
      { action: 'CREATE', name: record.name, type: 'CNAME', value: 'pg.elsewhere.example.com' },
    ]);
    await changeBehindOurBack([
      { action: 'DELETE', name: record.name, type: 'CNAME', value: EAST },
      { action: 'CREATE', name: record.name, type: 'CNAME', value: WEST },
    ]);
    expect(await zoneRecords()).toEqual([
      { name: 'orders-db.example.com.', type: 'CNAME', ttl: 30, values: [WEST] },
    ]);
  });

  it('gap: refuses a DELETE+CREATE batch that brings back a value the record held before (a failback)', async () => {
    // moto checks "CREATE of an existing record set" before applying the batch's DELETE, and
    // only for a CREATE identical to one in its journal. Route 53 applies the changes in order
    // and accepts this batch. So against moto, a switch back to an earlier value fails with
    // PreconditionFailed; failback and drills must be tested against Route 53 or BIND.
    const adapter = dns();
    await adapter.apply(change());
    await adapter.apply(change({ expected: EAST, value: WEST, epoch: 2 }));
    const err = await rejection(adapter.apply(change({ expected: WEST, value: EAST, epoch: 3 })));
    expect(err.reason).toBe('PreconditionFailed');
    expect(err.message).toContain('already exists');
    expect(await adapter.read(record)).toMatchObject({ value: WEST, epoch: 2 });
  });

  it('gap: a CREATE of a record that exists with another value adds a second record set (Route 53 refuses it)', async () => {
    await changeBehindOurBack([{ action: 'CREATE', name: record.name, type: 'CNAME', value: EAST }]);
    await changeBehindOurBack([{ action: 'CREATE', name: record.name, type: 'CNAME', value: WEST }]);
    expect((await zoneRecords()).map((r) => r.values[0])).toEqual([EAST, WEST]);
  });
});

describe('Route 53 errors', () => {
  it('NotFound for a hosted zone that does not exist', async () => {
    const err = await rejection(dns({ hostedZoneId: 'Z0000000000NOSUCHZONE' }).read(record));
    expect(err.reason).toBe('NotFound');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('Z0000000000NOSUCHZONE');
    // Both reads fail; the message is always the record's, never whichever failure came first
    // (a message that alternates is a status write per reconcile).
    const messages = new Set<string>();
    for (let i = 0; i < 6; i++)
      messages.add((await rejection(dns({ hostedZoneId: 'Z0000000000NOSUCHZONE' }).read(record))).message);
    expect([...messages]).toEqual([expect.stringContaining(`for ${record.name} CNAME`)]);
  });

  it('AuthenticationFailed when the credentials are refused', async () => {
    await moto.requireAuthentication(true);
    try {
      const err = await rejection(dns({ maxAttempts: 1 }).read(record));
      expect(err.reason).toBe('AuthenticationFailed');
      expect(err.message).toContain('credentialsSecretRef');
    } finally {
      await moto.requireAuthentication(false);
    }
  });

  it('Timeout when the API accepts the connection but does not answer', async () => {
    const adapter = dns({ requestTimeoutMs: 1_000, maxAttempts: 1 });
    moto.freeze();
    try {
      const err = await rejection(adapter.read(record));
      expect(err.reason).toBe('Timeout');
      expect(err.retryable).toBe(true);
    } finally {
      moto.thaw();
    }
  });

  it('Unreachable when nothing listens at the endpoint', async () => {
    const adapter = dns({ maxAttempts: 1 });
    await moto.kill();
    const err = await rejection(adapter.apply(change()));
    expect(err.reason).toBe('Unreachable');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('Throttled for Route 53 throttling errors (SDK exceptions; moto never throttles)', () => {
    const $metadata = { httpStatusCode: 400 };
    for (const err of [
      new ThrottlingException({ message: 'Rate exceeded', $metadata }),
      new PriorRequestNotComplete({
        message: 'The request was rejected because Route 53 was still processing a prior request.',
        $metadata,
      }),
    ]) {
      const classified = classifyAwsError(err, 'Route 53 ChangeResourceRecordSets');
      expect(classified.reason).toBe('Throttled');
      expect(classified.retryable).toBe(true);
    }
  });
});
