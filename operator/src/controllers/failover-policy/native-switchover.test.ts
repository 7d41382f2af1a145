/**
 * A switchover carried through decide, act and transition the way the reconciler does it, one
 * reconcile per second, against a small stand-in world: Aurora global members (the switchover is
 * Aurora's own) and self-managed PostgreSQL (the operator fences and waits for the catch-up).
 * Every reconcile sees a fresh probe of every database, so decide's "a writer beside the new
 * primary" guard is exercised at each step.
 */
import { describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus, Operation } from '../../api/v1alpha1/index.ts';
import type {
  DatabaseProvider,
  FenceRequest,
  PromoteRequest,
  ProviderSpec,
} from '../../providers/database/port.ts';
import type { DnsProvider } from '../../providers/dns/port.ts';
import { ProviderError } from '../../providers/errors.ts';
import { runStep, type StepPorts } from './act.ts';
import { input, NOW, standby } from './decide.fixtures.ts';
import { decide } from './decide.ts';
import type { ClusterFacts } from './facts.ts';
import { newOperation } from './operation.ts';
import { transition } from './transition.ts';

type Kind = 'AuroraGlobal' | 'SelfManaged';

interface Options {
  /** The old writer refuses the epoch mark (a role without UPDATE on the heartbeat table). */
  markRefused?: boolean;
  /** While Aurora switches over, the old writer loses its mark and refuses it from then on. */
  markLost?: boolean;
  /** How many seconds Aurora takes to finish its switchover after the request. */
  auroraPolls?: number;
}

/** Two databases, a (the writer) and b, and what each side effect did to them. */
class World {
  writer: 'a' | 'b' = 'a';
  readOnly = false;
  fencedEpoch: number | undefined;
  heartbeat: Record<string, number> = { a: 4, b: 4 };
  readonly fences: (FenceRequest & { on: string })[] = [];
  readonly promotes: PromoteRequest[] = [];
  private requested = false;
  private polls = 0;
  private marksRefused: boolean;
  dns = 'a.db.internal';
  readonly kind: Kind;
  readonly options: Options;

  constructor(kind: Kind, options: Options = {}) {
    this.kind = kind;
    this.options = options;
    this.marksRefused = options.markRefused === true;
  }

  database(name: string): DatabaseProvider {
    return {
      observe: async () =>
        name === 'a'
          ? { reachable: true, role: this.roleOf('a'), lsn: '0/10', durationMs: 1 }
          : { reachable: true, role: this.roleOf('b'), lsn: '0/10', durationMs: 1 },
      writeHeartbeat: async (epoch) => {
        this.heartbeat[name] = epoch;
        if (name === this.writer) this.fencedEpoch = undefined;
      },
      promote: async (request) => this.promote(name, request),
      fence: async (request) => {
        this.fences.push({ ...request, on: name });
        if (this.kind === 'AuroraGlobal' && request.mode !== 'EpochOnly')
          throw new ProviderError('Rejected', 'Aurora refuses ALTER SYSTEM', { retryable: false });
        if (this.marksRefused)
          throw new ProviderError('Rejected', 'permission denied for table failover_heartbeat', {
            retryable: false,
          });
        if (name !== this.writer) return { detail: `${name} is a standby` };
        this.fencedEpoch = Math.max(this.fencedEpoch ?? 0, request.epoch);
        if (request.mode === 'ReadOnly') this.readOnly = true;
        return { detail: `${name} ${request.mode}` };
      },
      unfence: async () => {
        this.readOnly = false;
        this.fencedEpoch = undefined;
        return { detail: 'unfenced' };
      },
      close: async () => undefined,
    };
  }

  private roleOf(name: string): ClusterFacts['role'] {
    if (name !== this.writer) return 'Standby';
    return this.readOnly ? 'Fenced' : 'Primary';
  }

