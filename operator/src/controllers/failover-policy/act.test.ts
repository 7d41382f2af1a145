import { describe, expect, it } from 'vitest';
import type { DatabaseObservation, DatabaseProvider, FenceRequest } from '../../providers/database/port.ts';
import type { DnsProvider } from '../../providers/dns/port.ts';
import { ProviderError } from '../../providers/errors.ts';
import { AGENT_SILENT_TIMEOUT_MS, runStep, type StepPorts } from './act.ts';
import { inProgress, NOW, spec } from './decide.fixtures.ts';

/** A database that records its fences, or fails or hangs as told. */
function database(behaviour: 'ok' | 'unreachable' | 'refuses' | 'hangs' = 'ok') {
  const fences: FenceRequest[] = [];
  const db: DatabaseProvider = {
    async observe(): Promise<DatabaseObservation> {
      return { reachable: true, role: 'Fenced', lsn: '0/10', durationMs: 1 };
    },
    async writeHeartbeat() {},
    async promote() {
      return { state: 'Promoted', alreadyPrimary: false };
    },
    fence(request) {
      fences.push(request);
      if (behaviour === 'hangs') return new Promise(() => undefined);
      if (behaviour === 'unreachable')
        return Promise.reject(new ProviderError('Unreachable', 'connection refused'));
      if (behaviour === 'refuses')
        return Promise.reject(new ProviderError('Rejected', 'permission denied', { retryable: false }));
      return Promise.resolve({ detail: `fenced ${request.mode}` });
    },
    async close() {},
  };
  return { db, fences };
}

function ports(dbs: Record<string, DatabaseProvider>): StepPorts {
  return {
    database: async (name) => dbs[name] as DatabaseProvider,
    withDns: async <T>(use: (dns: DnsProvider) => Promise<T>) => use({} as DnsProvider),
    verifier: { query: async () => [] },
    verifyServers: async () => [],
    dnsTarget: (n) => `${n}.db`,
    owner: 'ns/orders',
    policy: 'orders',
    agentReport: () => undefined,
    providerSpec: () => undefined,
  };
}

describe('act: fencing', () => {
  it('fences the old primary and every stray the operation found, in the policy’s mode', async () => {
    const a = database();
    const c = database();
    const outcome = await runStep(
      ports({ a: a.db, c: c.db }),
      spec({ promotion: { fencing: 'Shutdown' } }),
      inProgress('Fencing', { strays: ['c'] }),
      NOW,
    );
    expect(outcome).toMatchObject({
      kind: 'Done',
      detail: expect.stringMatching(/fenced Shutdown; c: fenced Shutdown/),
    });
    expect(a.fences[0]).toMatchObject({ epoch: 5, mode: 'Shutdown' });
    expect(c.fences[0]).toMatchObject({ epoch: 5, mode: 'Shutdown' });
  });

  it('goes on past a stray that is gone again, but not past one that refuses', async () => {
    const gone = await runStep(
      ports({ a: database().db, c: database('unreachable').db }),
      spec(),
      inProgress('Fencing', { strays: ['c'] }),
      NOW,
    );
    expect(gone).toMatchObject({ kind: 'Done', detail: expect.stringMatching(/c: unreachable/) });
    const refusing = await runStep(
      ports({ a: database().db, c: database('refuses').db }),
      spec(),
      inProgress('Fencing', { strays: ['c'] }),
      NOW,
    );
    expect(refusing).toMatchObject({ kind: 'Failed', reason: 'Rejected', retryable: false });
    // One refusing stray does not leave the next one writing.
    const d = database();
    const both = await runStep(
      ports({ a: database().db, c: database('refuses').db, d: d.db }),
      spec(),
      inProgress('Fencing', { strays: ['c', 'd'] }),
      NOW,
    );
    expect(d.fences).toHaveLength(1);
    expect(both).toMatchObject({
      kind: 'Failed',
      reason: 'Rejected',
      message: 'c: permission denied',
      learned: {
        fenceDetail: expect.stringMatching(/c: not fenced \(Rejected: permission denied\); d: fenced/),
      },
    });
  });

  it('fences the strays of a failover whose old primary is lost, and says so with its failure', async () => {
    const c = database();
    const outcome = await runStep(
      ports({ a: database('unreachable').db, c: c.db }),
      spec({ promotion: { fencing: 'Shutdown' } }),
      inProgress('Fencing', { strays: ['c'] }),
      NOW,
    );
    expect(c.fences[0]).toMatchObject({ epoch: 5, mode: 'Shutdown' });
    expect(outcome).toMatchObject({
      kind: 'Failed',
      reason: 'Unreachable',
      learned: { fenceDetail: 'c: fenced Shutdown' },
    });
    // A stray that refuses fails the step (a backoff), lest the failover go on to Promoting, see
    // it writing and come straight back, again and again.
    const refusing = await runStep(
      ports({ a: database('unreachable').db, c: database('refuses').db }),
      spec(),
      inProgress('Fencing', { strays: ['c'] }),
      NOW,
    );
    expect(refusing).toMatchObject({ kind: 'Failed', reason: 'Rejected' });
    const alone = await runStep(ports({ a: database('unreachable').db }), spec(), inProgress('Fencing'), NOW);
    expect(alone).toMatchObject({ kind: 'Failed', reason: 'Unreachable' });
    expect(alone).not.toHaveProperty('learned');
  });
});

