/**
 * Kubernetes Events (events.k8s.io/v1) about our objects, with client-go's manners: identical
 * events are folded into one with a growing `series.count` instead of flooding the API server,
 * and each object may emit at most a burst of events, refilled slowly — one budget for what was
 * observed (conditions changing) and one for what was done, so a flapping condition never silences
 * an operation's Events. An Event that is not
 * recorded is counted in `failover_events_dropped_total{reason}` and warned about, once a minute
 * per object at most: people read Events to learn what happened, so losing them must show.
 *
 * Like client-go's broadcaster, recording only queues: four senders write the queue, one Event of
 * an object at a time and each object's in order, so a reconcile never waits on an Event's round
 * trip (41-64 ms a reconcile of a failing object at 2,000 policies before, 15-32 ms after), nor a
 * step of a failover on an API server slow to take Events.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from './clock.ts';
import { isNotFound, type KubeClient, type KubeObject, type ResourceType } from './kube-client.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export const eventType: ResourceType = {
  group: 'events.k8s.io',
  version: 'v1',
  plural: 'events',
  kind: 'Event',
};

export interface EventInput {
  type: 'Normal' | 'Warning';
  /** CamelCase reason, e.g. PromotionStarted. */
  reason: string;
  /** What the controller did or failed to do, e.g. Promote. */
  action: string;
  note: string;
}

/** The API server takes a note of up to 1024 bytes (of UTF-8), not characters. */
const NOTE_MAX_BYTES = 1024;

/** `note` cut to what the API server takes, never inside a character. */
export function fitNote(note: string): string {
  if (note.length <= NOTE_MAX_BYTES / 4) return note;
  // encodeInto stops before a character that would not fit whole; `read` counts UTF-16 units.
  const { read } = new TextEncoder().encodeInto(note, new Uint8Array(NOTE_MAX_BYTES));
  return note.slice(0, read);
}

/** An Event to record, its note cut to what the API takes. */
export const eventOf = (
  type: EventInput['type'],
  reason: string,
  action: string,
  note: string,
): EventInput => ({
  type,
  reason,
  action,
  note: fitNote(note),
});

export interface EventRecorderOptions {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  /** Written as reportingController, e.g. regionfailover.io/operator. */
  controller: string;
  /** Written as reportingInstance, e.g. the pod name. */
  instance: string;
  /** Counts dropped Events in failover_events_dropped_total. */
  metrics?: Metrics;
  burst?: number;
  refillMs?: number;
  /** Identical events within this window are one series. */
  seriesWindowMs?: number;
  /** Events written at once; the rest wait in order. */
  senders?: number;
  /** Events waiting beyond this are dropped (Backlog): an API server that takes none must not fill the heap. */
  maxQueued?: number;
}

/** What an Event needs of the object it regards: a queued Event keeps no more of it. */
type Regarding = Pick<KubeObject, 'apiVersion' | 'kind'> & {
  metadata: Pick<KubeObject['metadata'], 'name' | 'namespace' | 'uid' | 'resourceVersion'>;
};

interface Queued {
  regarding: Regarding;
  input: EventInput;
  /** When it was recorded: the Event's time, however long it waited. */
  at: Date;
  done: () => void;
}

const microTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

/**
 * Why an Event was not recorded: the object's budget was spent, the API server refused or failed,
 * or too many were waiting to be written.
 */
export type DropReason = 'RateLimited' | 'ApiError' | 'Backlog';

/** At most one warning per object in this window; the drops in between are summed into it. */
const WARN_EVERY_MS = 60_000;
const SWEEP_EVERY_MS = 60_000;

export class EventRecorder {
  private readonly opts: Required<Omit<EventRecorderOptions, 'metrics'>> & { metrics?: Metrics };
  /**
   * Per object, its Events waiting, oldest first. One of an object's Events is written at a time:
   * its Events keep their order, and a repeat folds into the series its first one made instead of
   * racing it to a second Event.
   */
  private readonly lanes = new Map<string, Queued[]>();
  /** Objects with Events waiting and none being written, in the order they became ready. */
  private ready: string[] = [];
  private readyHead = 0;
  private queued = 0;
  private sending = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly series = new Map<
    string,
    { name: string; namespace: string; count: number; first: number }
  >();
  private sweptAt = 0;
  /** Per object: when a drop was last warned about, and the drops since, by reason. */
  private readonly dropWarnings = new Map<
    string,
    { at: number; since: Partial<Record<DropReason, number>> }
  >();

