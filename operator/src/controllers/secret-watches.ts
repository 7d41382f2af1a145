/**
 * What the SecretReader needs to keep a Secret without reading it again: whether it changed. With
 * `--watch-secrets`, one watch per namespace Secrets are read in (started at the first read there)
 * lists and watches the Secrets' metadata alone, and keeps each one's resourceVersion. A cached
 * Secret whose version the watch still shows is current however old the read: a healthy fleet
 * reads no Secret, and a rotated one is read again within a probe interval, not within the TTL.
 *
 * It needs list and watch on Secrets where they are read (the chart's rbac.watchSecrets). Where
 * either is refused, the namespace is read as before, every TTL, and asked again every ten
 * minutes; a namespace no Secret was read in for a while has its watch stopped.
 */
import { Informer } from '../runtime/informer.ts';
import { isForbidden, type KubeClient, type KubeObject } from '../runtime/kube-client.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Metrics } from '../runtime/metrics.ts';
import { secretType } from './resources.ts';

/** The SecretReader's port onto Secret changes. */
export interface SecretChanges {
  /**
   * The Secret's resourceVersion as the API server has it now: null when there is no such Secret,
   * undefined when that cannot be told (no watch there yet, or it is refused or failing). Asking
   * starts the namespace's watch.
   */
  versionOf(namespace: string, name: string): string | null | undefined;
  stop(): Promise<void>;
}

type NamespaceWatch = { askedAt: number } & (
  | { state: 'checking' }
  | { state: 'watching'; informer: Informer<KubeObject> }
  /** Refused (403), or the check failed otherwise: asked again after `until`. */
  | { state: 'unavailable'; until: number }
);

/** After a refusal, how long until the namespace is asked again (RBAC may have changed). */
const REFUSED_RECHECK_MS = 10 * 60_000;
/** After a check that failed otherwise (the API server away). */
const FAILED_RECHECK_MS = 30_000;
/** A namespace no Secret was read in for this long has its watch stopped (twice the reader's TTL). */
const IDLE_MS = 10 * 60_000;

export class SecretWatches implements SecretChanges {
  private readonly watches = new Map<string, NamespaceWatch>();
  /** Namespaces already warned about: a refusal is a warning once, then debug. */
  private readonly warned = new Set<string>();
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly metrics: Metrics | undefined;
  private lastSweep = Date.now();
  private stopped = false;

  constructor(options: { client: KubeClient; log: Logger; metrics?: Metrics }) {
    this.client = options.client;
    this.log = options.log;
    this.metrics = options.metrics;
  }

  versionOf(namespace: string, name: string): string | null | undefined {
    const watch = this.watchOf(namespace);
    if (watch?.state !== 'watching' || !watch.informer.upToDate) return undefined;
    return watch.informer.get(`${namespace}/${name}`)?.metadata.resourceVersion ?? null;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const informers = [...this.watches.values()].flatMap((w) => (w.state === 'watching' ? [w.informer] : []));
    this.watches.clear();
    await Promise.all(informers.map((i) => i.stop()));
  }

  /** The namespace's watch, started (after a check that it is allowed) when there is none. */
  private watchOf(namespace: string): NamespaceWatch | undefined {
    if (this.stopped) return undefined;
    const now = Date.now();
    this.sweep(now);
    const known = this.watches.get(namespace);
    if (known) known.askedAt = now;
    if (known && (known.state !== 'unavailable' || now < known.until)) return known;
    this.watches.set(namespace, { state: 'checking', askedAt: now });
    // One small list first: an informer refused would retry every 30 s for ever.
    this.client.list(secretType, namespace, { limit: 1 }, { metadataOnly: true }).then(
      () => {
        if (this.stopped || this.watches.get(namespace)?.state !== 'checking') return;
        const informer = new Informer<KubeObject>({
          client: this.client,
          type: secretType,
          namespace,
          versionsOnly: true,
          log: this.log,
          ...(this.metrics ? { metrics: this.metrics } : {}),
          // Nothing handles its events: the versions are read when a Secret is.
          resyncMs: 24 * 3600_000,
          // List allowed but not watch, or the grant taken away later: stop, as for a refused list.
          onError: (err) => {
            if (isForbidden(err)) this.unavailable(namespace, err, informer);
          },
        });
        this.watches.set(namespace, { state: 'watching', informer, askedAt: Date.now() });
        informer.start();
      },
      (err: unknown) => {
        if (!this.stopped && this.watches.get(namespace)?.state === 'checking')
          this.unavailable(namespace, err);
      },
    );
    return this.watches.get(namespace);
  }

  /** Marks the namespace unavailable until its recheck, and stops its watch if it has one. */
  private unavailable(namespace: string, err: unknown, informer?: Informer<KubeObject>): void {
    const refused = isForbidden(err);
    const current = this.watches.get(namespace);
    if (informer && (current?.state !== 'watching' || current.informer !== informer)) return;
    void informer?.stop();
    const detail = { namespace, err: (err as Error).message };
    const message = refused
      ? 'may not list and watch Secrets here: reading them again every few minutes instead (rbac.watchSecrets grants it)'
      : 'could not list Secrets to watch them: reading them every few minutes until it can';
    if (refused && !this.warned.has(namespace)) {
      this.warned.add(namespace);
      this.log.warn(detail, message);
    } else this.log.debug(detail, message);
    this.watches.set(namespace, {
      state: 'unavailable',
      until: Date.now() + (refused ? REFUSED_RECHECK_MS : FAILED_RECHECK_MS),
      askedAt: current?.askedAt ?? Date.now(),
    });
  }

  /** Stops the watches of namespaces no Secret was read in lately (their resources went away). */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [namespace, watch] of this.watches) {
      if (now - watch.askedAt < IDLE_MS || watch.state === 'checking') continue;
      this.watches.delete(namespace);
      if (watch.state === 'watching') void watch.informer.stop();
    }
  }
}
