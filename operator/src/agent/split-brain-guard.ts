/**
 * No two writable primaries, even when the primary's region is cut off: the agent's half of it.
 *
 * Beside the primary, the agent renews the policy's Lease (holder `cluster@epoch`) every renew
 * interval. When it cannot, it asks every standby's agent instead (peer.ts): if all of them say
 * their database was not promoted and they know of nothing replacing this primary, it goes on
 * (failsafe: losing only the control plane must not stop a healthy primary). When neither works
 * for `duration - margin` since the last round that did, measured from before that round by the
 * monotonic clock, it fences its own database (read-only and sessions ended, or Shutdown) — the
 * operator promotes no earlier than `duration + margin` after it last saw the Lease renewed.
 * It also fences at once when it reads an operation that replaces it, and unfences only when a
 * fresh read of the policy names it the primary at the same epoch and its Lease is renewed.
 *
 * Beside a standby, the agent answers those questions. It stops vouching ("withholds") as soon as
 * a quorum of observers cannot reach the primary, or the policy says it is down or being replaced,
 * and reports that in status; the operator counts `duration + margin` from when it saw the report
 * before promoting (the primary's last vouched round started before it). Once it has seen the
 * operation replacing the primary it never vouches for that primary at that epoch again.
 */
import type {
  AgentReport,
  FailoverObservationSpec,
  FailoverPolicySpec,
  FailoverPolicyStatus,
  Operation,
} from '../api/v1alpha1/index.ts';
import { refusedTheProber } from '../providers/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import { timestamp } from '../runtime/time.ts';
import { leaseHolder, leaseSettings, parseLeaseHolder } from './lease-settings.ts';
import type { VouchAnswer, VouchQuestion } from './peer.ts';

export interface GuardWorld {
  policy: { name: string; spec: FailoverPolicySpec; status: FailoverPolicyStatus };
  /** Where each member's agent answers peers (its report's peerAddress). */
  peers: Record<string, string | undefined>;
  observations: FailoverObservationSpec[];
}

export type LocalServer = 'Primary' | 'Standby' | 'Down';

export interface GuardPorts {
  /** A fresh read from the control plane; undefined when no policy names this cluster. Throws when unreachable. */
  readWorld(): Promise<GuardWorld | undefined>;
  /** Renews (or takes) the Lease for `holder`; when another holder keeps it, says who. */
  renewLease(policy: string, holder: string, durationSeconds: number): Promise<{ heldBy?: string }>;
  localServer(): Promise<LocalServer>;
  askPeer(address: string, question: VouchQuestion): Promise<VouchAnswer>;
  fence(mode: 'ReadOnly' | 'Shutdown', epoch: number): Promise<string>;
  /** A fence owed to a stopped server, put where it starts read-only; whether it wrote. */
  readOnlyAtStart?(): Promise<boolean>;
  unfence(): Promise<string>;
  /** The report fields changed: write them soon. */
  changed(): void;
  /**
   * What the guard knew, kept beside the data directory: an agent restarted while its region is
   * cut off still knows its policy, its standbys' agents and when it last confirmed its Lease.
   */
  saveState?(state: GuardState): Promise<void>;
  loadState?(): Promise<GuardState | undefined>;
}

export interface GuardState {
  world: GuardWorld;
  lease?: LeaseReport;
  /** Wall-clock time of the start of the last confirmed round (a restart loses the monotonic one). */
  confirmedAtWall?: string;
}

export interface GuardOptions {
  cluster: string;
  namespace: string;
  ports: GuardPorts;
  log: Logger;
  /** Monotonic milliseconds (performance.now); deadlines are never measured by the wall clock. */
  mono?: () => number;
  wall?: () => Date;
}

type LeaseReport = NonNullable<AgentReport['lease']>;
type VouchReport = NonNullable<AgentReport['vouch']>;

