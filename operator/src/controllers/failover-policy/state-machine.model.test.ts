/**
 * A model-based test of the whole decision core (decide → act → transition), driven through random
 * interleavings of what happens to a policy in real life: primaries dying and coming back,
 * observers cut off, the DNS provider failing, the operator restarting (losing its probes) or its
 * status (a recreated policy), people's requests. A small simulated world stands in for the
 * databases and DNS; act is simulated on it, everything else is the real code.
 *
 * Checked after every command: a promotion never runs while another database takes writes; an
 * automatic promotion never exceeds the RPO budget; the epoch only grows, by one per promotion.
 * Checked at the end, once the faults heal: every operation started has ended, exactly one
 * database takes writes, status names it, and DNS points at it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FailoverPolicyStatus, Operation } from '../../api/v1alpha1/index.ts';
import { timestamp } from '../../runtime/time.ts';
import { spec as makeSpec } from './decide.fixtures.ts';
import { decide } from './decide.ts';
import type { ClusterFacts, DecideInput, Vote } from './facts.ts';
import { summarize } from './summary.ts';
import { type StepOutcome, transition } from './transition.ts';

const NAMES = ['a', 'b', 'c'] as const;
const OBSERVERS = ['operator', 'region-b', 'region-c'] as const;
type Fencing = 'ReadOnly' | 'Shutdown' | 'EpochOnly';
const specWith = (fencing: Fencing) =>
  makeSpec({
    detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 2 },
    promotion: {
      rpo: { maxLagSeconds: 5, maxLagBytes: 1_000_000 },
      cooldownSeconds: 30,
      holdDownSeconds: 0,
      fencing,
    },
  });
/** Ticks two databases may take writes at once before it counts as a split brain left standing. */
const TWO_WRITERS_TICKS = 12;
const TARGET = (n: string) => `${n}.db`;

interface Db {
  alive: boolean;
  role: 'Primary' | 'Standby' | 'Fenced';
  /** The heartbeat row: the epoch it was primary at (a standby: replayed), and a fence mark. */
  epoch: number;
  fencedEpoch?: number;
  lagSeconds: number;
  /**
   * Transactions it committed that no other database received (it died before they were sent):
   * what a rejoin would discard, once another database is primary.
   */
  diverged: number;
}
interface Probe {
  at: number;
  reachable: boolean;
  failures: number;
  lastReachableAt?: number;
  lag?: { seconds: number; at: number };
}

class World {
  readonly spec: ReturnType<typeof specWith>;
  now = Date.parse('2026-03-02T10:00:00Z');
  twoWriters = 0;
  dbs: Record<string, Db> = {
    a: { alive: true, role: 'Primary', epoch: 0, lagSeconds: 0, diverged: 0 },
    b: { alive: true, role: 'Standby', epoch: 0, lagSeconds: 0, diverged: 0 },
    c: { alive: true, role: 'Standby', epoch: 0, lagSeconds: 0, diverged: 0 },
  };
  /** Database agents beside every server (self-managed PostgreSQL with `--mode=agent`). */
  agents: boolean;
  reprotectMode: 'Automatic' | 'RequireRequest' | 'Manual' = 'RequireRequest';
  /** Committed transactions a rejoin threw away, and whether someone had allowed it. */
  discarded = 0;
  dns: { value?: string; epoch?: number; failing: boolean } = { failing: false };
  cut = new Set<string>();
  status: FailoverPolicyStatus = {};
  probes = new Map<string, Probe>();
  /** Observers' failure counts on the active primary. */
  votes = new Map<string, Probe>();
  request: NonNullable<DecideInput['spec']['promotionRequest']> | undefined;
  requests = 0;
  promotions = 0;
  highestEpoch = 0;
  skipProbes = 0;
  violations: string[] = [];
  started = new Set<string>();
  ended = new Set<string>();

  constructor(fencing: Fencing, agents = false, reprotectMode: World['reprotectMode'] = 'RequireRequest') {
    this.spec = { ...specWith(fencing), reprotect: { ...specWith(fencing).reprotect, mode: reprotectMode } };
    this.agents = agents;
    this.reprotectMode = reprotectMode;
  }

