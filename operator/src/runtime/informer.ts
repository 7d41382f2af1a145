/**
 * A list+watch cache that survives: the API server going away, 410 Gone, and watches that go
 * silent. Controllers read from its cache and are told about changes; it never gives up.
 *
 * - Start: list (paginated), then watch from the list's resourceVersion with bookmarks.
 * - A watch that ends normally (server timeout) is reopened from the last resourceVersion.
 * - An error waits a jittered, growing backoff, then reopens from the last resourceVersion.
 * - 410 Gone (history compacted) drops the resourceVersion and relists, emitting the difference.
 * - A watch with no event or bookmark for `staleAfterMs` is aborted and reopened (a half-open
 *   connection looks exactly like a quiet cluster otherwise).
 * - Every `resyncMs` each cached object is handed to the handlers again, so a lost event or a
 *   missed timer is repaired without any API call.
 */
import { isDeepStrictEqual } from 'node:util';
import { type BackoffPolicy, backoffDelay } from './backoff.ts';
import { internStrings, sharedStrings } from './interning.ts';
import {
  isGone,
  type KubeClient,
  type KubeObject,
  type ObjectMeta,
  type ResourceType,
} from './kube-client.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';

export type InformerEvent<T> =
  | { type: 'added'; object: T }
  | { type: 'updated'; object: T; old: T }
  | { type: 'deleted'; object: T }
  | { type: 'resync'; object: T };

export interface InformerOptions {
  client: KubeClient;
  type: ResourceType;
  /** Watch one namespace; all namespaces when omitted. */
  namespace?: string;
  /** Only the objects matching it (`metadata.name=leader`): listed and watched so. */
  fieldSelector?: string;
  /**
   * List and watch metadata alone, and keep of each object only its name, namespace, uid and
   * resourceVersion: what tells a change, without a Secret's data or the annotations that can
   * copy it (kubectl's last-applied-configuration).
   */
  versionsOnly?: boolean;
  log: Logger;
  metrics?: Metrics;
  resyncMs?: number;
  /**
   * Told of every failed list or watch (before the backoff). A 403 is retried for ever otherwise:
   * an owner that can do without the informer stops it there.
   */
  onError?: (err: unknown) => void;
  /** Server-side watch timeout; each watch gets up to 20% jitter so informers do not reconnect in step. */
  watchTimeoutSeconds?: number;
  staleAfterMs?: number;
  backoff?: BackoffPolicy;
  pageSize?: number;
}

/**
 * What the cache keeps of an object: everything but `metadata.managedFields`, the server-side
 * apply bookkeeping no controller here reads, which is most of a small object's size (the cache
 * holds every policy and cluster the operator watches). Its short strings are interned
 * (interning.ts), except a Secret's: the table would keep a value after it rotates.
 */
export function lean<T extends KubeObject>(object: T, old: T | undefined, kind: string): T {
  const now: KubeObject = object;
  const was: KubeObject | undefined = old;
  // A status write is a new object with an equal spec. Keeping the one already cached keeps the
  // parse memoised on it, and with it what a probe's provider built from that parse shares. Equal
  // generations alone are not enough: a CRD default added on upgrade changes a served spec, and a
  // relist may find an object deleted and made again by the same name.
  const specKept =
    was?.spec !== undefined &&
    was.metadata.generation === now.metadata.generation &&
    isDeepStrictEqual(was.spec, now.spec);
  if (specKept) now.spec = was.spec;
  const metadata = now.metadata as ObjectMeta & { managedFields?: unknown };
  if (metadata.managedFields !== undefined) {
    // A copy without it, not `delete`: V8 turns an object that lost a property into a hash table,
    // ~470 bytes per object's metadata here (2.7 MiB of the heap with 6,000 objects).
    const { managedFields: _, ...rest } = metadata;
    now.metadata = rest;
  }
  if (kind === 'Secret') return object;
  // Names, uids and versions are one-offs; the namespace is shared by many objects.
  if (now.metadata.namespace) now.metadata.namespace = strings.intern(now.metadata.namespace);
  for (const key of Object.keys(now)) {
    if (key === 'metadata' || (key === 'spec' && specKept)) continue;
    const v = now[key];
    if (typeof v === 'string') now[key] = strings.intern(v);
    else if (v !== null && typeof v === 'object') internStrings(v, strings);
  }
  return object;
}

/** Shared by every informer: policies and clusters repeat each other's namespaces and regions. */
const strings = sharedStrings;

export const objectKey = (o: KubeObject) =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;

