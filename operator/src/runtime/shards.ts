/**
 * Sharding past one replica (opt-in, `--shards=N`): every policy belongs to one of N shards by a
 * stable hash of its namespace/name, each shard has its own Lease, and a replica reconciles the
 * policies of the shards it holds. Replicas take no more than their share (N over the replicas
 * alive, rounded up), so shards spread out, and a replica above its share gives one back once its
 * reconciles in that shard have finished. A replica that dies stops renewing: its shards expire
 * and are taken within a lease period, as a leader's would be.
 *
 * One writer per policy holds as it does with one leader: a shard is reconciled only while its
 * Lease is held and renewed, a replica that cannot renew exits (as a lost leader does), and no
 * shard is taken while Leases of another layout (the single leader Lease, or another shard count
 * during a rollout) are still held: those replicas map policies to holders differently.
 */
import { isForbidden, type KubeClient } from './kube-client.ts';
import { LEADER_LEASE_LABEL, LeaderElector, type Lease, leaseType } from './leader-election.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

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

/** A Lease name for a replica: its identity made a DNS label, with a hash where it had to change. */
export function memberLeaseName(election: string, identity: string): string {
  const safe = identity
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  const name = safe === identity ? safe : `${safe}-${shardOf(identity, 0x7fffffff).toString(36)}`;
  return `${election}-member-${name}`.slice(0, 253).replace(/[^a-z0-9]+$/, '');
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

/** Other layouts' Leases that are held: the single leader Lease, or another shard count. */
export function foreignHolders(
  leases: Lease[],
  liveness: LeaseLiveness,
  now: number,
  layout: { election: string; shards: number },
): string[] {
  return leases
    .filter((l) => {
      const labels = l.metadata.labels ?? {};
      const role = labels[LEADER_LEASE_LABEL];
      const foreign =
        (role === 'operator' && l.metadata.name === layout.election) ||
        (role === 'shard' && labels[SHARDS_LABEL] !== String(layout.shards));
      return foreign && liveness.live(l, now);
    })
    .map((l) => `${l.metadata.name} (held by ${l.spec?.holderIdentity})`);
}

/**
 * For the single leader (no sharding): whether shard Leases of this election are still held, by
 * replicas of a sharded layout that a rollout is replacing. The leader waits for them.
 */
export function shardLeasesHeld(options: {
  client: KubeClient;
  namespace: string;
  election: string;
  log: Logger;
}): () => Promise<boolean> {
  const liveness = new LeaseLiveness();
  let said = false;
  let unlisted = false;
  return async () => {
    const now = Date.now();
    if (unlisted) return true;
    let leases: Lease[];
    try {
      leases = (
        await options.client.list<Lease>(leaseType, options.namespace, {
          labelSelector: `${ELECTION_LABEL}=${options.election},${LEADER_LEASE_LABEL}=shard`,
        })
      ).items;
    } catch (err) {
      if (!isForbidden(err)) throw err;
      // RBAC of a release before sharding: no shard Leases can exist there, so none to wait for.
      unlisted = true;
      options.log.warn(
        { err: (err as Error).message },
        'leader election: may not list Leases; not checking for shard Leases of a sharded layout',
      );
      return true;
    }
    liveness.observe(leases, now);
    const held = leases.filter((l) => liveness.live(l, now)).map((l) => l.metadata.name);
    if (held.length && !said)
      options.log.warn(
        { leases: held },
        'leader election: waiting for the shard Leases of a sharded layout to be given up or to expire',
      );
    said = held.length > 0;
    return held.length === 0;
  };
}

export interface ShardCoordinatorOptions {
  client: KubeClient;
  namespace: string;
  /** The election's id (--leader-election-id): the prefix of every Lease name. */
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
  /** A shard is being given back: resolve once nothing in it is being reconciled. */
  onGivingBack: (shard: number) => Promise<void>;
}

/** Takes, holds and gives back this replica's shards. */
export class ShardCoordinator {
  private readonly opts: ShardCoordinatorOptions;
  private readonly electors = new Map<number, LeaderElector>();
  /** Shards reconciled here, with when each was taken. */
  private readonly owned = new Map<number, number>();
  /** Shards granted to an elector this round, not yet confirmed taken. */
  private readonly granted = new Set<number>();
  private readonly liveness = new LeaseLiveness();
  private member: LeaderElector | undefined;
  private view: ShardView;
  private stopped = false;
  private lost: ((outcome: 'lost') => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private saidForeign = '';

  constructor(options: ShardCoordinatorOptions) {
    this.opts = options;
    this.view = { shards: options.shards, members: 1, held: new Map(), foreign: [] };
    options.metrics?.shards.set(options.shards);
    for (let s = 0; s < options.shards; s++) options.metrics?.shardOwned.set({ shard: String(s) }, 0);
  }

  /** Whether this replica reconciles shard `shard` now. */
  owns(shard: number): boolean {
    return this.owned.has(shard);
  }

  /** The shards held here, ascending. */
  held(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  /**
   * Runs until stopped ('stopped') or until a shard Lease could not be renewed ('lost': the
   * process should exit, as a lost leader's does, so no stale holder keeps acting).
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
    // The first look at who is alive comes before any campaign, so a replica joining a running
    // set takes only its share instead of whatever has expired.
    void this.tick().then(() => {
      if (!this.stopped) for (let s = 0; s < o.shards; s++) this.campaign(s);
    });
    return done;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const s of this.owned.keys()) this.setOwned(s, false);
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

  private labels(role: 'member' | 'shard'): Record<string, string> {
    return {
      [LEADER_LEASE_LABEL]: role,
      [ELECTION_LABEL]: this.opts.election,
      [SHARDS_LABEL]: String(this.opts.shards),
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

  private mayAcquire(shard: number): boolean {
    if (this.stopped) return false;
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
    this.opts.log.error({ lease: what }, 'sharding: a Lease could not be renewed; giving up every shard');
    this.lost?.('lost');
  }

  /** Each retry period: who is alive, whether another layout acts, and whether to give one back. */
  private async tick(): Promise<void> {
    if (this.stopped) return;
    const o = this.opts;
    try {
      const now = Date.now();
      const leases = (
        await o.client.list<Lease>(leaseType, o.namespace, {
          labelSelector: `${ELECTION_LABEL}=${o.election}`,
        })
      ).items;
      // The single leader Lease of an unsharded layout (older versions did not label it).
      const leader = leases.some((l) => l.metadata.name === o.election)
        ? undefined
        : await o.client.find<Lease>(leaseType, o.namespace, o.election);
      const all = leader ? [...leases, leader] : leases;
      this.liveness.observe(all, now);
      const members = leases.filter(
        (l) =>
          l.metadata.labels?.[LEADER_LEASE_LABEL] === 'member' &&
          l.metadata.labels?.[SHARDS_LABEL] === String(o.shards) &&
          this.liveness.live(l, now),
      );
      const mine = memberLeaseName(o.election, o.identity);
      const count = members.length + (members.some((m) => m.metadata.name === mine) ? 0 : 1);
      const foreign = foreignHolders(all, this.liveness, now, o);
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
      if (!this.stopped) this.timer = setTimeout(() => void this.tick(), o.retryPeriodMs);
    }
  }

  /** Gives a shard back: stop reconciling it, wait for its reconciles, release its Lease, campaign again. */
  private async giveBack(shard: number): Promise<void> {
    const elector = this.electors.get(shard);
    if (!elector) return;
    this.setOwned(shard, false);
    this.opts.log.info(
      { shard, members: this.view.members, share: fairShare(this.opts.shards, this.view.members) },
      'giving a shard back: more than this replica share',
    );
    await this.opts.onGivingBack(shard);
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