  /** What the agent beside `n` reports: the server, and how it compares with the active primary. */
  private agentReport(n: string): ClusterFacts['agent'] {
    const db = this.dbs[n] as Db;
    const active = this.status.activePrimary;
    const at = new Date(this.now).toISOString();
    const server = !db.alive ? 'Stopped' : db.role === 'Standby' ? 'Standby' : 'Primary';
    if (!active || active === n) return { name: `agent-${n}`, reportedAt: at, dataDirectory: '/d', server };
    const relation =
      db.role === 'Standby' && db.alive ? 'Following' : db.diverged > 0 ? 'Diverged' : 'Behind';
    return {
      name: `agent-${n}`,
      reportedAt: at,
      dataDirectory: '/d',
      server,
      divergence: {
        primary: active,
        assessedAt: at,
        relation,
        divergedBytes: db.diverged * 100,
        divergedTransactions: db.diverged,
      },
    };
  }

  /** Status gone (a recreated policy): an operation in flight goes with it. */
  loseStatus(): void {
    const lost = this.status.currentOperation;
    if (lost) this.ended.add(lost.id);
    this.status = {};
  }

  writable(): string[] {
    return NAMES.filter((n) => this.dbs[n]?.alive && this.dbs[n].role === 'Primary');
  }

  /**
   * The writers that count: under EpochOnly, those not marked as superseded (an EpochOnly fence
   * marks a database, it cannot stop it taking writes: that is its documented contract).
   */
  writers(): string[] {
    const all = this.writable();
    return this.spec.promotion.fencing === 'EpochOnly'
      ? all.filter((n) => this.dbs[n]?.fencedEpoch === undefined)
      : all;
  }

  /** One probe interval: replication, probes, then the policy is reconciled. */
  tick(): void {
    this.now += 1000;
    // Back before anyone replaced it, the primary's transactions are the history, not a divergence.
    const active = this.status.activePrimary;
    const current = active ? this.dbs[active] : undefined;
    if (current?.alive && current.role === 'Primary') current.diverged = 0;
    this.replicate();
    if (this.skipProbes > 0) this.skipProbes--;
    else this.probe();
    this.reconcile();
    // A database that comes back writable beside the primary is the world's doing; leaving it so
    // is the operator's. (Under EpochOnly a marked writer is all the operator can do.)
    const writers = this.writers();
    this.twoWriters = writers.length > 1 ? this.twoWriters + 1 : 0;
    if (this.twoWriters === TWO_WRITERS_TICKS)
      this.violations.push(`${writers.join(' and ')} took writes for ${TWO_WRITERS_TICKS} ticks`);
  }

  /** Standbys replay the heartbeat row of the database they stream from (a live primary, fenced or not). */
  private replicate(): void {
    const sources = NAMES.map((n) => this.dbs[n] as Db).filter((d) => d.alive && d.role !== 'Standby');
    const source = sources.find((d) => d.role === 'Primary') ?? sources[0];
    if (!source) return;
    for (const n of NAMES) {
      const d = this.dbs[n] as Db;
      if (d.role !== 'Standby' || !d.alive) continue;
      d.epoch = source.epoch;
      if (source.fencedEpoch === undefined) delete d.fencedEpoch;
      else d.fencedEpoch = source.fencedEpoch;
    }
  }

  private probe(): void {
    const active = this.status.activePrimary;
    const primaryAlive = active !== undefined && this.dbs[active]?.alive === true;
    for (const n of NAMES) {
      const db = this.dbs[n] as Db;
      const last = this.probes.get(n);
      const lag =
        db.role === 'Standby' && db.alive && primaryAlive
          ? { seconds: db.lagSeconds, at: this.now }
          : last?.lag;
      this.probes.set(n, {
        at: this.now,
        reachable: db.alive,
        failures: db.alive ? 0 : (last?.failures ?? 0) + 1,
        ...(db.alive
          ? { lastReachableAt: this.now }
          : last?.lastReachableAt
            ? { lastReachableAt: last.lastReachableAt }
            : {}),
        ...(lag ? { lag } : {}),
      });
    }
    for (const o of OBSERVERS) {
      if (o === 'operator') continue;
      const sees = primaryAlive && !this.cut.has(o);
      const last = this.votes.get(o);
      this.votes.set(o, {
        at: this.now,
        reachable: sees,
        failures: sees ? 0 : (last?.failures ?? 0) + 1,
        ...(sees
          ? { lastReachableAt: this.now }
          : last?.lastReachableAt
            ? { lastReachableAt: last.lastReachableAt }
            : {}),
      });
    }
  }

