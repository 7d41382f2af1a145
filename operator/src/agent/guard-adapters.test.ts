import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { KubeClient } from '../runtime/kube-client.ts';
import { guardPorts } from './guard-adapters.ts';

describe("the guard's look at its own server", () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('no socket is Down only when no server runs on the data directory (a wrong --pg-socket-dir is not)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'guard-socket-'));
    const ports = (running: boolean) =>
      guardPorts({
        client: {} as KubeClient,
        namespace: 'db',
        cluster: 'region-a',
        socketDir: join(dir, 'nothing-here'),
        port: 5432,
        user: 'postgres',
        changed: () => undefined,
        serverRunning: async () => running,
      });
    expect(await ports(false).localServer()).toBe('Down');
    await expect(ports(true).localServer()).rejects.toThrow(
      /runs, but nothing answers at .*check --pg-socket-dir/,
    );
  });
});
