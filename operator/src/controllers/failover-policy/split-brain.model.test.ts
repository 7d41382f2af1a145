/**
 * The split-brain protocol end to end in simulated time: the real agent guards (the primary's and
 * the standby's, split-brain-guard.ts) and the real operator half (SplitBrainWatch + leaseGate)
 * against a world whose paths are cut at random — the primary's agent from the control plane,
 * from the standby's agent, the standby's agent from the control plane — with random detection
 * times, observer suspicion, operator poll intervals and agent start phases.
 *
 * The invariant: whenever the operator would promote the standby past an old primary it could
 * only mark, the old primary's agent had fenced it before. Coverage is counted per path (fenced by
 * its deadline, fenced on reading the operation, promotion waited, promotion never allowed).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { leaseSettings } from '../../agent/lease-settings.ts';
import type { VouchAnswer } from '../../agent/peer.ts';
import {
  type GuardPorts,
  type GuardWorld,
  type LocalServer,
  SplitBrainGuard,
} from '../../agent/split-brain-guard.ts';
import type {
  AgentReport,
  FailoverObservationSpec,
  FailoverPolicyStatus,
  Operation,
} from '../../api/v1alpha1/index.ts';
import { createLogger } from '../../runtime/logger.ts';
import { spec as specOf } from './decide.fixtures.ts';
import type { DecideInput } from './facts.ts';
import { leaseGate, SplitBrainWatch } from './split-brain.ts';

const log = createLogger({ level: 'silent' });

interface Scenario {
  probeIntervalSeconds: number;
  /** The fault, from t = faultAt: which paths it cuts. */
  aFromApi: boolean;
  aFromPeer: boolean;
  bFromApi: boolean;
  faultAt: number;
  /** A's agent loses the control plane this long after the rest of the fault (a path that fails later). */
  aApiCutAfter: number;
  /** ...counted from the suspicion instead. */
  aCutAfterSuspicion: boolean;
  /** From the fault until observers' suspicion reaches the world B reads; the operator's verdict comes this much later. */
  suspicionAfter: number;
  detectionAfter: number;
  operatorPollMs: number;
  /** Latency of a status write by B's agent becoming visible to the operator. */
  reportLatencyMs: number;
  /** Agent B answers no peers (no --peer-address): A has no failsafe, and only the Lease guards. */
  peerless: boolean;
  /** Agent B starts its loop this much later than A's. */
  phaseMs: number;
}

const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  probeIntervalSeconds: fc.constantFrom(1, 2, 5),
  // Biased toward the case that matters: the primary's agent cut from the control plane.
  aFromApi: fc.oneof(
    { weight: 4, arbitrary: fc.constant(true) },
    { weight: 1, arbitrary: fc.constant(false) },
  ),
  aFromPeer: fc.boolean(),
  bFromApi: fc.oneof(
    { weight: 1, arbitrary: fc.constant(true) },
    { weight: 4, arbitrary: fc.constant(false) },
  ),
  faultAt: fc.integer({ min: 3_000, max: 8_000 }),
  aApiCutAfter: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 6_000 })),
  // Sometimes it renews on past the observers' suspicion and is cut just before the verdict.
  aCutAfterSuspicion: fc.boolean(),
  suspicionAfter: fc.integer({ min: 0, max: 6_000 }),
  // Observers agree after more failed probes than it takes one to suspect: around (threshold − 1)
  // intervals later, give or take one, and sometimes much later (a hold-down, a slow operator).
  detectionAfter: fc.oneof(fc.integer({ min: -1_000, max: 3_000 }), fc.integer({ min: 0, max: 15_000 })),
  operatorPollMs: fc.integer({ min: 50, max: 2_000 }),
  reportLatencyMs: fc.integer({ min: 0, max: 1_500 }),
  phaseMs: fc.integer({ min: 0, max: 1_000 }),
  peerless: fc.oneof(
    { weight: 1, arbitrary: fc.constant(true) },
    { weight: 3, arbitrary: fc.constant(false) },
  ),
});