/** `promise`, or a rejection once `ms` passed (the work itself goes on, and may still land). */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(ms)} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A Failover (not finished) that replaces `primary`: what a standby must stop vouching for. */
export function replacing(status: FailoverPolicyStatus, primary: string): Operation | undefined {
  const op = status.currentOperation;
  if (op?.kind !== 'Failover' || op.from !== primary) return undefined;
  return underWay(op) ? op : undefined;
}

/** An operation not yet at Completed or Aborted. */
const underWay = (op: Operation | undefined): op is Operation =>
  op !== undefined && op.step !== 'Completed' && op.step !== 'Aborted';

export class SplitBrainGuard {
  private readonly o: Required<GuardOptions>;
  private world: GuardWorld | undefined;
  private lease: LeaseReport | undefined;
  private vouch: VouchReport | undefined;
  /** Monotonic time before the last round (renewal or vouching) that succeeded. */
  private confirmedAt: number | undefined;
  private deadline: ReturnType<typeof setTimeout> | undefined;
  private fencing: Promise<void> | undefined;
  private server: LocalServer = 'Down';
  /** This round's look found the server not running (not merely kept from an earlier look). */
  private serverSeenDown = false;
  /** A round of this run confirmed the Lease (renewed, or vouched for). */
  private confirmedThisRun = false;
  /**
   * The epoch of an earlier run's self-fence, restored after this run confirmed the Lease: undone
   * once a fresh read agrees at that epoch; forgotten when this agent is no longer the primary's.
   */
  private unfenceDue: number | undefined;
  private apiInFlight: Promise<'Settled' | 'NotRenewed'> | undefined;
  private lastSaved = '';
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** `primary@epoch` → the operation seen replacing it: withheld for good. */
  private readonly replaced = new Map<string, string>();

  constructor(opts: GuardOptions) {
    this.o = {
      mono: () => performance.now(),
      wall: () => new Date(),
      ...opts,
    };
  }

  /** A fence reported for a server that was not running, to be made the moment it runs. */
  private fenceOwed(): boolean {
    return this.lease?.state === 'SelfFenced' && this.lease.fenceOwed === true;
  }

  /** What goes into the agent report. */
  report(): Pick<AgentReport, 'lease' | 'vouch'> {
    return { ...(this.lease ? { lease: this.lease } : {}), ...(this.vouch ? { vouch: this.vouch } : {}) };
  }

  /** An earlier run's self-fence: kept, so that this run unfences only once confirmed. */
  restore(lease: LeaseReport | undefined): void {
    if (lease?.state !== 'SelfFenced' || this.lease?.state === 'SelfFenced') return;
    // Read late, after a round of this run already confirmed the Lease: this run holds it, and
    // its deadline stays armed. The database may still carry that fence: undone once a fresh
    // read agrees (renew), as for a self-fence of this run.
    if (this.confirmedThisRun) {
      this.unfenceDue = lease.epoch;
      return;
    }
    // Whatever the saved state says (it may lag a fence by a round): the database is fenced.
    this.lease = lease;
    this.confirmedAt = undefined;
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = undefined;
  }

  /**
   * What an earlier run of this agent knew. A Lease it held counts from when it was last
   * confirmed, by the wall clock (the only one that outlives a process), so that a restart
   * never pushes the fence later than the earlier run would have fenced.
   */
  async load(): Promise<void> {
    const saved = await this.o.ports.loadState?.().catch(() => undefined);
    if (!saved || this.world) return;
    this.world = saved.world;
    this.lease ??= saved.lease;
    if ((saved.lease?.state === 'Holding' || saved.lease?.state === 'Failsafe') && saved.confirmedAtWall) {
      const agoMs = Math.max(0, this.o.wall().getTime() - new Date(saved.confirmedAtWall).getTime());
      // One round to confirm, never more: a deadline already past falls one renew interval from
      // now (the margin, at least that long, still keeps it before the operator's promotion).
      const s = leaseSettings(saved.world.policy.spec);
      this.confirmedAt = Math.max(
        this.o.mono() - agoMs,
        this.o.mono() - (s.durationMs - s.marginMs) + s.renewMs,
      );
      this.armDeadline();
    }
  }

