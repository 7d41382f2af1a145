import { describe, expect, it } from 'vitest';
import type { DatabaseObservation, DatabaseProvider, FenceRequest } from '../../providers/database/port.ts';
import type { DnsProvider } from '../../providers/dns/port.ts';
import { ProviderError } from '../../providers/errors.ts';
import { runStep, type StepPorts } from './act.ts';
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
    repointCluster: async () => '',
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
  });
});