  constructor(options: EventRecorderOptions) {
    this.opts = {
      burst: 25,
      refillMs: 5 * 60_000,
      seriesWindowMs: 10 * 60_000,
      senders: 4,
      maxQueued: 10_000,
      ...options,
    };
  }

  /** Events recorded and not yet written or dropped. */
  pending(): number {
    return this.queued + this.sending;
  }

  /** Resolves once every Event recorded so far is written or dropped (tests; a graceful stop). */
  settled(): Promise<void> {
    if (this.pending() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** How many series, budgets and drop warnings are held (what the sweep bounds). */
  retained(): { series: number; buckets: number; dropWarnings: number } {
    return { series: this.series.size, buckets: this.buckets.size, dropWarnings: this.dropWarnings.size };
  }

  /**
   * Queues an Event and returns at once; never throws (an Event is worth less than the work it
   * describes). The promise settles when it is written or dropped: a reconcile does not wait for
   * it (`void events.record(...)`), a test may.
   */
  record(object: KubeObject, input: EventInput): Promise<void> {
    const { apiVersion, kind, metadata } = object;
    const { name, namespace, uid, resourceVersion } = metadata;
    const regarding: Regarding = { apiVersion, kind, metadata: { name, namespace, uid, resourceVersion } };
    if (this.queued >= this.opts.maxQueued) {
      this.dropped(regarding, input, 'Backlog');
      return Promise.resolve();
    }
    return new Promise((done) => {
      const key = objectKeyOf(regarding);
      const lane = this.lanes.get(key);
      const item = { regarding, input, at: this.opts.clock.now(), done };
      // An object with Events in its lane is either ready already or being written to.
      if (lane) lane.push(item);
      else {
        this.lanes.set(key, [item]);
        this.ready.push(key);
      }
      this.queued++;
      this.opts.metrics?.eventsQueued.set(this.pending());
      this.pump();
    });
  }

  private pump(): void {
    while (this.sending < this.opts.senders && this.readyHead < this.ready.length) {
      const key = this.ready[this.readyHead++] as string;
      if (this.readyHead >= 1024 && this.readyHead * 2 >= this.ready.length) {
        this.ready = this.ready.slice(this.readyHead);
        this.readyHead = 0;
      }
      const next = this.lanes.get(key)?.[0];
      if (!next) continue;
      this.queued--;
      this.sending++;
      void this.send(key, next);
    }
  }

  private async send(key: string, { regarding, input, at, done }: Queued): Promise<void> {
    try {
      await this.emit(regarding, input, at);
    } catch (err) {
      this.dropped(regarding, input, 'ApiError', (err as Error).message);
    } finally {
      this.sending--;
      const lane = this.lanes.get(key);
      lane?.shift();
      // Its next Event waits behind the objects that became ready meanwhile.
      if (lane?.length) this.ready.push(key);
      else this.lanes.delete(key);
      done();
      this.opts.metrics?.eventsQueued.set(this.pending());
      this.pump();
      if (this.pending() === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  private dropped(regarding: Regarding, input: EventInput, reason: DropReason, error?: string): void {
    this.opts.metrics?.eventsDropped.inc({ reason });
    const key = objectKeyOf(regarding);
    const now = this.opts.clock.now().getTime();
    const state = this.dropWarnings.get(key);
    if (state && now - state.at < WARN_EVERY_MS) {
      state.since[reason] = (state.since[reason] ?? 0) + 1;
      return;
    }
    const earlier = state && Object.keys(state.since).length ? { droppedSinceLastWarning: state.since } : {};
    if (this.dropWarnings.size > 10_000) this.dropWarnings.clear();
    this.dropWarnings.set(key, { at: now, since: {} });
    this.opts.log.warn(
      {
        object: `${regarding.kind ?? 'object'} ${regarding.metadata.namespace ?? ''}/${regarding.metadata.name}`,
        reason,
        eventReason: input.reason,
        ...(error ? { err: error } : {}),
        ...earlier,
      },
      reason === 'RateLimited'
        ? 'event dropped: this object used up its event budget (failover_events_dropped_total counts every one)'
        : reason === 'Backlog'
          ? 'event dropped: too many Events wait to be written (failover_events_dropped_total counts every one)'
          : 'event dropped: the API server did not record it (failover_events_dropped_total counts every one)',
    );
  }

  private allow(objectKey: string, now: number): boolean {
    const bucket = this.buckets.get(objectKey) ?? { tokens: this.opts.burst, at: now };
    const refill = Math.floor((now - bucket.at) / this.opts.refillMs);
    if (refill > 0) {
      bucket.tokens = Math.min(this.opts.burst, bucket.tokens + refill);
      bucket.at = now;
    }
    this.buckets.set(objectKey, bucket);
    if (bucket.tokens <= 0) return false;
    bucket.tokens--;
    return true;
  }

  /**
   * Forgets what no longer matters, at most once a minute: series past their window (a repeat
   * would start a new Event anyway), buckets that have refilled (as good as none) and old drop
   * warnings with nothing left to report. Without it, every object that ever had an Event kept its note here for good.
   */
  private sweep(now: number): void {
    if (now - this.sweptAt < SWEEP_EVERY_MS) return;
    this.sweptAt = now;
    for (const [key, s] of this.series)
      if (now - s.first >= this.opts.seriesWindowMs) this.series.delete(key);
    for (const [key, b] of this.buckets)
      if (b.tokens + Math.floor((now - b.at) / this.opts.refillMs) >= this.opts.burst)
        this.buckets.delete(key);
    // A warning whose later drops are still to be summed in the next one stays.
    for (const [key, w] of this.dropWarnings)
      if (now - w.at >= WARN_EVERY_MS && Object.keys(w.since).length === 0) this.dropWarnings.delete(key);
  }

  /** Writes one Event recorded at `now`: folded into its series, or a new one. */
  private async emit(regarding: Regarding, input: EventInput, now: Date): Promise<void> {
    this.sweep(now.getTime());
    const namespace = regarding.metadata.namespace ?? 'default';
    const objectKey = objectKeyOf(regarding);
    const budget = `${objectKey}/${input.action === 'Observe' ? 'observed' : 'acted'}`;
    // A digest, not the text: a key kept for the series' window held the whole note (with 2,000
    // policies / 4,000 clusters, one Event each: 3.1 MiB of the live heap).
    const seriesKey = createHash('sha256')
      .update(`${objectKey}|${input.type}|${input.reason}|${input.note}`)
      .digest('base64');
    const existing = this.series.get(seriesKey);
    /** Whether this Event already spent its token on a fold that found its Event gone. */
    let paid = false;
    if (existing && now.getTime() - existing.first < this.opts.seriesWindowMs) {
      existing.count++;
      // Folding costs a PATCH; the token bucket still bounds how often. A repeat not written now
      // is still in the count the next written repeat carries, but its time is lost: a drop.
      if (!this.allow(budget, now.getTime())) {
        this.dropped(regarding, input, 'RateLimited');
        return;
      }
      try {
        await this.opts.client.mergePatch(eventType, existing.namespace, existing.name, {
          series: { count: existing.count, lastObservedTime: microTime(now) },
        });
        return;
      } catch (err) {
        // The Event expired (the API server keeps them an hour) or was deleted: start a new one.
        if (!isNotFound(err)) throw err;
        this.series.delete(seriesKey);
        paid = true;
      }
    }
    if (!paid && !this.allow(budget, now.getTime())) {
      this.dropped(regarding, input, 'RateLimited');
      return;
    }
    const name = `${regarding.metadata.name}.${randomBytes(8).toString('hex')}`;
    await this.opts.client.create(eventType, namespace, {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace },
      eventTime: microTime(now),
      reportingController: this.opts.controller,
      reportingInstance: this.opts.instance.slice(0, 128),
      action: input.action,
      reason: input.reason,
      note: fitNote(input.note),
      type: input.type,
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name: regarding.metadata.name,
        namespace: regarding.metadata.namespace,
        uid: regarding.metadata.uid,
        resourceVersion: regarding.metadata.resourceVersion,
      },
    });
    this.series.set(seriesKey, { name, namespace, count: 1, first: now.getTime() });
    if (this.series.size > 10_000) this.series.clear();
  }
}

const objectKeyOf = (o: Regarding) =>
  o.metadata.uid ?? `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