  /** The renew interval of the policy last read (how often `tick` should run). */
  intervalMs(): number {
    return this.world ? leaseSettings(this.world.policy.spec).renewMs : 1_000;
  }

  stop(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** One round: read the world, keep the Lease or vouch standing, fence when it is due. */
  async tick(): Promise<void> {
    const started = this.o.mono();
    const known = this.world;
    // The control plane and the peers are asked at once, each within most of a renew interval:
    // a hung request must not push this round's confirmation past the deadline.
    const budget = Math.max(100, 0.8 * (known ? leaseSettings(known.policy.spec).renewMs : 1_000));
    // The local server over its socket: a slow answer keeps the last one (never "gone" for it).
    let seen: LocalServer | undefined;
    const server = await within(this.o.ports.localServer(), budget).then(
      (s) => {
        seen = s;
        return s;
      },
      () => this.server,
    );
    this.server = server;
    // Only a look that answered counts a server as stopped: one that failed (a server that runs
    // but does not answer on its socket, a hung one) is no proof that it takes no writes.
    this.serverSeenDown = seen === 'Down';
    // A fence owed, whether this run or an earlier one (restarted while its database was down)
    // reported it so. Still down: it starts read-only, so it takes no write before the fence.
    const owed = this.fenceOwed() ? this.lease : undefined;
    if (owed && this.serverSeenDown)
      await this.o.ports
        .readOnlyAtStart?.()
        .then((wrote) => {
          if (wrote)
            this.o.log.warn('split-brain guard: the stopped server will start read-only (fence owed)');
        })
        .catch((err) =>
          this.o.log.warn(
            { err: (err as Error).message },
            'split-brain guard: could not make it start read-only',
          ),
        );
    // Running: fenced now.
    if (owed && server !== 'Down')
      await this.fenceNow(
        owed.operationId ? `operation ${owed.operationId} replaces this primary` : 'a fence owed',
        owed.epoch,
        owed.operationId,
        true,
      );
    const knownEpoch = known?.policy.status.epoch ?? 0;
    const askPeers =
      known &&
      server === 'Primary' &&
      known.policy.status.activePrimary === this.o.cluster &&
      this.lease?.state !== 'SelfFenced';
    // One control-plane round at a time: one that outlived its budget is still under way.
    this.apiInFlight ??= this.apiRound(server, started).finally(() => {
      this.apiInFlight = undefined;
    });
    const [api, vouched] = await Promise.all([
      within(this.apiInFlight, budget).catch((err): 'Unreached' => {
        this.o.log.debug({ err: (err as Error).message }, 'split-brain guard: control plane unreachable');
        return 'Unreached';
      }),
      askPeers ? this.peersVouch(known, knownEpoch, budget) : Promise.resolve(false),
    ]);
    if (api !== 'Settled' && this.lease?.state !== 'SelfFenced') {
      // Not renewed: every standby agent vouching for this primary at this epoch keeps it going.
      const world = this.world;
      if (vouched && world && (world.policy.status.epoch ?? 0) === knownEpoch)
        this.confirm(started, 'Failsafe', knownEpoch);
    }
    // A primary of the policy this run never confirmed (started while cut off) is given the same
    // deadline as one whose confirmations stopped, counted from its first round.
    const current = this.world;
    if (
      server === 'Primary' &&
      current &&
      leaseSettings(current.policy.spec).enabled &&
      this.confirmedAt === undefined &&
      current.policy.status.activePrimary === this.o.cluster &&
      this.lease?.state !== 'SelfFenced'
    ) {
      this.confirmedAt = started;
      this.lease = {
        state: this.lease?.state === 'Failsafe' ? 'Failsafe' : 'Holding',
        epoch: current.policy.status.epoch ?? 0,
      };
    }
    this.armDeadline();
    await this.persist();
  }

  /**
   * The control plane's half of a round: read the policy, then keep or give up the Lease.
   * 'Settled': nothing more to do this round (renewed, released, fenced); 'NotRenewed': the peers decide.
   */
  private async apiRound(server: LocalServer, started: number): Promise<'Settled' | 'NotRenewed'> {
    const world = await this.o.ports.readWorld();
    const peers = JSON.stringify(world?.peers ?? {});
    if (peers !== JSON.stringify(this.world?.peers ?? {}))
      this.o.log.info(
        { peers: world?.peers ?? {} },
        'split-brain guard: the agents it asks when the control plane is gone',
      );
    this.world = world;
    if (!world) return 'Settled';
    this.standing(world);
    const settings = leaseSettings(world.policy.spec);
    const { status } = world.policy;
    const epoch = status.epoch ?? 0;
    // A server that does not answer is neither released nor fenced now: the deadline stays armed,
    // so one that comes back still writable is fenced on time.
    // (A restarting primary the policy still names keeps its Lease: it takes no writes meanwhile.)
    if (server === 'Down' && status.activePrimary !== this.o.cluster) return 'Settled';
    if (server === 'Standby' || !settings.enabled) {
      this.release(server);
      return 'Settled';
    }
    if (status.activePrimary !== this.o.cluster) {
      // The primary this agent kept the Lease for, superseded meanwhile: it must not take writes.
      // (A promotion of this database, before status says so, is no such thing.)
      const op = status.currentOperation;
      const promotingThis = underWay(op) && op.to === this.o.cluster;
      // Another database is the primary: this one, writable, must not be (the operator fences it
      // too, as a stray, when it reaches it; this does not wait for that).
      // Already fenced by this agent: nothing to add (a second mark would be WAL a rejoin discards).
      if (!promotingThis && status.activePrimary && this.lease?.state !== 'SelfFenced')
        await this.fenceNow(`${status.activePrimary} is the primary at epoch ${epoch}`, epoch);
      else this.release(server);
      return 'Settled';
    }
    const op = replacing(status, this.o.cluster);
    if (op) {
      await this.fenceNow(`operation ${op.id} replaces this primary`, epoch, op.id);
      return 'Settled';
    }
    return (await this.renew(world, epoch, settings.durationMs, started)) ? 'Settled' : 'NotRenewed';
  }

  /** A standby's answer to the primary's agent. */
  async answer(q: VouchQuestion): Promise<VouchAnswer> {
    const no = (reason: string): VouchAnswer => ({ vouched: false, cluster: this.o.cluster, reason });
    const v = this.vouch;
    if (!v || !this.world) return no('this agent has not read the policy yet');
    if (q.policy !== this.world.policy.name || q.namespace !== this.o.namespace)
      return no(`this agent belongs to policy ${this.o.namespace}/${this.world.policy.name}`);
    if (v.primary !== q.primary || v.epoch !== q.epoch)
      return no(`the policy names ${v.primary} the primary at epoch ${v.epoch}`);
    if (v.withholding) return no(v.reason ?? 'withholding');
    const server = await this.o.ports.localServer().catch((): LocalServer => 'Down');
    if (server !== 'Standby')
      return no(server === 'Primary' ? 'this database was promoted' : 'this database is not running');
    return { vouched: true, cluster: this.o.cluster };
  }

  private async renew(
    world: GuardWorld,
    epoch: number,
    durationMs: number,
    started: number,
  ): Promise<boolean> {
    let heldBy: string | undefined;
    try {
      heldBy = (
        await this.o.ports.renewLease(
          world.policy.name,
          leaseHolder(this.o.cluster, epoch),
          Math.ceil(durationMs / 1000),
        )
      ).heldBy;
    } catch (err) {
      this.o.log.debug({ err: (err as Error).message }, 'split-brain guard: could not renew the Lease');
      return false;
    }
    if (heldBy !== undefined) {
      const other = parseLeaseHolder(heldBy);
      if (other && other.epoch > epoch) {
        await this.fenceNow(`the Lease is held by ${heldBy}, a later epoch`, epoch);
        return true;
      }
      return false;
    }
    if (this.lease?.state === 'SelfFenced' || this.unfenceDue === epoch) {
      // The read this round began with may predate the fence, or an operation written since:
      // the Lease write can take long. Unfenced only on a read made after the Lease is its own
      // again that still names this cluster the primary at this epoch, with nothing moving off
      // it: an unfence undoes every fence, a switchover's own too.
      const fresh = await this.o.ports.readWorld().catch(() => undefined);
      const why = fresh ? stillPrimary(fresh, this.o.cluster, epoch) : 'the policy could not be read again';
      if (why !== undefined) {
        this.o.log.info({ epoch, why }, 'split-brain guard: Lease renewed, staying fenced');
        // Restored late, this run holds the Lease all the same: the deadline goes on.
        if (this.lease?.state !== 'SelfFenced') this.confirm(started, 'Holding', epoch);
        return true;
      }
      this.unfenceDue = undefined;
      const detail = await this.o.ports.unfence();
      this.o.log.warn({ epoch, detail }, 'split-brain guard: still the primary at this epoch; unfenced');
    }
    this.confirm(started, 'Holding', epoch);
    return true;
  }

  private async peersVouch(world: GuardWorld, epoch: number, timeoutMs: number): Promise<boolean> {
    const { spec } = world.policy;
    const others = [spec.primary, ...spec.standbys].filter((n) => n !== this.o.cluster);
    const addresses = others.map((n) => world.peers[n]);
    if (others.length === 0 || addresses.some((a) => !a)) return false;
    const question = {
      namespace: this.o.namespace,
      policy: world.policy.name,
      primary: this.o.cluster,
      epoch,
    };
    const answers = await Promise.all(
      addresses.map((a) =>
        within(this.o.ports.askPeer(a as string, question), timeoutMs).catch(
          (err): VouchAnswer => ({ vouched: false, cluster: a as string, reason: (err as Error).message }),
        ),
      ),
    );
    const refused = answers.filter((a) => !a.vouched);
    if (refused.length > 0)
      this.o.log.debug({ refused, timeoutMs }, 'split-brain guard: not every standby agent vouched');
    return refused.length === 0;
  }

  private confirm(started: number, state: 'Holding' | 'Failsafe', epoch: number): void {
    this.confirmedAt = started;
    this.confirmedThisRun = true;
    const changed = this.lease?.state !== state || this.lease.epoch !== epoch;
    this.lease = { state, epoch, confirmedAt: timestamp(this.o.wall()) };
    if (changed) {
      this.o.log.info(
        { state, epoch },
        `split-brain guard: ${state === 'Holding' ? 'holding the Lease' : 'failsafe: every standby agent vouched'}`,
      );
      this.o.ports.changed();
    }
    this.armDeadline();
  }

  /** The fence falls due at `confirmedAt + duration - margin`, whatever a hung request is doing. */
  private armDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = undefined;
    const world = this.world;
    if (!world || this.confirmedAt === undefined || this.lease?.state === 'SelfFenced') return;
    if (this.lease?.state !== 'Holding' && this.lease?.state !== 'Failsafe') return;
    const s = leaseSettings(world.policy.spec);
    if (!s.enabled) return;
    const due = this.confirmedAt + s.durationMs - s.marginMs;
    const epoch = this.lease.epoch;
    this.deadline = setTimeout(
      () => {
        this.deadline = undefined;
        if (this.confirmedAt === undefined || this.o.mono() < due) return this.armDeadline();
        void this.fenceNow(
          `could neither renew the Lease nor hear from every standby agent for ${((this.o.mono() - this.confirmedAt) / 1000).toFixed(1)} s`,
          epoch,
        );
      },
      Math.max(0, due - this.o.mono()),
    );
    this.deadline.unref?.();
  }

