/**
 * Kubernetes Events (events.k8s.io/v1) about our objects, with client-go's manners: identical
 * events are folded into one with a growing `series.count` instead of flooding the API server,
 * and each object may emit at most a burst of events, refilled slowly.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from './clock.ts';
import type { KubeClient, KubeObject, ResourceType } from './kube-client.ts';
import type { Logger } from './logger.ts';

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

export interface EventRecorderOptions {
  client: KubeClient;
  clock: Clock;
  log: Logger;
  /** Written as reportingController, e.g. regionfailover.io/operator. */
  controller: string;
  /** Written as reportingInstance, e.g. the pod name. */
  instance: string;
  burst?: number;
  refillMs?: number;
  /** Identical events within this window are one series. */
  seriesWindowMs?: number;
}

const microTime = (d: Date) => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class EventRecorder {
  private readonly opts: Required<EventRecorderOptions>;
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly series = new Map<
    string,
    { name: string; namespace: string; count: number; first: number }
  >();

  constructor(options: EventRecorderOptions) {
    this.opts = { burst: 25, refillMs: 5 * 60_000, seriesWindowMs: 10 * 60_000, ...options };
  }

  /** Records an event; never throws (an event is worth less than the work it describes). */
  async record(regarding: KubeObject, input: EventInput): Promise<void> {
    try {
      await this.emit(regarding, input);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message, reason: input.reason }, 'could not record event');
    }
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

  private async emit(regarding: KubeObject, input: EventInput): Promise<void> {
    const now = this.opts.clock.now();
    const namespace = regarding.metadata.namespace ?? 'default';
    const objectKey = `${regarding.metadata.uid ?? `${namespace}/${regarding.metadata.name}`}`;
    const seriesKey = `${objectKey}|${input.type}|${input.reason}|${input.note}`;
    const existing = this.series.get(seriesKey);
    if (existing && now.getTime() - existing.first < this.opts.seriesWindowMs) {
      existing.count++;
      // Folding costs a PATCH; the token bucket still bounds how often.
      if (!this.allow(objectKey, now.getTime())) return;
      await this.opts.client.mergePatch(eventType, existing.namespace, existing.name, {
        series: { count: existing.count, lastObservedTime: microTime(now) },
      });
      return;
    }
    if (!this.allow(objectKey, now.getTime())) {
      this.opts.log.debug({ reason: input.reason }, 'event dropped by rate limit');
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
      note: input.note.slice(0, 1024),
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
