/**
 * Reads credentials from Secrets in the object's namespace. A missing Secret or key is a
 * ProviderError with reason CredentialsMissing whose message names both, so the condition tells a
 * person exactly what to create. Values never leave this module except into a provider client.
 *
 * Secrets are cached for a few minutes: probing a thousand clusters every few seconds must not
 * mean a thousand Secret reads every few seconds. A probe that fails on its credentials drops the
 * cached copy, so a fixed Secret is picked up at the next probe; a missing one is looked for again
 * every 30 s. Reads of one Secret while a read of it is in flight share that read: when a copy
 * expires, the thousand probes that find it stale in the next moment ask the API server once.
 *
 * With a watch on Secrets (secret-watches.ts, --watch-secrets) a cached copy is kept for as long as
 * the watch shows the Secret unchanged, and read again once it changes: no reads while nothing
 * changes, and a rotation picked up at the next probe. The TTL applies whenever the watch cannot
 * say (refused, not synced yet, failing).
 */
import { ProviderError } from '../providers/errors.ts';
import { newerOrSame } from '../runtime/informer.ts';
import { isForbidden, isNotFound, type KubeClient, type KubeObject } from '../runtime/kube-client.ts';
import { secretType } from './resources.ts';
import type { SecretChanges } from './secret-watches.ts';

export interface SecretRead {
  value: string;
  /** The Secret's resourceVersion: a changed Secret means reconnecting with the new value. */
  version: string;
}

interface Cached {
  secret: KubeObject | undefined;
  /** When it was read, or last confirmed unchanged by a watch. */
  at: number;
}

const decoded = new WeakMap<KubeObject, Map<string, SecretRead>>();

/**
 * What the cache keeps of a Secret: its data and version. Not its managed fields or annotations
 * (kubectl's last-applied annotation holds the data a second time): ~0.5 KiB a Secret, kept for
 * every cluster.
 */
function kept(secret: KubeObject): KubeObject {
  const { name, resourceVersion } = secret.metadata;
  return {
    metadata: resourceVersion === undefined ? { name } : { name, resourceVersion },
    data: secret.data,
  };
}

export class SecretReader {
  private readonly client: KubeClient;
  private readonly ttlMs: number;
  private readonly cache = new Map<string, Cached>();
  /** The read from the API server under way for each Secret, shared by whoever asks meanwhile. */
  private readonly inFlight = new Map<string, Promise<KubeObject | undefined>>();
  private readonly changes: SecretChanges | undefined;

  constructor(client: KubeClient, ttlMs = 5 * 60_000, changes?: SecretChanges) {
    this.client = client;
    this.ttlMs = ttlMs;
    this.changes = changes;
  }

  /** The cached read of a Secret while it is fresh. */
  private fresh(namespace: string, name: string): Cached | undefined {
    const hit = this.cache.get(`${namespace}/${name}`);
    // Asked even without a copy: the first read in a namespace starts its watch.
    const seen = this.changes?.versionOf(namespace, name);
    if (!hit) return undefined;
    if (seen !== undefined) {
      const had = hit.secret?.metadata.resourceVersion;
      // A read newer than what the watch has delivered yet is kept; one older is read again.
      const current = seen === null ? hit.secret === undefined : had !== undefined && newerOrSame(had, seen);
      if (!current) return undefined;
      // Confirmed now: should the watch fail, the copy is good for a TTL from here, so a watch
      // back within it costs no reads, and a fleet's copies are not all read again at once.
      hit.at = Date.now();
      return hit;
    }
    // A missing Secret is asked for again sooner: someone is probably about to create it.
    const ttl = hit.secret ? this.ttlMs : Math.min(this.ttlMs, 30_000);
    return Date.now() - hit.at < ttl ? hit : undefined;
  }

  private secret(namespace: string, name: string): Promise<KubeObject | undefined> {
    const key = `${namespace}/${name}`;
    const hit = this.fresh(namespace, name);
    if (hit) return Promise.resolve(hit.secret);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    // Cached only while it is still the read for that Secret: one forgotten meanwhile (refused
    // credentials) was taken before, and the next read asks again.
    const reading: Promise<KubeObject | undefined> = this.fetch(namespace, name).then(
      (secret) => {
        if (this.inFlight.get(key) === reading) {
          this.inFlight.delete(key);
          this.cache.set(key, { secret, at: Date.now() });
        }
        return secret;
      },
      (err: unknown) => {
        if (this.inFlight.get(key) === reading) this.inFlight.delete(key);
        throw err;
      },
    );
    this.inFlight.set(key, reading);
    return reading;
  }

  private async fetch(namespace: string, name: string): Promise<KubeObject | undefined> {
    let secret: KubeObject | undefined;
    try {
      secret = await this.client.get(secretType, namespace, name);
    } catch (err) {
      if (isForbidden(err)) {
        throw new ProviderError(
          'CredentialsMissing',
          `the operator may not read Secret ${namespace}/${name} (403 Forbidden): with the Helm chart, list ${namespace} in rbac.secretNamespaces (or leave it empty to read Secrets in every watched namespace)`,
          { cause: err, retryable: true },
        );
      }
      if (!isNotFound(err)) throw err;
    }
    return secret && kept(secret);
  }

  async read(namespace: string, name: string, key: string): Promise<SecretRead> {
    return this.valueOf(await this.secret(namespace, name), namespace, name, key);
  }

  /**
   * `read`, answered at once from the cache (a probe's case, every few seconds): undefined when
   * the Secret is not cached or its copy is too old, and `read` must ask the API server.
   */
  readCached(namespace: string, name: string, key: string): SecretRead | undefined {
    const hit = this.fresh(namespace, name);
    return hit ? this.valueOf(hit.secret, namespace, name, key) : undefined;
  }

  private valueOf(secret: KubeObject | undefined, namespace: string, name: string, key: string): SecretRead {
    if (!secret) {
      throw new ProviderError('CredentialsMissing', `Secret ${namespace}/${name} does not exist`);
    }
    const data = (secret.data ?? {}) as Record<string, string>;
    if (data[key] === undefined) {
      this.forget(namespace, name);
      throw new ProviderError(
        'CredentialsMissing',
        `Secret ${namespace}/${name} has no key "${key}" (keys: ${Object.keys(data).join(', ') || 'none'})`,
      );
    }
    // Decoded once per Secret read and key (a read Secret object is never changed, only replaced).
    let reads = decoded.get(secret);
    if (!reads) {
      reads = new Map();
      decoded.set(secret, reads);
    }
    let read = reads.get(key);
    if (!read) {
      read = Object.freeze({
        value: Buffer.from(data[key], 'base64').toString('utf8'),
        version: secret.metadata.resourceVersion ?? '',
      });
      reads.set(key, read);
    }
    return read;
  }

  /** Drops a cached Secret, e.g. after its credentials were refused. */
  forget(namespace: string, name: string): void {
    this.cache.delete(`${namespace}/${name}`);
    this.inFlight.delete(`${namespace}/${name}`);
  }
}
