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
 *
 * Round-trip drills run in the same world (DrillWorld): never two writable primaries; every drill
 * ends, with one report, within maxDurationSeconds and the 10 min grace (plus the time a fault held
 * it back); Succeeded leaves the primary home; Interrupted only after a real failover; Cancelled
 * only when asked; with no drill running the record gets spec.dns.ttlSeconds back.
 */
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type {
  DrillReport,
  DrillState,
  FailoverPolicyStatus,
  Operation,
  OperationReport,
} from '../../api/v1alpha1/index.ts';
import { timestamp } from '../../runtime/time.ts';
import { spec as makeSpec } from './decide.fixtures.ts';
import { decide } from './decide.ts';
import { wantedTtl } from './dns-check.ts';
import { CANARY_MEASURE_WAIT_MS, COME_BACK_WAIT_MS, COME_HOME_GRACE_MS, findReport } from './drill.ts';
import type { ClusterFacts, DecideInput, Vote } from './facts.ts';
import { summarize } from './summary.ts';
import { type StepOutcome, transition } from './transition.ts';

// croner's time-zone arithmetic costs about 0.3 ms a call, and decide asks the schedule the same
// question every tick: the real answers are kept, so a model run of thousands of ticks stays fast.
vi.mock('croner', async (importOriginal) => {
  const real = await importOriginal<typeof import('croner')>();
  const parsed = new Map<string, Error | undefined>();
  const answers = new Map<string, number | undefined>();
  class Cron {
    readonly #key: string;
    readonly #args: ConstructorParameters<typeof real.Cron>;
    constructor(...args: ConstructorParameters<typeof real.Cron>) {
      this.#args = args;
      this.#key = JSON.stringify([args[0], args[1]]);
      if (!parsed.has(this.#key))
        try {
          new real.Cron(...args);
          parsed.set(this.#key, undefined);
        } catch (err) {
          parsed.set(this.#key, err as Error);
        }
      const problem = parsed.get(this.#key);
      if (problem) throw problem;
    }
    nextRun(after?: Date): Date | null {
      const key = `${this.#key}@${after?.getTime()}`;
      if (!answers.has(key)) answers.set(key, new real.Cron(...this.#args).nextRun(after)?.getTime());
      const at = answers.get(key);
      return at === undefined ? null : new Date(at);
    }
  }
  return { ...real, Cron };
});

const NAMES = ['a', 'b', 'c'] as const;
const OBSERVERS = ['operator', 'region-b', 'region-c'] as const;
type Fencing = 'ReadOnly' | 'Shutdown' | 'EpochOnly';
const specWith = (fencing: Fencing, drills?: Record<string, unknown>) =>
  makeSpec({
    detection: { probeIntervalSeconds: 1, failureThreshold: 3, quorum: 2 },
    promotion: {
      rpo: { maxLagSeconds: 5, maxLagBytes: 1_000_000 },
      cooldownSeconds: 30,
      holdDownSeconds: 0,
      fencing,
    },
    ...(drills ? { drills } : {}),
  });
/** Ticks two databases may take writes at once before it counts as a split brain left standing. */
const TWO_WRITERS_TICKS = 12;
const TARGET = (n: string) => `${n}.db`;

/** What the drill model adds to the world (the other tests leave it out). */
interface WorldOptions {
  /** spec.drills, as a person writes it (defaults filled in by the schema). */
  drills?: Record<string, unknown>;
  /** Seconds of lag a switchover target replays per tick while catching up (default: all at once). */
  replayPerTick?: number;
  /** The DNS provider refuses TTLs below this (as DigitalOcean does under 30 s). */
  minTtl?: number;
  /**
   * Derive the conditions (summary.ts) only on reconciles that change something: with drills, each
   * costs a schedule lookup, and most reconciles only observe.
   */
  summarizeChangesOnly?: boolean;
}

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
  dns: { value?: string; epoch?: number; ttl?: number; failing: boolean } = { failing: false };
  cut = new Set<string>();
  status: FailoverPolicyStatus = {};
  probes = new Map<string, Probe>();
  /** Observers' failure counts on the active primary. */
  votes = new Map<string, Probe>();
  request: NonNullable<DecideInput['spec']['promotionRequest']> | undefined;
  drillRequest: NonNullable<DecideInput['spec']['drillRequest']> | undefined;
  /** Agents that stopped reporting, and since when: their last report ages. */
  silentAgents = new Map<string, number>();
  readonly options: WorldOptions;
  requests = 0;
  promotions = 0;
  highestEpoch = 0;
  skipProbes = 0;
  violations: string[] = [];
  /** spec.paused (maintenance mode), and how many reconciles it held something back. */
  paused = false;
  heldWhilePaused = 0;
  started = new Set<string>();
  ended = new Set<string>();

  constructor(
    fencing: Fencing,
    agents = false,
    reprotectMode: World['reprotectMode'] = 'RequireRequest',
    options: WorldOptions = {},
  ) {
    const spec = specWith(fencing, options.drills);
    this.spec = { ...spec, reprotect: { ...spec.reprotect, mode: reprotectMode } };
    this.agents = agents;
    this.reprotectMode = reprotectMode;
    this.options = options;
  }

  /** What the agent beside `n` reports: the server, and how it compares with the active primary. */
  private agentReport(n: string): ClusterFacts['agent'] {
    const db = this.dbs[n] as Db;
    const active = this.status.activePrimary;
    const at = new Date(this.silentAgents.get(n) ?? this.now).toISOString();
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
    this.afterTick();
  }

  /** Checks of a subclass after every tick. */
  protected afterTick(): void {}
  /** What a subclass learns from each status written. */
  protected onStatus(_prev: FailoverPolicyStatus, _next: FailoverPolicyStatus): void {}

  /** Standbys replay the heartbeat row of the database they stream from (a live primary, fenced or not). */
  protected replicate(): void {
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
      spec: {
        ...this.spec,
        paused: this.paused,
        ...(this.request ? { promotionRequest: this.request } : {}),
        ...(this.drillRequest ? { drillRequest: this.drillRequest } : {}),
      },
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
              ? {
                  value: this.dns.value,
                  owner: 'ns/orders',
                  epoch: this.dns.epoch ?? 0,
                  ...(this.dns.ttl !== undefined ? { ttl: this.dns.ttl } : {}),
                }
              : {}),
          },
    };
  }

  reconcile(): void {
    const input = this.input();
    const plan = decide(input);
    let next = plan.status;
    // Paused: nothing automatic starts but safety (a stray writer fenced, an operation's leftover
    // fence undone), and the record is not moved between operations (its TTL may be put back).
    if (this.paused) {
      const op = plan.status.currentOperation;
      const safety = op?.kind === 'Fence' || (op?.kind === 'Switchover' && op.step === 'RollingBack');
      if (op && !this.started.has(op.id) && op.trigger === 'Automatic' && !safety)
        this.violations.push(`${op.kind} ${op.id} started automatically while paused`);
      if (plan.action.kind === 'RepairDns' && plan.action.value !== this.dns.value)
        this.violations.push('DNS re-pointed while paused');
      if (plan.held?.length) this.heldWhilePaused++;
    }
    if (plan.action.kind === 'RunStep') {
      const op = plan.action.operation;
      const t = transition(op, this.act(op), input.now, () => 0.5);
      next = { ...plan.status, ...t.settled, currentOperation: t.operation };
    } else if (plan.action.kind === 'RepairDns' && !this.dns.failing) {
      // A TTL the provider refuses leaves the record as it was.
      if (plan.action.ttl >= (this.options.minTtl ?? 0))
        this.dns = { ...this.dns, value: plan.action.value, epoch: plan.action.epoch, ttl: plan.action.ttl };
    }
    if (!this.options.summarizeChangesOnly || plan.action.kind !== 'Observe')
      summarize(input, plan, next, {});
    const op = next.currentOperation;
    if (op) this.started.add(op.id);
    for (const r of next.history ?? []) this.ended.add(r.id);
    if ((next.epoch ?? 0) < (this.status.epoch ?? 0) && next.activePrimary === this.status.activePrimary)
      this.violations.push(`epoch went down from ${this.status.epoch} to ${next.epoch}`);
    this.onStatus(this.status, next);
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
      case 'Fencing': {
        const newer: StepOutcome = {
          kind: 'Failed',
          reason: 'PreconditionFailed',
          message: 'newer epoch',
          retryable: false,
        };
        const fence = (db: Db, mode: Fencing) => {
          if (db.role === 'Standby') return;
          if (db.role === 'Primary' && mode !== 'EpochOnly') db.role = 'Fenced';
          db.fencedEpoch = Math.max(db.fencedEpoch ?? 0, op.epoch);
        };
        // As the adapters do: never fence a database a later promotion made primary.
        const fromOutcome = !from.alive ? unreachable : from.epoch > op.epoch ? newer : undefined;
        if (!fromOutcome) fence(from, op.kind === 'Switchover' ? 'ReadOnly' : this.spec.promotion.fencing);
        // As act does: the strays whether or not the old primary answered; one gone again is left.
        for (const db of (op.strays ?? []).map((n) => this.dbs[n] as Db)) {
          if (!db.alive) continue;
          if (db.epoch > op.epoch) return newer;
          fence(db, this.spec.promotion.fencing);
        }
        if (fromOutcome) return fromOutcome;
        return {
          kind: 'Done',
          detail: 'fenced',
          ...(op.kind === 'Switchover' ? { learned: { fencedLsn: '0/1' } } : {}),
        };
      }
      case 'CatchingUp':
        if (op.kind === 'Reprotect')
          return from.alive && from.role === 'Standby'
            ? { kind: 'Done' }
            : { kind: 'Pending', detail: 'not streaming' };
        if (!to.alive) return { kind: 'Pending', detail: 'target gone' };
        // The fenced primary writes nothing more: the target replays what it lags, at its pace.
        to.lagSeconds = Math.max(0, to.lagSeconds - (this.options.replayPerTick ?? Number.POSITIVE_INFINITY));
        return to.lagSeconds === 0 ? { kind: 'Done' } : { kind: 'Pending', detail: `${op.to} replays` };
      case 'Demoting':
        // The agent stops the fenced primary cleanly and restarts it as the target's standby.
        if (!from.alive) return { kind: 'Done', detail: 'not demoted', learned: { demoted: false } };
        if (from.role === 'Primary') this.violations.push(`demoting ${op.from} while it took writes`);
        from.role = 'Standby';
        from.lagSeconds = 0;
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
        to.lagSeconds = 0;
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
        // As act does: a drill's leg re-points with the drill's TTL, anything else with the spec's.
        this.dns = {
          ...this.dns,
          value: TARGET(op.to),
          epoch: op.epoch,
          ttl: op.dnsTtlSeconds ?? this.spec.dns.ttlSeconds,
        };
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

const pause = fc.boolean().map((paused) =>
  command(paused ? 'pause the policy' : 'resume the policy', (w) => {
    w.paused = paused;
  }),
);
// The case a pause exists for, made likely: maintenance on the primary's region, which then dies.
const pausedOutage = fc.constant(
  command('pause the policy, then the primary dies', (w) => {
    w.paused = true;
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
  pause,
  pausedOutage,
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
  }, 60_000);
});

describe('the decision core under random interleavings of faults, restarts and requests', () => {
  it('keeps its invariants after every command, and converges once the faults heal', () => {
    const coverage = { promotions: 0, runsWithPromotion: 0, fenced: 0, personNeeded: 0, heldWhilePaused: 0 };
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
          if (world.heldWhilePaused > 0) coverage.heldWhilePaused++;
        },
      ),
      { numRuns: 300 },
    );
    expect(coverage.runsWithPromotion).toBeGreaterThan(50);
    expect(coverage.fenced).toBeGreaterThan(10);
    // A pause really held something back (a failover, a fence, a DNS repair), and it converged after.
    expect(coverage.heldWhilePaused).toBeGreaterThan(10);
  }, 60_000);

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

// Found by the model (CI, seeds 1317134867 and 1742618065): a stray writer left standing.
describe('a stray writer beside a primary the failover rules cannot replace', () => {
  const failedOverToB = () => {
    const w = new World('ReadOnly');
    for (let i = 0; i < 3; i++) w.tick();
    (w.dbs.a as Db).alive = false;
    tickUntil(w, 30, () => w.status.activePrimary === 'b' && !w.status.currentOperation);
    expect(w.status.activePrimary).toBe('b');
    return w;
  };

  it('is fenced while the observers have lost the primary but no failover can start', () => {
    // The Fence stood aside for "the failover rules", which then started nothing (c follows a's
    // old timeline, so no standby qualifies): a and b took writes side by side.
    const w = failedOverToB();
    w.cut.add('region-b');
    w.cut.add('region-c');
    (w.dbs.a as Db).alive = true;
    tickUntil(w, 8, () => w.dbs.a?.role === 'Fenced');
    // The fault was seen: the quorum has lost b, and a failover is blocked, not under way.
    expect(w.status.primaryDownSince).toBeDefined();
    expect(w.status.currentOperation?.kind).not.toBe('Failover');
    expect(w.dbs.a?.role).toBe('Fenced');
    expect(w.violations).toEqual([]);
    settleAndCheck(w);
  });

  it('is fenced by a failover whose old primary is lost', () => {
    // act fenced the strays only after the old primary: with that one lost, the failover went on
    // without fencing them, its promotion saw the stray again, went back to Fencing, and so on.
    // The model's act does what act.ts does now (act.test.ts checks act.ts itself); this checks
    // that decide, given that, brings the failover to an end with the stray fenced.
    const w = failedOverToB();
    w.dns.failing = true;
    (w.dbs.b as Db).alive = false;
    tickUntil(w, 60, () => w.status.currentOperation?.step === 'RepointingDns');
    expect(w.status.currentOperation).toMatchObject({ kind: 'Failover', from: 'b', to: 'c' });
    (w.dbs.a as Db).alive = true;
    tickUntil(w, 8, () => w.dbs.a?.role === 'Fenced');
    expect(w.dbs.a?.role).toBe('Fenced');
    expect(w.dbs.b?.alive).toBe(false);
    expect(w.status.currentOperation?.strays).toEqual(['a']);
    expect(w.violations).toEqual([]);
    settleAndCheck(w);
  });
});

/** Heals every fault, brings every database back, lets the operator finish, and checks the end. */
function settleAndCheck(world: World): boolean {
  world.paused = false;
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

// ---------------------------------------------------------------------------------------------
// Round-trip drills (spec.drills.mode RoundTrip): out to a standby, a hold, and back, in the same
// world, with what gets in their way: outages during the hold, lag on the drill's target while it
// catches up, requests to run and to cancel, agents that stop reporting, a failing DNS provider.
// The canary writer is absent (input.canary undefined): the operator measures each leg itself
// after CANARY_MEASURE_WAIT_MS of model time.

/** Hourly, so "the last full hour" is always a due occurrence less than an hour old. */
const HOURLY = '0 * * * *';
const HOUR_MS = 3_600_000;

interface DrillLimits {
  holdSeconds: number;
  maxDurationSeconds: number;
  abortIfLagSecondsAbove: number;
  ttlSeconds: number;
}

class DrillWorld extends World {
  readonly limits: DrillLimits;
  drillRequests = 0;
  /** Databases that came back from the dead still taking writes: the world's doing, not the operator's. */
  comebacks = new Set<string>();
  /** Drills seen running (id → when they started), and every report filed, by id. */
  drillsStarted = new Map<string, number>();
  reported = new Map<string, DrillReport>();
  /** Per drill: model time a fault it cannot be blamed for held it back (it extends its deadline). */
  heldBack = new Map<string, number>();
  overdue = new Set<string>();
  realFailovers: OperationReport[] = [];
  cancelsAt: number[] = [];
  /** What the drills of this run got to: legs, TTL lowered or skipped, catch-ups rolled back. */
  reached = new Set<string>();
  /** Ticks in a row between drills and operations with the record's TTL not back at the spec's. */
  ttlOff = 0;

  constructor(limits: DrillLimits, minTtl: number) {
    super('ReadOnly', true, 'Automatic', {
      drills: { schedule: HOURLY, ...limits },
      replayPerTick: 1,
      minTtl,
      summarizeChangesOnly: true,
    });
    this.limits = limits;
  }

  /** Faults that hold a drill back through no fault of its own. */
  private hostile(d: DrillState): boolean {
    const ends = [d.from, d.to, this.status.activePrimary ?? d.from];
    return (
      this.dns.failing ||
      this.cut.size > 0 ||
      this.skipProbes > 0 ||
      ends.some((n) => !this.dbs[n]?.alive || this.silentAgents.has(n))
    );
  }

  protected override afterTick(): void {
    // Never two writable primaries, other than one the world brought back from the dead.
    for (const n of this.comebacks) if (!this.writable().includes(n)) this.comebacks.delete(n);
    const writers = this.writers().filter((n) => !this.comebacks.has(n));
    if (writers.length > 1) this.violations.push(`${writers.join(' and ')} take writes at once`);
    const d = this.status.drill;
    if (d) {
      this.reached.add(d.leg);
      if (d.ttl?.loweredAt) this.reached.add('TtlLowered');
      if (d.ttl?.skipped) this.reached.add('TtlSkipped');
      if (d.stop) this.reached.add(`Stop${d.stop.result}`);
      const held = (this.heldBack.get(d.id) ?? 0) + (this.hostile(d) ? 1000 : 0);
      this.heldBack.set(d.id, held);
      // A way back that began within the grace is seen through once it completed: measured (the
      // canary's wait) and the drill's standby replicating again (COME_BACK_WAIT_MS). Found by the
      // model (seed -419602454): a way back that completed at the grace's end was a drill overdue.
      const back = d.leg === 'Back' ? findReport(this.status, d.backOperationId) : undefined;
      const settled = back?.completedAt
        ? Date.parse(back.completedAt) + CANARY_MEASURE_WAIT_MS + COME_BACK_WAIT_MS + 1000
        : 0;
      const deadline = Math.max(
        Date.parse(d.startedAt) + this.limits.maxDurationSeconds * 1000 + COME_HOME_GRACE_MS + held,
        settled,
      );
      if (this.now > deadline && !this.overdue.has(d.id)) {
        this.overdue.add(d.id);
        this.violations.push(
          `drill ${d.id} still running (${d.leg}${d.stop ? `, stopping: ${d.stop.result}` : ''}) ${(this.now - Date.parse(d.startedAt)) / 1000} s after it started (maxDurationSeconds ${this.limits.maxDurationSeconds}, held back ${held / 1000} s)`,
        );
      }
    }
    // No drill running: the TTL wanted is the spec's, and the record gets it back.
    if (
      !d &&
      wantedTtl({ spec: this.spec, status: this.status, now: new Date(this.now) }) !==
        this.spec.dns.ttlSeconds
    )
      this.violations.push(
        `TTL ${wantedTtl({ spec: this.spec, status: this.status, now: new Date(this.now) })} wanted with no drill`,
      );
    const active = this.status.activePrimary;
    const between =
      !d &&
      !this.status.currentOperation &&
      !this.dns.failing &&
      this.cut.size === 0 &&
      active !== undefined &&
      this.dbs[active]?.alive === true;
    this.ttlOff = between && this.dns.ttl !== this.spec.dns.ttlSeconds ? this.ttlOff + 1 : 0;
    if (this.ttlOff === 5)
      this.violations.push(`the record keeps TTL ${this.dns.ttl} s with no drill running`);
  }

  protected override onStatus(prev: FailoverPolicyStatus, next: FailoverPolicyStatus): void {
    const op = next.history?.[0];
    if (op && op !== prev.history?.[0]) {
      // What may interrupt a drill: a real failover, or a person's switchover while it holds.
      const takesOver = op.kind === 'Failover' || (op.kind === 'Switchover' && op.trigger === 'Manual');
      if (takesOver && op.trigger !== 'Drill' && op.result === 'Succeeded') this.realFailovers.push(op);
      if (op.trigger === 'Drill' && op.result !== 'Succeeded') this.reached.add('LegRolledBack');
    }
    const d = next.drill;
    if (d && !this.drillsStarted.has(d.id)) this.drillsStarted.set(d.id, Date.parse(d.startedAt));
    const r = next.drills?.[0];
    if (!r || r === prev.drills?.[0]) return;
    if (this.reported.has(r.id)) this.violations.push(`drill ${r.id} reported twice: ${r.result}`);
    this.reported.set(r.id, r);
    const said = `drill ${r.id} ${r.result} (${r.reason})`;
    if (r.result === 'Succeeded') {
      // Home may have died in the very ticks before (not down by quorum yet): then nothing else writes.
      const writers = this.writers().join();
      const home = this.dbs[r.from]?.alive ? r.from : '';
      if (next.activePrimary !== r.from || writers !== home)
        this.violations.push(`${said} left ${next.activePrimary} primary, [${writers}] taking writes`);
    }
    if (
      r.result === 'Interrupted' &&
      !this.realFailovers.some((f) => f.completedAt >= r.startedAt && f.completedAt <= r.completedAt)
    )
      this.violations.push(`${said} without a real failover`);
    if (r.result === 'Cancelled' && !this.cancelsAt.some((t) => t >= Date.parse(r.startedAt)))
      this.violations.push(`${said} with no cancel asked`);
  }
}

type DrillCmd = fc.Command<object, DrillWorld>;
const drillCommand = (name: string, run: (w: DrillWorld) => void): DrillCmd => ({
  check: () => true,
  run: (_m, w) => {
    run(w);
    expect(w.violations, `after ${name}`).toEqual([]);
  },
  toString: () => name,
});

/** Ticks until `until` holds, at most `max` times. */
const tickUntil = (w: World, max: number, until: () => boolean) => {
  for (let i = 0; i < max && !until(); i++) w.tick();
};
/** Where the drill is: it moves on when this changes. */
const drillPoint = (w: DrillWorld) => {
  const d = w.status.drill;
  return `${d?.id}/${d?.leg}/${d?.stop?.result}/${w.status.currentOperation?.step}`;
};

/** A person asks for a drill (Run), with a new id. */
const askForDrill = (w: DrillWorld) => {
  w.drillRequest = { id: `run-${++w.drillRequests}`, action: 'Run' };
};
/**
 * The faults aimed at a drill's legs start one first when none runs (a person asks), so that most
 * of them meet a drill; one that cannot start is refused, and the fault meets the world as it is.
 */
const duringDrill = (w: DrillWorld, leg: (d: DrillState) => boolean, max = 240) => {
  if (!w.status.drill) {
    askForDrill(w);
    tickUntil(w, 3, () => !!w.status.drill);
  }
  tickUntil(w, max, () => !w.status.drill || leg(w.status.drill));
  return w.status.drill && leg(w.status.drill) ? w.status.drill : undefined;
};
const outwardCatchingUp = (w: DrillWorld) => () => {
  const step = w.status.currentOperation?.step;
  return step === 'Fencing' || step === 'CatchingUp';
};

// Weighted toward what moves a drill along (a due drill, a request, time), then what stops it.
const drillCommands = [
  {
    weight: 3,
    arbitrary: fc
      .integer({ min: 1, max: 8 })
      .map((n) => drillCommand(`tick×${n}`, (w) => tickUntil(w, n, () => false))),
  },
  {
    weight: 6,
    arbitrary: fc.constant(
      drillCommand('time passes until the drill moves on (at most 4 min)', (w) => {
        const at = drillPoint(w);
        tickUntil(w, w.status.drill ? 240 : 20, () => drillPoint(w) !== at);
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom(3, 12)
      .map((m) => drillCommand(`${m} min pass`, (w) => tickUntil(w, m * 60, () => false))),
  },
  {
    weight: 3,
    arbitrary: fc.constant(
      drillCommand('a drill becomes due (status.nextDrillTime: the last full hour)', (w) => {
        if (w.status.nextDrillTime && Date.parse(w.status.nextDrillTime) > w.now)
          w.status = {
            ...w.status,
            nextDrillTime: timestamp(new Date(Math.floor(w.now / HOUR_MS) * HOUR_MS)),
          };
      }),
    ),
  },
  { weight: 3, arbitrary: fc.constant(drillCommand('a person asks for a drill (Run)', askForDrill)) },
  {
    weight: 3,
    arbitrary: fc.constantFrom<DrillState['leg']>('Starting', 'Out', 'Holding', 'Back').map((leg) =>
      drillCommand(`a person cancels the drill once it is ${leg}`, (w) => {
        duringDrill(w, (d) => d.leg === leg);
        w.drillRequest = { id: `cancel-${++w.drillRequests}`, action: 'Cancel' };
        w.cancelsAt.push(w.now);
      }),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constant(
      drillCommand('the primary dies during the hold', (w) => {
        duringDrill(w, (d) => d.leg === 'Holding');
        const a = w.status.activePrimary;
        if (a) (w.dbs[a] as Db).alive = false;
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constant(
      drillCommand('the primary dies', (w) => {
        const a = w.status.activePrimary;
        if (a) (w.dbs[a] as Db).alive = false;
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(...NAMES).map((n) =>
      drillCommand(`revive ${n}`, (w) => {
        const db = w.dbs[n] as Db;
        if (db.alive) return;
        db.alive = true;
        if (db.role === 'Primary') w.comebacks.add(n);
      }),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(3, 8, 20).map((s) =>
      drillCommand(`the drill's target falls ${s} s behind while the way out catches up`, (w) => {
        const d = duringDrill(w, (d) => d.leg === 'Out' && outwardCatchingUp(w)(), 120);
        const db = d ? w.dbs[d.to] : undefined;
        if (db?.alive && db.role === 'Standby') db.lagSeconds = s;
      }),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom(8, 20), fc.constantFrom(1, 15)).map(([s, m]) =>
      drillCommand(`the drill's home falls ${s} s behind during the hold, for ${m} min`, (w) => {
        const d = duringDrill(w, (d) => d.leg === 'Holding');
        const db = d ? w.dbs[d.from] : undefined;
        if (!db?.alive || db.role !== 'Standby') return;
        db.lagSeconds = s;
        tickUntil(w, m * 60, () => false);
        if (db.alive && db.role === 'Standby') db.lagSeconds = 0;
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constant(
      drillCommand('DNS fails while the drill lowers the TTL', (w) => {
        duringDrill(w, (d) => !!d.ttl && !d.ttl.loweredAt, 120);
        w.dns.failing = true;
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...NAMES), fc.integer({ min: 0, max: 12 })).map(([n, s]) =>
      drillCommand(`${n} lags ${s} s`, (w) => {
        const db = w.dbs[n] as Db;
        if (db.alive && db.role === 'Standby') db.lagSeconds = s;
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...NAMES).map((n) =>
      drillCommand(`the agent beside ${n} stops reporting`, (w) => {
        if (!w.silentAgents.has(n)) w.silentAgents.set(n, w.now);
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constant(drillCommand('the agents report again', (w) => w.silentAgents.clear())),
  },
  {
    weight: 1,
    arbitrary: fc.boolean().map((f) =>
      drillCommand(`DNS ${f ? 'fails' : 'heals'}`, (w) => {
        w.dns.failing = f;
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constant(
      drillCommand('restart the operator', (w) => {
        w.probes.clear();
        w.skipProbes = 1;
      }),
    ),
  },
];

/**
 * Heals every fault, lets the drill and the operator finish, and checks the end: no person is
 * ever needed (a switchover that lost its fenced primary used to leave it fenced when it came
 * back; unfenceLeftPrimary in decide.ts now rolls that fence back).
 */
function settleDrills(w: DrillWorld): boolean {
  w.cut.clear();
  w.dns.failing = false;
  w.silentAgents.clear();
  for (const n of NAMES) {
    const db = w.dbs[n] as Db;
    if (!db.alive && db.role === 'Primary') w.comebacks.add(n);
    db.alive = true;
    if (db.role === 'Standby') db.lagSeconds = 0;
  }
  let quiet = 0;
  for (let i = 0; i < 3600 && quiet < 10; i++) {
    w.tick();
    quiet = !w.status.drill && !w.status.currentOperation && w.writers().length === 1 ? quiet + 1 : 0;
  }
  expect(w.violations).toEqual([]);
  expect(w.status.drill, 'a drill still running once the world healed').toBeUndefined();
  for (const id of w.drillsStarted.keys())
    expect(w.reported.has(id), `drill ${id} never reported`).toBe(true);
  expect(w.dns.ttl, "the record's TTL after the drills").toBe(w.spec.dns.ttlSeconds);
  const personNeeded = settleAndCheck(w);
  expect(personNeeded, 'a person was needed').toBe(false);
  return personNeeded;
}

/** Runs of the drill model: MODEL_RUNS=2000 for a longer hunt (MODEL_COVERAGE=1 prints the figures). */
const DRILL_RUNS = Number(process.env.MODEL_RUNS ?? 120);

describe('round-trip drills under random interleavings of outages, lag, requests and faults', () => {
  it(
    'never two writers; every drill ends, once, in time; Succeeded means home; Interrupted means a real failover',
    () => {
      const coverage: Record<string, number> = {
        Holding: 0,
        Back: 0,
        TtlLowered: 0,
        TtlSkipped: 0,
        LegRolledBack: 0,
        StopCancelled: 0,
        StopAborted: 0,
        Succeeded: 0,
        Cancelled: 0,
        Interrupted: 0,
        Aborted: 0,
        Skipped: 0,
        Failed: 0,
      };
      fc.assert(
        fc.property(
          fc.record({
            holdSeconds: fc.constantFrom(0, 30, 120),
            maxDurationSeconds: fc.constantFrom(60, 120, 300, 900),
            abortIfLagSecondsAbove: fc.constantFrom(2, 5),
            ttlSeconds: fc.constantFrom(5, 5, 30),
          }),
          // A provider that refuses TTLs under 30 s (DigitalOcean) as well as one that takes any.
          fc.constantFrom(0, 0, 30),
          fc.commands([fc.oneof(...drillCommands)], { maxCommands: 30, size: 'medium' }),
          (limits, minTtl, cmds) => {
            const world = new DrillWorld(limits, minTtl);
            for (let i = 0; i < 3; i++) world.tick();
            fc.modelRun(() => ({ model: {}, real: world }), cmds);
            settleDrills(world);
            const seen = new Set<string>(world.reached);
            for (const r of world.reported.values())
              seen.add(r.result === 'Aborted' && r.reason?.startsWith('skipped') ? 'Skipped' : r.result);
            for (const k of seen) if (k in coverage) coverage[k] = (coverage[k] ?? 0) + 1;
          },
        ),
        { numRuns: DRILL_RUNS },
      );
      // biome-ignore lint/suspicious/noConsole: the figures, on request (MODEL_COVERAGE=1)
      if (process.env.MODEL_COVERAGE) console.info('drill runs reaching each point:', coverage);
      for (const [what, runs] of Object.entries(coverage)) expect(runs, what).toBeGreaterThan(0);
    },
    Math.max(60_000, DRILL_RUNS * 100),
  );
});

// Found by the model above, shrunk, and fixed: kept as the cases that found them.
describe('drill findings of the model', () => {
  const started = (limits: DrillLimits, minTtl = 0) => {
    const w = new DrillWorld(limits, minTtl);
    for (let i = 0; i < 3; i++) w.tick();
    askForDrill(w);
    return w;
  };

  it('a drill whose lowered TTL the provider refuses still ends (past maxDurationSeconds, or cancelled)', () => {
    // keepDnsOnPrimary (guard 6) re-tries the refused TTL on every reconcile that reads the record,
    // and drillNeedsDns has every reconcile read it while the TTL is not lowered: runDrill (guard 9)
    // never runs again, so the TTL is never given up (TTL_LOWER_WAIT_MS) and the drill never ends.
    const w = started(
      { holdSeconds: 0, maxDurationSeconds: 120, abortIfLagSecondsAbove: 2, ttlSeconds: 5 },
      30,
    );
    tickUntil(w, 15 * 60, () => w.reported.size > 0);
    expect(w.violations).toEqual([]);
    expect(w.status.drill).toBeUndefined();
  });

  it('a primary lost while the way out catches up, back fenced, takes writes again', () => {
    // The switchover stands down (Aborted: "a was lost … before b was promoted") so the failover
    // rules can act; but a is back before they do, still read-only, and nothing unfences it.
    const w = started({ holdSeconds: 0, maxDurationSeconds: 600, abortIfLagSecondsAbove: 2, ttlSeconds: 30 });
    tickUntil(w, 120, () => w.status.currentOperation?.step === 'Fencing');
    (w.dbs.b as Db).lagSeconds = 3;
    tickUntil(w, 5, () => w.status.currentOperation?.step === 'CatchingUp');
    (w.dbs.a as Db).alive = false;
    tickUntil(w, 10, () => w.status.currentOperation?.step === 'Aborted');
    (w.dbs.a as Db).alive = true;
    tickUntil(w, 10 * 60, () => false);
    expect(w.writers()).toEqual(['a']);
  });

  it("a person's switchover while a drill holds files it Interrupted by that switchover, not by a failover", () => {
    // judgeRequest accepts a promotion request while a drill holds; the drill is then filed
    // Interrupted ("a real failover took over"), or, while its way out is being measured, with
    // "the switchover to b did not complete" although it did.
    const w = started({
      holdSeconds: 120,
      maxDurationSeconds: 900,
      abortIfLagSecondsAbove: 5,
      ttlSeconds: 30,
    });
    tickUntil(w, 240, () => w.status.drill?.leg === 'Holding');
    w.request = { id: 'p1', target: 'c', kind: 'Switchover', allowDataLoss: false };
    tickUntil(w, 60, () => w.reported.size > 0);
    expect(w.violations).toEqual([]);
    const report = [...w.reported.values()][0];
    expect(report?.result).toBe('Interrupted');
    expect(report?.reason).toMatch(/a person's switchover took over during the drill/);
  });
});