  private async fenceNow(why: string, epoch: number, operationId?: string, again = false): Promise<void> {
    // `again`: the retry of a fence reported for a server that was not running, still to be made.
    const owed = again && this.fenceOwed();
    if (!owed && this.lease?.state === 'SelfFenced' && this.lease.epoch === epoch) return;
    if (this.fencing) return this.fencing;
    const spec = this.world?.policy.spec;
    const mode = spec?.promotion.fencing === 'Shutdown' ? 'Shutdown' : 'ReadOnly';
    const since = this.confirmedAt;
    this.fencing = (async () => {
      try {
        const detail = await this.o.ports.fence(mode, epoch);
        const fencedAt = this.o.mono();
        this.lease = {
          state: 'SelfFenced',
          epoch,
          ...(this.lease?.confirmedAt ? { confirmedAt: this.lease.confirmedAt } : {}),
          fencedAt: timestamp(this.o.wall()),
          ...(since !== undefined ? { fenceSeconds: Math.round(fencedAt - since) / 1000 } : {}),
          ...(operationId ? { operationId } : {}),
          message: `${why}: fenced ${mode} (${detail})`.slice(0, 1024),
        };
        if (this.deadline) clearTimeout(this.deadline);
        this.deadline = undefined;
        this.o.log.warn({ epoch, mode, why, detail }, 'split-brain guard: fenced this database');
        this.o.ports.changed();
      } catch (err) {
        const message = (err as Error).message;
        // A database holding a newer epoch was promoted later: it is the primary, not to be fenced.
        if (/newer than the fencing operation/.test(message)) {
          this.o.log.warn(
            { err: message, why },
            'split-brain guard: not fencing a database a later promotion made primary',
          );
          return;
        }
        this.o.log.error({ err: message, why }, 'split-brain guard: could not fence; trying again');
        // A server that is not running takes no writes: for the operation replacing it, it counts
        // as fenced now (the promotion need not wait out the Lease), and is fenced the moment it runs.
        if (operationId && this.serverSeenDown && this.lease?.state !== 'SelfFenced') {
          this.lease = {
            state: 'SelfFenced',
            epoch,
            fencedAt: timestamp(this.o.wall()),
            operationId,
            // In the report and the saved state: a restarted agent still owes it.
            fenceOwed: true,
            message:
              `${why}: the database is not running, so it takes no writes; it is fenced ${mode} the moment it runs`.slice(
                0,
                1024,
              ),
          };
          if (this.deadline) clearTimeout(this.deadline);
          this.deadline = undefined;
          this.o.ports.changed();
        }
        // Again while it is still due: not once a later round confirmed this primary, or it
        // became a standby (a fence an operation asked for stays due).
        if (this.retryTimer) return;
        const retry = setTimeout(() => {
          this.retryTimer = undefined;
          if (!operationId && (this.confirmedAt !== since || this.lease?.state === 'Released')) return;
          void this.fenceNow(why, epoch, operationId, true);
        }, 500);
        retry.unref?.();
        this.retryTimer = retry;
      } finally {
        this.fencing = undefined;
      }
    })();
    return this.fencing;
  }