  private async promote(name: string, request: PromoteRequest) {
    this.promotes.push(request);
    if (name === this.writer) return { state: 'Promoted' as const, alreadyPrimary: !this.requested };
    if (this.kind === 'SelfManaged') {
      this.writer = 'b';
      this.readOnly = false;
      return { state: 'Promoted' as const, alreadyPrimary: false };
    }
    // Aurora: asked once, then under way (the old writer still takes writes) until `elapse`
    // finishes it.
    if (!this.requested) {
      this.requested = true;
      return { state: 'Pending' as const, detail: 'Switchover requested' };
    }
    return { state: 'Pending' as const, detail: 'switching-over' };
  }

  /** A second of Aurora's own time: a switchover it was asked for moves on, then ends. */
  elapse(): void {
    if (!this.requested || this.writer === 'b') return;
    if (++this.polls === 1 && this.options.markLost) {
      this.fencedEpoch = undefined;
      this.marksRefused = true;
    }
    if (this.polls < (this.options.auroraPolls ?? 3)) return;
    // The old writer is a read-only secondary of the new one, which replicates its heartbeat row.
    this.writer = 'b';
    this.fencedEpoch = undefined;
  }

  providerSpec(name: string): ProviderSpec {
    return this.kind === 'AuroraGlobal'
      ? {
          type: 'AuroraGlobal',
          auroraGlobal: {
            region: name === 'a' ? 'us-east-1' : 'eu-west-1',
            globalClusterIdentifier: 'orders-global',
            dbClusterIdentifier: `orders-${name}`,
          },
        }
      : { type: 'SelfManaged' };
  }

  /** A fresh probe of both databases, taken now. */
  facts(now: Date): Record<string, ClusterFacts> {
    const probe = (name: 'a' | 'b'): ClusterFacts => ({
      name,
      exists: true,
      reachable: true,
      role: this.roleOf(name),
      observedAt: now,
      lastReachableAt: now,
      heartbeatEpoch: this.heartbeat[name] ?? 4,
      ...(name === this.writer && this.fencedEpoch !== undefined ? { fencedEpoch: this.fencedEpoch } : {}),
      ...(name === this.writer ? {} : { lagSeconds: 0, lagBytes: 0, lagObservedAt: now }),
    });
    return { a: probe('a'), b: probe('b'), c: standby('c') };
  }

  ports(): StepPorts {
    const dns: DnsProvider = {
      read: async () => ({ value: this.dns, owner: 'ns/orders', epoch: 4 }),
      apply: async (change) => {
        const changed = this.dns !== change.value;
        this.dns = change.value;
        return { changed };
      },
      remove: async () => ({ removed: false }),
      close: async () => undefined,
    };
    return {
      database: async (name) => this.database(name),
      withDns: async (use) => use(dns),
      verifier: { query: async () => [{ server: 'ns1', values: [this.dns] }] },
      verifyServers: async () => [{ host: '127.0.0.1', port: 53 }],
      dnsTarget: (name) => `${name}.db.internal`,
      owner: 'ns/orders',
      policy: 'orders',
      agentReport: () => undefined,
      providerSpec: (name) => this.providerSpec(name),
    };
  }
}

/** Reconciles until the switchover a → b ends; the steps whose side effect ran, in order. */
async function switchOver(
  world: World,
): Promise<{ steps: Operation['step'][]; status: FailoverPolicyStatus }> {
  const operation = newOperation({
    kind: 'Switchover',
    trigger: 'Drill',
    from: 'a',
    to: 'b',
    epoch: 5,
    reason: 'weekly drill',
    now: NOW,
  });
  let status: FailoverPolicyStatus = { activePrimary: 'a', epoch: 4, currentOperation: operation };
  const steps: Operation['step'][] = [];
  const ports = world.ports();
  for (let second = 1; second < 60 && status.currentOperation; second++) {
    const now = new Date(NOW.getTime() + second * 1000);
    world.elapse();
    const i = input({ status, clusters: world.facts(now), now });
    const plan = decide(i);
    if (plan.action.kind !== 'RunStep') {
      status = plan.status;
      continue;
    }
    const op = plan.action.operation;
    steps.push(op.step);
    const t = transition(op, await runStep(ports, i.spec, op, now), now, () => 0.5);
    status = { ...plan.status, ...t.settled, currentOperation: t.operation };
  }
  return { steps, status };
}

const collapse = (steps: string[]) => steps.filter((s, i) => s !== steps[i - 1]);

