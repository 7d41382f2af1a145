import { describe, expect, it } from 'vitest';
import { leaseSettings } from '../../agent/lease-settings.ts';
import type { AgentReport, Operation } from '../../api/v1alpha1/index.ts';
import { ago, gone, NOW, primaryUp, spec, standby } from './decide.fixtures.ts';
import { decide } from './decide.ts';
import type { ClusterFacts, DecideInput } from './facts.ts';
import { leaseGate, protectionOf, SplitBrainWatch, splitBrainCondition } from './split-brain.ts';

const s = spec({ standbys: ['b'] });
const { durationMs, marginMs } = leaseSettings(s);
const need = durationMs + marginMs;

const agent = (over: Partial<AgentReport> = {}): AgentReport => ({
  name: 'agent',
  reportedAt: ago(1).toISOString(),
  dataDirectory: '/var/lib/postgresql/15/main',
  server: 'Primary',
  peerAddress: '10.0.0.1:7433',
  ...over,
});

const failover: Operation = {
  id: 'failover-7',
  kind: 'Failover',
  trigger: 'Automatic',
  from: 'a',
  to: 'b',
  epoch: 5,
  step: 'Promoting',
  startedAt: ago(3).toISOString(),
  stepStartedAt: ago(1).toISOString(),
  protection: 'Lease',
  markedOnly: true,
};

function input(over: {
  a?: Partial<ClusterFacts>;
  b?: Partial<ClusterFacts>;
  lease?: DecideInput['lease'];
  op?: Operation;
}): DecideInput {
  return {
    spec: s,
    status: { activePrimary: 'a', epoch: 4, ...(over.op ? { currentOperation: over.op } : {}) },
    clusters: {
      a: { ...primaryUp('a'), agent: agent({ lease: { state: 'Holding', epoch: 4 } }), ...over.a },
      b: { ...standby('b'), agent: agent({ server: 'Standby', peerAddress: '10.0.0.2:7433' }), ...over.b },
    },
    votes: [],
    now: NOW,
    ...(over.lease ? { lease: over.lease } : {}),
  };
}

const withholding = (heldMs: number, operationId = 'failover-7'): Partial<ClusterFacts> => ({
  agent: agent({
    server: 'Standby',
    peerAddress: '10.0.0.2:7433',
    vouch: {
      primary: 'a',
      epoch: 4,
      withholding: true,
      since: ago(heldMs / 1000).toISOString(),
      operationId,
    },
  }),
  vouchHeldMs: heldMs,
});

describe('which protection each cluster has', () => {
  it('Lease for a primary whose agent holds it, and for standbys with agents', () => {
    const i = input({ lease: { holder: 'a@4', renewedAgoMs: 500 } });
    expect(protectionOf(i, 'a').protection).toBe('Lease');
    expect(protectionOf(i, 'b').protection).toBe('Lease');
    expect(splitBrainCondition(i)).toMatchObject({ status: 'True', reason: 'Lease' });
  });

  it('says when the Lease fences the primary so soon that a control-plane stall would stop its writes', () => {
    // The fixtures' 1 s probes × 3 derive a 2.5 s Lease with a 0.5 s margin: fenced after 2 s.
    const i = input({ lease: { holder: 'a@4', renewedAgoMs: 500 } });
    expect(splitBrainCondition(i)?.message).toMatch(
      /^primary a: Lease \(renewed\); its agent fences it after only 2 s without confirmation: .*lengthen spec\.primaryLease/,
    );
    // Lengthened as docs/split-brain.md says: nothing to say.
    const roomy = {
      ...i,
      spec: spec({
        standbys: ['b'],
        primaryLease: {
          durationSeconds: 8,
          renewIntervalSeconds: 1,
          safetyMarginSeconds: 2,
          allowLongerThanDetection: true,
        },
      }),
    };
    expect(splitBrainCondition(roomy)?.message).not.toMatch(/fences it after only/);
    // The default 5 s probes derive a Lease that fences after ~6.7 s: nothing to say either.
    const defaults = { ...i, spec: spec({ standbys: ['b'], detection: { probeIntervalSeconds: 5 } }) };
    expect(splitBrainCondition(defaults)?.message).not.toMatch(/fences it after only/);
  });

  it('falls back to DirectFence (or EpochOnly) without a live agent, and says why', () => {
    const silent = input({
      a: { agent: agent({ reportedAt: ago(120).toISOString(), lease: { state: 'Holding', epoch: 4 } }) },
    });
    expect(protectionOf(silent, 'a')).toMatchObject({ protection: 'DirectFence', reason: 'AgentSilent' });
    const none = input({ a: { agent: undefined } });
    expect(protectionOf(none, 'a')).toMatchObject({ protection: 'DirectFence', reason: 'NoAgent' });
    const epochOnly = { ...none, spec: spec({ standbys: ['b'], promotion: { fencing: 'EpochOnly' } }) };
    expect(protectionOf(epochOnly, 'a').protection).toBe('EpochOnly');
    expect(splitBrainCondition(none)).toMatchObject({ status: 'False', reason: 'DirectFence' });
  });

  it('is not Lease while a reachable primary stops renewing (its agent killed), but stays Lease for a cut-off one', () => {
    const stale = input({ lease: { holder: 'a@4', renewedAgoMs: need + 1000 } });
    expect(protectionOf(stale, 'a')).toMatchObject({ protection: 'DirectFence', reason: 'LeaseNotRenewed' });
    // Lost with its region: the Lease stopped when the database did.
    const cut = input({
      a: { ...gone('a', 3), agent: agent({ lease: { state: 'Holding', epoch: 4 } }) },
      lease: { holder: 'a@4', renewedAgoMs: 3000 },
    });
    expect(protectionOf(cut, 'a').protection).toBe('Lease');
  });
});