  private async persist(): Promise<void> {
    if (!this.world || !this.o.ports.saveState) return;
    const { name, spec, status } = this.world.policy;
    const state: GuardState = {
      // Only what the guard needs: the operation replacing it matters, the rest of status does not.
      world: {
        policy: {
          name,
          spec,
          status: {
            ...(status.activePrimary ? { activePrimary: status.activePrimary } : {}),
            ...(status.epoch !== undefined ? { epoch: status.epoch } : {}),
            ...(status.currentOperation ? { currentOperation: status.currentOperation } : {}),
          },
        },
        peers: this.world.peers,
        observations: [],
      },
      ...(this.lease ? { lease: this.lease } : {}),
    };
    const confirmedAtWall =
      this.confirmedAt !== undefined
        ? timestamp(new Date(this.o.wall().getTime() - (this.o.mono() - this.confirmedAt)))
        : undefined;
    // At most a write a second: the confirmation's time to the second is what a restart needs.
    const key =
      JSON.stringify({ ...state, lease: { ...state.lease, confirmedAt: 0 } }) +
      (confirmedAtWall?.slice(0, 19) ?? '');
    if (key === this.lastSaved) return;
    this.lastSaved = key;
    await this.o.ports
      .saveState({ ...state, ...(confirmedAtWall ? { confirmedAtWall } : {}) })
      .catch((err) =>
        this.o.log.warn({ err: (err as Error).message }, 'split-brain guard: could not save its state'),
      );
  }

