import { afterEach, describe, expect, it, vi } from 'vitest';
import { KubeApiError, type KubeClient, type WatchEvent } from '../runtime/kube-client.ts';
import { silentLogger } from '../runtime/logger.ts';
import { SecretWatches } from './secret-watches.ts';

/** A client whose list of Secrets answers as the test says, and whose watches stay open until aborted. */
function fakeClient(listAnswer: () => Promise<unknown>) {
  const calls = { lists: 0, watches: 0, openWatches: 0 };
  const client = {
    list: () => {
      calls.lists++;
      return listAnswer();
    },
    watch: (_t: unknown, _n: unknown, _q: unknown, _e: (e: WatchEvent) => void, signal: AbortSignal) => {
      calls.watches++;
      calls.openWatches++;
      return new Promise<void>((_resolve, reject) =>
        signal.addEventListener('abort', () => {
          calls.openWatches--;
          reject(new Error('aborted'));
        }),
      );
    },
  } as unknown as KubeClient;
  return { client, calls };
}

const settle = () => new Promise((r) => setTimeout(r, 10));

afterEach(() => vi.useRealTimers());

describe('SecretWatches', () => {
  it('asks a refused namespace again only after ten minutes', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { client, calls } = fakeClient(() => Promise.reject(new KubeApiError(403, 'Forbidden', 'no list')));
    const watches = new SecretWatches({ client, log: silentLogger });
    expect(watches.versionOf('db', 'pg')).toBeUndefined();
    await settle();
    for (let i = 0; i < 10; i++) expect(watches.versionOf('db', 'pg')).toBeUndefined();
    expect(calls.lists).toBe(1);
    vi.setSystemTime(Date.now() + 9 * 60_000);
    watches.versionOf('db', 'pg');
    expect(calls.lists).toBe(1);
    vi.setSystemTime(Date.now() + 61_000);
    watches.versionOf('db', 'pg');
    expect(calls.lists).toBe(2);
    await watches.stop();
  });

  it('says a Secret is missing once synced, and stops the watch of a namespace not asked about for ten minutes', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { client, calls } = fakeClient(() =>
      Promise.resolve({ items: null, metadata: { resourceVersion: '5' } }),
    );
    const watches = new SecretWatches({ client, log: silentLogger });
    watches.versionOf('db', 'pg');
    for (let i = 0; i < 50 && watches.versionOf('db', 'pg') === undefined; i++) await settle();
    expect(watches.versionOf('db', 'pg')).toBeNull();
    expect(calls.openWatches).toBe(1);
    // Another namespace keeps being asked about; db does not.
    vi.setSystemTime(Date.now() + 11 * 60_000);
    watches.versionOf('other', 'pg');
    await settle();
    expect(calls.openWatches).toBe(1); // db's stopped, other's opened
    expect(calls.watches).toBe(2);
    await watches.stop();
    expect(calls.openWatches).toBe(0);
  });
});