describe('the promotion past an old primary that could only be marked', () => {
  it('waits until the Lease expired by the operator clock and a standby agent withheld as long', () => {
    expect(
      leaseGate(
        input({ op: failover, lease: { holder: 'a@4', renewedAgoMs: need - 1 }, b: withholding(need) }),
        failover,
      ),
    ).toMatchObject({ open: false });
    expect(
      leaseGate(
        input({ op: failover, lease: { holder: 'a@4', renewedAgoMs: need }, b: withholding(need - 1) }),
        failover,
      ),
    ).toMatchObject({ open: false });
    expect(
      leaseGate(
        input({ op: failover, lease: { holder: 'a@4', renewedAgoMs: need }, b: withholding(need) }),
        failover,
      ),
    ).toEqual({ open: true });
  });

  it('counts only withholding committed to this operation', () => {
    const gate = leaseGate(
      input({
        op: failover,
        lease: { holder: 'a@4', renewedAgoMs: need },
        b: withholding(need * 3, 'other'),
      }),
      failover,
    );
    expect(gate).toMatchObject({ open: false });
  });

  it('goes on at once when the old primary reported it fenced itself for this operation', () => {
    const a = {
      agent: agent({ lease: { state: 'SelfFenced' as const, epoch: 4, operationId: 'failover-7' } }),
    };
    expect(
      leaseGate(input({ op: failover, a, lease: { holder: 'a@4', renewedAgoMs: 0 } }), failover),
    ).toEqual({ open: true });
  });

  it('never promotes blind on a Lease it could not read', () => {
    expect(
      leaseGate(input({ op: failover, lease: { unreadable: true }, b: withholding(need) }), failover),
    ).toMatchObject({ open: false });
  });

  it('does not wait for a directly fenced primary, or one without a Lease', () => {
    expect(
      leaseGate(input({ lease: { holder: 'a@4', renewedAgoMs: 0 } }), { ...failover, markedOnly: undefined }),
    ).toEqual({ open: true });
    expect(
      leaseGate(input({ lease: { holder: 'a@4', renewedAgoMs: 0 } }), {
        ...failover,
        protection: 'DirectFence',
      }),
    ).toEqual({ open: true });
  });

  it('decide records when the wait began, runs the promotion once open, and reports the wait', () => {
    const closed = decide(
      input({
        op: failover,
        lease: { holder: 'a@4', renewedAgoMs: 100 },
        b: withholding(100),
        a: { ...gone('a', 1), agent: agent({ lease: { state: 'Holding', epoch: 4 } }) },
      }),
    );
    expect(closed.action.kind).toBe('Record');
    const waiting = closed.status.currentOperation as Operation;
    expect(waiting.leaseWaitFrom).toBe(NOW.toISOString());
    const later = new Date(NOW.getTime() + need);
    const open = decide({
      ...input({
        op: waiting,
        lease: { holder: 'a@4', renewedAgoMs: need + 100 },
        b: withholding(need + 100),
        a: { ...gone('a', 4), agent: agent({ lease: { state: 'Holding', epoch: 4 } }) },
      }),
      now: later,
    });
    expect(open.action).toMatchObject({
      kind: 'RunStep',
      operation: { step: 'Promoting', waitedForLeaseSeconds: need / 1000 },
    });
  });
});

describe('SplitBrainWatch', () => {
  it('counts from when it first saw a renewal or a standing, by its own clock', () => {
    let t = 1000;
    const w = new SplitBrainWatch(() => t);
    expect(w.lease('p', { holder: 'a@4', version: 'r1' })).toEqual({ holder: 'a@4', renewedAgoMs: 0 });
    t += 700;
    expect(w.lease('p', { holder: 'a@4', version: 'r1' }).renewedAgoMs).toBe(700);
    expect(w.lease('p', { holder: 'a@4', version: 'r2' }).renewedAgoMs).toBe(0);
    const v = { primary: 'a', epoch: 4, withholding: true, since: 's1' };
    expect(w.vouchHeldMs('b', v)).toBe(0);
    t += 300;
    expect(w.vouchHeldMs('b', v)).toBe(300);
    expect(w.vouchHeldMs('b', { ...v, withholding: false })).toBe(0);
  });
});