  /** Not the primary's agent (any more): nothing to renew, nothing to fence on time. */
  private release(server: LocalServer): void {
    this.unfenceDue = undefined;
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = undefined;
    this.confirmedAt = undefined;
    // A self-fenced primary stays so until it is a standby (rejoined) or confirmed primary again.
    const keep = this.lease?.state === 'SelfFenced' && server !== 'Standby';
    if (this.lease && this.lease.state !== 'Released' && !keep) {
      this.lease = { ...this.lease, state: 'Released' };
      this.o.ports.changed();
    }
  }

  /** Whether this standby vouches for the primary the policy names, from what it last read. */
  private standing(world: GuardWorld): void {
    const { spec, status } = world.policy;
    const primary = status.activePrimary;
    if (!primary || primary === this.o.cluster) {
      if (this.vouch) {
        this.vouch = undefined;
        this.o.ports.changed();
      }
      return;
    }
    const epoch = status.epoch ?? 0;
    const key = `${primary}@${epoch}`;
    const op = replacing(status, primary);
    if (op && !this.replaced.has(key)) this.replaced.set(key, op.id);
    const operationId = this.replaced.get(key);
    const reason = operationId
      ? `operation ${operationId} replaces ${primary}`
      : status.primaryDownSince
        ? `${primary} is down by quorum since ${status.primaryDownSince}`
        : suspected(spec, world.observations, world.policy.name, primary, this.o.wall());
    const withholding = reason !== undefined;
    const v = this.vouch;
    const same = v && v.primary === primary && v.epoch === epoch && v.withholding === withholding;
    if (same && v.operationId === operationId) return;
    this.vouch = {
      primary,
      epoch,
      withholding,
      // Continuously withholding since then: an operation seen later does not restart the count.
      since: same ? v.since : timestamp(this.o.wall()),
      ...(operationId ? { operationId } : {}),
      ...(reason ? { reason: reason.slice(0, 512) } : {}),
    };
    this.o.log.info(
      { vouch: this.vouch },
      withholding ? 'split-brain guard: withholding' : 'split-brain guard: vouching',
    );
    this.o.ports.changed();
  }
}

