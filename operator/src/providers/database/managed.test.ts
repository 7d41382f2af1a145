import { describe, expect, it } from 'vitest';
import { ProviderError } from '../errors.ts';
import { type ControlPlane, type DatabaseSql, ManagedDatabase } from './managed.ts';
import type { ReprotectOutcome, ReprotectRequest } from './port.ts';

/** The SQL side: reprotection must not use it, so every call fails the test. */
const untouchedSql: DatabaseSql = {
  observe: () => Promise.reject(new Error('SQL observed')),
  writeHeartbeat: () => Promise.reject(new Error('SQL written')),
  fence: () => Promise.reject(new Error('SQL fenced')),
  close: async () => {},
};

function controlPlane(reprotect?: ControlPlane['reprotect']): ControlPlane {
  return {
    name: 'Example instance orders-east',
    view: () => Promise.reject(new Error('not used')),
    promote: () => Promise.reject(new Error('not used')),
    ...(reprotect ? { reprotect } : {}),
    close: async () => {},
  };
}

const request: ReprotectRequest = {
  operationId: 'op-3',
  epoch: 3,
  policy: 'orders',
  primary: { cluster: 'orders-west', provider: { type: 'AwsRds' } },
};

describe('ManagedDatabase.reprotect', () => {
  it("is the control plane's, given the request as it is", async () => {
    const seen: ReprotectRequest[] = [];
    const outcome: ReprotectOutcome = { state: 'Pending', detail: 'asked' };
    const db = new ManagedDatabase({
      sql: untouchedSql,
      controlPlane: controlPlane(async (r) => {
        seen.push(r);
        return outcome;
      }),
    });
    expect(await db.reprotect(request)).toBe(outcome);
    expect(seen).toEqual([request]);
  });

  it('is refused, not retryable, where the control plane has no way to rebuild a replica', async () => {
    const db = new ManagedDatabase({ sql: untouchedSql, controlPlane: controlPlane() });
    const err = await db.reprotect(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ reason: 'Rejected', retryable: false });
    expect((err as Error).message).toContain('orders-east');
  });
});