describe('a switchover on Aurora global: Aurora switches over; the operator only marks the old writer', () => {
  it('goes Detected → Fencing (the epoch mark) → Promoting → RepointingDns → VerifyingDns, asking Aurora for a Switchover', async () => {
    const world = new World('AuroraGlobal');
    const { steps, status } = await switchOver(world);
    expect(collapse(steps)).toEqual(['Detected', 'Fencing', 'Promoting', 'RepointingDns', 'VerifyingDns']);
    expect(steps.filter((s) => s === 'Fencing')).toHaveLength(1);
    expect(steps).not.toContain('CatchingUp');
    expect(steps).not.toContain('Demoting');
    // No read-only fence (Aurora refuses its SQL): one epoch mark, on the old writer, before Aurora is asked.
    expect(world.fences).toEqual([expect.objectContaining({ on: 'a', mode: 'EpochOnly', epoch: 5 })]);
    expect(world.promotes.every((p) => p.kind === 'Switchover')).toBe(true);
    expect(status).toMatchObject({ activePrimary: 'b', epoch: 5 });
    expect(status.currentOperation).toBeUndefined();
    expect(status.history?.[0]).toMatchObject({
      kind: 'Switchover',
      result: 'Succeeded',
      rpoSeconds: 0,
      rpoBytes: 0,
    });
    expect(world.dns).toBe('b.db.internal');
    // Aurora made the old writer a secondary of the new one.
    expect(world.facts(NOW).a?.role).toBe('Standby');
  });

  it('stays at Promoting while Aurora keeps the old writer writable: the epoch mark holds decide back', async () => {
    const world = new World('AuroraGlobal', { auroraPolls: 8 });
    const { steps } = await switchOver(world);
    expect(steps.filter((s) => s === 'Promoting').length).toBeGreaterThanOrEqual(8);
    expect(collapse(steps)).toEqual(['Detected', 'Fencing', 'Promoting', 'RepointingDns', 'VerifyingDns']);
  });

  it('rolls back, nothing moved and nothing asked of Aurora, when the old writer refuses the mark', async () => {
    const world = new World('AuroraGlobal', { markRefused: true });
    const { steps, status } = await switchOver(world);
    expect(collapse(steps)).toEqual(['Detected', 'Fencing', 'RollingBack']);
    expect(world.promotes).toEqual([]);
    expect(status).toMatchObject({ activePrimary: 'a', epoch: 4 });
    expect(status.history?.[0]).toMatchObject({ result: 'Aborted' });
  });

  it('sent back to Fencing when the mark is lost while Aurora switches over: goes on to Promoting, never rolls back', async () => {
    const world = new World('AuroraGlobal', { markLost: true });
    const { steps, status } = await switchOver(world);
    expect(collapse(steps)).toEqual([
      'Detected',
      'Fencing',
      'Promoting',
      'Fencing',
      'Promoting',
      'RepointingDns',
      'VerifyingDns',
    ]);
    expect(world.fences.every((f) => f.mode === 'EpochOnly')).toBe(true);
    expect(status).toMatchObject({ activePrimary: 'b', epoch: 5 });
    expect(status.history?.[0]).toMatchObject({ result: 'Succeeded', rpoBytes: 0 });
  });
});

describe('a switchover on self-managed PostgreSQL: the operator fences and waits for the catch-up', () => {
  it('goes Detected → Fencing (ReadOnly) → CatchingUp → Promoting → RepointingDns → VerifyingDns', async () => {
    const world = new World('SelfManaged');
    const { steps, status } = await switchOver(world);
    expect(collapse(steps)).toEqual([
      'Detected',
      'Fencing',
      'CatchingUp',
      'Promoting',
      'RepointingDns',
      'VerifyingDns',
    ]);
    expect(world.fences).toEqual([expect.objectContaining({ on: 'a', mode: 'ReadOnly', epoch: 5 })]);
    expect(status).toMatchObject({ activePrimary: 'b', epoch: 5 });
    expect(status.history?.[0]).toMatchObject({ result: 'Succeeded', rpoBytes: 0 });
  });
});