  input(): DecideInput {
    const clusters: Record<string, ClusterFacts> = {};
    for (const n of NAMES) {
      const p = this.probes.get(n);
      const db = this.dbs[n] as Db;
      clusters[n] = p
        ? {
            name: n,
            exists: true,
            reachable: p.reachable,
            role: p.reachable ? db.role : 'Unknown',
            observedAt: new Date(p.at),
            ...(p.lastReachableAt ? { lastReachableAt: new Date(p.lastReachableAt) } : {}),
            ...(p.reachable ? { heartbeatEpoch: db.epoch } : {}),
            ...(p.reachable && db.fencedEpoch !== undefined ? { fencedEpoch: db.fencedEpoch } : {}),
            ...(p.lag ? { lagSeconds: p.lag.seconds, lagBytes: 0, lagObservedAt: new Date(p.lag.at) } : {}),
            ...(this.agents ? { agent: this.agentReport(n) } : {}),
          }
        : { name: n, exists: true, reachable: false, role: 'Unknown', unprobed: true };
    }
    const votes: Vote[] = [];
    const active = this.status.activePrimary;
    const ap = active ? this.probes.get(active) : undefined;
    if (ap) votes.push(vote('operator', ap));
    for (const [o, p] of this.votes) votes.push(vote(o, p));
    return {
      spec: { ...this.spec, ...(this.request ? { promotionRequest: this.request } : {}) },
      status: this.status,
      clusters,
      votes,
      now: new Date(this.now),
      dnsTargets: Object.fromEntries(NAMES.map((n) => [n, TARGET(n)])),
      dnsOwner: 'ns/orders',
      dns: this.dns.failing
        ? { readAt: new Date(this.now), error: { reason: 'Timeout', message: 'no answer' } }
        : {
            readAt: new Date(this.now),
            ...(this.dns.value
              ? { value: this.dns.value, owner: 'ns/orders', epoch: this.dns.epoch ?? 0 }
              : {}),
          },
    };
  }

  reconcile(): void {
    const input = this.input();
    const plan = decide(input);
    let next = plan.status;
    if (plan.action.kind === 'RunStep') {
      const op = plan.action.operation;
      const t = transition(op, this.act(op), input.now, () => 0.5);
      next = { ...plan.status, ...t.settled, currentOperation: t.operation };
    } else if (plan.action.kind === 'RepairDns' && !this.dns.failing) {
      this.dns = { ...this.dns, value: plan.action.value, epoch: plan.action.epoch };
    }
    summarize(input, plan, next, {});
    const op = next.currentOperation;
    if (op) this.started.add(op.id);
    for (const r of next.history ?? []) this.ended.add(r.id);
    if ((next.epoch ?? 0) < (this.status.epoch ?? 0) && next.activePrimary === this.status.activePrimary)
      this.violations.push(`epoch went down from ${this.status.epoch} to ${next.epoch}`);
    this.status = next;
  }