interface Outcome {
  promotedAt?: number;
  fencedAt?: number;
  fencedBy?: 'deadline' | 'operation';
  waitedMs?: number;
}

async function simulate(sc: Scenario): Promise<Outcome> {
  const spec = specOf({
    standbys: ['b'],
    detection: { probeIntervalSeconds: sc.probeIntervalSeconds, failureThreshold: 3, quorum: 2 },
  });
  const settings = leaseSettings(spec);
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const faulted = () => now() >= sc.faultAt;
  const aCutAt = sc.faultAt + sc.aApiCutAfter + (sc.aCutAfterSuspicion ? sc.suspicionAfter : 0);
  const aCut = () => sc.aFromApi && now() >= aCutAt;
  const detectedAt = sc.faultAt + sc.suspicionAfter + sc.detectionAfter * (sc.probeIntervalSeconds / 1);
  let status: FailoverPolicyStatus = { activePrimary: 'a', epoch: 4 };
  let lease: { holder: string; version: string; durationSeconds: number } | undefined;
  let versions = 0;
  const out: Outcome = {};
  // What the operator sees of each agent's report, with a write latency.
  const published: { a?: AgentReport['lease']; b?: AgentReport['vouch']; bAt: number }[] = [{ bAt: 0 }];
  const observations = (): FailoverObservationSpec[] =>
    faulted() && now() >= sc.faultAt + sc.suspicionAfter
      ? ['x', 'y'].map((observer) => ({
          policy: 'orders',
          observer,
          observedAt: new Date().toISOString(),
          probeIntervalSeconds: sc.probeIntervalSeconds,
          clusters: [{ name: 'a', reachable: false, role: 'Unknown', consecutiveFailures: 1 }],
        }))
      : [];
  const world = (): GuardWorld => ({
    policy: { name: 'orders', spec, status },
    peers: { a: 'a:1', b: sc.peerless ? undefined : 'b:1' },
    observations: observations(),
  });
  let guardB: SplitBrainGuard | undefined;
  const portsA: GuardPorts = {
    readWorld: async () => {
      if (aCut()) throw new Error('timeout');
      return world();
    },
    renewLease: async (_p, holder) => {
      if (aCut()) throw new Error('timeout');
      lease = { holder, version: String(++versions), durationSeconds: Math.ceil(settings.durationMs / 1000) };
      return {};
    },
    localServer: async (): Promise<LocalServer> => 'Primary',
    askPeer: async (_address, q): Promise<VouchAnswer> => {
      if (sc.aFromPeer && faulted()) throw new Error('timeout');
      return guardB ? guardB.answer(q) : { vouched: false, cluster: 'b' };
    },
    fence: async () => {
      out.fencedAt ??= now();
      return 'read-only';
    },
    unfence: async () => 'unfenced',
    changed: () => undefined,
  };
  const portsB: GuardPorts = {
    readWorld: async () => {
      if (sc.bFromApi && faulted()) throw new Error('timeout');
      return world();
    },
    renewLease: async () => ({}),
    localServer: async (): Promise<LocalServer> => (out.promotedAt !== undefined ? 'Primary' : 'Standby'),
    askPeer: async () => ({ vouched: false, cluster: 'a' }),
    fence: async () => 'x',
    unfence: async () => 'x',
    changed: () => {
      if (sc.bFromApi && faulted()) return;
      published.push({ b: guardB?.report().vouch, bAt: now() + sc.reportLatencyMs });
    },
  };
  const guardA = new SplitBrainGuard({ cluster: 'a', namespace: 'db', ports: portsA, log, mono: Date.now });
  guardB = new SplitBrainGuard({ cluster: 'b', namespace: 'db', ports: portsB, log, mono: Date.now });
  const watch = new SplitBrainWatch(Date.now);
  const loop = async (g: SplitBrainGuard, phase: number) => {
    await vi.advanceTimersByTimeAsync(phase);
    while (now() < 60_000 && out.promotedAt === undefined) {
      await g.tick();
      await vi.advanceTimersByTimeAsync(g.intervalMs());
    }
  };
  const operator = async () => {
    while (now() < 60_000 && out.promotedAt === undefined) {
      await vi.advanceTimersByTimeAsync(sc.operatorPollMs);
      // Every reconcile reads the Lease and the reports, failover or not.
      const leaseFacts = watch.lease('p', lease);
      const seen = [...published].reverse().find((p) => p.bAt <= now());
      const heldMs = seen?.b ? watch.vouchHeldMs('b', seen.b) : undefined;
      if (!faulted() || now() < detectedAt) continue;
      const op: Operation = (status.currentOperation as Operation | undefined) ?? {
        id: 'failover-1',
        kind: 'Failover',
        trigger: 'Automatic',
        from: 'a',
        to: 'b',
        epoch: 5,
        step: 'Promoting',
        startedAt: new Date().toISOString(),
        stepStartedAt: new Date().toISOString(),
        protection: 'Lease',
        markedOnly: true,
      };
      if (!status.currentOperation) status = { ...status, currentOperation: op };
      const aLease = guardA.report().lease;
      const input: DecideInput = {
        spec,
        status,
        clusters: {
          a: {
            name: 'a',
            exists: true,
            reachable: false,
            role: 'Unknown',
            agent: agentReport(aLease && (sc.aFromApi ? undefined : aLease)),
          },
          b: {
            name: 'b',
            exists: true,
            reachable: true,
            role: 'Standby',
            agent: {
              ...agentReport(undefined),
              ...(sc.peerless ? {} : { peerAddress: 'b:1' }),
              ...(seen?.b ? { vouch: seen.b } : {}),
            },
            ...(heldMs !== undefined ? { vouchHeldMs: heldMs } : {}),
          },
        },
        votes: [],
        now: new Date(),
        lease: leaseFacts,
      };
      const gate = leaseGate(input, op);
      if (gate.open) {
        out.promotedAt = now();
        out.waitedMs = now() - detectedAt;
      }
    }
  };
  await Promise.all([loop(guardA, 0), loop(guardB, sc.phaseMs), operator()]);
  guardA.stop();
  guardB.stop();
  const fenceLease = guardA.report().lease;
  if (out.fencedAt !== undefined) out.fencedBy = fenceLease?.operationId ? 'operation' : 'deadline';
  return out;
}

