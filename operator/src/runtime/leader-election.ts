/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it. Every write carries
 * the resourceVersion it read, so two candidates can never both win a round (optimistic
 * concurrency). A lease is judged expired by the local time since its holder last changed it, not
 * by the holder's clock, so clock skew between replicas does not matter.
 */
import { newerOrSame } from './informer.ts';
import {
  isConflict,
  isForbidden,
  isNotFound,
  type KubeClient,
  type KubeObject,
  type ResourceType,
} from './kube-client.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { microTime } from './time.ts';

/** On the operator's leader Lease, whatever its name: how `kubectl failover status` finds it. */
export const LEADER_LEASE_LABEL = 'regionfailover.io/leader-election';
/**
 * On every Lease the operator holds: the namespace it watches, empty for all. Several operators in
 * one cluster (one per team's namespace, say) each have Leases; `kubectl failover status` judges a
 * namespace's policies by the Leases of the operator that watches it. A Lease without the label
 * (an operator from before it) may watch anything.
 */
export const WATCH_NAMESPACE_LABEL = 'regionfailover.io/watch-namespace';

export const leaseType: ResourceType = {
  group: 'coordination.k8s.io',
  version: 'v1',
  plural: 'leases',
  kind: 'Lease',
};

export interface Lease extends KubeObject {
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export const deploymentType: ResourceType = {
  group: 'apps',
  version: 'v1',
  plural: 'deployments',
  kind: 'Deployment',
};

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  /**
   * The Deployment (in `namespace`) the Lease belongs to: its owner reference lets garbage
   * collection remove the Lease with the Deployment, so an uninstall leaves none behind.
   */
  ownerDeployment?: string;
  log: Logger;
  metrics?: Metrics;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** Labels on the Lease (default: the operator's leader label); shard and member Leases differ. */
  labels?: Record<string, string>;
  /** The namespace the operator watches, empty for all: a label on the Lease (WATCH_NAMESPACE_LABEL). */
  watchNamespace?: string;
  /**
   * Asked before taking a Lease that another holder had or that does not exist (never before a
   * renewal): a shard's elector takes no more than this replica's share, and no Lease while
   * replicas of another shard layout still act.
   */
  mayAcquire?: () => boolean | Promise<boolean>;
}

/**
 * Durations are measured on the monotonic clock: a wall clock stepped back (NTP) must not keep a
 * leader acting past its deadline, nor one stepped forward let a standby take a Lease early.
 */
const monotonic = () => performance.now();

/** The Lease given up: no holder, and a 1 s duration, so a candidate takes it at its next round. */
function givenUp(lease: Lease): Lease {
  const now = microTime(new Date());
  return {
    ...lease,
    spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
  };
}

/** The holder recorded for a Lease seen deleted. */
const DELETED = '\u0000deleted';

const owners = (lease: Lease): OwnerReference[] =>
  (lease.metadata.ownerReferences as OwnerReference[] | undefined) ?? [];

export class LeaderElector {
  private readonly opts: Required<
    Omit<LeaderElectionOptions, 'metrics' | 'ownerDeployment' | 'labels' | 'mayAcquire' | 'watchNamespace'>
  > &
    Pick<LeaderElectionOptions, 'metrics' | 'ownerDeployment' | 'mayAcquire'> & {
      labels: Record<string, string>;
    };
  private owner: OwnerReference | undefined;
  /** The Deployment has been looked up once with a definite answer (found, missing or refused). */
  private ownerLookedUp = false;
  /** Setting the owner was refused (RBAC, or OwnerReferencesPermissionEnforcement): go without. */
  private ownerRefused = false;
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  /**
   * The Lease as this elector last wrote it: a leader renews from it without reading the Lease
   * first (client-go's fast path), one request a renewal instead of two. Its resourceVersion makes
   * the write conditional, so a Lease someone else changed since is refused (409) and read again.
   */
  private written: Lease | undefined;
  /** The last read of the Lease made elsewhere (observe), and when (monotonic ms). */
  private outside: { lease: Lease | undefined; at: number } | undefined;
  /** The resourceVersion of the newest read noted: an older one (a stale cache) is not a read. */
  private notedVersion: string | undefined;
  /** The attempt under way, if any: stop() lets it finish before giving the Lease up. */
  private inFlight: Promise<boolean> | undefined;
  /** An attempt wrote the Lease as this identity's since it was last lost or given up: stop() gives it up. */
  private holding = false;
  private leading = false;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(options: LeaderElectionOptions) {
    this.opts = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      ...options,
      labels: {
        ...(options.labels ?? { [LEADER_LEASE_LABEL]: 'operator' }),
        ...(options.watchNamespace === undefined ? {} : { [WATCH_NAMESPACE_LABEL]: options.watchNamespace }),
      },
    };
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until elected, calls `onStartedLeading`, renews, and resolves when leadership is lost
   * or `stop()` is called. A lost lease is final for this elector: the process should exit, as
   * controller-runtime's managers do, so no stale leader keeps acting.
   */
  async run(onStartedLeading: () => void): Promise<'lost' | 'stopped'> {
    this.setLeading(false);
    // A write's time is when its attempt began: the Lease the API server stored may say so already
    // by the time a slow answer comes back, and others judge expiry from it.
    let lastRenew = 0;
    for (;;) {
      if (this.stopped) return 'stopped';
      const started = monotonic();
      if (await this.attempt()) {
        if (monotonic() - started < this.opts.renewDeadlineMs) {
          lastRenew = started;
          break;
        }
        // Taken, but answered too late to lead on (its write is already old): given back, so a
        // replica the API server answers in time takes it, and this one campaigns on.
        await this.giveBackWritten();
      }
      await this.pause(this.opts.retryPeriodMs);
    }
    if (this.stopped) return 'stopped';
    this.setLeading(true);
    this.opts.log.info(
      { lease: `${this.opts.namespace}/${this.opts.name}`, identity: this.opts.identity },
      'became leader',
    );
    onStartedLeading();
    while (!this.stopped) {
      // Never past the renew deadline, whatever the retry period.
      await this.pause(
        Math.min(this.opts.retryPeriodMs, lastRenew + this.opts.renewDeadlineMs - monotonic()),
      );
      if (this.stopped) break;
      const started = monotonic();
      // An attempt that hangs is not waited for past the renew deadline: a standby may take the
      // Lease a lease duration after the last renewal, and this replica must have stopped by then.
      const left = this.opts.renewDeadlineMs - (started - lastRenew);
      const outcome = left > 0 ? await within(this.attempt(), left) : 'late';
      if (this.stopped) break;
      if (outcome === true) {
        lastRenew = started;
      } else if (outcome === 'late' || monotonic() - lastRenew >= this.opts.renewDeadlineMs) {
        this.setLeading(false);
        // Final: an attempt still under way takes nothing afterwards; stop() still gives up a
        // Lease that names this replica (conditionally), so a standby need not wait for expiry.
        this.stopped = true;
        this.opts.log.error(
          { identity: this.opts.identity },
          'leader lease lost: could not renew within the renew deadline',
        );
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** Stops campaigning or renewing; if leading, gives the lease up at once so another replica takes over. */
  async stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    const wasLeading = this.leading;
    // Not leading from here on, before the lease is given up: never two replicas saying so.
    this.setLeading(false);
    // An attempt under way ends first (a renew deadline at most): what it wrote is given up too,
    // and it cannot take the Lease back after the release (it would read it free and take it).
    if (this.inFlight) await within(this.inFlight, this.opts.renewDeadlineMs);
    if (wasLeading || this.holding) await this.release();
  }

  /** One round of tryAcquireOrRenew, remembered while under way. */
  private attempt(): Promise<boolean> {
    const round = this.tryAcquireOrRenew().then((held) => {
      if (held) this.holding = true;
      return held;
    });
    this.inFlight = round;
    void round.finally(() => {
      if (this.inFlight === round) this.inFlight = undefined;
    });
    return round;
  }

  /**
   * A read of the Lease made elsewhere at `at` (`performance.now()`, ms): a watch, or a coordinator that lists its election's Leases
   * every retry period. It counts as this elector's own read in judging expiry; while it is fresh
   * and finds the Lease held by another holder within its duration, a round does not read the
   * Lease again (a candidate's GET every retry period, saved). Skipping a read can only delay a
   * take-over, never make one: taking still reads the Lease and writes it conditionally.
   */
  observe(lease: Lease | undefined, at: number): void {
    if (lease && this.isStale(lease)) return;
    this.outside = { lease, at };
    if (lease) this.note(lease, at);
  }

  /** Older than a read already noted: a cache or a LIST that lags behind (never said of our own reads). */
  private isStale(lease: Lease): boolean {
    const version = lease.metadata.resourceVersion;
    return (
      this.notedVersion !== undefined &&
      version !== this.notedVersion &&
      newerOrSame(this.notedVersion, version)
    );
  }

  /** Whether a fresh outside read finds the Lease held by someone else, not yet expired. */
  private heldElsewhere(now: number): boolean {
    const seen = this.outside;
    if (!seen?.lease || now - seen.at > 2 * this.opts.retryPeriodMs) return false;
    const holder = seen.lease.spec?.holderIdentity ?? '';
    const durationMs = (seen.lease.spec?.leaseDurationSeconds ?? 15) * 1000;
    return (
      holder !== '' &&
      holder !== this.opts.identity &&
      this.observed?.holder === holder &&
      this.observed.at + durationMs > now
    );
  }

  /**
   * Records the holder and renew time read, and when they were first seen so. The elector's own
   * reads (from etcd) are always taken, older-looking or not: versions that went back (a restore)
   * must not leave it judging from what it saw before.
   */
  private note(lease: Lease, at: number): void {
    this.notedVersion = lease.metadata.resourceVersion;
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const renewTime = spec.renewTime ?? '';
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime)
      this.observed = { holder, renewTime, at };
  }

  private setLeading(value: boolean): void {
    this.leading = value;
    this.opts.metrics?.leaderStatus.set({ name: this.opts.name }, value ? 1 : 0);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * The owner reference to `ownerDeployment`. Looked up afresh when the Lease is created (a
   * Deployment made again has a new uid), otherwise once. A refusal or a missing Deployment is
   * said once and the Lease goes without an owner; it is never a reason not to lead.
   */
  private async ownerReference(fresh: boolean): Promise<OwnerReference | undefined> {
    const { client, namespace, ownerDeployment } = this.opts;
    if (!ownerDeployment || this.ownerRefused || (this.ownerLookedUp && !fresh)) return this.owner;
    try {
      const uid = (await client.find(deploymentType, namespace, ownerDeployment))?.metadata.uid;
      this.owner = uid
        ? { apiVersion: 'apps/v1', kind: 'Deployment', name: ownerDeployment, uid }
        : undefined;
      if (!uid && !this.ownerLookedUp)
        this.opts.log.warn(
          { deployment: ownerDeployment },
          'leader election: the Deployment the Lease belongs to does not exist; the Lease gets no owner',
        );
      this.ownerLookedUp = true;
    } catch (err) {
      if (isForbidden(err)) this.refuseOwner(err);
      else if (!this.ownerLookedUp)
        this.opts.log.warn(
          { err: (err as Error).message, deployment: ownerDeployment },
          'leader election: cannot read the Deployment the Lease belongs to yet',
        );
    }
    return this.ownerRefused ? undefined : this.owner;
  }

  private refuseOwner(err: unknown): void {
    this.ownerRefused = true;
    this.owner = undefined;
    this.opts.log.warn(
      { err: (err as Error).message, deployment: this.opts.ownerDeployment },
      'leader election: not allowed to give the Lease an owner; it will stay after the Deployment is deleted',
    );
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity } = this.opts;
    const written = this.written;
    this.written = undefined;
    if (this.leading && written?.spec?.holderIdentity === identity) {
      try {
        this.written = await client.replace<Lease>(leaseType, namespace, {
          ...written,
          spec: { ...written.spec, renewTime: microTime(new Date()) },
        });
        return true;
      } catch (err) {
        // Changed or deleted since: read it and judge again, below. Unreachable: the next round reads.
        if (!isConflict(err) && !isNotFound(err)) {
          this.opts.log.warn({ err: (err as Error).message }, 'leader election: could not reach the lease');
          return false;
        }
      }
    }
    // Stopped meanwhile (the release may be under way): take nothing back.
    if (this.stopped || (!this.leading && this.heldElsewhere(monotonic()))) return false;
    const now = new Date();
    let owner: OwnerReference | undefined;
    try {
      const lease = await client.find<Lease>(leaseType, namespace, name);
      // Stopped or lost while reading (an attempt outlives a renew deadline it missed): write nothing.
      if (this.stopped) return false;
      if (!lease) {
        // Deleted (garbage collection with its Deployment, or by hand): a leader has lost it, and
        // whoever had seen it waits a lease duration, as for an expiry, before making it again.
        if (this.leading) return false;
        if (this.observed) {
          if (this.observed.holder !== DELETED)
            this.observed = { holder: DELETED, renewTime: '', at: monotonic() };
          if (this.observed.at + this.opts.leaseDurationMs > monotonic()) return false;
        }
        if (!(await this.mayAcquire())) return false;
        owner = await this.ownerReference(true);
        if (this.stopped) return false;
        this.written = await client.create<Lease>(leaseType, namespace, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: {
            name,
            namespace,
            labels: this.opts.labels,
            ...(owner ? { ownerReferences: [owner] } : {}),
          },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
        return true;
      }
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? '';
      this.note(lease, monotonic());
      const durationMs = (spec.leaseDurationSeconds ?? 15) * 1000;
      if (holder && holder !== identity && (this.observed?.at ?? 0) + durationMs > monotonic()) return false;
      // A Lease naming this identity that this elector does not hold (a restarted container with
      // the same pod name) is an acquisition too.
      if ((holder !== identity || !this.leading) && !(await this.mayAcquire())) return false;
      const known = await this.ownerReference(false);
      owner = known && !owners(lease).some((r) => r.uid === known.uid) ? known : undefined;
      if (this.stopped) return false;
      this.written = await client.replace<Lease>(leaseType, namespace, {
        ...lease,
        // Labelled by every holder, so a Lease an older version made is found too.
        metadata: {
          ...lease.metadata,
          labels: { ...lease.metadata.labels, ...this.opts.labels },
          ...(owner ? { ownerReferences: [...owners(lease), owner] } : {}),
        },
        spec: {
          ...spec,
          holderIdentity: identity,
          leaseDurationSeconds: Math.ceil(this.opts.leaseDurationMs / 1000),
          acquireTime: holder === identity ? spec.acquireTime : microTime(now),
          renewTime: microTime(now),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1),
        },
      });
      return true;
    } catch (err) {
      // A write refused only for the owner it added: give up on owners, and try again without.
      if (owner && isForbidden(err)) this.refuseOwner(err);
      else if (!isConflict(err) && !isNotFound(err)) {
        this.opts.log.warn({ err: (err as Error).message }, 'leader election: could not reach the lease');
      }
      return false;
    }
  }

  /** Gives up, conditionally, the Lease as this elector last wrote it (a take-over answered late). */
  private async giveBackWritten(): Promise<void> {
    const written = this.written;
    this.written = undefined;
    this.holding = false;
    if (!written) return;
    try {
      await this.opts.client.replace(leaseType, this.opts.namespace, givenUp(written));
      this.opts.log.warn(
        { identity: this.opts.identity, deadlineMs: this.opts.renewDeadlineMs },
        'leader election: took the lease, but the answer came after the renew deadline; gave it back',
      );
    } catch (err) {
      // Changed since: someone else's now. Unreachable: it expires.
      if (!isConflict(err) && !isNotFound(err))
        this.opts.log.warn({ err: (err as Error).message }, 'leader election: could not give the lease back');
    }
  }

  private async mayAcquire(): Promise<boolean> {
    return this.opts.mayAcquire ? await this.opts.mayAcquire() : true;
  }

  private async release(): Promise<void> {
    const { client, namespace, name, identity } = this.opts;
    this.written = undefined;
    this.holding = false;
    try {
      const lease = await client.find<Lease>(leaseType, namespace, name);
      if (!lease || lease.spec?.holderIdentity !== identity) return;
      await client.replace(leaseType, namespace, givenUp(lease));
      this.opts.log.info({ identity }, 'released the leader lease');
    } catch (err) {
      this.opts.log.warn(
        { err: (err as Error).message },
        'could not release the leader lease; it will expire',
      );
    }
  }
}

/**
 * `round`'s answer, or 'late' if it has none within `ms` (the round goes on, unwaited). Strict, not
 * promises.ts's settledWithin, which waits longer after a local stall: a renew deadline must hold.
 */
async function within(round: Promise<boolean>, ms: number): Promise<boolean | 'late'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([round, new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
