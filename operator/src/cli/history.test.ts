/** `kubectl failover history`'s table of operations: the client's side, when the canary saw it. */
import { describe, expect, it } from 'vitest';
import type { OperationReport } from '../api/v1alpha1/index.ts';
import { operationsTable } from './history.ts';

const failover = (over: Partial<OperationReport> = {}): OperationReport => ({
  id: 'failover-e5-x',
  kind: 'Failover',
  trigger: 'Automatic',
  from: 'a',
  to: 'b',
  epoch: 5,
  result: 'Succeeded',
  startedAt: '2026-03-02T09:59:50Z',
  completedAt: '2026-03-02T10:00:00Z',
  rtoSeconds: 3.4,
  ...over,
});

describe('the operations table', () => {
  it('has a CLIENT column only when the continuous canary measured something', () => {
    expect(operationsTable([failover()])).not.toMatch(/CLIENT/);
    const measured = operationsTable([
      failover({
        lostWrites: 0,
        client: {
          operationId: 'failover-e5-x',
          measuredBy: 'Canary',
          rtoSeconds: 3.64,
          rpoTransactions: 0,
          acknowledged: 20,
        },
      }),
      failover({ id: 'f2', client: { operationId: 'f2', measuredBy: 'Operator', message: 'restarted' } }),
    ]);
    expect(measured).toMatch(/CLIENT/);
    expect(measured).toMatch(/3\.6s, 0 of 20 lost/);
    expect(measured).toMatch(/not measured/);
  });
});