function agentReport(lease: AgentReport['lease'] | undefined): AgentReport {
  return {
    name: 'agent',
    reportedAt: new Date().toISOString(),
    dataDirectory: '/data',
    server: 'Primary',
    ...(lease ? { lease } : {}),
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('split-brain protocol in simulated time', () => {
  it('never lets the operator promote before the cut-off primary fenced itself', async () => {
    const reached = { promoted: 0, byDeadline: 0, byOperation: 0, waited: 0, neverAllowed: 0 };
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (sc) => {
        vi.useFakeTimers({ now: new Date('2026-12-01T10:00:00Z') });
        try {
          const out = await simulate(sc);
          if (out.promotedAt === undefined) {
            reached.neverAllowed++;
            return;
          }
          reached.promoted++;
          if (out.fencedBy === 'deadline') reached.byDeadline++;
          if (out.fencedBy === 'operation') reached.byOperation++;
          if ((out.waitedMs ?? 0) > sc.operatorPollMs) reached.waited++;
          expect(out.fencedAt).toBeDefined();
          expect(out.fencedAt).toBeLessThan(out.promotedAt);
        } finally {
          vi.useRealTimers();
        }
      }),
      { numRuns: 1500 },
    );
    expect(reached.promoted).toBeGreaterThan(40);
    expect(reached.byDeadline).toBeGreaterThan(10);
    expect(reached.byOperation).toBeGreaterThan(5);
    expect(reached.waited).toBeGreaterThan(5);
    expect(reached.neverAllowed).toBeGreaterThan(3);
  });
});