  /** The side effect of a step, on the simulated world. */
  private act(op: Operation): StepOutcome {
    const from = this.dbs[op.from] as Db;
    const to = this.dbs[op.to] as Db;
    const unreachable: StepOutcome = {
      kind: 'Failed',
      reason: 'Unreachable',
      message: 'no answer',
      retryable: true,
    };
    switch (op.step) {
      case 'Fencing':
        for (const db of [from, ...(op.strays ?? []).map((n) => this.dbs[n] as Db)]) {
          if (!db.alive) return unreachable;
          // As the adapters do: never fence a database a later promotion made primary.
          if (db.epoch > op.epoch)
            return { kind: 'Failed', reason: 'PreconditionFailed', message: 'newer epoch', retryable: false };
          if (db.role === 'Standby') continue;
          const mode = op.kind === 'Switchover' ? 'ReadOnly' : this.spec.promotion.fencing;
          if (db.role === 'Primary' && mode !== 'EpochOnly') db.role = 'Fenced';
          db.fencedEpoch = Math.max(db.fencedEpoch ?? 0, op.epoch);
        }
        return {
          kind: 'Done',
          detail: 'fenced',
          ...(op.kind === 'Switchover' ? { learned: { fencedLsn: '0/1' } } : {}),
        };
      case 'CatchingUp':
        if (op.kind === 'Reprotect')
          return from.alive && from.role === 'Standby'
            ? { kind: 'Done' }
            : { kind: 'Pending', detail: 'not streaming' };
        if (!to.alive) return { kind: 'Pending', detail: 'target gone' };
        to.lagSeconds = 0;
        return { kind: 'Done' };
      case 'Demoting':
        // The agent stops the fenced primary cleanly and restarts it as the target's standby.
        if (!from.alive) return { kind: 'Done', detail: 'not demoted', learned: { demoted: false } };
        if (from.role === 'Primary') this.violations.push(`demoting ${op.from} while it took writes`);
        from.role = 'Standby';
        return { kind: 'Done', learned: { stoppedLsn: '0/2' } };
      case 'Rejoining': {
        // The agent: refuses to discard what it was not allowed to; else rewinds and starts a standby.
        if (op.from === this.status.activePrimary)
          this.violations.push(`rejoining the active primary ${op.from}`);
        if (from.diverged > 0 && !op.allowDataLoss)
          return { kind: 'Failed', reason: 'AgentRefused', message: 'WouldDiscard', retryable: false };
        if (from.diverged > 0) {
          const allowed = op.trigger === 'Manual' || this.reprotectMode === 'Automatic';
          if (!allowed) this.violations.push(`${op.from}'s ${from.diverged} transactions discarded unasked`);
          this.discarded += from.diverged;
        }
        from.alive = true;
        from.role = 'Standby';
        from.diverged = 0;
        delete from.fencedEpoch;
        return { kind: 'Done' };
      }
      case 'Promoting': {
        if (!to.alive) return unreachable;
        if (to.role === 'Primary') {
          to.epoch = Math.max(to.epoch, op.epoch);
          delete to.fencedEpoch;
          return { kind: 'Done', detail: 'already' };
        }
        const others = this.writers().filter((n) => n !== op.to);
        if (others.length) this.violations.push(`promoted ${op.to} while ${others.join(', ')} took writes`);
        // The budget applies to the last lag anyone could measure (recorded when the failover
        // started): a standby falling behind in the very interval the primary died cannot be known.
        const known = op.estimatedLossSeconds;
        if (
          op.trigger === 'Automatic' &&
          (known === undefined || known > this.spec.promotion.rpo.maxLagSeconds)
        )
          this.violations.push(`automatic promotion of ${op.to} with last measured lag ${known} s`);
        if (op.epoch !== this.highestEpoch + 1)
          this.violations.push(`promotion to epoch ${op.epoch} after ${this.highestEpoch}`);
        this.highestEpoch = op.epoch;
        to.role = 'Primary';
        to.epoch = op.epoch;
        delete to.fencedEpoch;
        this.promotions++;
        return { kind: 'Done' };
      }
      case 'RepointingDns': {
        if (this.dns.failing)
          return { kind: 'Failed', reason: 'Timeout', message: 'DNS timeout', retryable: true };
        // As the providers do: a change never lowers the epoch the record carries.
        if ((this.dns.epoch ?? 0) > op.epoch)
          return { kind: 'Failed', reason: 'PreconditionFailed', message: 'newer epoch', retryable: true };
        this.dns = { ...this.dns, value: TARGET(op.to), epoch: op.epoch };
        return { kind: 'Done', learned: { dnsChangedAt: timestamp(new Date(this.now)) } };
      }
      case 'VerifyingDns':
        return this.dns.value === TARGET(op.to) && !this.dns.failing
          ? { kind: 'Done' }
          : { kind: 'Pending', detail: 'not yet' };
      case 'RollingBack':
        if (!from.alive) return unreachable;
        if (from.role === 'Fenced') from.role = 'Primary';
        delete from.fencedEpoch;
        return { kind: 'Done' };
      default:
        return { kind: 'Done' };
    }
  }
}

const vote = (observer: string, p: Probe): Vote => ({
  observer,
  observedAt: new Date(p.at),
  reachable: p.reachable,
  consecutiveFailures: p.failures,
  ...(p.lastReachableAt ? { lastSeenAt: new Date(p.lastReachableAt) } : {}),
});

type Cmd = fc.Command<object, World>;
const command = (name: string, run: (w: World) => void): Cmd => ({
  check: () => true,
  run: (_m, w) => {
    run(w);
    expect(w.violations, `after ${name}`).toEqual([]);
  },
  toString: () => name,
});

const tickCommand = fc.integer({ min: 1, max: 8 }).map((n) =>
  command(`tick×${n}`, (w) => {
    for (let i = 0; i < n; i++) w.tick();
  }),
);
const killPrimary = fc.constant(
  command('kill the primary', (w) => {
    const a = w.status.activePrimary;
    if (a) (w.dbs[a] as Db).alive = false;
  }),
);

