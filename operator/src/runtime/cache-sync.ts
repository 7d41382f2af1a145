/**
 * Waiting for informer caches before reconciling, as controller-runtime does: a decision taken
 * on a partial cache would mistake an object not listed yet for one that does not exist.
 */
import type { Logger } from './logger.ts';

export interface SyncingCache {
  readonly synced: boolean;
  readonly resource: string;
}

/**
 * Resolves true once every cache holds its first list, or false if `stopped()` turns true first.
 * There is no deadline: readiness reports the caches meanwhile, and a warning is logged every
 * `warnEveryMs` so a watch the API server refuses (RBAC, a missing CRD) is visible in the logs.
 */
export async function waitForCacheSync(
  caches: readonly SyncingCache[],
  opts: { log: Logger; stopped: () => boolean; warnEveryMs?: number; pollMs?: number },
): Promise<boolean> {
  const started = Date.now();
  let warned = started;
  const warnEveryMs = opts.warnEveryMs ?? 30_000;
  while (!opts.stopped()) {
    const pending = caches.filter((c) => !c.synced).map((c) => c.resource);
    if (pending.length === 0) return true;
    if (Date.now() - warned >= warnEveryMs) {
      warned = Date.now();
      opts.log.warn({ waitedMs: warned - started, pending }, 'waiting for caches to sync before reconciling');
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 25));
  }
  return false;
}