describe('act: reprotect through a managed provider', () => {
  it('asks the provider, waits while it works, then says exactly what the ReplicaCluster must name', async () => {
    const answers: Awaited<ReturnType<NonNullable<DatabaseProvider['reprotect']>>>[] = [
      { state: 'Pending', detail: 'creating orders-a-e5' },
      {
        state: 'Protected',
        detail: 'orders-a-e5 replicates from orders-b',
        replacement: {
          provider: { type: 'AwsRds', awsRds: { region: 'eu-west-1', dbInstanceIdentifier: 'orders-a-e5' } },
          host: 'orders-a-e5.rds.example',
          port: 5432,
          superseded: 'orders-a',
        },
      },
    ];
    const requests: unknown[] = [];
    const a = database();
    a.db.reprotect = async (request) => {
      requests.push(request);
      return answers.shift() ?? { state: 'Pending', detail: 'again' };
    };
    const p: StepPorts = {
      ...ports({ a: a.db, b: database().db }),
      providerSpec: (n) => ({
        type: 'AwsRds',
        awsRds: { region: 'us-east-1', dbInstanceIdentifier: `orders-${n}` },
      }),
    };
    const op = inProgress('Rejoining', {
      kind: 'Reprotect',
      from: 'a',
      to: 'b',
      epoch: 5,
      id: 'reprotect-e5-x-a',
    });
    expect(await runStep(p, spec(), op, NOW)).toMatchObject({
      kind: 'Pending',
      detail: 'creating orders-a-e5',
    });
    // The operator changes no spec: it says exactly what the ReplicaCluster must name now.
    const done = await runStep(p, spec(), op, NOW);
    expect(done).toMatchObject({
      kind: 'Failed',
      reason: 'RepointNeeded',
      retryable: false,
      message: expect.stringMatching(
        /replicates from orders-b; point ReplicaCluster a at it: spec.provider .*orders-a-e5.*spec.connection.host orders-a-e5.rds.example, port 5432 \(orders-a is superseded/,
      ),
      // Kept in the record too, for `kubectl failover export` and the Pulumi stacks.
      learned: {
        replacement: {
          cluster: 'a',
          provider: { type: 'AwsRds', awsRds: { dbInstanceIdentifier: 'orders-a-e5' } },
          host: 'orders-a-e5.rds.example',
          port: 5432,
          superseded: 'orders-a',
        },
      },
    });
    expect(requests[0]).toMatchObject({
      operationId: 'reprotect-e5-x-a',
      epoch: 5,
      policy: 'orders',
      primary: { cluster: 'b', provider: { type: 'AwsRds' } },
    });
  });

  it('reports an agent refusal as final, and waits for an agent that has not taken the step up yet', async () => {
    const op = inProgress('Rejoining', {
      kind: 'Reprotect',
      from: 'a',
      to: 'b',
      id: 'r1',
      stepStartedAt: NOW.toISOString(),
    });
    const withTask = (task: Record<string, unknown> | undefined): StepPorts => ({
      ...ports({ a: database().db, b: database().db }),
      agentReport: () =>
        ({
          name: 'agent',
          reportedAt: NOW.toISOString(),
          dataDirectory: '/d',
          server: 'Stopped',
          ...(task ? { task } : {}),
        }) as ReturnType<StepPorts['agentReport']>,
    });
    expect(await runStep(withTask(undefined), spec(), op, NOW)).toMatchObject({ kind: 'Pending' });
    const failed = await runStep(
      withTask({
        operationId: 'r1',
        action: 'Rejoin',
        phase: 'Failed',
        message: 'WouldDiscard: 3 transactions',
        startedAt: NOW.toISOString(),
      }),
      spec(),
      op,
      NOW,
    );
    expect(failed).toMatchObject({
      kind: 'Failed',
      retryable: false,
      message: expect.stringMatching(/WouldDiscard/),
    });
    // What the agent measured with the server stopped replaces what the operation was assessed at.
    const discarded = { bytes: 4096, transactions: 7, forkLsn: '0/3000398', endLsn: '0/3001398' };
    expect(
      await runStep(
        withTask({
          operationId: 'r1',
          action: 'Rejoin',
          phase: 'Succeeded',
          method: 'Rewind',
          discarded,
          startedAt: NOW.toISOString(),
        }),
        spec(),
        op,
        NOW,
      ),
    ).toMatchObject({ kind: 'Done', learned: { discarded } });
    // A task of another operation says nothing about this one.
    expect(
      await runStep(
        withTask({
          operationId: 'other',
          action: 'Rejoin',
          phase: 'Succeeded',
          startedAt: NOW.toISOString(),
        }),
        spec(),
        op,
        NOW,
      ),
    ).toMatchObject({ kind: 'Pending' });
  });

  it('ends a rejoin whose agent took it up and then went silent, but not one whose agent reports while a tool runs', async () => {
    const op = inProgress('Rejoining', { kind: 'Reprotect', from: 'a', to: 'b', id: 'r2' });
    const reportedAgo = (ms: number): StepPorts => ({
      ...ports({ a: database().db, b: database().db }),
      agentReport: () =>
        ({
          name: 'agent',
          reportedAt: new Date(NOW.getTime() - ms).toISOString(),
          dataDirectory: '/d',
          server: 'Stopped',
          task: {
            operationId: 'r2',
            action: 'Rejoin',
            phase: 'Running',
            method: 'Reclone',
            message: 'pg_basebackup from b',
            startedAt: new Date(NOW.getTime() - 3_600_000).toISOString(),
          },
        }) as ReturnType<StepPorts['agentReport']>,
    });
    // An hour into a re-clone, reported 10 s ago: it runs.
    expect(await runStep(reportedAgo(10_000), spec(), op, NOW)).toMatchObject({ kind: 'Pending' });
    expect(await runStep(reportedAgo(AGENT_SILENT_TIMEOUT_MS + 1_000), spec(), op, NOW)).toMatchObject({
      kind: 'Failed',
      reason: 'AgentSilent',
      retryable: false,
      message: expect.stringMatching(/has not reported for 121 s \(last: pg_basebackup from b\)/),
    });
  });
});

describe('act: a switchover Aurora does itself (both ends members of one global cluster)', () => {
  const member = (n: string, global = 'orders-global') => ({
    type: 'AuroraGlobal',
    auroraGlobal: {
      region: 'us-east-1',
      globalClusterIdentifier: global,
      dbClusterIdentifier: `orders-${n}`,
    },
  });
  const aurora = (
    dbs: Record<string, DatabaseProvider>,
    global = (_n: string) => 'orders-global',
  ): StepPorts => ({
    ...ports(dbs),
    providerSpec: (n) => member(n, global(n)),
  });
  const switchover = (step: 'Fencing' | 'Promoting', over = {}) =>
    inProgress(step, { kind: 'Switchover', trigger: 'Drill', id: 'switchover-e5-x', ...over });

  it('fences by marking the old writer with the epoch only, observes nothing, and says Promoting comes next', async () => {
    const a = database();
    let observed = 0;
    a.db.observe = async () => {
      observed++;
      return { reachable: true, role: 'Primary', lsn: '0/10', durationMs: 1 };
    };
    const outcome = await runStep(
      aurora({ a: a.db, b: database().db }),
      spec({ promotion: { fencing: 'Shutdown' } }),
      switchover('Fencing'),
      NOW,
    );
    expect(outcome).toMatchObject({
      kind: 'Done',
      nativeSwitchover: true,
      detail: expect.stringMatching(/^EpochOnly: fenced EpochOnly; b's provider switches over itself/),
    });
    expect(a.fences).toEqual([{ operationId: 'switchover-e5-x', epoch: 5, mode: 'EpochOnly' }]);
    expect(observed).toBe(0);
    expect(outcome).not.toHaveProperty('learned.fencedLsn');
  });

  it('fails a first mark that fails (nothing asked of Aurora yet), but goes on past one after the operation was marked', async () => {
    const first = await runStep(
      aurora({ a: database('refuses').db, b: database().db }),
      spec(),
      switchover('Fencing'),
      NOW,
    );
    expect(first).toMatchObject({ kind: 'Failed', reason: 'Rejected', retryable: false });
    const again = await runStep(
      aurora({ a: database('unreachable').db, b: database().db }),
      spec(),
      switchover('Fencing', { fenceDetail: 'epoch 5 recorded' }),
      NOW,
    );
    expect(again).toMatchObject({
      kind: 'Done',
      nativeSwitchover: true,
      detail: expect.stringMatching(/not marked again \(connection refused\)/),
    });
  });

  it('asks the target for a Switchover and records that nothing was lost', async () => {
    const requests: unknown[] = [];
    const b = database();
    b.db.promote = async (request) => {
      requests.push(request);
      return { state: 'Promoted', alreadyPrimary: false };
    };
    const outcome = await runStep(
      aurora({ a: database().db, b: b.db }),
      spec(),
      switchover('Promoting'),
      NOW,
    );
    expect(requests).toEqual([{ operationId: 'switchover-e5-x', epoch: 5, kind: 'Switchover' }]);
    expect(outcome).toMatchObject({
      kind: 'Done',
      learned: { estimatedLossBytes: 0, estimatedLossSeconds: 0 },
    });
  });

  it('is no native switchover between members of two global clusters, nor for a failover', async () => {
    const a = database();
    const apart = await runStep(
      aurora({ a: a.db, b: database().db }, (n) => `global-${n}`),
      spec(),
      switchover('Fencing'),
      NOW,
    );
    expect(apart).not.toHaveProperty('nativeSwitchover');
    expect(a.fences[0]?.mode).toBe('ReadOnly');
    const failover = await runStep(
      aurora({ a: database().db, b: database().db }),
      spec(),
      inProgress('Fencing'),
      NOW,
    );
    expect(failover).not.toHaveProperty('nativeSwitchover');
  });
});
