/**
 * `kubectl failover status` on a policy with drills: the last drill's cell and the drill in
 * progress, round trip or isolated (an isolated drill has legs of its own and no RTO). The table
 * against a real API server is tested in test/integration/kubectl-plugin.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { DrillReport, FailoverPolicyStatus } from '../api/v1alpha1/index.ts';
import type { PolicyView } from './policies.ts';
import { policyNames, renderStatus, statusRow } from './status.ts';

const NOW = new Date('2026-03-02T10:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

function view(status: FailoverPolicyStatus): PolicyView {
  return {
    namespace: 'shop',
    name: 'orders',
    object: {
      apiVersion: 'regionfailover.io/v1alpha1',
      kind: 'FailoverPolicy',
      metadata: { name: 'orders' },
    },
    spec: undefined,
    status: { phase: 'Drilling', activePrimary: 'a', epoch: 4, ...status },
    clusters: new Map(),
    clusterSpecs: new Map(),
    clusterObjects: new Map(),
  };
}

const report = (over: Partial<DrillReport>): DrillReport => ({
  id: 'd0',
  kind: 'Switchover',
  trigger: 'Drill',
  from: 'a',
  to: 'b',
  epoch: 4,
  result: 'Succeeded',
  startedAt: ago(3700),
  completedAt: ago(3600),
  ...over,
});

describe('status with drills', () => {
  it('shows an isolated drill in progress as the operation, and the last drill as isolated (no RTO)', () => {
    const row = statusRow(
      view({
        drill: {
          id: 'd1',
          from: 'a',
          to: 'b',
          startedAt: ago(30),
          mode: 'Isolated',
          leg: 'Writing',
          isolated: { recordName: 'drill.db.example.com', port: 5433, canaryWrites: 3 },
        },
        drills: [
          report({
            mode: 'Isolated',
            isolated: {
              cluster: 'b',
              recordName: 'drill.db.example.com',
              durationSeconds: 100,
              cleanedUp: true,
            },
          }),
        ],
      }),
    );
    expect(row.operation).toBe('Isolated drill of b (Writing)');
    expect(row.lastDrill).toEqual({ result: 'Succeeded', completedAt: ago(3600), mode: 'Isolated' });
    const [, line] = renderStatus([row], { allNamespaces: false, now: NOW }).split('\n');
    expect(line?.split(/\s{2,}/).slice(-2)).toEqual([
      'Isolated drill of b (Writing)',
      'Succeeded (isolated) 60m ago',
    ]);
  });

  it('a round trip between its switchovers is the operation; its switchover, when one runs, is', () => {
    const holding = statusRow(
      view({
        drill: { id: 'd1', from: 'a', to: 'b', startedAt: ago(30), leg: 'Holding' },
        drills: [report({ rtoSeconds: 1.4 })],
      }),
    );
    expect(holding.operation).toBe('Drill to b (Holding)');
    const [, line] = renderStatus([holding], { allNamespaces: false, now: NOW }).split('\n');
    expect(line).toMatch(/Succeeded 60m ago, RTO 1.4s$/);
    const out = statusRow(
      view({
        drill: { id: 'd1', from: 'a', to: 'b', startedAt: ago(30), leg: 'Out', outboundOperationId: 'o1' },
        currentOperation: {
          id: 'o1',
          kind: 'Switchover',
          trigger: 'Drill',
          from: 'a',
          to: 'b',
          epoch: 5,
          step: 'CatchingUp',
          startedAt: ago(10),
          stepStartedAt: ago(5),
        },
      }),
    );
    expect(out.operation).toBe('Switchover to b (CatchingUp)');
  });
});

describe('status -o name', () => {
  const rows = (...r: [string, string, string][]) =>
    JSON.stringify(r.map(([namespace, name, phase]) => ({ namespace, name, phase })));
  it('prints resource/name lines, as kubectl does (no namespace)', () => {
    expect(policyNames(rows(['shop', 'orders', 'Healthy'], ['pay', 'ledger', 'Healthy']))).toBe(
      'failoverpolicy.regionfailover.io/orders\nfailoverpolicy.regionfailover.io/ledger',
    );
    expect(policyNames('[]')).toBe('');
  });

  it('in a watch, names the policies that changed, came or went', () => {
    const before = rows(
      ['shop', 'orders', 'Healthy'],
      ['shop', 'payments', 'Healthy'],
      ['shop', 'gone', 'Healthy'],
    );
    const after = rows(
      ['shop', 'orders', 'FailingOver'],
      ['shop', 'payments', 'Healthy'],
      ['shop', 'new', 'Pending'],
    );
    expect(policyNames(after, before).split('\n')).toEqual([
      'failoverpolicy.regionfailover.io/orders',
      'failoverpolicy.regionfailover.io/new',
      'failoverpolicy.regionfailover.io/gone',
    ]);
    expect(policyNames(after, after)).toBe('');
  });
});