/** The namespace and name an `objectKey` stands for (a key without a namespace is in `default`). */
export function keyParts(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0
    ? { namespace: 'default', name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export class Informer<T extends KubeObject> {
  private readonly cache = new Map<string, T>();
  private readonly handlers: ((event: InformerEvent<T>) => void)[] = [];
  private readonly opts: Required<
    Omit<InformerOptions, 'namespace' | 'metrics' | 'fieldSelector' | 'versionsOnly' | 'onError'>
  > &
    Pick<InformerOptions, 'namespace' | 'metrics' | 'fieldSelector' | 'versionsOnly' | 'onError'>;
  private resourceVersion: string | undefined;
  private hasSynced = false;
  private stopped = true;
  private current: AbortController | undefined;
  private lastActivity = Date.now();
  private loop: Promise<void> | undefined;
  private timers: NodeJS.Timeout[] = [];
  private wake: (() => void) | undefined;
  private staleAbort = false;
  /**
   * Since a list or watch failed (or expired, or went silent), until a list is in or a watch is
   * accepted (or an event comes).
   */
  private failing = false;

  constructor(options: InformerOptions) {
    this.opts = {
      resyncMs: 10 * 60_000,
      watchTimeoutSeconds: 300,
      staleAfterMs: 0,
      backoff: { baseMs: 500, maxMs: 30_000 },
      pageSize: 500,
      ...options,
    };
    // A watch ends at its timeout (300-360 s) even with nothing to say, and bookmarks may come
    // between (not every API server sends them); silence well past that means a dead stream.
    if (!this.opts.staleAfterMs) this.opts.staleAfterMs = (this.opts.watchTimeoutSeconds * 1.2 + 60) * 1000;
  }

  get resource(): string {
    return this.opts.type.plural;
  }

  /** True once the first list has been loaded; stays true across later reconnects. */
  get synced(): boolean {
    return this.hasSynced;
  }

  /**
   * Whether the cache can be taken as the API server's state now: synced, no list or watch failed
   * (nor went silent, nor expired) since the last list or accepted watch, and the watch is not
   * silent past staleAfterMs. Between a watch's normal end and the next it stays true: the next
   * resumes from the last resourceVersion.
   */
  get upToDate(): boolean {
    return (
      this.hasSynced &&
      !this.stopped &&
      !this.failing &&
      Date.now() - this.lastActivity <= this.opts.staleAfterMs
    );
  }

  on(handler: (event: InformerEvent<T>) => void): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.cache.get(key);
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
    this.timers.push(
      setInterval(() => this.resync(), this.opts.resyncMs).unref(),
      setInterval(() => this.checkStaleness(), Math.min(this.opts.staleAfterMs / 4, 30_000)).unref(),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.current?.abort();
    this.wake?.();
    await this.loop;
  }

  /** Resolves once synced, or rejects after `timeoutMs`. */
  async waitForSync(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.hasSynced) {
      if (Date.now() > deadline)
        throw new Error(`cache of ${this.resource} did not sync within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Puts an object we just wrote into the cache, so the next reconcile starts from our own write
   * instead of conflicting with it while the watch event is still on its way. An older version
   * arriving later from the watch does not overwrite it.
   */
  upsert(object: T): void {
    const key = objectKey(object);
    const old = this.cache.get(key);
    if (old && newerOrSame(old.metadata.resourceVersion, object.metadata.resourceVersion)) return;
    this.cache.set(key, lean(object, old, this.opts.type.kind));
  }

  /**
   * Reopens the watch from a given resourceVersion. Tests use it with an expired version to
   * exercise the 410 Gone path, which otherwise needs hours of etcd history to happen naturally.
   */
  restartWatchFrom(resourceVersion: string): void {
    this.resourceVersion = resourceVersion;
    this.current?.abort();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        const cause = await this.watchOnce();
        attempt = 0;
        if (!this.stopped) this.opts.metrics?.informerRestarts.inc({ resource: this.resource, cause });
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) {
          // History was compacted past our resourceVersion: only a fresh list can be trusted.
          this.opts.log.info({ resource: this.resource }, 'watch expired (410 Gone); relisting');
          this.opts.metrics?.informerRestarts.inc({ resource: this.resource, cause: 'expired' });
          this.resourceVersion = undefined;
          // Events were lost: the cache is not the API server's until the relist is in.
          this.failing = true;
          continue;
        }
        this.failing = true;
        this.opts.onError?.(err);
        if (this.stopped) break;
        this.opts.metrics?.informerRestarts.inc({ resource: this.resource, cause: 'error' });
        const delay = backoffDelay(attempt++, this.opts.backoff);
        this.opts.log.warn(
          { resource: this.resource, err: (err as Error).message, retryInMs: delay },
          'watch failed; retrying',
        );
        await this.sleep(delay);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async relist(): Promise<void> {
    const seen = new Map<string, T>();
    let token: string | undefined;
    let rv = '';
    do {
      const page = await this.opts.client.list<T>(
        this.opts.type,
        this.opts.namespace,
        { limit: this.opts.pageSize, continue: token, fieldSelector: this.opts.fieldSelector },
        { metadataOnly: this.opts.versionsOnly ?? false },
      );
      // Leaned as each page comes: kept whole until the last page, 6,000 objects' managedFields
      // and unshared strings were alive at once, and a restart's RSS peaked there.
      // A PartialObjectMetadataList with nothing in it says `items: null`.
      for (const listed of page.items ?? []) {
        const item = (this.opts.versionsOnly ? versionsOf(listed) : listed) as T;
        const key = objectKey(item);
        seen.set(key, lean(item, this.cache.get(key), this.opts.type.kind));
      }
      token = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion;
    } while (token);
    this.opts.metrics?.informerRelists.inc({ resource: this.resource });
    for (const [key, old] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.emit({ type: 'deleted', object: old });
      }
    }
    for (const [key, object] of seen) {
      const old = this.cache.get(key);
      this.cache.set(key, object);
      if (!old) this.emit({ type: 'added', object });
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion)
        this.emit({ type: 'updated', object, old });
    }
    this.resourceVersion = rv;
    this.hasSynced = true;
    this.failing = false;
    this.lastActivity = Date.now();
  }

  /** Watches until the stream ends; returns why it ended, or throws on an error. */
  private async watchOnce(): Promise<'closed' | 'stale' | 'restarted'> {
    const controller = new AbortController();
    this.current = controller;
    this.lastActivity = Date.now();
    const timeoutSeconds = Math.round(this.opts.watchTimeoutSeconds * (1 + Math.random() * 0.2));
    try {
      await this.opts.client.watch(
        this.opts.type,
        this.opts.namespace,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          fieldSelector: this.opts.fieldSelector,
        },
        (event) => {
          this.lastActivity = Date.now();
          this.failing = false;
          const object = (this.opts.versionsOnly ? versionsOf(event.object) : event.object) as unknown as T;
          if (object.metadata?.resourceVersion) this.resourceVersion = object.metadata.resourceVersion;
          if (event.type === 'BOOKMARK') return;
          const key = objectKey(object);
          const old = this.cache.get(key);
          // Already have this version or a newer one (written through by upsert): nothing new.
          if (
            event.type === 'MODIFIED' &&
            old &&
            newerOrSame(old.metadata.resourceVersion, object.metadata.resourceVersion)
          )
            return;
          if (event.type === 'DELETED') {
            this.cache.delete(key);
            this.emit({ type: 'deleted', object });
          } else {
            this.cache.set(key, lean(object, old, this.opts.type.kind));
            this.emit(old ? { type: 'updated', object, old } : { type: 'added', object });
          }
        },
        controller.signal,
        {
          ...(this.opts.versionsOnly ? { metadataOnly: true } : {}),
          // Accepted from the last resourceVersion: whatever changed since will come (or a 410).
          onOpen: () => {
            this.failing = false;
          },
        },
      );
    } catch (err) {
      // An abort for staleness or restartWatchFrom is not an outage: reopen at once.
      if (!controller.signal.aborted || this.stopped) throw err;
    } finally {
      this.current = undefined;
    }
    if (this.staleAbort) {
      this.staleAbort = false;
      return 'stale';
    }
    return controller.signal.aborted ? 'restarted' : 'closed';
  }

  private checkStaleness(): void {
    if (this.current && Date.now() - this.lastActivity > this.opts.staleAfterMs) {
      this.opts.log.warn(
        { resource: this.resource, silentMs: Date.now() - this.lastActivity },
        'watch went silent; restarting it',
      );
      this.staleAbort = true;
      // Up to date again only once the next watch is accepted: one that hangs too would otherwise
      // pass for a quiet one until it went stale again.
      this.failing = true;
      this.current.abort();
    }
  }

  private resync(): void {
    for (const object of this.cache.values()) this.emit({ type: 'resync', object });
  }

  private emit(event: InformerEvent<T>): void {
    for (const handler of this.handlers) {
      try {
        handler(event);
      } catch (err) {
        this.opts.log.error({ err, resource: this.resource }, 'informer handler failed');
      }
    }
  }
}

/** What a `versionsOnly` informer keeps of an object. */
function versionsOf(object: KubeObject): KubeObject {
  const { name, namespace, uid, resourceVersion } = object.metadata ?? {};
  return { metadata: { name, namespace, uid, resourceVersion } };
}

/**
 * Whether `have` is the same version as `incoming` or a later one. resourceVersions are opaque by
 * contract, but every API server backed by etcd uses its revision numbers. Compare them only when
 * both are plain integers; otherwise treat them as different.
 */
export function newerOrSame(have: string | undefined, incoming: string | undefined): boolean {
  if (!have || !incoming || !/^\d+$/.test(have) || !/^\d+$/.test(incoming))
    return have === incoming && have !== undefined;
  return BigInt(have) >= BigInt(incoming);
}
