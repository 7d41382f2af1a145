/**
 * Sharding past one replica (opt-in, `--shards=N`): every policy belongs to one of N shards by a
 * stable hash of its namespace/name, each shard has its own Lease, and a replica reconciles the
 * policies of the shards it holds. Replicas take no more than their share (N over the replicas
 * alive, rounded up), so shards spread out, and a replica above its share gives one back once its
 * reconciles in that shard have finished. A replica that dies stops renewing: its shards expire
 * and are taken within a lease period, as a leader's would be.
 *
 * One writer per policy holds as it does with one leader: a shard is reconciled only while its
 * Lease is held and renewed, and a replica that cannot renew exits (as a lost leader does).
 * Replicas of another layout (one leader, or another shard count during a rollout) map policies
 * to holders differently, so the layouts exclude each other through the single leader Lease: the
 * sharded replicas hold it together, as holder `sharded/N`, renewed by whichever of them comes
 * first. A single leader, of this version or an older one, cannot take it while they renew it; a
 * sharded replica reconciles nothing unless it has seen that Lease held by its layout within the
 * renew deadline, and exits when it has not while holding shards.
 */
import { isConflict, isForbidden, type KubeClient } from './kube-client.ts';
import {
  deploymentType,
  LEADER_LEASE_LABEL,
  LeaderElector,
  type Lease,
  leaseType,
  WATCH_NAMESPACE_LABEL,
} from './leader-election.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { microTime } from './time.ts';

/** On every Lease of one election (its leader, shard and member Leases): the election's id. */
export const ELECTION_LABEL = 'regionfailover.io/election';
/** On a shard Lease: its index. */
export const SHARD_LABEL = 'regionfailover.io/shard';
/** On shard and member Leases: the shard count they were made for. */
export const SHARDS_LABEL = 'regionfailover.io/shards';

/**
 * The shard of a policy key ("namespace/name"): FNV-1a (32-bit) of the key, modulo the count.
 * Stable across processes, versions and restarts; `kubectl failover status` computes it too.
 */
export function shardOf(key: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % shards;
}

export const shardLeaseName = (election: string, shard: number, shards: number) =>
  `${election}-shard-${shard}-of-${shards}`;

/** The holder the sharded replicas write into the single leader Lease: their layout. */
export const layoutHolder = (shards: number) => `sharded/${shards}`;

/** The election as a label value (at most 63 characters; a longer one ends in its hash). */
export function electionLabelValue(election: string): string {
  if (election.length <= 63) return election;
  const hash = shardOf(election, 0x7fffffff).toString(36);
  return `${election.slice(0, 62 - hash.length).replace(/[^a-z0-9]+$/, '')}-${hash}`;
}

/** A Lease name for a replica: its identity made a DNS label, with a hash where it had to change. */
export function memberLeaseName(election: string, identity: string): string {
  const safe = identity
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  const prefix = `${election}-member-`;
  if (safe === identity && prefix.length + safe.length <= 253) return prefix + safe;
  // Made safe or cut short: the hash of the whole identity keeps it apart from others.
  const hash = shardOf(identity, 0x7fffffff).toString(36);
  const room = 253 - prefix.length - hash.length - 1;
  return `${prefix}${safe.slice(0, room).replace(/[^a-z0-9]+$/, '')}-${hash}`.replace(/--+/g, '-');
}

/** A replica's share of the shards: the count over the replicas alive, rounded up. */
export const fairShare = (shards: number, members: number) => Math.ceil(shards / Math.max(1, members));

export interface ShardView {
  shards: number;
  /** Replicas of this layout whose member Lease is renewed, this one included. */
  members: number;
  /** Shards held here (or being taken), with when each was taken (ms). */
  held: Map<number, number>;
  /** Leases of another layout still held: while any is, nothing is taken. */
  foreign: string[];
}

/** Whether one more shard may be taken: under the share, and no other layout acting. */
export const mayTakeShard = (view: ShardView) =>
  view.foreign.length === 0 && view.held.size < fairShare(view.shards, view.members);

/**
 * The shard to give back, if this replica holds more than its share: the highest index among
 * those held for at least `minHoldMs` (a shard just taken is kept a while, so shards do not
 * move back and forth while replicas come and go).
 */
export function shardToRelease(view: ShardView, now: number, minHoldMs: number): number | undefined {
  if (view.held.size <= fairShare(view.shards, view.members)) return undefined;
  const settled = [...view.held].filter(([, since]) => now - since >= minHoldMs).map(([s]) => s);
  return settled.length ? Math.max(...settled) : undefined;
}