const diesWithUnsentTransactions = fc.integer({ min: 1, max: 5 }).map((k) =>
  command(`the primary commits ${k} transactions no standby receives, and stays dead 10 s`, (w) => {
    const a = w.status.activePrimary;
    const db = a ? w.dbs[a] : undefined;
    if (db?.alive && db.role === 'Primary') {
      db.diverged += k;
      db.alive = false;
    }
    for (let i = 0; i < 10; i++) w.tick();
  }),
);

// Weighted toward what leads somewhere: time passing, and primaries dying.
const commands = [
  tickCommand,
  tickCommand,
  tickCommand,
  killPrimary,
  killPrimary,
  killPrimary,
  fc.integer({ min: 1, max: 8 }).map((n) =>
    command(`tick×${n}`, (w) => {
      for (let i = 0; i < n; i++) w.tick();
    }),
  ),
  fc.constant(
    command('kill the primary', (w) => {
      const a = w.status.activePrimary;
      if (a) (w.dbs[a] as Db).alive = false;
    }),
  ),
  fc.constantFrom(...NAMES).map((n) =>
    command(`revive ${n}`, (w) => {
      (w.dbs[n] as Db).alive = true;
    }),
  ),
  diesWithUnsentTransactions,
  fc.integer({ min: 1, max: 5 }).map((k) =>
    command(`the primary commits ${k} transactions no standby receives, and dies`, (w) => {
      const a = w.status.activePrimary;
      const db = a ? w.dbs[a] : undefined;
      if (db?.alive && db.role === 'Primary') {
        db.diverged += k;
        db.alive = false;
      }
    }),
  ),
  fc.constantFrom(...NAMES).map((n) =>
    command(`kill ${n}`, (w) => {
      (w.dbs[n] as Db).alive = false;
    }),
  ),
  fc.constantFrom('region-b', 'region-c').map((o) =>
    command(`cut ${o}`, (w) => {
      w.cut.add(o);
    }),
  ),
  fc.constant(
    command('heal the network', (w) => {
      w.cut.clear();
    }),
  ),
  fc.boolean().map((f) =>
    command(`DNS ${f ? 'fails' : 'heals'}`, (w) => {
      w.dns.failing = f;
    }),
  ),
  fc.constant(
    command('restart the operator', (w) => {
      w.probes.clear();
      w.skipProbes = 1;
    }),
  ),
  fc.constant(command('lose the status', (w) => w.loseStatus())),
  fc.tuple(fc.constantFrom(...NAMES), fc.integer({ min: 0, max: 12 })).map(([n, s]) =>
    command(`${n} lags ${s} s`, (w) => {
      // Only a standby streaming from a live primary falls behind (or catches up).
      if (w.writable().length > 0 && (w.dbs[n] as Db).role === 'Standby') (w.dbs[n] as Db).lagSeconds = s;
    }),
  ),
  fc
    .tuple(fc.constantFrom('Switchover', 'Failover', 'Reprotect'), fc.constantFrom(...NAMES), fc.boolean())
    .map(([kind, target, loss]) =>
      command(`request ${kind} to ${target}${loss ? ' (data loss allowed)' : ''}`, (w) => {
        w.requests++;
        w.request = {
          id: `r${w.requests}`,
          target,
          kind: kind as 'Switchover' | 'Failover' | 'Reprotect',
          allowDataLoss: kind !== 'Switchover' && loss,
        };
      }),
    ),
];

describe('the decision core with database agents: demotion, reprotect and what a rejoin discards', () => {
  it('never discards committed transactions unasked, never two writers, and every former primary that discards nothing becomes a standby again', () => {
    const coverage = { reprotected: 0, discardedWithLeave: 0, waitedForPerson: 0, demoted: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom<World['reprotectMode']>('RequireRequest', 'Automatic', 'Automatic', 'Manual'),
        fc.commands(commands, { maxCommands: 40 }),
        (mode, cmds) => {
          const world = new World('ReadOnly', true, mode);
          for (let i = 0; i < 3; i++) world.tick();
          fc.modelRun(() => ({ model: {}, real: world }), cmds);
          settleAndCheck(world);
          const reports = world.status.history ?? [];
          if (reports.some((r) => r.kind === 'Reprotect' && r.result === 'Succeeded')) coverage.reprotected++;
          if (world.discarded > 0) coverage.discardedWithLeave++;
          if (reports.some((r) => r.kind === 'Switchover' && r.result === 'Succeeded')) coverage.demoted++;
          // Redundancy comes back by itself wherever nothing committed would be lost (unless Manual).
          const active = world.status.activePrimary;
          for (const n of NAMES) {
            const db = world.dbs[n] as Db;
            if (n === active || db.role === 'Standby') continue;
            if (mode === 'Manual' || db.diverged > 0) coverage.waitedForPerson++;
            else
              expect.fail(
                `${n} (${db.role}, nothing diverged) was not reprotected under ${mode}: ${JSON.stringify(world.status.history?.slice(0, 4).map((r) => [r.kind, r.from, r.to, r.result, r.message]))} ${JSON.stringify(world.status.conditions?.find((c) => c.type === 'Redundant'))} ${JSON.stringify(world.dbs)}`,
              );
            if (mode === 'Automatic') expect(db.diverged, `${n} waits under Automatic`).toBe(0);
          }
        },
      ),
      { numRuns: 700 },
    );
    // Every path was taken: rejoins, discards a person or the policy allowed, waits, demotions.
    for (const [what, n] of Object.entries(coverage)) expect(n, what).toBeGreaterThan(4);
  });
});

