import { describe, expect, it } from 'vitest';
import { waitForCacheSync } from './cache-sync.ts';
import { createLogger } from './logger.ts';

const cache = (resource: string) => ({ resource, synced: false });

describe('waitForCacheSync', () => {
  it('resolves true only once every cache is synced', async () => {
    const a = cache('failoverpolicies');
    const b = cache('replicaclusters');
    let resolved: boolean | undefined;
    const waiting = waitForCacheSync([a, b], {
      log: createLogger({ level: 'silent' }),
      stopped: () => false,
      pollMs: 1,
    }).then((r) => {
      resolved = r;
      return r;
    });
    a.synced = true;
    await new Promise((r) => setTimeout(r, 20));
    expect(resolved).toBeUndefined();
    b.synced = true;
    expect(await waiting).toBe(true);
  });

  it('resolves false when stopped first, and warns what it waits for meanwhile', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn' });
    const warn = log.warn.bind(log);
    log.warn = ((obj: unknown, msg?: string) => {
      lines.push(`${msg} ${JSON.stringify(obj)}`);
      return warn(obj as object, msg);
    }) as typeof log.warn;
    let stop = false;
    const waiting = waitForCacheSync([cache('replicaclusters')], {
      log,
      stopped: () => stop,
      pollMs: 1,
      warnEveryMs: 5,
    });
    while (lines.length === 0) await new Promise((r) => setTimeout(r, 5));
    stop = true;
    expect(await waiting).toBe(false);
    expect(lines[0]).toMatch(/waiting for caches to sync.*replicaclusters/);
  });
});