/**
 * Which Leases are alive, judged as the elector judges them: by the local time since their holder
 * last changed them, never by the holder's clock.
 */
export class LeaseLiveness {
  private readonly seen = new Map<string, { holder: string; renewTime: string; at: number }>();

  observe(leases: Lease[], now: number): void {
    const names = new Set<string>();
    for (const l of leases) {
      const holder = l.spec?.holderIdentity ?? '';
      const renewTime = l.spec?.renewTime ?? '';
      names.add(l.metadata.name);
      const before = this.seen.get(l.metadata.name);
      if (!before || before.holder !== holder || before.renewTime !== renewTime)
        this.seen.set(l.metadata.name, { holder, renewTime, at: now });
    }
    for (const name of this.seen.keys()) if (!names.has(name)) this.seen.delete(name);
  }

  /** Held, and changed within its duration (a Lease first seen counts as just changed). */
  live(lease: Lease, now: number): boolean {
    const seen = this.seen.get(lease.metadata.name);
    if (!seen?.holder) return false;
    return now - seen.at < (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
  }

  /** How long ago (ms) the Lease last changed, as seen here. */
  unchangedFor(lease: Lease, now: number): number {
    const seen = this.seen.get(lease.metadata.name);
    return seen ? now - seen.at : 0;
  }
}

/** Shard Leases of another shard count that are held (a rollout's old replicas, still acting). */
export function foreignHolders(
  leases: Lease[],
  liveness: LeaseLiveness,
  now: number,
  layout: { shards: number },
): string[] {
  return leases
    .filter((l) => {
      const labels = l.metadata.labels ?? {};
      const role = labels[LEADER_LEASE_LABEL];
      return role === 'shard' && labels[SHARDS_LABEL] !== String(layout.shards) && liveness.live(l, now);
    })
    .map((l) => `${l.metadata.name} (held by ${l.spec?.holderIdentity})`);
}

export interface ShardCoordinatorOptions {
  client: KubeClient;
  namespace: string;
  /** The election's id (--leader-election-id): the single leader Lease, and every Lease's prefix. */
  election: string;
  identity: string;
  shards: number;
  ownerDeployment?: string;
  log: Logger;
  metrics?: Metrics;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** A shard was taken: reconcile its objects. */
  onTaken: (shard: number) => void;
  /** A shard is being given back: resolve once nothing in it is being reconciled or running. */
  onGivingBack: (shard: number) => Promise<void>;
  /** How long a give-back may wait for that; past it the process exits (default 60 s). */
  giveBackTimeoutMs?: number;
  /** The namespace the operator watches, empty for all: a label on its Leases (WATCH_NAMESPACE_LABEL). */
  watchNamespace?: string;
}

/** Takes, holds and gives back this replica's shards. */
export class ShardCoordinator {
  private readonly opts: ShardCoordinatorOptions;
  private readonly electors = new Map<number, LeaderElector>();
  /** Shards whose Lease is held here, with when each was taken. */
  private readonly owned = new Map<number, number>();
  /** Shards granted to an elector this round, not yet confirmed taken. */
  private readonly granted = new Set<number>();
  private readonly liveness = new LeaseLiveness();
  private member: LeaderElector | undefined;
  private view: ShardView;
  /** Until when this replica may act: the single leader Lease was last seen held by its layout. */
  private layoutUntil = 0;
  private stopped = false;
  /** Shutting down: take nothing more (the controllers are finishing). */
  private quiescing = false;
  private lost: ((outcome: 'lost') => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private saidForeign = '';
  /** Giving the layout Lease an owner was refused: it goes without. */
  private ownerRefused = false;

  constructor(options: ShardCoordinatorOptions) {
    this.opts = options;
    this.view = { shards: options.shards, members: 1, held: new Map(), foreign: [] };
    options.metrics?.shards.set(options.shards);
    for (let s = 0; s < options.shards; s++) options.metrics?.shardOwned.set({ shard: String(s) }, 0);
  }

  /**
   * Whether this replica reconciles shard `shard` now: its Lease is held here, and the layout
   * Lease was seen held by this layout within the renew deadline (fails closed until then).
   */
  owns(shard: number): boolean {
    return this.owned.has(shard) && Date.now() < this.layoutUntil;
  }

  /** The shards held here, ascending. */
  held(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  /**
   * Runs until stopped ('stopped') or until a Lease could not be renewed ('lost': the process
   * should exit, as a lost leader's does, so no stale holder keeps acting).
   */
  run(): Promise<'lost' | 'stopped'> {
    const o = this.opts;
    // The member Lease says this replica is alive, so the others know how many share the shards.
    this.member = new LeaderElector({
      ...this.electorOptions(),
      name: memberLeaseName(o.election, o.identity),
      labels: this.labels('member'),
    });
    const done = new Promise<'lost' | 'stopped'>((resolve) => {
      this.lost = resolve;
      void this.member
        ?.run(() => {})
        .then((outcome) => {
          if (outcome === 'lost') this.loseAll('member');
          else resolve('stopped');
        });
    });
    // The first look (who is alive, the layout Lease) comes before any campaign, so a replica
    // joining a running set takes only its share, and none while another layout acts.
    void this.tick().then(() => {
      if (!this.stopped) for (let s = 0; s < o.shards; s++) this.campaign(s);
    });
    return done;
  }

  /** Takes no more shards (shutting down: the controllers are finishing their steps). */
  quiesce(): void {
    this.quiescing = true;
  }

  /**
   * Gives every shard Lease and the member Lease up. The layout Lease is left to the replicas still
   * renewing it; when none is left, it expires a lease duration later.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const s of [...this.owned.keys()]) this.setOwned(s, false);
    await Promise.all([...this.electors.values()].map((e) => e.stop()));
    await this.member?.stop();
  }

  private electorOptions() {
    const o = this.opts;
    return {
      client: o.client,
      namespace: o.namespace,
      identity: o.identity,
      log: o.log,
      leaseDurationMs: o.leaseDurationMs,
      renewDeadlineMs: o.renewDeadlineMs,
      retryPeriodMs: o.retryPeriodMs,
      ...(o.metrics ? { metrics: o.metrics } : {}),
      ...(o.ownerDeployment ? { ownerDeployment: o.ownerDeployment } : {}),
    };
  }

  /** The operator's own labels on every Lease it holds, whatever its role. */
  private scope(): Record<string, string> {
    const ns = this.opts.watchNamespace;
    return ns === undefined ? {} : { [WATCH_NAMESPACE_LABEL]: ns };
  }

  private labels(role: 'member' | 'shard'): Record<string, string> {
    return {
      ...this.scope(),
      [LEADER_LEASE_LABEL]: role,
      [ELECTION_LABEL]: electionLabelValue(this.opts.election),
      [SHARDS_LABEL]: String(this.opts.shards),
    };
  }

  /**
   * The layout Lease's labels: the single leader's, plus the election's, so each round's LIST of
   * the election's Leases brings it too (a single leader keeps the label when it takes it over).
   */
  private layoutLabels(): Record<string, string> {
    return {
      ...this.scope(),
      [LEADER_LEASE_LABEL]: 'operator',
      [ELECTION_LABEL]: electionLabelValue(this.opts.election),
    };
  }

  private campaign(shard: number): void {
    const elector = new LeaderElector({
      ...this.electorOptions(),
      name: shardLeaseName(this.opts.election, shard, this.opts.shards),
      labels: { ...this.labels('shard'), [SHARD_LABEL]: String(shard) },
      mayAcquire: () => this.mayAcquire(shard),
    });
    this.electors.set(shard, elector);
    void elector
      .run(() => {
        this.granted.delete(shard);
        if (this.stopped) return;
        this.setOwned(shard, true);
        this.opts.log.info({ shard, shards: this.opts.shards }, 'took shard');
        this.opts.onTaken(shard);
      })
      .then((outcome) => {
        if (outcome === 'lost') this.loseAll(`shard ${shard}`);
      });
  }

  /**
   * The layout Lease was seen held by this layout: acting is confirmed until `until`. Where the
   * confirmation had lapsed (the API server slow past the renew deadline) while shards stayed
   * held, the controllers dropped those shards' keys as they left the queue, and nothing would
   * bring them back before the resync: the shards are enqueued again.
   */
  private confirmLayout(until: number): void {
    const lapsed = this.layoutUntil > 0 && Date.now() >= this.layoutUntil;
    this.layoutUntil = until;
    if (!lapsed || this.owned.size === 0) return;
    this.opts.log.warn(
      { shards: [...this.owned.keys()] },
      'sharding: the layout Lease is confirmed again after a lapse; reconciling the shards held again',
    );
    for (const shard of this.owned.keys()) this.opts.onTaken(shard);
  }

  private mayAcquire(shard: number): boolean {
    if (this.stopped || this.quiescing || Date.now() >= this.layoutUntil) return false;
    const held = new Map(this.owned);
    for (const g of this.granted) held.set(g, Date.now());
    if (!mayTakeShard({ ...this.view, held })) return false;
    this.granted.add(shard);
    return true;
  }

  private setOwned(shard: number, owned: boolean): void {
    if (owned) this.owned.set(shard, Date.now());
    else this.owned.delete(shard);
    this.opts.metrics?.shardOwned.set({ shard: String(shard) }, owned ? 1 : 0);
  }

  private loseAll(what: string): void {
    if (this.stopped) return;
    // Nothing reconciled from here on; the process exits on 'lost'.
    for (const s of [...this.owned.keys()]) this.setOwned(s, false);
    this.layoutUntil = 0;
    this.opts.log.error({ lease: what }, 'sharding: a Lease could not be renewed; giving up every shard');
    this.lost?.('lost');
  }

  /**
   * The single leader Lease, held by this layout (`sharded/N`) for as long as any of its replicas
   * renews it. Taken only when free or expired, renewed by whoever sees it unchanged for half a
   * retry period, so a few replicas do not all write it every round. Returns until when this
   * replica may act on it.
   */
  private async holdLayout(lease: Lease | undefined, now: number): Promise<void> {
    const o = this.opts;
    const mine = layoutHolder(o.shards);
    const durationSeconds = Math.ceil(o.leaseDurationMs / 1000);
    const stamp = microTime(new Date(now));
    const holder = lease?.spec?.holderIdentity ?? '';
    try {
      if (!lease) {
        // Owned by the Deployment, as the single leader's Lease is, so an uninstall removes it.
        const uid =
          o.ownerDeployment && !this.ownerRefused
            ? (await o.client.find(deploymentType, o.namespace, o.ownerDeployment).catch(() => undefined))
                ?.metadata.uid
            : undefined;
        const owner = uid
          ? [{ apiVersion: 'apps/v1', kind: 'Deployment', name: o.ownerDeployment, uid }]
          : [];
        const metadata = { name: o.election, namespace: o.namespace, labels: this.layoutLabels() };
        const create = (withOwner: boolean) =>
          o.client.create(leaseType, o.namespace, {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: withOwner ? { ...metadata, ownerReferences: owner } : metadata,
            spec: {
              holderIdentity: mine,
              leaseDurationSeconds: durationSeconds,
              acquireTime: stamp,
              renewTime: stamp,
              leaseTransitions: 0,
            },
          });
        try {
          await create(owner.length > 0);
        } catch (err) {
          // OwnerReferencesPermissionEnforcement (OpenShift): go without an owner, as the elector does.
          if (!owner.length || !isForbidden(err)) throw err;
          this.ownerRefused = true;
          await create(false);
        }
        this.confirmLayout(now + o.renewDeadlineMs);
        return;
      }
      if (holder === mine) {
        // Renewed by a peer since the last look: that is enough for now (it happened at most a
        // retry period before this look, hence the margin).
        if (this.liveness.unchangedFor(lease, now) <= 0 && this.layoutUntil > 0) {
          this.confirmLayout(Math.max(this.layoutUntil, now + o.renewDeadlineMs - o.retryPeriodMs));
          return;
        }
      } else if (holder && this.liveness.live(lease, now)) {
        return; // another layout acts: a single leader, or another shard count
      }
      await o.client.replace(leaseType, o.namespace, {
        ...lease,
        metadata: {
          ...lease.metadata,
          labels: { ...lease.metadata.labels, ...this.layoutLabels() },
        },
        spec: {
          ...lease.spec,
          holderIdentity: mine,
          leaseDurationSeconds: durationSeconds,
          acquireTime: holder === mine ? lease.spec?.acquireTime : stamp,
          renewTime: stamp,
          leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (holder === mine ? 0 : 1),
        },
      });
      if (holder !== mine) o.log.info({ lease: o.election, holder: mine }, 'sharding: took the layout Lease');
      this.confirmLayout(now + o.renewDeadlineMs);
    } catch (err) {
      // A conflict: a peer renewed it first, or someone took it; the next look tells which.
      if (!isConflict(err)) throw err;
    }
  }

  /** Each retry period: the layout Lease, who is alive, and whether to give a shard back. */
  private async tick(): Promise<void> {
    if (this.stopped) return;
    const o = this.opts;
    try {
      const now = Date.now();
      const listed = (
        await o.client.list<Lease>(leaseType, o.namespace, {
          labelSelector: `${ELECTION_LABEL}=${electionLabelValue(o.election)}`,
        })
      ).items;
      const leases = listed.filter((l) => l.metadata.name !== o.election);
      // Read apart only while it lacks the election's label (made by a single leader before).
      const layoutLease =
        listed.find((l) => l.metadata.name === o.election) ??
        (await o.client.find<Lease>(leaseType, o.namespace, o.election));
      // What was read is judged as seen when the answer came (a slow LIST must not make a Lease
      // look older than it is); acting on the layout counts from before the read (`now`).
      this.liveness.observe(layoutLease ? [...leases, layoutLease] : leases, Date.now());
      // The shard electors judge their Leases from this read too, and read one themselves only
      // when it may be taken: no candidate's GET every retry period for a shard held elsewhere.
      const readAt = performance.now();
      for (const [shard, elector] of this.electors)
        elector.observe(
          leases.find((l) => l.metadata.name === shardLeaseName(o.election, shard, o.shards)),
          readAt,
        );
      await this.holdLayout(layoutLease, now);
      const members = leases.filter(
        (l) =>
          l.metadata.labels?.[LEADER_LEASE_LABEL] === 'member' &&
          l.metadata.labels?.[SHARDS_LABEL] === String(o.shards) &&
          this.liveness.live(l, now),
      );
      const mine = memberLeaseName(o.election, o.identity);
      const count = members.length + (members.some((m) => m.metadata.name === mine) ? 0 : 1);
      const foreign = foreignHolders(leases, this.liveness, now, o);
      const layoutHeldBy = layoutLease?.spec?.holderIdentity;
      if (Date.now() >= this.layoutUntil && layoutHeldBy && layoutHeldBy !== layoutHolder(o.shards))
        foreign.push(`${o.election} (held by ${layoutHeldBy})`);
      this.view = { shards: o.shards, members: count, held: new Map(this.owned), foreign };
      this.granted.clear();
      o.metrics?.shardMembers.set(count);
      const said = foreign.join(', ');
      if (said && said !== this.saidForeign)
        o.log.warn({ leases: foreign }, 'sharding: taking no shard while Leases of another layout are held');
      this.saidForeign = said;
      await this.collectDeadMembers(leases, now);
      const release = shardToRelease(this.view, now, o.leaseDurationMs);
      if (release !== undefined) await this.giveBack(release);
    } catch (err) {
      o.log.warn({ err: (err as Error).message }, 'sharding: could not read the Leases');
    } finally {
      // Holding shards without the layout Lease confirmed for the renew deadline: as for a lost
      // Lease, stop (another layout may take it once it expires).
      if (!this.stopped && this.owned.size > 0 && Date.now() >= this.layoutUntil)
        this.loseAll(this.opts.election);
      if (!this.stopped) this.timer = setTimeout(() => void this.tick(), o.retryPeriodMs);
    }
  }

  /**
   * Gives a shard back: stop reconciling it, wait for its reconciles and what runs beside them,
   * release its Lease, campaign again. A wait past the timeout ends the process instead.
   */
  private async giveBack(shard: number): Promise<void> {
    const elector = this.electors.get(shard);
    if (!elector) return;
    this.setOwned(shard, false);
    this.opts.log.info(
      { shard, members: this.view.members, share: fairShare(this.opts.shards, this.view.members) },
      'giving a shard back: more than this replica share',
    );
    const timeoutMs = this.opts.giveBackTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.opts.onGivingBack(shard).then(() => true),
      new Promise<false>((r) => {
        timer = setTimeout(() => r(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (!drained) {
      // Still holding the Lease: exiting lets it expire rather than hand it over mid-step.
      this.loseAll(`shard ${shard} (its reconciles did not finish within ${timeoutMs} ms)`);
      return;
    }
    await elector.stop();
    if (!this.stopped) this.campaign(shard);
  }

  /** Member Leases of replicas gone for ten lease periods are deleted (a Deployment's pods come and go). */
  private async collectDeadMembers(leases: Lease[], now: number): Promise<void> {
    const dead = leases.filter(
      (l) =>
        l.metadata.labels?.[LEADER_LEASE_LABEL] === 'member' &&
        !this.liveness.live(l, now) &&
        this.liveness.unchangedFor(l, now) > 10 * (l.spec?.leaseDurationSeconds ?? 15) * 1000,
    );
    for (const l of dead) await this.opts.client.delete(leaseType, this.opts.namespace, l.metadata.name);
  }
}
