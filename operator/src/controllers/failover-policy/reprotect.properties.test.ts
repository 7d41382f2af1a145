/**
 * Properties of the reprotect rules over random former primaries, agents and requests: a rejoin
 * that discards committed transactions (or cannot tell) only ever starts when the policy says
 * Automatic or a person accepted the loss, and never without a live agent that assessed it
 * against the active primary. Generators are biased toward the cases that matter (diverged,
 * counted or not) and the run asserts each outcome was reached.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { agentAlive } from '../../agent/liveness.ts';
import type { AgentReport } from '../../api/v1alpha1/index.ts';
import { ago, input, primaryUp, standby, up } from './decide.fixtures.ts';
import { decide } from './decide.ts';
import { discardsData } from './reprotect.ts';

const divergence = fc.record({
  primary: fc.constantFrom('b', 'b', 'b', 'c'),
  assessedAgo: fc.constantFrom(1, 5, 30, 90),
  relation: fc.constantFrom('Following', 'Behind', 'Diverged', 'Diverged', 'Diverged', 'Unrelated'),
  divergedBytes: fc.integer({ min: 0, max: 1_000_000 }),
  divergedTransactions: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined, freq: 3 }),
});

const world = fc.record({
  agentAgo: fc.option(fc.constantFrom(1, 5, 20, 45), { nil: undefined, freq: 6 }),
  divergence: fc.option(divergence, { nil: undefined, freq: 8 }),
  reachable: fc.boolean(),
  mode: fc.constantFrom('Automatic', 'RequireRequest', 'RequireRequest', 'Manual'),
  request: fc.option(fc.record({ allowDataLoss: fc.boolean() }), { nil: undefined, freq: 2 }),
});

describe('reprotect: properties', () => {
  it('discards committed data only when the policy or a person allows it, and only on a fresh assessment', () => {
    const seen = { automatic: 0, requested: 0, waited: 0, refused: 0, discardingStarted: 0 };
    fc.assert(
      fc.property(world, (w) => {
        const d = w.divergence;
        const report: AgentReport | undefined =
          w.agentAgo === undefined
            ? undefined
            : {
                name: 'agent-a',
                reportedAt: ago(w.agentAgo).toISOString(),
                dataDirectory: '/d',
                server: 'Stopped',
                ...(d
                  ? {
                      divergence: {
                        primary: d.primary,
                        assessedAt: ago(d.assessedAgo).toISOString(),
                        relation: d.relation as 'Diverged',
                        divergedBytes: d.divergedBytes,
                        ...(d.divergedTransactions !== undefined
                          ? { divergedTransactions: d.divergedTransactions }
                          : {}),
                      },
                    }
                  : {}),
              };
        const plan = decide(
          input({
            status: { activePrimary: 'b', epoch: 5, history: [] },
            clusters: {
              a: {
                name: 'a',
                exists: true,
                reachable: w.reachable,
                role: w.reachable ? 'Fenced' : 'Unknown',
                observedAt: ago(0.5),
                ...(report ? { agent: report } : {}),
              },
              b: primaryUp('b', 5),
              c: standby('c', 1, 1000, 4, 5),
            },
            votes: [up('operator'), up('region-b'), up('region-c')],
            specOver: {
              reprotect: { mode: w.mode },
              ...(w.request
                ? {
                    promotionRequest: {
                      id: 'r',
                      target: 'a',
                      kind: 'Reprotect',
                      allowDataLoss: w.request.allowDataLoss,
                    },
                  }
                : {}),
            },
          }),
        );
        const op = plan.status.currentOperation;
        if (plan.status.lastRequest?.outcome === 'Rejected') seen.refused++;
        if (!op) {
          if (plan.reprotectWaiting) seen.waited++;
          return;
        }
        expect(op.kind).toBe('Reprotect');
        if (op.trigger === 'Manual') seen.requested++;
        else seen.automatic++;
        // Never without a live agent that compared it with the active primary, recently.
        expect(agentAlive(report, ago(0))).toBe(true);
        expect(report?.divergence?.primary).toBe('b');
        expect(d && d.assessedAgo <= 60).toBe(true);
        if (report?.divergence && discardsData(report.divergence)) {
          seen.discardingStarted++;
          expect(op.allowDataLoss).toBe(true);
          expect(op.trigger === 'Manual' ? w.request?.allowDataLoss : w.mode === 'Automatic').toBe(true);
        }
        if (op.trigger === 'Automatic') expect(w.mode).not.toBe('Manual');
      }),
      { numRuns: 2000 },
    );
    // Every outcome was reached, the one the property is about included.
    for (const [outcome, count] of Object.entries(seen)) expect(count, outcome).toBeGreaterThan(20);
  });
});
