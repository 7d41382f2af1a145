/**
 * What the SecretReader needs to keep a Secret without reading it again: whether it changed. With
 * `--watch-secrets`, one watch per namespace Secrets are read in (started at the first read there)
 * lists and watches the Secrets' metadata alone, and keeps each one's resourceVersion. A cached
 * Secret whose version the watch still shows is current however old the read: a healthy fleet
 * reads no Secret, and a rotated one is read again within a probe interval, not within the TTL.
 *
 * It needs list and watch on Secrets where they are read (the chart's rbac.watchSecrets). Without
 * them the namespace is read as before, every TTL, and asked again every ten minutes.
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
   * undefined when that cannot be told (no watch there yet, or it is refused or failing).
   */
  versionOf(namespace: string, name: string): string | null | undefined;
  stop(): Promise<void>;
}

type NamespaceWatch =
  | { state: 'checking' }
  | { state: 'watching'; informer: Informer<KubeObject> }
  | { state: 'refused'; until: number };

/** After a refused list, how long until the namespace is asked again (RBAC may have changed). */
const REFUSED_RECHECK_MS = 10 * 60_000;
/** After a list that failed otherwise (the API server away). */
const FAILED_RECHECK_MS = 30_000;

export class SecretWatches implements SecretChanges {
  private readonly watches = new Map<string, NamespaceWatch>();
  private readonly client: KubeClient;
  private readonly log: Logger;
  private readonly metrics: Metrics | undefined;
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
    const known = this.watches.get(namespace);
    if (this.stopped || (known && (known.state !== 'refused' || Date.now() < known.until))) return known;
    this.watches.set(namespace, { state: 'checking' });
    // One small list first: an informer refused would retry every 30 s for ever.
    this.client.list(secretType, namespace, { limit: 1 }, true).then(
      () => {
        if (this.stopped) return;
        const informer = new Informer<KubeObject>({
          client: this.client,
          type: secretType,
          namespace,
          versionsOnly: true,
          log: this.log,
          ...(this.metrics ? { metrics: this.metrics } : {}),
          // Nothing handles its events: the versions are read when a Secret is.
          resyncMs: 24 * 3600_000,
        });
        this.watches.set(namespace, { state: 'watching', informer });
        informer.start();
      },
      (err: unknown) => {
        if (this.stopped) return;
        const refused = isForbidden(err);
        const detail = { namespace, err: (err as Error).message };
        if (refused)
          this.log.warn(
            detail,
            'may not list and watch Secrets here: reading them again every few minutes instead (rbac.watchSecrets grants it)',
          );
        else
          this.log.info(
            detail,
            'could not list Secrets to watch them: reading them every few minutes until it can',
          );
        this.watches.set(namespace, {
          state: 'refused',
          until: Date.now() + (refused ? REFUSED_RECHECK_MS : FAILED_RECHECK_MS),
        });
      },
    );
    return this.watches.get(namespace);
  }
}