describe('the decision core under random interleavings of faults, restarts and requests', () => {
  it('keeps its invariants after every command, and converges once the faults heal', () => {
    const coverage = { promotions: 0, runsWithPromotion: 0, fenced: 0, personNeeded: 0 };
    fc.assert(
      fc.property(
        fc.constantFrom<Fencing>('ReadOnly', 'Shutdown', 'EpochOnly'),
        fc.commands(commands, { maxCommands: 40 }),
        (fencing, cmds) => {
          const world = new World(fencing);
          for (let i = 0; i < 3; i++) world.tick();
          fc.modelRun(() => ({ model: {}, real: world }), cmds);
          if (settleAndCheck(world)) coverage.personNeeded++;
          coverage.promotions += world.promotions;
          if (world.promotions > 0) coverage.runsWithPromotion++;
          if (world.status.history?.some((r) => r.kind === 'Fence')) coverage.fenced++;
        },
      ),
      { numRuns: 300 },
    );
    expect(coverage.runsWithPromotion).toBeGreaterThan(50);
    expect(coverage.fenced).toBeGreaterThan(10);
  });

  it('never reuses an epoch nor fences the real primary after a status lost between promoting and re-pointing DNS', () => {
    // Found by this test: A→B promoted at epoch 1, status lost before DNS moved, B out of sight.
    const world = new World('ReadOnly');
    for (let i = 0; i < 3; i++) world.tick();
    (world.dbs.a as Db).alive = false;
    for (let i = 0; i < 6; i++) world.tick();
    const active = world.status.activePrimary;
    if (active) (world.dbs[active] as Db).alive = false;
    world.loseStatus();
    for (let i = 0; i < 3; i++) world.tick();
    expect(world.violations).toEqual([]);
    settleAndCheck(world);
  });
});

/** Heals every fault, brings every database back, lets the operator finish, and checks the end. */
function settleAndCheck(world: World): boolean {
  world.cut.clear();
  world.dns.failing = false;
  for (const n of NAMES) (world.dbs[n] as Db).alive = true;
  // Until ten ticks in a row are quiet (a request may still start an operation after a quiet one).
  const settle = () => {
    let quiet = 0;
    for (let i = 0; i < 200 && quiet < 10; i++) {
      world.tick();
      quiet = !world.status.currentOperation && world.writers().length === 1 ? quiet + 1 : 0;
    }
  };
  settle();
  // A switchover stopped between fencing and promoting (its status lost) leaves a fenced primary
  // (or, demoted by its agent, one already a standby) and no writer: the runbook has a person fail
  // over to a standby.
  let personNeeded = false;
  const active = world.status.activePrimary;
  if (world.writers().length === 0 && active && world.dbs[active]?.role !== 'Primary') {
    const target = NAMES.find((n) => n !== active && world.dbs[n]?.role === 'Standby') ?? 'b';
    world.request = { id: 'runbook', target, kind: 'Failover', allowDataLoss: true };
    personNeeded = true;
    settle();
  }
  expect(world.violations).toEqual([]);
  expect(world.status.currentOperation).toBeUndefined();
  for (const id of world.started) expect(world.ended.has(id), `operation ${id} never ended`).toBe(true);
  expect(world.writers(), JSON.stringify({ status: world.status, dbs: world.dbs })).toHaveLength(1);
  expect(world.status.activePrimary).toBe(world.writers()[0]);
  expect(world.dns.value).toBe(TARGET(world.status.activePrimary ?? ''));
  expect(world.status.epoch).toBe(world.highestEpoch);
  return personNeeded;
}