/**
 * Why a self-fenced primary must stay fenced, from a fresh read; undefined when it may unfence:
 * the policy names it the primary at the epoch it was fenced at, and no operation is under way
 * from it (a switchover fenced it too, and its rollback unfences it).
 */
export function stillPrimary(world: GuardWorld, cluster: string, epoch: number): string | undefined {
  const { status } = world.policy;
  if (status.activePrimary !== cluster || (status.epoch ?? 0) !== epoch)
    return `the policy names ${status.activePrimary ?? 'no primary'} at epoch ${status.epoch ?? 0}`;
  const op = status.currentOperation;
  if (underWay(op) && op.from === cluster) return `${op.kind} ${op.id} is under way from this database`;
  return undefined;
}

/** A quorum of observers, each with a fresh round, failed their last probe of the primary. */
function suspected(
  spec: FailoverPolicySpec,
  observations: FailoverObservationSpec[],
  policy: string,
  primary: string,
  now: Date,
): string | undefined {
  const maxAgeMs =
    (spec.detection.observationMaxAgeSeconds ?? 3 * spec.detection.probeIntervalSeconds + 5) * 1000;
  const failing = observations.filter((o) => {
    if (o.policy !== policy || now.getTime() - new Date(o.observedAt).getTime() > maxAgeMs) return false;
    const probe = o.clusters.find((c) => c.name === primary);
    // An observer the primary refused (a wrong password) cannot say it is gone (detection.ts).
    return probe !== undefined && !probe.reachable && !refusedTheProber(probe.failureReason);
  });
  return failing.length >= spec.detection.quorum
    ? `${failing.length} observers cannot reach ${primary} (${failing.map((o) => o.observer).join(', ')})`
    : undefined;
}
